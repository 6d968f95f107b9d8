/// An activation layer. JSON: `{"type": "relu"}`. Before a BatchNorm2d the device's plan folds it into
/// the batch norm (`Stage`), and this layer does not run.
public struct ActivationOp: Op {
    public static let typeNames = ["relu"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] { [(.relu, ImageShape(channels: 3, size: 3))] }
    public var function: Activation

    public init(_ function: Activation) { self.function = function }
    public init(_ f: SpecFields) throws { function = .relu }

    public var typeName: String { "relu" }
    public var torchName: String { "ReLU" }

    public func outputShape(_ input: ImageShape) throws -> ImageShape { input }

    public var planKind: PlanNode.Kind { .activation(function) }

    public func makeLayer(_ context: LayerContext) throws -> Layer { ActivationLayer(device: context.device, function: function) }

    public func exportNode(_ input: ImageShape) -> ExportNode? { ExportNode("Relu") }
}

extension LayerSpec {
    public static let relu = LayerSpec(ActivationOp(.relu))

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
