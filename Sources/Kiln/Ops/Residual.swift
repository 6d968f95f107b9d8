/// A residual block, as in He et al. 2016: output = body(x) + shortcut(x), an absent or empty shortcut
/// being the identity. JSON: `{"type": "residual", "body": [ …layers… ], "shortcut": [ …layers… ]}`;
/// blocks nest. In PyTorch it is a module with two `nn.Sequential` children, `body` and `shortcut`,
/// so its tensors are named `i.body.0.weight`, `i.shortcut.1.running_mean`, …
///
/// In the model's graph (`ModelGraph`) the branches' layers are nodes of their own that both read the
/// block's input, and the block itself is the node that sums them: its backward hands the output's
/// gradient to both branches, and the input's gradient is the sum of theirs.
public struct ResidualOp: Op {
    public static let typeNames = ["residual"]
    /// An identity shortcut; a strided body with a projection shortcut; a block nested in a body.
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.residual(body: [.conv2d(out: 3, kernel: 3, padding: 1), .batchNorm2d]), ImageShape(channels: 3, size: 5)),
         (.residual(body: [.conv2d(out: 5, kernel: 3, stride: 2, padding: 1, bias: false), .batchNorm2d],
                    shortcut: [.conv2d(out: 5, kernel: 1, stride: 2, bias: false), .batchNorm2d]), ImageShape(channels: 3, size: 5)),
         (.residual(body: [.relu, .residual(body: [.conv2d(out: 3, kernel: 3, padding: 1)])]), ImageShape(channels: 3, size: 3))]
    }
    public var body: [LayerSpec], shortcut: [LayerSpec]

    public init(body: [LayerSpec], shortcut: [LayerSpec] = []) { (self.body, self.shortcut) = (body, shortcut) }

    public init(_ f: SpecFields) throws {
        self.init(body: try f.layers("body"), shortcut: try f.layers("shortcut"))
        guard !body.isEmpty else { throw f.error("\"body\" must be a non-empty list of layers") }
    }

    public var typeName: String { "residual" }
    public var torchName: String { "Add" }

    public func encode(to fields: SpecWriter) throws {
        try fields.set("body", body)
        if !shortcut.isEmpty { try fields.set("shortcut", shortcut) }
    }

    /// The branches with their module names, in PyTorch's order.
    var branches: [(name: String, layers: [LayerSpec])] { [("body", body), ("shortcut", shortcut)] }

    public func outputShape(_ input: ImageShape) throws -> ImageShape {
        var graph = ModelGraph(name: "block", input: input)
        return graph.shapes[try graph.add(LayerSpec(self), from: 0, path: "0")]
    }

    /// The sum's shapes must agree: `ModelGraph` checks them with the branches' names.
    public func makeLayer(_ context: LayerContext) throws -> Layer { ResidualSum(device: context.device) }

    public func exportNode(_ input: ImageShape) -> ExportNode? { ExportNode("Add") }
}

extension LayerSpec {
    public static func residual(body: [LayerSpec], shortcut: [LayerSpec] = []) -> LayerSpec {
        LayerSpec(ResidualOp(body: body, shortcut: shortcut))
    }
}

/// The block's sum on a device: forward adds the branches' outputs, backward gives the output's gradient
/// to both (the model then sums what reaches the block's input).
final class ResidualSum: Layer {
    private let device: Device
    private let output = TensorSlot()

    init(device: Device) { self.device = device }

    func forward(_ body: Tensor, _ shortcut: Tensor) throws -> Tensor {
        let y = try output.tensor(body.shape, on: device)
        try device.add(body, shortcut, into: y)
        return y
    }

    /// A sum has two inputs: the model calls `forward(_:_:)`.
    func forward(_ input: Tensor, context: StepContext) throws -> Tensor {
        throw KilnError("a residual sum takes two inputs")
    }

    /// d(body) = d(shortcut) = d(output).
    func backward(_ gradOutput: Tensor, needInputGradient: Bool) throws -> Tensor? { needInputGradient ? gradOutput : nil }
}
