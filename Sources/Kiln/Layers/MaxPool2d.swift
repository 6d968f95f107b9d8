/// Max pooling; remembers each window's winner so backward routes the gradient to it alone.
public final class MaxPool2d: Layer {
    public let spec: LayerSpec
    private let geometry: WindowGeometry
    private let device: Device
    private let output = TensorSlot(), argmax = TensorSlot(), gradInput = TensorSlot()
    private var inputShape: [Int] = []

    init(spec: LayerSpec, device: Device, geometry: WindowGeometry) {
        self.spec = spec
        self.device = device
        self.geometry = geometry
    }

    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        inputShape = input.shape
        let shape = windowOutputShape(input, channels: input.channels, geometry)
        let y = try output.tensor(shape, on: device)
        try device.maxPoolForward(input: input, output: y, argmax: argmax.tensor(shape, on: device, dtype: .int32),
                                  geometry: geometry)
        return y
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        let dx = try gradInput.tensor(inputShape, on: device)
        try device.maxPoolBackward(gradOutput: gradOutput, argmax: argmax.tensor(gradOutput.shape, on: device, dtype: .int32),
                                   gradInput: dx, geometry: geometry)
        return dx
    }
}
