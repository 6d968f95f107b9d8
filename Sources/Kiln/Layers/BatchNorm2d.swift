/// Batch normalisation per channel, as `torch.nn.BatchNorm2d` (momentum 0.1, ε 1e-5, unbiased
/// running variance). Training normalises with batch statistics; inference with running ones.
/// With `rectifiesInput` it normalises max(x, 0): the ReLU before it, fused in (see `Stage`).
public final class BatchNorm2d: Layer {
    public let spec: LayerSpec
    public let parameters: [Parameter]
    public let runningMean: Tensor, runningVar: Tensor
    /// PyTorch's `num_batches_tracked`, kept for checkpoints.
    public let batchesTracked = Counter()
    public var counters: [(name: String, counter: Counter)] { [("num_batches_tracked", batchesTracked)] }
    public let rectifiesInput: Bool
    static let momentum: Float = 0.1, epsilon: Float = 1e-5
    private let device: Device
    /// The last training forward's batch mean and 1/σ, which backward (and parity's tolerances) read.
    let savedMean: Tensor, savedInvStd: Tensor
    /// Set by a data-parallel `Trainer` with `--sync-bn`: statistics over every rank's shard.
    var sync: BatchNormSync?
    let output = TensorSlot()
    private let gradInput = TensorSlot()
    private var input: Tensor?

    /// `parameters`: γ ("weight") and β ("bias"), as the model's `ParameterBuffer` laid them out.
    init(spec: LayerSpec, device: Device, channels: Int, parameters: [Parameter], rectifiesInput: Bool = false) throws {
        self.spec = spec
        self.device = device
        self.rectifiesInput = rectifiesInput
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
            try device.batchNormTrainingForward(input: input, gamma: gamma, beta: beta, runningMean: runningMean,
                                                runningVar: runningVar, savedMean: savedMean, savedInvStd: savedInvStd,
                                                output: y, momentum: Self.momentum, epsilon: Self.epsilon,
                                                rectify: rectifiesInput, sync: sync)
            batchesTracked.value += 1
        case .inference:
            try device.batchNormInferenceForward(input: input, gamma: gamma, beta: beta, runningMean: runningMean,
                                                 runningVar: runningVar, output: y, epsilon: Self.epsilon,
                                                 rectify: rectifiesInput)
        }
        return y
    }

    /// The training forward's tensors, for a convolution that runs it (`ConvBatchNorm`); counts the batch.
    func trainingForward(output y: Tensor) -> BatchNormForward {
        batchesTracked.value += 1
        return BatchNormForward(gamma: parameters[0].value, beta: parameters[1].value, runningMean: runningMean,
                                runningVar: runningVar, savedMean: savedMean, savedInvStd: savedInvStd, output: y,
                                momentum: Self.momentum, epsilon: Self.epsilon, rectify: rectifiesInput, sync: sync)
    }

    /// The backward's tensors, for a convolution that runs it; `input` is the convolution's output.
    func backward(input: Tensor) -> BatchNormBackward {
        BatchNormBackward(input: input, gamma: parameters[0].value, savedMean: savedMean, savedInvStd: savedInvStd,
                          gradGamma: parameters[0].gradient, gradBeta: parameters[1].gradient, rectify: rectifiesInput,
                          sync: sync)
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard let input else { throw KilnError("BatchNorm2d.backward called before forward") }
        // The input gradient falls out of the same pass as γ's and β's, so it is always computed.
        let dx = try gradInput.tensor(input.shape, on: device)
        try device.batchNormBackward(input: input, gradOutput: gradOutput, gamma: parameters[0].value,
                                     savedMean: savedMean, savedInvStd: savedInvStd, gradInput: dx,
                                     gradGamma: parameters[0].gradient, gradBeta: parameters[1].gradient,
                                     rectify: rectifiesInput, sync: sync)
        return needInputGradient ? dx : nil
    }
}
