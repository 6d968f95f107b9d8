/// A model built from a `ModelSpec` on one device: its graph (`ModelGraph`), a layer per node, and the
/// stages the device's plan runs them in.
public final class Model {
    public let spec: ModelSpec
    public let graph: ModelGraph
    public let device: Device
    /// The layer that runs each node of the graph, in the graph's order.
    public let layers: [Layer]
    /// How the nodes run: the device's plan (`Device.plan`), or every node alone when not `fused`.
    public let stages: [Stage]
    private let runners: [StageRunner]
    /// Whether a stage whose input already has a gradient from another reader adds its own in its
    /// backward pass (`StageRunner.backward(_:addingInputGradientTo:)`), rather than apart and then summed.
    /// Parity turns it off, to compare each stage's own input gradient.
    public var accumulatesInPlace = true
    /// The residual sums, by stage.
    private let sums: [Int: ResidualSum]
    private let gradients: ValueGradients

    /// Builds every layer with PyTorch's default initialisation, drawn from `seed` node after node, and
    /// the stages that run them as the device plans (fusing computes the same function with fewer
    /// passes over memory).
    public init(spec: ModelSpec, device: Device, seed: UInt64, fused: Bool = true) throws {
        let graph = try spec.graph()
        let shapes = graph.nodes.map { $0.op.parameterShapes(graph.inputShape($0)) }
        parameterBuffer = try ParameterBuffer(shapes.flatMap { $0 }, on: device)
        var remaining = parameterBuffer.parameters[...]
        var random = HostRandom(seed: seed, stream: RandomStream.initialisation)
        let stages = fused ? device.plan(graph.planNodes) : Stage.unfused(graph.planNodes)
        var layers: [Layer] = []
        for stage in stages {
            for i in stage.nodes {
                let node = graph.nodes[i]
                // A batch norm applies the activation its stage folds into it.
                let folded = node.op is BatchNorm2dOp ? stage.foldedActivation : .identity
                let context = LayerContext(device: device, input: graph.inputShape(node), parameters: Array(remaining.prefix(shapes[i].count)),
                                           random: random, seed: seed, position: i, path: node.path, inputActivation: folded)
                remaining = remaining.dropFirst(shapes[i].count)
                layers.append(try node.op.makeLayer(context))
                random = context.random
            }
        }
        self.spec = spec
        self.graph = graph
        self.layers = layers
        self.device = device
        self.stages = stages
        var sums: [Int: ResidualSum] = [:]
        runners = try stages.enumerated().map { s, stage -> StageRunner in
            let first = layers[stage.nodes.lowerBound], last = layers[stage.nodes.upperBound - 1]
            switch stage.kind {
            case .single:
                if let sum = first as? ResidualSum { sums[s] = sum }
                return first
            case .activatedBatchNorm: return last
            case .convolutionBatchNorm:
                guard let conv = first as? Conv2d, let norm = last as? BatchNorm2d else {
                    throw KilnError("the device's plan fuses nodes \(stage.nodes) of \(spec.name), which are not a convolution and a batch norm")
                }
                return ConvBatchNorm(conv: conv, norm: norm)
            }
        }
        self.sums = sums
        gradients = ValueGradients(readers: graph.readers, device: device)
    }

    /// Every parameter and gradient, in one flat buffer each.
    public let parameterBuffer: ParameterBuffer
    public var parameters: [Parameter] { parameterBuffer.parameters }

    /// The values stage `s` reads (one, or a residual sum's two) and the value it writes.
    public func inputs(ofStage s: Int) -> [Int] { graph.nodes[stages[s].nodes.lowerBound].inputs }
    public func output(ofStage s: Int) -> Int { graph.nodes[stages[s].nodes.upperBound - 1].output }
    /// What runs stage `s`.
    func runner(ofStage s: Int) -> StageRunner { runners[s] }

    /// Runs `stages` (every stage by default) on `input` ([C, N, H, W]); returns the last one's output.
    /// `each` sees every stage's inputs and output as it ends.
    public func forward(_ input: Tensor, through stages: Range<Int>? = nil, context: StepContext,
                        each: ((_ stage: Int, _ inputs: [Tensor], _ output: Tensor) throws -> Void)? = nil) throws -> Tensor {
        let stages = stages ?? self.stages.indices
        var values = [Tensor?](repeating: nil, count: graph.shapes.count)
        values[0] = input
        for s in stages {
            let inputs = self.inputs(ofStage: s).map { values[$0]! }
            let y = try forward(inputs, stage: s, context: context)
            values[output(ofStage: s)] = y
            try each?(s, inputs, y)
        }
        return values[output(ofStage: stages.upperBound - 1)]!
    }

    /// Backpropagates `gradOutput`, the gradient of the last of `stages`' output (every stage by
    /// default), through them in reverse, writing each parameter's gradient and summing the gradients
    /// that reach a value read by several stages. `each` sees every stage's output gradient and the
    /// gradients it sends its inputs. Returns the input's gradient when `needInputGradient`.
    @discardableResult
    public func backward(_ gradOutput: Tensor, through stages: Range<Int>? = nil, needInputGradient: Bool = false,
                         each: ((_ stage: Int, _ gradOutput: Tensor, _ gradInputs: [Tensor?]) throws -> Void)? = nil) throws -> Tensor? {
        let stages = stages ?? self.stages.indices
        gradients.reset()
        try gradients.add(gradOutput, to: output(ofStage: stages.upperBound - 1))
        for s in stages.reversed() {
            guard let g = gradients[output(ofStage: s)] else { continue }
            let inputs = self.inputs(ofStage: s)
            // A convolution adds its input gradient to the sum that value has received so far, in its own pass.
            if accumulatesInPlace, inputs.count == 1, inputs[0] != 0 || needInputGradient, let sum = gradients.partialSum(inputs[0]),
               try runners[s].backward(g, addingInputGradientTo: sum) {
                gradients.added(to: inputs[0])
                try each?(s, g, [sum])
                continue
            }
            let gradInputs = try backward(g, stage: s, needInputGradient: needInputGradient || inputs.contains { $0 != 0 })
            for (value, gradient) in zip(inputs, gradInputs) where value != 0 || needInputGradient {
                if let gradient { try gradients.add(gradient, to: value) }
            }
            try each?(s, g, gradInputs)
        }
        return needInputGradient ? gradients[0] : nil
    }

    /// Runs stage `s` alone on the values it reads.
    public func forward(_ inputs: [Tensor], stage s: Int, context: StepContext) throws -> Tensor {
        if let sum = sums[s] { return try sum.forward(inputs[0], inputs[1]) }
        return try runners[s].forward(inputs[0], context: context)
    }

    /// Backpropagates through stage `s` alone: its parameters' gradients, and the gradient it sends each
    /// value it reads (nil when `needInputGradient` is false).
    public func backward(_ gradOutput: Tensor, stage s: Int, needInputGradient: Bool) throws -> [Tensor?] {
        let count = inputs(ofStage: s).count
        if sums[s] != nil { return [Tensor?](repeating: needInputGradient ? gradOutput : nil, count: count) }
        return [try runners[s].backward(gradOutput, needInputGradient: needInputGradient)]
    }

    /// Every saved tensor under PyTorch's `state_dict` names ("0.weight", "3.body.2.running_mean", …).
    public var namedTensors: [(name: String, tensor: Tensor)] {
        zip(graph.nodes, layers).flatMap { node, layer in
            layer.parameters.map { ("\(node.path).\($0.name)", $0.value) } + layer.buffers.map { ("\(node.path).\($0.name)", $0.tensor) }
        }
    }

    /// Every layer's buffers (batch norm's running statistics) under their `state_dict` names.
    public var namedBuffers: [(name: String, tensor: Tensor)] {
        zip(graph.nodes, layers).flatMap { node, layer in layer.buffers.map { ("\(node.path).\($0.name)", $0.tensor) } }
    }

    /// Every parameter under its `state_dict` name.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        zip(graph.nodes, layers).flatMap { node, layer in layer.parameters.map { ("\(node.path).\($0.name)", $0) } }
    }

    /// Every layer's host counters under `state_dict` names ("2.num_batches_tracked").
    public var namedCounters: [(name: String, counter: Counter)] {
        zip(graph.nodes, layers).flatMap { node, layer in layer.counters.map { ("\(node.path).\($0.name)", $0.counter) } }
    }
}

/// The gradients reaching each value of a graph during one backward pass. A value read by one node takes
/// the gradient that node sends as it is; a value read by several sums theirs in a buffer of its own
/// (a copy of the first, then `Device.add`).
final class ValueGradients {
    private let readers: [Int], device: Device
    private let buffers: [TensorSlot]
    private var gradients: [Tensor?], arrived: [Int]

    init(readers: [Int], device: Device) {
        (self.readers, self.device) = (readers, device)
        buffers = readers.map { _ in TensorSlot() }
        gradients = readers.map { _ in nil }
        arrived = readers.map { _ in 0 }
    }

    /// Forgets the last pass's gradients.
    func reset() {
        gradients = gradients.map { _ in nil }
        arrived = arrived.map { _ in 0 }
    }

    /// The gradient summed so far into `value`.
    subscript(value: Int) -> Tensor? { gradients[value] }

    /// The sum `value` has received so far, when it is read by several stages and one has sent its
    /// gradient: a stage may add its own to it (`added(to:)`).
    func partialSum(_ value: Int) -> Tensor? { readers[value] > 1 && arrived[value] > 0 ? gradients[value] : nil }

    /// Counts a gradient a stage added to `partialSum(value)` itself.
    func added(to value: Int) { arrived[value] += 1 }

    /// Adds `gradient` to what `value` has received.
    func add(_ gradient: Tensor, to value: Int) throws {
        guard readers[value] > 1 else { gradients[value] = gradient; return }
        let sum = try buffers[value].tensor(gradient.shape, on: device)
        if arrived[value] == 0 { try device.copy(gradient, to: sum) } else { try device.add(sum, gradient, into: sum) }
        arrived[value] += 1
        gradients[value] = sum
    }
}
