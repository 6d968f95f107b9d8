/// Dropout (per element, `nn.Dropout`) and Dropout2d (per channel plane, `nn.Dropout2d`): zero with
/// probability p in training and scale the rest by 1/(1−p); the identity in inference.
/// JSON: `{"type": "dropout", "p": 0.5}`, `{"type": "dropout2d", "p": 0.1}`.
public struct DropoutOp: Op {
    public static let typeNames = ["dropout", "dropout2d"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.dropout(0.3), ImageShape(channels: 3, size: 3)), (.dropout2d(0.3), ImageShape(channels: 5, size: 3))]
    }
    public var probability: Float, channelwise: Bool

    public init(_ probability: Float, channelwise: Bool) { (self.probability, self.channelwise) = (probability, channelwise) }
    public init(_ f: SpecFields) throws {
        self.init(Float(try f.number("p", default: 0.5)!), channelwise: f.type == "dropout2d")
    }

    public var typeName: String { channelwise ? "dropout2d" : "dropout" }
    public var torchName: String { channelwise ? "Dropout2d" : "Dropout" }
    public func encode(to fields: SpecWriter) throws { try fields.set("p", probability) }

    public func outputShape(_ input: ImageShape) throws -> ImageShape {
        guard probability >= 0, probability < 1 else { throw SpecProblem("p", "must be in [0, 1), got \(probability)") }
        return input
    }

    /// Masks come from Philox keyed by the run's seed and the layer's position, counted by the global
    /// step, so every device draws the same mask.
    public func makeLayer(_ context: LayerContext) throws -> Layer {
        Dropout(device: context.device, probability: probability, channelwise: channelwise,
                generator: Philox(seed: context.seed, stream: RandomStream.dropout + UInt32(context.position)))
    }

    public func exportNode(_ input: ImageShape) -> ExportNode? { nil }
}

extension LayerSpec {
    public static func dropout(_ p: Float) -> LayerSpec { LayerSpec(DropoutOp(p, channelwise: false)) }
    public static func dropout2d(_ p: Float) -> LayerSpec { LayerSpec(DropoutOp(p, channelwise: true)) }
}

/// Dropout on a device.
final class Dropout: Layer {
    private let probability: Float
    private let channelwise: Bool
    private let generator: Philox
    private let device: Device
    private let output = TensorSlot(), mask = TensorSlot(), gradInput = TensorSlot()

    init(device: Device, probability: Float, channelwise: Bool, generator: Philox) {
        self.device = device
        self.probability = probability
        self.channelwise = channelwise
        self.generator = generator
    }

    func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        guard context.mode == .training else { return input }
        let y = try output.tensor(input.shape, on: device)
        try device.dropoutForward(input: input, output: y, mask: mask.tensor(input.shape, on: device),
                                  probability: probability, channelwise: channelwise, generator: generator,
                                  step: context.step)
        return y
    }

    func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        let dx = try gradInput.tensor(gradOutput.shape, on: device)
        try device.multiply(gradOutput, mask.tensor(gradOutput.shape, on: device), into: dx)
        return dx
    }
}
