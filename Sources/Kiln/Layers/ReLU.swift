/// max(x, 0). When a BatchNorm2d follows, `Sequential` folds the ReLU into it (`foldedIntoNext`): this
/// layer then passes its input and gradient through unchanged, and the batch norm rectifies as it reads.
public final class ReLU: Layer {
    public let spec: LayerSpec = .relu
    public let foldedIntoNext: Bool
    private let device: Device
    private let output = TensorSlot(), gradInput = TensorSlot()
    private var y: Tensor?

    init(device: Device, foldedIntoNext: Bool = false) {
        self.device = device
        self.foldedIntoNext = foldedIntoNext
    }

    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        if foldedIntoNext { return input }
        let y = try output.tensor(input.shape, on: device)
        try device.reluForward(input: input, output: y)
        self.y = y
        return y
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard needInputGradient else { return nil }
        if foldedIntoNext { return gradOutput }
        guard let y else { throw KilnError("ReLU.backward called before forward") }
        let dx = try gradInput.tensor(y.shape, on: device)
        try device.reluBackward(output: y, gradOutput: gradOutput, gradInput: dx)
        return dx
    }
}
