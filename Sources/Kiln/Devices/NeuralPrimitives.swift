/// A device's neural-network role: the forward and backward primitives the layers call, DLPrimitives'
/// way (forward, and backward for data and weights), on channel-major activations.
///
/// Shapes: activations are `[C, N, H, W]` (channel-major, see ``Tensor``); `weight` of a convolution is
/// `[Co, Ci, k, k]`; per-channel vectors are `[C]`. Every primitive writes its outputs completely (no
/// accumulation into them unless stated) and checks its arguments first (``PrimitiveChecks``).
public protocol NeuralPrimitives: AnyObject {
    // MARK: Convolution (square kernel; weight [Co, Ci/groups, k, k]; x [Ci, N, H, W]; y [Co, N, OH, OW];
    // the geometry's dilation spaces the taps, its groups split the channels as PyTorch's `nn.Conv2d`)
    /// y = conv(x, weight), plus bias[c] on channel c when given. A Linear layer is the pointwise case
    /// on `[F, N, 1, 1]`. With `normalization`, the batch norm after the convolution (see `Stage`) runs
    /// its training forward on `output` too, as `batchNormTrainingForward` would, writing its own output.
    func conv2dForward(input: Tensor, weight: Tensor, bias: Tensor?, output: Tensor, geometry: WindowGeometry,
                       normalization: BatchNormForward?) throws
    /// The gradients of a convolution: gradWeight = correlation of gradOutput with input summed over the
    /// batch, gradBias[c] = Σ gradOutput[c, …] when given, and gradInput = conv_transpose(gradOutput, weight)
    /// when given; with `accumulate`, gradInput += conv_transpose(…) (dx = β·dx + …, β = 1: the input is
    /// a value that another layer reads too, whose gradient is already there). With `normalization`, gradOutput is the gradient of the batch norm after the
    /// convolution instead, whose backward runs first (γ's and β's gradients too) as `batchNormBackward`
    /// would. Parameter gradients are complete after `finishGradients`.
    func conv2dBackward(input: Tensor, gradOutput: Tensor, weight: Tensor, gradWeight: Tensor, gradBias: Tensor?,
                        gradInput: Tensor?, accumulate: Bool, geometry: WindowGeometry, normalization: BatchNormBackward?) throws

    // MARK: Batch norm (per channel over N·H·W)
    // `activation`: normalise act(x) instead of x, and take the input gradient through it. This is an
    // activation directly before the batch norm folded into its passes (see `Stage`): it saves a full
    // read and write of the tensor in each direction. `.identity` is the plain batch norm.
    /// Normalises with batch statistics, saves mean and 1/σ for backward, and updates running
    /// statistics as PyTorch does (momentum, unbiased variance).
    func batchNormTrainingForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                  runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                  output: Tensor, momentum: Float, epsilon: Float, activation: Activation) throws
    /// Normalises with the running statistics.
    func batchNormInferenceForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                   runningVar: Tensor, output: Tensor, epsilon: Float, activation: Activation) throws
    /// Gradients of the training forward, from the statistics it saved (γ's and β's complete after
    /// `finishGradients`).
    func batchNormBackward(input: Tensor, gradOutput: Tensor, gamma: Tensor, savedMean: Tensor,
                           savedInvStd: Tensor, gradInput: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                           activation: Activation) throws

    // MARK: Batch norm over a batch shared out over processes (`--sync-bn`), in its two stages
    // Each stage-one sum is taken so that its rounding does not depend on how the batch is split
    // (in doubles, or per image and added in doubles), and comes back to the host, where the caller
    // adds the other processes' (`BatchNormSync`) before the second stage.
    /// Per channel the raw moments [count, Σ act(x), Σ act(x)²] of this process's images.
    func batchNormMoments(input: Tensor, activation: Activation) throws -> [Double]
    /// The training forward's second stage with the whole batch's `moments` (as `batchNormMoments` gives).
    func batchNormNormalize(input: Tensor, moments: [Double], gamma: Tensor, beta: Tensor, runningMean: Tensor,
                            runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor, output: Tensor,
                            momentum: Float, epsilon: Float, activation: Activation) throws
    /// Per channel [Σ dy, Σ dy·x̂] of this process's images; γ's and β's gradients are written from them
    /// (complete after `finishGradients`).
    func batchNormGradientSums(input: Tensor, gradOutput: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                               gradGamma: Tensor, gradBeta: Tensor, activation: Activation) throws -> [Double]
    /// The input gradient from the whole batch's `sums` (as `batchNormGradientSums` gives, in this
    /// process's scale: divided by this process's element count they are the means it needs).
    func batchNormBackwardData(input: Tensor, gradOutput: Tensor, sums: [Double], gamma: Tensor, savedMean: Tensor,
                               savedInvStd: Tensor, gradInput: Tensor, activation: Activation) throws

    // MARK: Group norm (per image, over groups of channels; no running statistics)
    /// Normalises each image's group of channels g·C/G ..< (g+1)·C/G (G = `groups`, dividing C) over its
    /// (C/G)·H·W values with their mean and biased variance, as `nn.GroupNorm`, then y = x̂·weight + bias:
    /// weight and bias `[C]`, one per channel, or `[C, H, W]`, one per element (`nn.LayerNorm([C, H, W])`
    /// is one group with those). Saves each image's and group's mean and 1/σ (`[N, G]`) for backward. The
    /// statistics are summed in doubles, or as partial (count, mean, m2) combined pairwise.
    func groupNormForward(input: Tensor, weight: Tensor, bias: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                          output: Tensor, groups: Int, epsilon: Float) throws
    /// Gradients of `groupNormForward` from the statistics it saved: the input's, and the weight's and the
    /// bias's (complete after `finishGradients`).
    func groupNormBackward(input: Tensor, gradOutput: Tensor, weight: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                           gradInput: Tensor, gradWeight: Tensor, gradBias: Tensor, groups: Int) throws

    // MARK: Pooling (per plane; floor mode; average pooling counts padding, as PyTorch's default)
    /// `argmax` (int32, shaped like output) records the winning input offset within each plane.
    func maxPoolForward(input: Tensor, output: Tensor, argmax: Tensor, geometry: WindowGeometry) throws
    /// gradInput: each output's gradient added to the input that won its window (zeros elsewhere).
    func maxPoolBackward(gradOutput: Tensor, argmax: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws
    /// The mean of each window, padding counted as zeros.
    func avgPoolForward(input: Tensor, output: Tensor, geometry: WindowGeometry) throws
    /// gradInput: each output's gradient spread evenly over its window.
    func avgPoolBackward(gradOutput: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws

    // MARK: Element-wise
    /// output = activation(input).
    func activationForward(input: Tensor, output: Tensor, activation: Activation) throws
    /// gradInput = gradOutput · activation′, read from the output (positive exactly where the input is).
    func activationBackward(output: Tensor, gradOutput: Tensor, gradInput: Tensor, activation: Activation) throws
    /// mask = keep ? 1/(1-p) : 0 and output = input · mask. `channelwise` drops whole (c, n) planes
    /// (Dropout2d). The decision for element (or plane) i is Philox word i%4 of block i/4 at
    /// counter (i/4, step) with `generator`'s key: identical on every device.
    func dropoutForward(input: Tensor, output: Tensor, mask: Tensor, probability: Float,
                        channelwise: Bool, generator: Philox, step: UInt64) throws
    /// z = x · y element-wise (dropout backward: gradInput = gradOutput · mask).
    func multiply(_ x: Tensor, _ y: Tensor, into z: Tensor) throws
    /// z = x + y element-wise (a residual block's sum, and gradients summed where a value has several
    /// readers); z may be x.
    func add(_ x: Tensor, _ y: Tensor, into z: Tensor) throws
    /// [C, N, H, W] → [C·H·W, N, 1, 1], feature index c·H·W + h·W + w as PyTorch's Flatten.
    func flattenForward(input: Tensor, output: Tensor) throws
    /// The inverse permutation, for gradients.
    func flattenBackward(gradOutput: Tensor, gradInput: Tensor) throws

    // MARK: Classifier head ([K, N] scores)
    /// output[k, n] = input[k, n] − log Σₖ exp(input[k, n]), per column n.
    func logSoftmaxForward(input: Tensor, output: Tensor) throws
    /// gradInput = gradOutput − softmax · Σₖ gradOutput, per column.
    func logSoftmaxBackward(output: Tensor, gradOutput: Tensor, gradInput: Tensor) throws
    /// The loss of a classifier: logProbs = logSoftmax(scores), adds (Σ loss, number of argmax hits) to
    /// `totals` [2], and when `gradient` is given writes the gradient of the mean loss with respect to the
    /// scores, (softmax − q) / N. With label smoothing ε (0 ≤ ε < 1) the target is q = (1−ε)·one-hot + ε/K
    /// and a sample's loss (1−ε)·(−logProbs[label]) + ε·meanₖ(−logProbs[k]), PyTorch's
    /// `CrossEntropyLoss(label_smoothing: ε)`; ε = 0 is the NLL, the same floats as without it. Totals
    /// stay on the device until read.
    func logSoftmaxNLL(scores: Tensor, labels: Tensor, logProbs: Tensor, totals: Tensor, gradient: Tensor?,
                       smoothing: Float) throws
}

/// The tensors of a batch norm's training forward, when a convolution's forward runs it (`conv2dForward`).
public struct BatchNormForward {
    public let gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor
    public let savedMean: Tensor, savedInvStd: Tensor
    /// The batch norm's output; its input is the convolution's output.
    public let output: Tensor
    public let momentum: Float, epsilon: Float
    /// An activation between the convolution and the batch norm, folded in (see `batchNormTrainingForward`).
    public let activation: Activation
}

/// The tensors of a batch norm's backward, when a convolution's backward runs it (`conv2dBackward`).
public struct BatchNormBackward {
    /// The batch norm's input: the convolution's output.
    public let input: Tensor
    public let gamma: Tensor, savedMean: Tensor, savedInvStd: Tensor
    public let gradGamma: Tensor, gradBeta: Tensor
    public let activation: Activation
}

extension Device {
    /// A batch norm fused into a convolution, by composing the plain primitives: the CPU's way, and the
    /// OpenCL device's for pointwise convolutions (CLBlast GEMMs, which take no epilogue).
    func composedForward(_ output: Tensor, _ n: BatchNormForward) throws {
        try batchNormTrainingForward(input: output, gamma: n.gamma, beta: n.beta, runningMean: n.runningMean,
                                     runningVar: n.runningVar, savedMean: n.savedMean, savedInvStd: n.savedInvStd,
                                     output: n.output, momentum: n.momentum, epsilon: n.epsilon, activation: n.activation)
    }

    /// The batch norm's input gradient into `scratch`, which then serves as the convolution's output gradient.
    func composedBackward(_ gradOutput: Tensor, _ n: BatchNormBackward, scratch: TensorSlot) throws -> Tensor {
        let g = try scratch.tensor(n.input.shape, on: self)
        try batchNormBackward(input: n.input, gradOutput: gradOutput, gamma: n.gamma, savedMean: n.savedMean,
                              savedInvStd: n.savedInvStd, gradInput: g, gradGamma: n.gradGamma, gradBeta: n.gradBeta,
                              activation: n.activation)
        return g
    }
}
