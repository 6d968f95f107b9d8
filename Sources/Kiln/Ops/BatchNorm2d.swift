/// Batch normalisation per channel, as `torch.nn.BatchNorm2d` (momentum 0.1, ε 1e-5, unbiased running
/// variance). JSON: `{"type": "batchnorm2d"}` (`channels`, optional, is checked against the input).
public struct BatchNorm2dOp: Op {
    public static let typeNames = ["batchnorm2d"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.batchNorm2d, ImageShape(channels: 3, size: 3)), (.batchNorm2d, ImageShape(channels: 1, size: 5))]
    }
    public var declaredChannels: Int?

    public init() {}
    public init(_ f: SpecFields) throws { declaredChannels = try f.integer("channels") }

    public var typeName: String { "batchnorm2d" }
    public var torchName: String { "BatchNorm2d" }

    public func encode(to fields: SpecWriter) throws {
        if let declaredChannels { try fields.set("channels", declaredChannels) }
    }

    public func outputShape(_ input: ImageShape) throws -> ImageShape {
        try checkDeclared(declaredChannels, "channels", input)
        return input
    }

    public func parameterShapes(_ input: ImageShape) -> [(name: String, shape: [Int])] {
        [("weight", [input.channels]), ("bias", [input.channels])]
    }

    public func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int { batch * input.size * input.size }

    public var planKind: PlanNode.Kind { .batchNorm }

    public func makeLayer(_ context: LayerContext) throws -> Layer { try BatchNorm2d(context) }

    public func exportNode(_ input: ImageShape) -> ExportNode? {
        ExportNode("BatchNormalization", tensors: ["weight", "bias", "running_mean", "running_var"],
                   attributes: [.float("epsilon", BatchNorm2d.epsilon)])
    }
}

extension LayerSpec {
    public static let batchNorm2d = LayerSpec(BatchNorm2dOp())
}

/// A batch norm bound to a device. Training normalises with batch statistics; inference with running
/// ones. With an `inputActivation` it normalises act(x): the activation before it, fused in (see `Stage`).
public final class BatchNorm2d: Layer {
    public let parameters: [Parameter]
    public let runningMean: Tensor, runningVar: Tensor
    /// PyTorch's `num_batches_tracked`, kept for checkpoints.
    public let batchesTracked = Counter()
    public var counters: [(name: String, counter: Counter)] { [("num_batches_tracked", batchesTracked)] }
    public let inputActivation: Activation
    static let momentum: Float = 0.1, epsilon: Float = 1e-5
    private let device: Device
    /// The last training forward's batch mean and 1/σ, which backward (and parity's tolerances) read.
    let savedMean: Tensor, savedInvStd: Tensor
    /// Set by a data-parallel `Trainer` with `--sync-bn`: statistics over every rank's shard, added up
    /// between the primitives' two stages.
    var sync: BatchNormSync?
    let output = TensorSlot()
    private let gradInput = TensorSlot()
    private let path: String
    private var input: Tensor?

    /// γ ("weight") starts at 1, β ("bias") at 0, as PyTorch's.
    init(_ context: LayerContext) throws {
        let (device, channels, parameters) = (context.device, context.input.channels, context.parameters)
        self.device = device
        path = context.path
        inputActivation = context.inputActivation
        func vector(_ value: Float) throws -> Tensor {
            let t = try device.allocate([channels], .float32)
            try device.fill(t, with: value)
            return t
        }
        self.parameters = parameters
        try device.fill(parameters[0].value, with: 1)
        try device.fill(parameters[1].value, with: 0)
        runningMean = try vector(0)
        runningVar = try vector(1)
        savedMean = try vector(0)
        savedInvStd = try vector(1)
    }

    public var buffers: [(name: String, tensor: Tensor)] { [("running_mean", runningMean), ("running_var", runningVar)] }

    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        self.input = input
        let y = try output.tensor(input.shape, on: device)
        let (gamma, beta) = (parameters[0].value, parameters[1].value)
        switch context.mode {
        case .training:
            if let sync {
                var moments = try device.batchNormMoments(input: input, activation: inputActivation)
                try sync.reduceMoments(&moments)
                try checkValues(Int(moments.first ?? 0))
                try device.batchNormNormalize(input: input, moments: moments, gamma: gamma, beta: beta, runningMean: runningMean,
                                              runningVar: runningVar, savedMean: savedMean, savedInvStd: savedInvStd, output: y,
                                              momentum: Self.momentum, epsilon: Self.epsilon, activation: inputActivation)
            } else {
                try checkValues(input.rowLength)
                try device.batchNormTrainingForward(input: input, gamma: gamma, beta: beta, runningMean: runningMean,
                                                    runningVar: runningVar, savedMean: savedMean, savedInvStd: savedInvStd,
                                                    output: y, momentum: Self.momentum, epsilon: Self.epsilon,
                                                    activation: inputActivation)
            }
            batchesTracked.value += 1
        case .inference:
            try device.batchNormInferenceForward(input: input, gamma: gamma, beta: beta, runningMean: runningMean,
                                                 runningVar: runningVar, output: y, epsilon: Self.epsilon,
                                                 activation: inputActivation)
        }
        return y
    }

    /// Batch statistics of one value per channel are that value: the layer would output β and learn
    /// nothing, and its running variance would decay to 0. Refused, as PyTorch does.
    func checkValues(_ count: Int) throws {
        guard count > 1 else {
            throw KilnError("layer \(path) (batchnorm2d): expected more than 1 value per channel when training, got \(count) "
                            + "(a batch of 1 image at 1x1, or a rank's share of it): use a larger --batch-size")
        }
    }

    /// The training forward's tensors, for a convolution that runs it (`ConvBatchNorm`); counts the batch.
    func trainingForward(output y: Tensor) throws -> BatchNormForward {
        try checkValues(y.rowLength)
        batchesTracked.value += 1
        return BatchNormForward(gamma: parameters[0].value, beta: parameters[1].value, runningMean: runningMean,
                                runningVar: runningVar, savedMean: savedMean, savedInvStd: savedInvStd, output: y,
                                momentum: Self.momentum, epsilon: Self.epsilon, activation: inputActivation)
    }

    /// The backward's tensors, for a convolution that runs it; `input` is the convolution's output.
    func backward(input: Tensor) -> BatchNormBackward {
        BatchNormBackward(input: input, gamma: parameters[0].value, savedMean: savedMean, savedInvStd: savedInvStd,
                          gradGamma: parameters[0].gradient, gradBeta: parameters[1].gradient, activation: inputActivation)
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard let input else { throw KilnError("BatchNorm2d.backward called before forward") }
        // The input gradient falls out of the same pass as γ's and β's, so it is always computed.
        let dx = try gradInput.tensor(input.shape, on: device)
        let (gamma, gradGamma, gradBeta) = (parameters[0].value, parameters[0].gradient, parameters[1].gradient)
        if let sync {
            var sums = try device.batchNormGradientSums(input: input, gradOutput: gradOutput, savedMean: savedMean,
                                                        savedInvStd: savedInvStd, gradGamma: gradGamma, gradBeta: gradBeta,
                                                        activation: inputActivation)
            try sync.reduceGradientSums(&sums)
            try device.batchNormBackwardData(input: input, gradOutput: gradOutput, sums: sums, gamma: gamma, savedMean: savedMean,
                                             savedInvStd: savedInvStd, gradInput: dx, activation: inputActivation)
        } else {
            try device.batchNormBackward(input: input, gradOutput: gradOutput, gamma: gamma, savedMean: savedMean,
                                         savedInvStd: savedInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta,
                                         activation: inputActivation)
        }
        return needInputGradient ? dx : nil
    }
}
