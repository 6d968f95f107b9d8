/// A Conv2d, the activation after it if any, and the BatchNorm2d after that, run as one stage (see
/// `Stage`): in training the convolution's primitives run the batch norm too. In inference, and for a
/// synchronised batch norm (which calls its primitives' stages apart, around the other ranks' sums),
/// the two run in turn. The layers keep their parameters and buffers; this only decides the calls.
final class ConvBatchNorm: StageRunner {
    let conv: Conv2d, norm: BatchNorm2d
    /// The convolution's output in the last training forward: the batch norm's input, which backward needs.
    private(set) var convOutput: Tensor?

    init(conv: Conv2d, norm: BatchNorm2d) {
        self.conv = conv
        self.norm = norm
    }

    /// Whether the convolution's primitives run the batch norm.
    private func fused(_ mode: Mode) -> Bool { mode == .training && norm.sync == nil }

    func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        guard fused(context.mode) else { return try norm.forward(conv.forward(input, context: context), context: context) }
        let shape = windowOutputShape(input, channels: conv.outChannels, conv.geometry)
        let y = try norm.output.tensor(shape, on: conv.device)
        convOutput = try conv.forward(input, normalization: try norm.trainingForward(output: y))
        return y
    }

    func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard fused(.training) else { return try conv.backward(normGradient(gradOutput), needInputGradient: needInputGradient) }
        guard let convOutput else { throw KilnError("a convolution's fused batch norm ran backward before a training forward") }
        return try conv.backward(gradOutput, needInputGradient: needInputGradient, normalization: norm.backward(input: convOutput))
    }

    func backward(_ gradOutput: Tensor, addingInputGradientTo gradInput: Tensor) throws -> Bool {
        guard fused(.training) else {
            try conv.backward(normGradient(gradOutput), into: gradInput, accumulate: true, normalization: nil)
            return true
        }
        guard let convOutput else { throw KilnError("a convolution's fused batch norm ran backward before a training forward") }
        try conv.backward(gradOutput, into: gradInput, accumulate: true, normalization: norm.backward(input: convOutput))
        return true
    }

    /// The batch norm's input gradient, from its own backward.
    private func normGradient(_ gradOutput: Tensor) throws -> Tensor {
        try norm.backward(gradOutput, needInputGradient: true)!
    }
}
