/// max(x, 0). Before a BatchNorm2d, the device's plan fuses it into the batch norm (`Stage`), and this
/// layer does not run.
public final class ReLU: Layer {
    public let spec: LayerSpec = .relu
    private let device: Device
    private let output = TensorSlot(), gradInput = TensorSlot()
    private var y: Tensor?

    init(device: Device) {
        self.device = device
    }

    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        let y = try output.tensor(input.shape, on: device)
        try device.reluForward(input: input, output: y)
        self.y = y
        return y
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        guard let y else { throw KilnError("ReLU.backward called before forward") }
        let dx = try gradInput.tensor(y.shape, on: device)
        try device.reluBackward(output: y, gradOutput: gradOutput, gradInput: dx)
        return dx
    }
}
