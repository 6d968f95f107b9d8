/// Max pooling, as `nn.MaxPool2d` (floor mode). JSON: `{"type": "maxpool2d", "kernel": 2, "stride": 2, "padding": 0}`
/// (stride defaults to the kernel).
public struct MaxPool2dOp: Op {
    public static let typeNames = ["maxpool2d"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.maxPool2d(WindowGeometry(kernel: 2, stride: 2, padding: 0)), ImageShape(channels: 3, size: 5)),
         (.maxPool2d(WindowGeometry(kernel: 3, stride: 2, padding: 1)), ImageShape(channels: 1, size: 5))]
    }
    public var geometry: WindowGeometry

    public init(_ geometry: WindowGeometry) { self.geometry = geometry }
    public init(_ f: SpecFields) throws { geometry = try poolingGeometry(f) }

    public var typeName: String { "maxpool2d" }
    public var torchName: String { "MaxPool2d" }
    public func encode(to fields: SpecWriter) throws { try fields.set(geometry) }
    public func outputShape(_ input: ImageShape) throws -> ImageShape { try poolingOutput(geometry, input) }
    public func window(_ input: ImageShape) -> (kernel: Int, stride: Int)? { (geometry.kernel, geometry.stride) }
    public func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int { geometry.kernel * geometry.kernel }
    public func makeLayer(_ context: LayerContext) throws -> Layer { MaxPool2d(device: context.device, geometry: geometry) }
    public func exportNode(_ input: ImageShape) -> ExportNode? { ExportNode("MaxPool", layout: .image, attributes: ExportNode.window(geometry)) }
}

extension LayerSpec {
    public static func maxPool2d(_ g: WindowGeometry) -> LayerSpec { LayerSpec(MaxPool2dOp(g)) }
}

/// A pooling layer's kernel, stride (the kernel by default) and padding.
func poolingGeometry(_ f: SpecFields) throws -> WindowGeometry {
    let kernel = try f.int("kernel")
    return WindowGeometry(kernel: kernel, stride: try f.int("stride", default: kernel), padding: try f.int("padding", default: 0))
}

/// A pooling window's output shape; its padding may be at most half the window, as PyTorch requires.
func poolingOutput(_ g: WindowGeometry, _ input: ImageShape) throws -> ImageShape {
    guard g.padding * 2 <= g.kernel else { throw SpecProblem("padding", "must be at most half the kernel, got \(g.padding)") }
    return ImageShape(channels: input.channels, size: try g.checkedOutputSize(input.size))
}

/// Max pooling on a device; remembers each window's winner so backward routes the gradient to it alone.
final class MaxPool2d: Layer {
    private let geometry: WindowGeometry
    private let device: Device
    private let output = TensorSlot(), argmax = TensorSlot(), gradInput = TensorSlot()
    private var inputShape: [Int] = []

    init(device: Device, geometry: WindowGeometry) {
        self.device = device
        self.geometry = geometry
    }

    func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        inputShape = input.shape
        let shape = windowOutputShape(input, channels: input.channels, geometry)
        let y = try output.tensor(shape, on: device)
        try device.maxPoolForward(input: input, output: y, argmax: argmax.tensor(shape, on: device, dtype: .int32),
                                  geometry: geometry)
        return y
    }

    func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        let dx = try gradInput.tensor(inputShape, on: device)
        try device.maxPoolBackward(gradOutput: gradOutput, argmax: argmax.tensor(gradOutput.shape, on: device, dtype: .int32),
                                   gradInput: dx, geometry: geometry)
        return dx
    }
}
