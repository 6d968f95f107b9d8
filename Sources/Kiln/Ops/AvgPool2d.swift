/// Average pooling, as `nn.AvgPool2d` (floor mode, padding counted). JSON: `{"type": "avgpool2d", "kernel": 2}`
/// (stride defaults to the kernel, padding to 0).
public struct AvgPool2dOp: WindowPooling {
    public static let typeNames = ["avgpool2d"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.avgPool2d(WindowGeometry(kernel: 3, stride: 2, padding: 1)), ImageShape(channels: 3, size: 5))]
    }
    public var geometry: WindowGeometry

    public init(_ geometry: WindowGeometry) { self.geometry = geometry }
    public init(_ f: SpecFields) throws { geometry = try Self.geometry(f) }

    public var typeName: String { "avgpool2d" }
    public var torchName: String { "AvgPool2d" }
    public func makeLayer(_ context: LayerContext) throws -> Layer { AvgPool2d(device: context.device, geometry: geometry) }
    public func exportNode(_ input: ImageShape) -> ExportNode? {
        ExportNode("AveragePool", layout: .image, attributes: ExportNode.window(geometry) + [.int("count_include_pad", 1)])
    }
}

/// Global average pooling, as `nn.AdaptiveAvgPool2d(1)`: the mean of each plane. JSON: `{"type": "globalavgpool"}`.
public struct GlobalAvgPoolOp: Op {
    public static let typeNames = ["globalavgpool"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] { [(.globalAvgPool, ImageShape(channels: 3, size: 5))] }
    public init() {}
    public init(_ f: SpecFields) throws {}

    public var typeName: String { "globalavgpool" }
    public var torchName: String { "AdaptiveAvgPool2d" }
    public func outputShape(_ input: ImageShape) throws -> ImageShape { ImageShape(channels: input.channels, size: 1) }
    public func window(_ input: ImageShape) -> (kernel: Int, stride: Int)? { (input.size, input.size) }
    public func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int { input.size * input.size }
    public func makeLayer(_ context: LayerContext) throws -> Layer {
        let size = context.input.size
        return AvgPool2d(device: context.device, geometry: WindowGeometry(kernel: size, stride: size, padding: 0))
    }
    public func exportNode(_ input: ImageShape) -> ExportNode? { ExportNode("GlobalAveragePool", layout: .image) }
}

extension LayerSpec {
    public static func avgPool2d(_ g: WindowGeometry) -> LayerSpec { LayerSpec(AvgPool2dOp(g)) }
    public static let globalAvgPool = LayerSpec(GlobalAvgPoolOp())
}

/// Average pooling on a device. Global average pooling is the case whose window is the whole plane.
final class AvgPool2d: Layer {
    let geometry: WindowGeometry
    private let device: Device
    private let output = TensorSlot(), gradInput = TensorSlot()
    private var inputShape: [Int] = []

    init(device: Device, geometry: WindowGeometry) {
        self.device = device
        self.geometry = geometry
    }

    func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        inputShape = input.shape
        let y = try output.tensor(windowOutputShape(input, channels: input.channels, geometry), on: device)
        try device.avgPoolForward(input: input, output: y, geometry: geometry)
        return y
    }

    func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        let dx = try gradInput.tensor(inputShape, on: device)
        try device.avgPoolBackward(gradOutput: gradOutput, gradInput: dx, geometry: geometry)
        return dx
    }
}
