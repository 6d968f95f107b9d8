/// Dropout (per element) and Dropout2d (per channel plane): zero with probability p in training and
/// scale the rest by 1/(1−p); the identity in inference. Masks come from Philox keyed by the run's
/// seed and the layer's position, counted by the global step, so every device draws the same mask.
public final class Dropout: Layer {
    public let spec: LayerSpec
    private let probability: Float
    private let channelwise: Bool
    private let generator: Philox
    private let device: Device
    private let output = TensorSlot(), mask = TensorSlot(), gradInput = TensorSlot()

    init(spec: LayerSpec, device: Device, probability: Float, channelwise: Bool, generator: Philox) {
        self.spec = spec
        self.device = device
        self.probability = probability
        self.channelwise = channelwise
        self.generator = generator
    }

    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        guard context.mode == .training else { return input }
        let y = try output.tensor(input.shape, on: device)
        try device.dropoutForward(input: input, output: y, mask: mask.tensor(input.shape, on: device),
                                  probability: probability, channelwise: channelwise, generator: generator,
                                  step: context.step)
        return y
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        let dx = try gradInput.tensor(gradOutput.shape, on: device)
        try device.multiply(gradOutput, mask.tensor(gradOutput.shape, on: device), into: dx)
        return dx
    }
}
