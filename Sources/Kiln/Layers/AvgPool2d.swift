/// Average pooling. Global average pooling is the case whose window is the whole (square) plane.
public final class AvgPool2d: Layer {
    public let spec: LayerSpec
    private let geometry: WindowGeometry
    private let device: Device
    private let output = TensorSlot(), gradInput = TensorSlot()
    private var inputShape: [Int] = []

    init(spec: LayerSpec, device: Device, geometry: WindowGeometry) {
        self.spec = spec
        self.device = device
        self.geometry = geometry
    }

    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        inputShape = input.shape
        let y = try output.tensor(windowOutputShape(input, channels: input.channels, geometry), on: device)
        try device.avgPoolForward(input: input, output: y, geometry: geometry)
        return y
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        let dx = try gradInput.tensor(inputShape, on: device)
        try device.avgPoolBackward(gradOutput: gradOutput, gradInput: dx, geometry: geometry)
        return dx
    }
}
