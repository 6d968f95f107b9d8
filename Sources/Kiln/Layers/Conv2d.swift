/// 2-D convolution, optionally with bias: `y = W ∗ x + b`. Weight `[Co, Ci, k, k]` as PyTorch.
/// `Linear` is the same layer on flattened features (see Linear.swift).
public final class Conv2d: Layer {
    public let spec: LayerSpec
    public let parameters: [Parameter]
    let geometry: WindowGeometry
    let outChannels: Int
    private let device: Device
    private let output = TensorSlot(), gradInput = TensorSlot()
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

    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        self.input = input
        let y = try output.tensor(windowOutputShape(input, channels: outChannels, geometry), on: device)
        try device.conv2dForward(input: input, weight: parameters[0].value, bias: parameters.count > 1 ? parameters[1].value : nil,
                                 output: y, geometry: geometry)
        return y
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard let input else { throw KilnError("Conv2d.backward called before forward") }
        try device.conv2dBackwardWeights(input: input, gradOutput: gradOutput, gradWeight: parameters[0].gradient,
                                         gradBias: parameters.count > 1 ? parameters[1].gradient : nil, geometry: geometry)
        guard needInputGradient else { return nil }
        let dx = try gradInput.tensor(input.shape, on: device)
        try device.conv2dBackwardData(gradOutput: gradOutput, weight: parameters[0].value, gradInput: dx,
                                      geometry: geometry)
        return dx
    }
}
