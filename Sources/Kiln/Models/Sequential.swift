/// A model: layers applied in order, built from a `ModelSpec` on one device.
public final class Sequential {
    public let spec: ModelSpec
    public let layers: [Layer]
    public let device: Device

    /// How the layers run: the device's plan (`Device.plan`), or every layer alone when not `fused`.
    public let stages: [Stage]
    private let runners: [StageRunner]

    /// Builds every layer with PyTorch's default initialisation, drawn from `seed`, and the stages that
    /// run them as the device plans (fusing computes the same function with fewer passes over memory).
    public init(spec: ModelSpec, device: Device, seed: UInt64, fused: Bool = true) throws {
        let shapes = try spec.validate()
        let inputs = [spec.input] + shapes.dropLast()
        let layerParameters = zip(spec.layers, inputs).map { ModelSpec.parameterShapes($0, input: $1) }
        parameterBuffer = try ParameterBuffer(layerParameters.flatMap { $0 }, on: device)
        var remaining = parameterBuffer.parameters[...]
        /// Layer i's parameters, in the buffer's order.
        func parameters(_ i: Int) -> [Parameter] {
            defer { remaining = remaining.dropFirst(layerParameters[i].count) }
            return Array(remaining.prefix(layerParameters[i].count))
        }
        var random = HostRandom(seed: seed, stream: RandomStream.initialisation)
        var layers: [Layer] = []
        let stages = fused ? device.plan(spec.layers) : Stage.unfused(spec.layers)
        /// Whether layer i is a batch norm that rectifies its input: a ReLU before it in its stage.
        func rectifies(_ i: Int) -> Bool {
            stages.contains { $0.kind != .single && $0.layers.contains(i) && $0.layers.contains(i - 1) && spec.layers[i - 1] == .relu }
        }
        for (i, layer) in spec.layers.enumerated() {
            let input = inputs[i]
            switch layer {
            case let .conv2d(out, kernel, stride, padding, _):
                layers.append(try Conv2d(spec: layer, device: device, inChannels: input.channels, outChannels: out,
                                         geometry: WindowGeometry(kernel: kernel, stride: stride, padding: padding),
                                         parameters: parameters(i), random: &random))
            case let .linear(out, _):
                layers.append(try Linear.make(spec: layer, device: device, inFeatures: input.channels,
                                              outFeatures: out, parameters: parameters(i), random: &random))
            case .batchNorm2d:
                layers.append(try BatchNorm2d(spec: layer, device: device, channels: input.channels,
                                              parameters: parameters(i), rectifiesInput: rectifies(i)))
            case .relu: layers.append(ReLU(device: device))
            case let .maxPool2d(g): layers.append(MaxPool2d(spec: layer, device: device, geometry: g))
            case let .avgPool2d(g): layers.append(AvgPool2d(spec: layer, device: device, geometry: g))
            case .globalAvgPool:
                layers.append(AvgPool2d(spec: layer, device: device,
                                        geometry: WindowGeometry(kernel: input.size, stride: input.size, padding: 0)))
            case let .dropout(p), let .dropout2d(p):
                layers.append(Dropout(spec: layer, device: device, probability: p, channelwise: layer != .dropout(p),
                                      generator: Philox(seed: seed, stream: RandomStream.dropout + UInt32(i))))
            case .flatten: layers.append(Flatten(device: device))
            case .logSoftmax: layers.append(LogSoftmax(device: device))
            }
        }
        self.spec = spec
        self.layers = layers
        self.device = device
        self.stages = stages
        runners = try stages.map { stage -> StageRunner in
            switch stage.kind {
            case .single: return layers[stage.layers.lowerBound]
            case .rectifiedBatchNorm: return layers[stage.layers.upperBound - 1]
            case .convolutionBatchNorm:
                guard let conv = layers[stage.layers.lowerBound] as? Conv2d, let norm = layers[stage.layers.upperBound - 1] as? BatchNorm2d else {
                    throw KilnError("the device's plan fuses layers \(stage.layers) of \(spec.name), which are not a convolution and a batch norm")
                }
                return ConvBatchNorm(conv: conv, norm: norm)
            }
        }
    }

    /// Every parameter and gradient, in one flat buffer each.
    public let parameterBuffer: ParameterBuffer
    public var parameters: [Parameter] { parameterBuffer.parameters }

    /// Runs every stage; `input` is [C, N, H, W]. Returns the last layer's output.
    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        try forward(input, stages: runners.indices, context: context)
    }

    /// Runs stage `index` alone (parity compares stage by stage).
    public func forward(_ input: Tensor, stage index: Int, context: StepContext) throws -> Tensor {
        try runners[index].forward(input, context: context)
    }

    /// Backpropagates through stage `index` alone; nil when `needInputGradient` is false.
    public func backward(_ gradOutput: Tensor, stage index: Int, needInputGradient: Bool) throws -> Tensor? {
        try runners[index].backward(gradOutput, needInputGradient: needInputGradient)
    }

    /// Backpropagates the loss gradient with respect to the output through every stage, writing
    /// each parameter's gradient. Returns the input's gradient when `needInputGradient`.
    @discardableResult
    public func backward(_ gradOutput: Tensor, needInputGradient: Bool = false) throws -> Tensor? {
        try backward(gradOutput, stages: runners.indices, needInputGradient: needInputGradient)
    }

    private func forward(_ input: Tensor, stages: Range<Int>, context: StepContext) throws -> Tensor {
        try runners[stages].reduce(input) { try $1.forward($0, context: context) }
    }

    private func backward(_ gradOutput: Tensor, stages: Range<Int>, needInputGradient: Bool) throws -> Tensor? {
        var gradient: Tensor? = gradOutput
        for i in stages.reversed() {
            gradient = try runners[i].backward(gradient!, needInputGradient: i > 0 || needInputGradient)
            if gradient == nil { break }
        }
        try device.finishGradients()
        return gradient
    }

    /// Every saved tensor under PyTorch's `state_dict` names ("0.weight", "2.running_mean", …).
    public var namedTensors: [(name: String, tensor: Tensor)] {
        layers.enumerated().flatMap { i, layer in
            layer.parameters.map { ("\(i).\($0.name)", $0.value) } + layer.buffers.map { ("\(i).\($0.name)", $0.tensor) }
        }
    }

    /// Every layer's host counters under `state_dict` names ("2.num_batches_tracked").
    public var namedCounters: [(name: String, counter: Counter)] {
        layers.enumerated().flatMap { i, layer in layer.counters.map { ("\(i).\($0.name)", $0.counter) } }
    }
}
