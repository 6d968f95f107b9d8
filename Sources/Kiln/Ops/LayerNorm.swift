/// Layer normalisation over each image, as `torch.nn.LayerNorm([C, H, W], eps)`: normalised over its C·H·W
/// values with their mean and biased variance, then a weight and bias per element (`[C, H, W]`). It runs
/// as a group norm of one group with that per-element weight (`GroupNorm`, the same primitives).
/// JSON: `{"type": "layernorm"}` (`eps`=1e-5).
public struct LayerNormOp: Op {
    public static let typeNames = ["layernorm"]
    public static var examples: [(layer: LayerSpec, input: ImageShape)] {
        [(.layerNorm, ImageShape(channels: 3, size: 3)), (.layerNorm, ImageShape(channels: 1, size: 5)),
         (.layerNorm, ImageShape(channels: 5, size: 1))]
    }
    public var epsilon: Float

    public init(epsilon: Float = GroupNorm.defaultEpsilon) { self.epsilon = epsilon }
    public init(_ f: SpecFields) throws { self.init(epsilon: try GroupNorm.epsilon(f)) }

    public var typeName: String { "layernorm" }
    public var torchName: String { "LayerNorm" }
    public func encode(to fields: SpecWriter) throws { try GroupNorm.encode(epsilon, to: fields) }

    public func outputShape(_ input: ImageShape) throws -> ImageShape {
        try GroupNorm.check(epsilon)
        return input
    }

    public func parameterShapes(_ input: ImageShape) -> [(name: String, shape: [Int])] {
        let shape = [input.channels, input.size, input.size]
        return [("weight", shape), ("bias", shape)]
    }

    /// An image's statistics, and each element's weight and bias gradient over the batch.
    public func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int {
        max(input.channels * input.size * input.size, batch)
    }

    public func makeLayer(_ context: LayerContext) throws -> Layer { try GroupNorm(context, groups: 1, epsilon: epsilon) }

    /// LayerNormalization needs opset 17: the export decomposes it as a group norm of one group, whose
    /// weight and bias broadcast as they are.
    public func exportNode(_ input: ImageShape) -> ExportNode? {
        GroupNorm.export(input, groups: 1, epsilon: epsilon, affineShape: nil)
    }
}

extension LayerSpec {
    public static let layerNorm = LayerSpec(LayerNormOp())
}
