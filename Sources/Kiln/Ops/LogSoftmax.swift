/// log softmax over the channel (class) dimension, as `torch.nn.LogSoftmax(dim=1)`. JSON: `{"type": "logsoftmax"}`.
/// A classifier ends in it; training fuses it with the NLL loss (`logSoftmaxNLL`).
public struct LogSoftmaxOp: Op {
    public static let typeNames = ["logsoftmax"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] { [(.logSoftmax, ImageShape(channels: 5, size: 1))] }
    public init() {}
    public init(_ f: SpecFields) throws {}

    public var typeName: String { "logsoftmax" }
    public var torchName: String { "LogSoftmax" }
    public func outputShape(_ input: ImageShape) throws -> ImageShape { input }
    public func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int { input.channels }
    public func makeLayer(_ context: LayerContext) throws -> Layer { LogSoftmax(device: context.device) }
    public func exportNode(_ input: ImageShape) -> ExportNode? { ExportNode("LogSoftmax", attributes: [.int("axis", 1)]) }
}

extension LayerSpec {
    public static let logSoftmax = LayerSpec(LogSoftmaxOp())
    /// Whether this layer is a log-softmax (a classifier's last).
    var isLogSoftmax: Bool { op is LogSoftmaxOp }
}

/// log softmax on a device.
final class LogSoftmax: Layer {
    private let device: Device
    private let output = TensorSlot(), gradInput = TensorSlot()
    private var y: Tensor?

    init(device: Device) { self.device = device }

    func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        let y = try output.tensor(input.shape, on: device)
        try device.logSoftmaxForward(input: input, output: y)
        self.y = y
        return y
    }

    func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient, let y else { return nil }
        let dx = try gradInput.tensor(y.shape, on: device)
        try device.logSoftmaxBackward(output: y, gradOutput: gradOutput, gradInput: dx)
        return dx
    }
}
