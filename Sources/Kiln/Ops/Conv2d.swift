/// 2-D convolution, optionally with bias: `y = W ∗ x + b`, weight `[Co, Ci/groups, k, k]` as PyTorch's
/// `nn.Conv2d`. JSON: `{"type": "conv2d", "out": 16, "kernel": 3, "stride": 1, "padding": 0, "dilation": 1,
/// "groups": 1, "bias": true}` (`in`, optional, is checked against the input's channels). With `groups`
/// each output channel reads only the input channels of its group (`groups` = in = out: depthwise).
public struct Conv2dOp: Op {
    public static let typeNames = ["conv2d"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.conv2d(out: 3, kernel: 3, stride: 2, padding: 1), ImageShape(channels: 3, size: 5)),
         (.conv2d(out: 5, kernel: 1, padding: 1), ImageShape(channels: 3, size: 3)),
         (.conv2d(out: 3, kernel: 1, bias: false), ImageShape(channels: 5, size: 3)),
         (.conv2d(out: 1, kernel: 5, padding: 2, bias: false), ImageShape(channels: 1, size: 5)),
         // Grouped (2 groups of 3 inputs → 3 outputs), depthwise, dilated, and depthwise + dilated + strided.
         (.conv2d(out: 6, kernel: 3, padding: 1, groups: 2), ImageShape(channels: 6, size: 5)),
         (.conv2d(out: 3, kernel: 3, padding: 1, groups: 3, bias: false), ImageShape(channels: 3, size: 5)),
         (.conv2d(out: 3, kernel: 3, padding: 2, dilation: 2), ImageShape(channels: 3, size: 5)),
         (.conv2d(out: 5, kernel: 3, stride: 2, padding: 1, dilation: 2, groups: 5), ImageShape(channels: 5, size: 7))]
    }
    public var out: Int, geometry: WindowGeometry, bias: Bool
    /// The input channels the spec states, if it does.
    public var declaredIn: Int?

    public init(out: Int, kernel: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        (self.out, self.bias) = (out, bias)
        geometry = WindowGeometry(kernel: kernel, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    public init(_ f: SpecFields) throws {
        self.init(out: try f.int("out"), kernel: try f.int("kernel"), stride: try f.int("stride", default: 1),
                  padding: try f.int("padding", default: 0), dilation: try f.int("dilation", default: 1),
                  groups: try f.int("groups", default: 1), bias: try f.bool("bias", default: true))
        declaredIn = try f.integer("in")
    }

    public var typeName: String { "conv2d" }
    public var torchName: String { "Conv2d" }

    public func encode(to fields: SpecWriter) throws {
        try fields.set(geometry)
        try fields.set("out", out)
        try fields.set("bias", bias)
        if let declaredIn { try fields.set("in", declaredIn) }
    }

    public func outputShape(_ input: ImageShape) throws -> ImageShape {
        try checkDeclared(declaredIn, "in", input)
        guard out >= 1 else { throw SpecProblem("out", "must be at least 1, got \(out)") }
        let groups = geometry.groups
        guard groups >= 1 else { throw SpecProblem("groups", "must be at least 1, got \(groups)") }
        guard input.channels % groups == 0, out % groups == 0 else {
            throw SpecProblem("groups", "\(groups) must divide the input channels (\(input.channels)) and \"out\" (\(out))")
        }
        return ImageShape(channels: out, size: try geometry.checkedOutputSize(input.size))
    }

    public func parameterShapes(_ input: ImageShape) -> [(name: String, shape: [Int])] {
        [("weight", [out, input.channels / geometry.groups, geometry.kernel, geometry.kernel])] + (bias ? [("bias", [out])] : [])
    }

    public func window(_ input: ImageShape) -> (kernel: Int, stride: Int)? { (geometry.span, geometry.stride) }

    public func macs(_ input: ImageShape, _ output: ImageShape) -> Int {
        [input.channels / geometry.groups, geometry.kernel, geometry.kernel, output.size, output.size].reduce(out) { $0.timesSaturating($1) }
    }

    /// Per group: an output sums Ci/groups·k² terms, an input gradient Co/groups·k², a weight gradient N·OH·OW.
    public func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int {
        let k2 = geometry.kernel * geometry.kernel
        return max(input.channels / geometry.groups * k2, out / geometry.groups * k2, batch * output.size * output.size)
    }

    public var planKind: PlanNode.Kind { .convolution }

    public func makeLayer(_ context: LayerContext) throws -> Layer {
        try Conv2d(context, outChannels: out, geometry: geometry)
    }

    public func exportNode(_ input: ImageShape) -> ExportNode? {
        ExportNode("Conv", layout: .image, tensors: ["weight"] + (bias ? ["bias"] : []), attributes: ExportNode.window(geometry))
    }
}

extension LayerSpec {
    public static func conv2d(out: Int, kernel: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1,
                              bias: Bool = true) -> LayerSpec {
        LayerSpec(Conv2dOp(out: out, kernel: kernel, stride: stride, padding: padding, dilation: dilation, groups: groups, bias: bias))
    }
}

/// Refuses a channel count a spec states (`in`, `channels`) that its input does not have.
func checkDeclared(_ declared: Int?, _ field: String, _ input: ImageShape) throws {
    if let declared, declared != input.channels {
        throw SpecProblem("channel mismatch:", "\"\(field)\" is \(declared) but its input has \(input.channels) channels")
    }
}

/// A convolution bound to a device. `Linear` is the same layer on flattened features.
public final class Conv2d: Layer {
    public let parameters: [Parameter]
    let geometry: WindowGeometry
    let outChannels: Int
    let device: Device
    let output = TensorSlot(), gradInput = TensorSlot()
    private var input: Tensor?

    /// PyTorch's default initialisation: kaiming_uniform(a=√5) for weights, i.e. U(±1/√fan_in) with
    /// fan_in = Ci/groups·k², and the same for the bias.
    init(_ context: LayerContext, outChannels: Int, geometry: WindowGeometry) throws {
        device = context.device
        self.geometry = geometry
        self.outChannels = outChannels
        parameters = context.parameters
        let fanIn = context.input.channels / geometry.groups * geometry.kernel * geometry.kernel
        let bound = 1 / Float(fanIn).squareRoot()
        for p in parameters { try device.write(context.random.uniform(p.value.count, bound: bound), to: p.value) }
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

    public func backward(_ gradOutput: Tensor, addingInputGradientTo gradInput: Tensor) throws -> Bool {
        try backward(gradOutput, into: gradInput, accumulate: true, normalization: nil)
        return true
    }

    /// With `normalization`, `gradOutput` is the gradient of the batch norm after the convolution.
    func backward(_ gradOutput: Tensor, needInputGradient: Bool, normalization: BatchNormBackward?) throws -> Tensor? {
        guard let input else { throw KilnError("Conv2d.backward called before forward") }
        let dx = needInputGradient ? try gradInput.tensor(input.shape, on: device) : nil
        try backward(gradOutput, into: dx, accumulate: false, normalization: normalization)
        return dx
    }

    /// The parameters' gradients, and the input's written into `dx` (added to it with `accumulate`).
    func backward(_ gradOutput: Tensor, into dx: Tensor?, accumulate: Bool, normalization: BatchNormBackward?) throws {
        guard let input else { throw KilnError("Conv2d.backward called before forward") }
        try device.conv2dBackward(input: input, gradOutput: gradOutput, weight: parameters[0].value,
                                  gradWeight: parameters[0].gradient, gradBias: bias?.gradient, gradInput: dx,
                                  accumulate: accumulate, geometry: geometry, normalization: normalization)
    }
}
