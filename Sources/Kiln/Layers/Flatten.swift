/// [C, N, H, W] → [C·H·W, N, 1, 1] with PyTorch's feature order. Free when H = W = 1.
public final class Flatten: Layer {
    public let spec: LayerSpec = .flatten
    private let device: Device
    private let output = TensorSlot(), gradInput = TensorSlot()
    private var inputShape: [Int] = []

    init(device: Device) { self.device = device }

    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        inputShape = input.shape
        let shape = [input.channels * input.height * input.width, input.batch, 1, 1]
        if input.height * input.width == 1 { return try input.view(shape) }
        let y = try output.tensor(shape, on: device)
        try device.flattenForward(input: input, output: y)
        return y
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        if inputShape[2] * inputShape[3] == 1 { return try gradOutput.view(inputShape) }
        let dx = try gradInput.tensor(inputShape, on: device)
        try device.flattenBackward(gradOutput: gradOutput, gradInput: dx)
        return dx
    }
}
