/// A fully connected layer, `y = W x + b` with weight `[out, in]` as PyTorch's `nn.Linear`. JSON:
/// `{"type": "linear", "out": 10, "bias": true}` after a flatten (or global pooling). On flattened
/// features `[F, N, 1, 1]` it is exactly a 1x1 convolution, so it runs as one (`Conv2d`).
public struct LinearOp: Op {
    public static let typeNames = ["linear"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.linear(out: 5), ImageShape(channels: 7, size: 1)), (.linear(out: 1, bias: false), ImageShape(channels: 3, size: 1))]
    }
    public var out: Int, bias: Bool
    public var declaredIn: Int?

    public init(out: Int, bias: Bool = true) { (self.out, self.bias) = (out, bias) }

    public init(_ f: SpecFields) throws {
        self.init(out: try f.int("out"), bias: try f.bool("bias", default: true))
        declaredIn = try f.integer("in")
    }

    public var typeName: String { "linear" }
    public var torchName: String { "Linear" }

    public func encode(to fields: SpecWriter) throws {
        try fields.set("out", out)
        try fields.set("bias", bias)
        if let declaredIn { try fields.set("in", declaredIn) }
    }

    public func outputShape(_ input: ImageShape) throws -> ImageShape {
        try checkDeclared(declaredIn, "in", input)
        guard input.size == 1 else { throw SpecProblem("input", "is \(input): put a flatten (or globalavgpool) before linear") }
        guard out >= 1 else { throw SpecProblem("out", "must be at least 1, got \(out)") }
        return ImageShape(channels: out, size: 1)
    }

    public func parameterShapes(_ input: ImageShape) -> [(name: String, shape: [Int])] {
        [("weight", [out, input.channels])] + (bias ? [("bias", [out])] : [])
    }

    public func macs(_ input: ImageShape, _ output: ImageShape) -> Int { out.timesSaturating(input.channels) }

    public func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int {
        max(input.channels, out, batch)
    }

    public func makeLayer(_ context: LayerContext) throws -> Layer {
        try Conv2d(context, outChannels: out, geometry: WindowGeometry(kernel: 1, stride: 1, padding: 0))
    }

    public func exportNode(_ input: ImageShape) -> ExportNode? {
        ExportNode("Gemm", layout: .features, tensors: ["weight"] + (bias ? ["bias"] : []), attributes: [.int("transB", 1)])
    }
}

extension LayerSpec {
    public static func linear(out: Int, bias: Bool = true) -> LayerSpec { LayerSpec(LinearOp(out: out, bias: bias)) }
}
