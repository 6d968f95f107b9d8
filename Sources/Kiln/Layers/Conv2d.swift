/// 2-D convolution, optionally with bias: `y = W ∗ x + b`. Weight `[Co, Ci, k, k]` as PyTorch.
/// `Linear` is the same layer on flattened features (see Linear.swift).
public final class Conv2d: Layer {
    public let spec: LayerSpec
    public let parameters: [Parameter]
    let geometry: WindowGeometry
    let outChannels: Int
    let device: Device
    let output = TensorSlot(), gradInput = TensorSlot()
    private var input: Tensor?

    /// `parameters`: the weight, then the bias if there is one, as the model's `ParameterBuffer` laid them out.
    init(spec: LayerSpec, device: Device, inChannels: Int, outChannels: Int, geometry: WindowGeometry,
         parameters: [Parameter], random: inout HostRandom) throws {
        self.spec = spec
        self.device = device
        self.geometry = geometry
        self.outChannels = outChannels
        self.parameters = parameters
        // PyTorch's default: kaiming_uniform(a=√5) for weights, i.e. U(±1/√fan_in), and the same for bias.
        let fanIn = inChannels * geometry.kernel * geometry.kernel
        let bound = 1 / Float(fanIn).squareRoot()
        for p in parameters { try device.write(random.uniform(p.value.count, bound: bound), to: p.value) }
    }

    private var bias: Parameter? { parameters.count > 1 ? parameters[1] : nil }

    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        try forward(input, normalization: nil)
    }

    /// The convolution's output; with `normalization` (training, `ConvBatchNorm`) the batch norm after it
    /// runs in the same primitive.
    func forward(_ input: Tensor, normalization: BatchNormForward?) throws -> Tensor {
        self.input = input
        let y = try output.tensor(windowOutputShape(input, channels: outChannels, geometry), on: device)
        try device.conv2dForward(input: input, weight: parameters[0].value, bias: bias?.value, output: y, geometry: geometry,
                                 normalization: normalization)
        return y
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        try backward(gradOutput, needInputGradient: needInputGradient, normalization: nil)
    }

    /// With `normalization`, `gradOutput` is the gradient of the batch norm after the convolution.
    func backward(_ gradOutput: Tensor, needInputGradient: Bool, normalization: BatchNormBackward?) throws -> Tensor? {
        guard let input else { throw KilnError("Conv2d.backward called before forward") }
        let dx = needInputGradient ? try gradInput.tensor(input.shape, on: device) : nil
        try device.conv2dBackward(input: input, gradOutput: gradOutput, weight: parameters[0].value,
                                  gradWeight: parameters[0].gradient, gradBias: bias?.gradient, gradInput: dx,
                                  geometry: geometry, normalization: normalization)
        return dx
    }
}
