/// Whether a layer trains (batch statistics, dropout on) or evaluates (running statistics, dropout off).
public enum Mode: Sendable { case training, inference }

/// What a layer may need to know about the step it runs in.
public struct StepContext: Sendable {
    public var mode: Mode
    /// Global training step: the counter for dropout's random numbers.
    public var step: UInt64
    public init(mode: Mode, step: UInt64 = 0) { self.mode = mode; self.step = step }
}

/// A learnable tensor, its gradient (written by `backward`), and state its optimizer keeps: views into
/// the model's `ParameterBuffer` and the optimizer's flat state.
public final class Parameter {
    /// PyTorch's name within its module: "weight" or "bias".
    public let name: String
    public let value: Tensor
    public let gradient: Tensor
    /// Optimizer slots (momentum, Adam moments), created by the optimizer on first use.
    public internal(set) var optimizerState: [Tensor] = []

    init(_ name: String, value: Tensor, gradient: Tensor) {
        self.name = name
        self.value = value
        self.gradient = gradient
    }
}

/// What a `Model` runs, one per `Stage`: a layer, or layers fused (`ConvBatchNorm`).
///
/// Call order: `forward` (saves what backward needs), then, in training, `backward` with the
/// gradient of the loss with respect to the output. Outputs and gradients live in buffers the runner
/// owns and reuses: a returned tensor stays valid until its next call.
public protocol StageRunner: AnyObject {
    func forward(_ input: Tensor, context: StepContext) throws -> Tensor
    /// Writes the parameters' gradients and returns the input's gradient when `needInputGradient`.
    func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor?
    /// As `backward`, but adds the input's gradient to `gradInput` in the same pass (dx = β·dx + …, β = 1:
    /// the input is read by another layer too, whose gradient is there already). Returns false, having
    /// done nothing, where the runner cannot; the model then adds the gradient itself.
    func backward(_ gradOutput: Tensor, addingInputGradientTo gradInput: Tensor) throws -> Bool
}

extension StageRunner {
    public func backward(_ gradOutput: Tensor, addingInputGradientTo gradInput: Tensor) throws -> Bool { false }
}

/// An op bound to a device and an input shape (`Op.makeLayer`): what runs its forward and backward, and
/// the tensors it saves with the model.
public protocol Layer: StageRunner {
    /// Learnable tensors, with PyTorch's names within the module ("weight", "bias").
    var parameters: [Parameter] { get }
    /// Non-learnable tensors saved with the model (batch norm's running statistics), by PyTorch name.
    var buffers: [(name: String, tensor: Tensor)] { get }
    /// Counts kept on the host and saved with the model (batch norm's `num_batches_tracked`), by PyTorch name.
    var counters: [(name: String, counter: Counter)] { get }
}

extension Layer {
    public var parameters: [Parameter] { [] }
    public var buffers: [(name: String, tensor: Tensor)] { [] }
    public var counters: [(name: String, counter: Counter)] { [] }
}

/// A count a layer keeps on the host (PyTorch saves it as an int64 scalar).
public final class Counter {
    public var value: Int64 = 0
    public init() {}
}
