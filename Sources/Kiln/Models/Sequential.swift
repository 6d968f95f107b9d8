/// A model: layers applied in order, built from a `ModelSpec` on one device.
public final class Sequential {
    public let spec: ModelSpec
    public let layers: [Layer]
    public let device: Device

    /// Builds every layer with PyTorch's default initialisation, drawn from `seed`. A ReLU directly
    /// followed by BatchNorm2d is folded into the batch norm's passes (`foldsReLU`), which computes the
    /// same function with one read and write of the activation fewer each way.
    public init(spec: ModelSpec, device: Device, seed: UInt64, foldsReLU: Bool = true) throws {
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
        func folded(_ i: Int) -> Bool {
            foldsReLU && i >= 0 && i + 1 < spec.layers.count && spec.layers[i] == .relu && spec.layers[i + 1] == .batchNorm2d
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
                                              parameters: parameters(i), rectifiesInput: folded(i - 1)))
            case .relu: layers.append(ReLU(device: device, foldedIntoNext: folded(i)))
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
    }

    /// Every parameter and gradient, in one flat buffer each.
    public let parameterBuffer: ParameterBuffer
    public var parameters: [Parameter] { parameterBuffer.parameters }

    /// Runs every layer; `input` is [C, N, H, W]. Returns the last layer's output.
    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        try layers.reduce(input) { try $1.forward($0, context: context) }
    }

    /// Backpropagates the loss gradient with respect to the output through every layer, writing
    /// each parameter's gradient. The first layer's input needs no gradient.
    public func backward(_ gradOutput: Tensor) throws {
        var gradient = gradOutput
        for (i, layer) in layers.enumerated().reversed() {
            guard let next = try layer.backward(gradient, needInputGradient: i > 0) else { break }
            gradient = next
        }
    }

    /// Every saved tensor under PyTorch's `state_dict` names ("0.weight", "2.running_mean", …).
    public var namedTensors: [(name: String, tensor: Tensor)] {
        layers.enumerated().flatMap { i, layer in
            layer.parameters.map { ("\(i).\($0.name)", $0.value) } + layer.buffers.map { ("\(i).\($0.name)", $0.tensor) }
        }
    }
}
