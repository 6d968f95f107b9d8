/// The shape of one image: channels × size × size (Kiln's images are square).
public struct ImageShape: Equatable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var size: Int
    public init(channels: Int, size: Int) { self.channels = channels; self.size = size }
    public var description: String { "[\(channels), \(size), \(size)]" }
}

/// A model: an input shape and a list of layers (which may be blocks of layers). Check it with `validate()`;
/// `ModelGraph` is what it builds into.
public struct ModelSpec: Equatable, Sendable {
    public var name: String
    public var input: ImageShape
    public var layers: [LayerSpec]

    public init(name: String, input: ImageShape, layers: [LayerSpec]) {
        self.name = name
        self.input = input
        self.layers = layers
    }

    /// Each top-level layer's output shape; throws one line naming the first layer that cannot be built.
    public func validate() throws -> [ImageShape] {
        let graph = try graph()
        return graph.layerOutputs.map { graph.shapes[$0] }
    }

    /// The graph the spec builds into; throws one line naming the first layer that cannot be built.
    public func graph() throws -> ModelGraph {
        guard input.channels >= 1, input.size >= 1 else { throw KilnError("\(name): input \(input) must be positive") }
        guard let inputElements = byteCount([input.channels, input.size, input.size]), inputElements <= Self.sizeLimit else {
            throw KilnError("\(name): input \(input) has more than 2^31 elements per image")
        }
        guard !layers.isEmpty else { throw KilnError("\(name): no layers") }
        return try ModelGraph(self)
    }

    /// The classes a classifier scores: the channels of its last layer's output.
    public func classCount() throws -> Int { try validate().last!.channels }

    /// The most elements an activation (per image) or one parameter tensor may have.
    static let sizeLimit = 1 << 31

    /// Learnable parameters in all.
    public func parameterCount() throws -> Int {
        let graph = try graph()
        return graph.nodes.reduce(0) { $0 + $1.op.parameterCount(graph.inputShape($1)) }
    }
}
