/// Max pooling, as `nn.MaxPool2d` (floor mode). JSON: `{"type": "maxpool2d", "kernel": 2, "stride": 2, "padding": 0}`
/// (stride defaults to the kernel).
public struct MaxPool2dOp: WindowPooling {
    public static let typeNames = ["maxpool2d"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.maxPool2d(WindowGeometry(kernel: 2, stride: 2, padding: 0)), ImageShape(channels: 3, size: 5)),
         (.maxPool2d(WindowGeometry(kernel: 3, stride: 2, padding: 1)), ImageShape(channels: 1, size: 5))]
    }
    public var geometry: WindowGeometry

    public init(_ geometry: WindowGeometry) { self.geometry = geometry }
    public init(_ f: SpecFields) throws { geometry = try Self.geometry(f) }

    public var typeName: String { "maxpool2d" }
    public var torchName: String { "MaxPool2d" }
    public func makeLayer(_ context: LayerContext) throws -> Layer { MaxPool2d(device: context.device, geometry: geometry) }
    public func exportNode(_ input: ImageShape) -> ExportNode? { ExportNode("MaxPool", layout: .image, attributes: ExportNode.window(geometry)) }
}

extension LayerSpec {
    public static func maxPool2d(_ g: WindowGeometry) -> LayerSpec { LayerSpec(MaxPool2dOp(g)) }
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
