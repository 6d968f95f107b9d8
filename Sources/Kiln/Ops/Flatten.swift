/// [C, N, H, W] → [C·H·W, N, 1, 1] with PyTorch's feature order, as `nn.Flatten`. JSON: `{"type": "flatten"}`.
public struct FlattenOp: Op {
    public static let typeNames = ["flatten"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] { [(.flatten, ImageShape(channels: 3, size: 3))] }
    public init() {}
    public init(_ f: SpecFields) throws {}

    public var typeName: String { "flatten" }
    public var torchName: String { "Flatten" }
    public func outputShape(_ input: ImageShape) throws -> ImageShape {
        ImageShape(channels: input.channels * input.size * input.size, size: 1)
    }
    public func window(_ input: ImageShape) -> (kernel: Int, stride: Int)? { (input.size, input.size) }
    public func makeLayer(_ context: LayerContext) throws -> Layer { Flatten(device: context.device) }
    /// Only the layout changes: Gemm then reads features.
    public func exportNode(_ input: ImageShape) -> ExportNode? { ExportNode(nil, layout: .features) }
}

extension LayerSpec {
    public static let flatten = LayerSpec(FlattenOp())
}

/// Flatten on a device; free when H = W = 1.
final class Flatten: Layer {
    private let device: Device
    private let output = TensorSlot(), gradInput = TensorSlot()
    private var inputShape: [Int] = []

    init(device: Device) { self.device = device }

    func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        inputShape = input.shape
        let shape = [input.channels * input.height * input.width, input.batch, 1, 1]
        if input.height * input.width == 1 { return try input.view(shape) }
        let y = try output.tensor(shape, on: device)
        try device.flattenForward(input: input, output: y)
        return y
    }

    func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        if inputShape[2] * inputShape[3] == 1 { return try gradOutput.view(inputShape) }
        let dx = try gradInput.tensor(inputShape, on: device)
        try device.flattenBackward(gradOutput: gradOutput, gradInput: dx)
        return dx
    }
}
