/// Group normalisation, as `torch.nn.GroupNorm(groups, C, eps)`: each image's channels in `groups` groups,
/// each group normalised over its (C/G)·H·W values with their mean and biased variance, then a weight
/// and bias per channel. No running statistics: training and inference compute the same.
/// JSON: `{"type": "groupnorm", "groups": 4}` (`eps`=1e-5; `groups` must divide the input's channels).
public struct GroupNormOp: Op {
    public static let typeNames = ["groupnorm"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.groupNorm(groups: 1), ImageShape(channels: 1, size: 5)), (.groupNorm(groups: 3), ImageShape(channels: 3, size: 3)),
         (.groupNorm(groups: 1), ImageShape(channels: 5, size: 1)), (.groupNorm(groups: 3), ImageShape(channels: 9, size: 3))]
    }
    public var groups: Int, epsilon: Float

    public init(groups: Int, epsilon: Float = GroupNorm.defaultEpsilon) { (self.groups, self.epsilon) = (groups, epsilon) }
    public init(_ f: SpecFields) throws {
        self.init(groups: try f.int("groups"), epsilon: try GroupNorm.epsilon(f))
    }

    public var typeName: String { "groupnorm" }
    public var torchName: String { "GroupNorm" }

    public func encode(to fields: SpecWriter) throws {
        try fields.set("groups", groups)
        try GroupNorm.encode(epsilon, to: fields)
    }

    public func outputShape(_ input: ImageShape) throws -> ImageShape {
        guard groups >= 1 else { throw SpecProblem("groups", "must be at least 1, got \(groups)") }
        guard input.channels % groups == 0 else {
            throw SpecProblem("groups", "\(groups) does not divide the input's \(input.channels) channels")
        }
        try GroupNorm.check(epsilon)
        return input
    }

    public func parameterShapes(_ input: ImageShape) -> [(name: String, shape: [Int])] {
        [("weight", [input.channels]), ("bias", [input.channels])]
    }

    /// A group's statistics, and the weight's and bias's gradients over the batch and the plane.
    public func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int {
        max(input.channels / max(groups, 1) * input.size * input.size, batch * input.size * input.size)
    }

    public func makeLayer(_ context: LayerContext) throws -> Layer { try GroupNorm(context, groups: groups, epsilon: epsilon) }

    /// ONNX's GroupNormalization needs opset 18 (and took a weight per group until 21), so the export
    /// decomposes it as PyTorch's opset-13 exporter does: InstanceNormalization of [N, G, (C/G)·H·W] with
    /// a unit scale, then the per-channel weight and bias.
    public func exportNode(_ input: ImageShape) -> ExportNode? {
        GroupNorm.export(input, groups: groups, epsilon: epsilon, affineShape: [input.channels, 1, 1])
    }
}

extension LayerSpec {
    public static func groupNorm(groups: Int) -> LayerSpec { LayerSpec(GroupNormOp(groups: groups)) }
}

/// A group norm bound to a device (LayerNorm's too: one group, a weight and bias per element). The weight
/// starts at 1 and the bias at 0, as PyTorch's.
public final class GroupNorm: Layer {
    public static let defaultEpsilon: Float = 1e-5
    public let parameters: [Parameter]
    let groups: Int, epsilon: Float
    private let device: Device
    /// The last forward's mean and 1/σ per image and group ([N, G]), which backward reads.
    let savedMean = TensorSlot(), savedInvStd = TensorSlot()
    private let output = TensorSlot(), gradInput = TensorSlot()
    private var input: Tensor?

    init(_ context: LayerContext, groups: Int, epsilon: Float) throws {
        (device, parameters, self.groups, self.epsilon) = (context.device, context.parameters, groups, epsilon)
        try device.fill(parameters[0].value, with: 1)
        try device.fill(parameters[1].value, with: 0)
    }

    public func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        self.input = input
        let y = try output.tensor(input.shape, on: device)
        try device.groupNormForward(input: input, weight: parameters[0].value, bias: parameters[1].value,
                                    savedMean: savedMean.tensor([input.batch, groups], on: device),
                                    savedInvStd: savedInvStd.tensor([input.batch, groups], on: device), output: y,
                                    groups: groups, epsilon: epsilon)
        return y
    }

    public func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? {
        guard let input else { throw KilnError("GroupNorm.backward called before forward") }
        // The input gradient comes out of the pass that the parameters' gradients need anyway.
        let dx = try gradInput.tensor(input.shape, on: device)
        try device.groupNormBackward(input: input, gradOutput: gradOutput, weight: parameters[0].value,
                                     savedMean: savedMean.tensor([input.batch, groups], on: device),
                                     savedInvStd: savedInvStd.tensor([input.batch, groups], on: device), gradInput: dx,
                                     gradWeight: parameters[0].gradient, gradBias: parameters[1].gradient, groups: groups)
        return needInputGradient ? dx : nil
    }

    /// `eps`, positive; 1e-5 when absent (PyTorch's default).
    static func epsilon(_ f: SpecFields) throws -> Float { Float(try f.number("eps", default: Double(defaultEpsilon))!) }

    static func check(_ epsilon: Float) throws {
        guard epsilon > 0, epsilon.isFinite else { throw SpecProblem("eps", "must be a positive number, got \(epsilon)") }
    }

    /// Written only when it is not the default, so the usual spec stays short.
    static func encode(_ epsilon: Float, to fields: SpecWriter) throws {
        if epsilon != defaultEpsilon { try fields.set("eps", epsilon) }
    }

    /// The opset-13 decomposition: Reshape to [N, G, (C/G)·H·W], InstanceNormalization with a unit scale and
    /// zero shift, Reshape back, then Mul by the weight and Add the bias, reshaped to `affineShape` to
    /// broadcast where they do not as they are.
    static func export(_ input: ImageShape, groups: Int, epsilon: Float, affineShape: [Int]?) -> ExportNode {
        ExportNode("Reshape", layout: .image, operands: [.int64s("grouped_shape", [0, groups, -1])], then: [
            ExportNode("InstanceNormalization",
                       operands: [.floats("unit_scale", [Float](repeating: 1, count: groups)),
                                  .floats("zero_shift", [Float](repeating: 0, count: groups))],
                       attributes: [.float("epsilon", epsilon)]),
            ExportNode("Reshape", operands: [.int64s("image_shape", [0, input.channels, input.size, input.size])]),
            ExportNode("Mul", operands: [.tensor("weight", shape: affineShape)]),
            ExportNode("Add", operands: [.tensor("bias", shape: affineShape)]),
        ])
    }
}
