/// A Conv2d, the ReLU after it if any, and the BatchNorm2d after that, run as one stage (see `Stage`):
/// in training the convolution's primitives run the batch norm too, in inference the two run in turn.
/// The layers keep their parameters and buffers; this only decides the calls.
final class ConvBatchNorm: StageRunner {
    let conv: Conv2d, norm: BatchNorm2d
    /// The convolution's output in the last training forward: the batch norm's input, which backward needs.
    private(set) var convOutput: Tensor?

    init(conv: Conv2d, norm: BatchNorm2d) {
        self.conv = conv
        self.norm = norm
    }

    func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        guard context.mode == .training else { return try norm.forward(conv.forward(input, context: context), context: context) }
        let shape = windowOutputShape(input, channels: conv.outChannels, conv.geometry)
        let y = try norm.output.tensor(shape, on: conv.device)
        convOutput = try conv.forward(input, normalization: norm.trainingForward(output: y))
        return y
    }

    func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard let convOutput else { throw KilnError("a convolution's fused batch norm ran backward before a training forward") }
        return try conv.backward(gradOutput, needInputGradient: needInputGradient, normalization: norm.backward(input: convOutput))
    }

    func backward(_ gradOutput: Tensor, addingInputGradientTo gradInput: Tensor) throws -> Bool {
        guard let convOutput else { throw KilnError("a convolution's fused batch norm ran backward before a training forward") }
        try conv.backward(gradOutput, into: gradInput, accumulate: true, normalization: norm.backward(input: convOutput))
        return true
    }
}
