/// Where tensors live and primitives run: the CPU or an OpenCL device. Everything above this protocol
/// (layers, trainer, checkpoints) is device-agnostic.
///
/// Shapes: activations are `[C, N, H, W]` (channel-major, see `Tensor`); `weight` of a convolution is
/// `[Co, Ci, k, k]`; per-channel vectors are `[C]`. Every primitive writes its outputs completely
/// (no accumulation into them unless stated). Calls are queued in order; results are visible to the
/// next primitive and to `read`. Errors name the failing call.
///
/// Call order of one training step (as `Sequential` issues it, stage by stage of its `plan`):
///   gatherBatch → forward primitives stage by stage (conv2dForward, with a fused batch norm where the
///   plan fuses one; batchNormTrainingForward; reluForward; dropoutForward; maxPoolForward; …) up to the
///   class scores → logSoftmaxNLL (log-probabilities, loss totals and the scores' gradient in one) →
///   backward primitives in reverse (conv2dBackward: weights and input together, through a fused batch
///   norm where there is one) → finishGradients → sgdStep / adamStep over the flat parameter buffer.
public protocol Device: AnyObject {
    /// One line naming the device, e.g. "cpu (OpenBLAS, 2 threads)".
    var summary: String { get }
    /// How this device runs a model's layers: which consecutive ones it fuses (see `Stage`).
    func plan(_ layers: [LayerSpec]) -> [Stage]

    // MARK: Memory
    /// Uninitialised storage for `shape`.
    func allocate(_ shape: [Int], _ dtype: DType) throws -> Tensor
    func write(_ values: [Float], to tensor: Tensor) throws
    func write(_ values: [Int32], to tensor: Tensor) throws
    func readFloats(_ tensor: Tensor) throws -> [Float]
    func readInts(_ tensor: Tensor) throws -> [Int32]
    func fill(_ tensor: Tensor, with value: Float) throws
    func copy(_ source: Tensor, to destination: Tensor) throws
    /// Blocks until every queued primitive has run: call before reading a clock.
    func finish() throws
    /// Completes the gradients that backward primitives left as partial sums (OpenCL adds up all of a
    /// step's in one launch). Reads, copies, `finish` and the optimizer steps call it first, so a
    /// gradient is never seen incomplete; `Sequential.backward` calls it last.
    func finishGradients() throws
    /// Device memory allocated so far in bytes, where the device keeps count (OpenCL); nil on the CPU.
    var allocatedBytes: Int? { get }
    /// A tensor of `shape` over `tensor`'s elements from `offset` on (no copy; writes show through).
    /// `offset` must be a multiple of `viewAlignment`.
    func view(_ tensor: Tensor, offset: Int, shape: [Int]) throws -> Tensor
    /// Elements a view's offset must be a multiple of (OpenCL sub-buffers start at aligned addresses).
    var viewAlignment: Int { get }

    // MARK: Convolution (square kernel; weight [Co, Ci, k, k]; x [Ci, N, H, W]; y [Co, N, OH, OW])
    /// y = conv(x, weight), plus bias[c] on channel c when given. A Linear layer is the pointwise case
    /// on `[F, N, 1, 1]`. With `normalization`, the batch norm after the convolution (see `Stage`) runs
    /// its training forward on `output` too, as `batchNormTrainingForward` would, writing its own output.
    func conv2dForward(input: Tensor, weight: Tensor, bias: Tensor?, output: Tensor, geometry: WindowGeometry,
                       normalization: BatchNormForward?) throws
    /// The gradients of a convolution: gradWeight = correlation of gradOutput with input summed over the
    /// batch, gradBias[c] = Σ gradOutput[c, …] when given, and gradInput = conv_transpose(gradOutput, weight)
    /// when given. With `normalization`, gradOutput is the gradient of the batch norm after the
    /// convolution instead, whose backward runs first (γ's and β's gradients too) as `batchNormBackward`
    /// would. Parameter gradients are complete after `finishGradients`.
    func conv2dBackward(input: Tensor, gradOutput: Tensor, weight: Tensor, gradWeight: Tensor, gradBias: Tensor?,
                        gradInput: Tensor?, geometry: WindowGeometry, normalization: BatchNormBackward?) throws

    // MARK: Batch norm (per channel over N·H·W)
    // `rectify`: normalise max(x, 0) instead of x, and zero the input gradient where x ≤ 0. This is a
    // ReLU directly before the batch norm folded into its passes (see `Stage`): it saves a full
    // read and write of the activation in each direction.
    /// Normalises with batch statistics, saves mean and 1/σ for backward, and updates running
    /// statistics as PyTorch does (momentum, unbiased variance).
    func batchNormTrainingForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                  runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                  output: Tensor, momentum: Float, epsilon: Float, rectify: Bool) throws
    /// Normalises with the running statistics.
    func batchNormInferenceForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                   runningVar: Tensor, output: Tensor, epsilon: Float, rectify: Bool) throws
    /// Gradients of the training forward, from the statistics it saved (γ's and β's complete after
    /// `finishGradients`).
    func batchNormBackward(input: Tensor, gradOutput: Tensor, gamma: Tensor, savedMean: Tensor,
                           savedInvStd: Tensor, gradInput: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                           rectify: Bool) throws

    // MARK: Pooling (per plane; floor mode; average pooling counts padding, as PyTorch's default)
    /// `argmax` (int32, shaped like output) records the winning input offset within each plane.
    func maxPoolForward(input: Tensor, output: Tensor, argmax: Tensor, geometry: WindowGeometry) throws
    func maxPoolBackward(gradOutput: Tensor, argmax: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws
    func avgPoolForward(input: Tensor, output: Tensor, geometry: WindowGeometry) throws
    func avgPoolBackward(gradOutput: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws

    // MARK: Element-wise
    func reluForward(input: Tensor, output: Tensor) throws
    /// gradInput = gradOutput where output > 0, else 0.
    func reluBackward(output: Tensor, gradOutput: Tensor, gradInput: Tensor) throws
    /// mask = keep ? 1/(1-p) : 0 and output = input · mask. `channelwise` drops whole (c, n) planes
    /// (Dropout2d). The decision for element (or plane) i is Philox word i%4 of block i/4 at
    /// counter (i/4, step) with `generator`'s key: identical on every device.
    func dropoutForward(input: Tensor, output: Tensor, mask: Tensor, probability: Float,
                        channelwise: Bool, generator: Philox, step: UInt64) throws
    /// z = x · y element-wise (dropout backward: gradInput = gradOutput · mask).
    func multiply(_ x: Tensor, _ y: Tensor, into z: Tensor) throws
    /// [C, N, H, W] → [C·H·W, N, 1, 1], feature index c·H·W + h·W + w as PyTorch's Flatten.
    func flattenForward(input: Tensor, output: Tensor) throws
    /// The inverse permutation, for gradients.
    func flattenBackward(gradOutput: Tensor, gradInput: Tensor) throws

    // MARK: Classifier head ([K, N] scores)
    func logSoftmaxForward(input: Tensor, output: Tensor) throws
    func logSoftmaxBackward(output: Tensor, gradOutput: Tensor, gradInput: Tensor) throws
    /// The loss of a classifier: logProbs = logSoftmax(scores), adds (Σ −logProbs[label], number of
    /// argmax hits) to `totals` [2], and when `gradient` is given writes the gradient of the mean NLL
    /// with respect to the scores, (softmax − one-hot) / N. Totals stay on the device until read.
    func logSoftmaxNLL(scores: Tensor, labels: Tensor, logProbs: Tensor, totals: Tensor, gradient: Tensor?) throws

    // MARK: Optimizers (in place; PyTorch semantics, weight decay added to the gradient)
    func sgdStep(parameter: Tensor, gradient: Tensor, velocity: Tensor, learningRate: Float,
                 momentum: Float, nesterov: Bool, weightDecay: Float) throws
    func adamStep(parameter: Tensor, gradient: Tensor, firstMoment: Tensor, secondMoment: Tensor,
                  learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float,
                  step: Int) throws

    // MARK: Data
    /// Copies images `order[start ..< start+N]` of `images` [C, total, H, W] into `output` [C, N, H, W]
    /// and their labels into `labels` [N]; with `augmentation`, each image is rotated and shifted
    /// (bilinear) by amounts drawn from `generator` at counter (slot, step), pixels from outside the
    /// image taking `fill` [C] (a black pixel, normalised).
    func gatherBatch(images: Tensor, labels: Tensor, order: Tensor, start: Int, output: Tensor, outputLabels: Tensor,
                     augmentation: Augmentation?, fill: Tensor, generator: Philox, step: UInt64) throws
}

/// The tensors of a batch norm's training forward, when a convolution's forward runs it (`conv2dForward`).
public struct BatchNormForward {
    public let gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor
    public let savedMean: Tensor, savedInvStd: Tensor
    /// The batch norm's output; its input is the convolution's output.
    public let output: Tensor
    public let momentum: Float, epsilon: Float
    /// A ReLU between the convolution and the batch norm, folded in (see `batchNormTrainingForward`).
    public let rectify: Bool
}

/// The tensors of a batch norm's backward, when a convolution's backward runs it (`conv2dBackward`).
public struct BatchNormBackward {
    /// The batch norm's input: the convolution's output.
    public let input: Tensor
    public let gamma: Tensor, savedMean: Tensor, savedInvStd: Tensor
    public let gradGamma: Tensor, gradBeta: Tensor
    public let rectify: Bool
}

extension Device {
    /// A batch norm fused into a convolution, by composing the plain primitives: the CPU's way, and the
    /// OpenCL device's for pointwise convolutions (CLBlast GEMMs, which take no epilogue).
    func composedForward(_ output: Tensor, _ n: BatchNormForward) throws {
        try batchNormTrainingForward(input: output, gamma: n.gamma, beta: n.beta, runningMean: n.runningMean,
                                     runningVar: n.runningVar, savedMean: n.savedMean, savedInvStd: n.savedInvStd,
                                     output: n.output, momentum: n.momentum, epsilon: n.epsilon, rectify: n.rectify)
    }

    /// The batch norm's input gradient into `scratch`, which then serves as the convolution's output gradient.
    func composedBackward(_ gradOutput: Tensor, _ n: BatchNormBackward, scratch: TensorSlot) throws -> Tensor {
        let g = try scratch.tensor(n.input.shape, on: self)
        try batchNormBackward(input: n.input, gradOutput: gradOutput, gamma: n.gamma, savedMean: n.savedMean,
                              savedInvStd: n.savedInvStd, gradInput: g, gradGamma: n.gradGamma, gradBeta: n.gradBeta,
                              rectify: n.rectify)
        return g
    }
}

/// Argument checks both devices make before touching memory.
extension Device {
    /// `count` values of `dtype` must fill `tensor` exactly (write, copy).
    func checkTransfer(_ count: Int, _ tensor: Tensor, _ dtype: DType) throws {
        guard count == tensor.count, dtype == tensor.dtype else {
            throw KilnError("cannot copy \(count) \(dtype) values into a \(tensor.dtype) tensor of shape \(tensor.shape)")
        }
    }

    /// A view must lie within its tensor, at an aligned offset.
    func checkView(_ tensor: Tensor, offset: Int, shape: [Int]) throws {
        let count = shape.reduce(1, *)
        guard offset >= 0, offset % viewAlignment == 0, shape.allSatisfy({ $0 >= 0 }), offset + count <= tensor.count else {
            throw KilnError("cannot view \(shape) at offset \(offset) of a tensor of \(tensor.count) elements (alignment \(viewAlignment))")
        }
    }

    /// A batch must lie within the shuffled order (gatherBatch).
    func checkBatch(start: Int, count: Int, order: Tensor) throws {
        guard start >= 0, start + count <= order.count else {
            throw KilnError("batch \(start)..<\(start + count) is outside the \(order.count) shuffled indices")
        }
    }
}

/// Random rotation and shift applied on the fly (pixels from outside the image are black).
public struct Augmentation: Codable, Equatable, Sendable {
    public var maxDegrees: Float
    public var maxShift: Float

    public init(maxDegrees: Float, maxShift: Float) {
        self.maxDegrees = maxDegrees
        self.maxShift = maxShift
    }

    /// The inverse map of one image's transform, from Philox words: output pixel (x, y) samples input
    /// at (a·x' + b·y' + cx + tx, −b·x' + a·y' + cy + ty), with x' = x − cx, y' = y − cy.
    @inline(__always)
    public func transform(_ words: SIMD4<UInt32>) -> (a: Float, b: Float, tx: Float, ty: Float) {
        let angle = (Philox.unit(words[0]) * 2 - 1) * maxDegrees * (Float.pi / 180)
        let tx = (Philox.unit(words[1]) * 2 - 1) * maxShift
        let ty = (Philox.unit(words[2]) * 2 - 1) * maxShift
        return (cosf(angle), sinf(angle), tx, ty)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
