/// An activation layer. JSON: `{"type": "relu"}`, `{"type": "leakyrelu", "slope": 0.01}` (slope ≥ 0,
/// 0.01 by default). Before a BatchNorm2d the device's plan folds it into the batch norm (`Stage`), and
/// this layer does not run.
public struct ActivationOp: Op {
    public static let typeNames = ["relu", "leakyrelu"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.relu, ImageShape(channels: 3, size: 3)), (.leakyRelu(slope: 0.1), ImageShape(channels: 5, size: 3))]
    }
    public var function: Activation

    public init(_ function: Activation) { self.function = function }
    public init(_ f: SpecFields) throws {
        guard f.type == "leakyrelu" else { function = .relu; return }
        let slope = try f.number("slope", default: 0.01)!
        // Backward reads the sign from the output, which a negative slope would flip.
        guard slope >= 0, slope.isFinite else { throw f.error("field \"slope\" must be at least 0, got \(slope)") }
        function = .leakyRelu(slope: Float(slope))
    }

    public var typeName: String { if case .leakyRelu = function { "leakyrelu" } else { "relu" } }
    public var torchName: String { if case .leakyRelu = function { "LeakyReLU" } else { "ReLU" } }

    public func encode(to fields: SpecWriter) throws {
        if case let .leakyRelu(slope) = function { try fields.set("slope", slope) }
    }

    public func outputShape(_ input: ImageShape) throws -> ImageShape { input }

    public var planKind: PlanNode.Kind { .activation(function) }

    public func makeLayer(_ context: LayerContext) throws -> Layer { ActivationLayer(device: context.device, function: function) }

    public func exportNode(_ input: ImageShape) -> ExportNode? {
        if case let .leakyRelu(slope) = function { return ExportNode("LeakyRelu", attributes: [.float("alpha", slope)]) }
        return ExportNode("Relu")
    }
}

extension LayerSpec {
    public static let relu = LayerSpec(ActivationOp(.relu))
    public static func leakyRelu(slope: Float = 0.01) -> LayerSpec { LayerSpec(ActivationOp(.leakyRelu(slope: slope))) }

}

/// An activation bound to a device.
final class ActivationLayer: Layer {
    private let device: Device, function: Activation
    private let output = TensorSlot(), gradInput = TensorSlot()
    private var y: Tensor?

    init(device: Device, function: Activation) {
        (self.device, self.function) = (device, function)
    }

    func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        let y = try output.tensor(input.shape, on: device)
        try device.activationForward(input: input, output: y, activation: function)
        self.y = y
        return y
    }

    func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        guard let y else { throw KilnError("an activation ran backward before forward") }
        let dx = try gradInput.tensor(y.shape, on: device)
        try device.activationBackward(output: y, gradOutput: gradOutput, gradInput: dx, activation: function)
        return dx
    }
}
