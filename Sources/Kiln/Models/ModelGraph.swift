/// A model as a graph of named values: each node runs one op on the values it reads and writes one new
/// value. Value 0 is the input image; nodes are in an order that runs them (every value is written
/// before it is read). A value may be read by several nodes (a residual block's input feeds both
/// branches); backward then sums the gradients they send it.
///
/// A spec's flat list is a chain of nodes, one per layer, so a model without blocks is the same list
/// it always was. A residual block at path `i` becomes its branches' nodes (`i.body.0`, …,
/// `i.shortcut.0`, …) and then its own node `i`, which sums the two branches' outputs.
public struct ModelGraph: Sendable {
    public struct Node: Sendable {
        /// The module path in PyTorch's `state_dict` ("3", "3.body.0"): the node's tensors are `path.weight`, ….
        public let path: String
        public let layer: LayerSpec
        /// The values the node reads: one, or a residual block's body and shortcut outputs.
        public let inputs: [Int]
        public let output: Int
        public var op: any Op { layer.op }
        /// Whether this is a residual block's sum of its branches.
        public var isSum: Bool { inputs.count == 2 }
    }

    public let name: String
    public private(set) var nodes: [Node] = []
    /// Each value's shape per image; `shapes[0]` is the input's.
    public private(set) var shapes: [ImageShape]
    /// The value each top-level layer of the spec writes.
    public private(set) var layerOutputs: [Int] = []

    init(name: String, input: ImageShape) {
        self.name = name
        shapes = [input]
    }

    /// The graph of `spec`; throws one line naming the first layer that does not fit.
    public init(_ spec: ModelSpec) throws {
        self.init(name: spec.name, input: spec.input)
        var x = 0
        for (i, layer) in spec.layers.enumerated() {
            x = try add(layer, from: x, path: String(i))
            layerOutputs.append(x)
        }
    }

    /// What a device's plan sees of the nodes.
    public var planNodes: [PlanNode] { nodes.map { PlanNode($0.op.planKind, inputs: $0.inputs, output: $0.output) } }

    public func inputShape(_ node: Node) -> ImageShape { shapes[node.inputs[0]] }
    public func outputShape(_ node: Node) -> ImageShape { shapes[node.output] }

    /// How many nodes read each value (the model's output, read by none, counts once).
    public var readers: [Int] {
        var counts = [Int](repeating: 0, count: shapes.count)
        for node in nodes { for v in node.inputs { counts[v] += 1 } }
        counts[shapes.count - 1] += 1
        return counts
    }

    /// Appends `layer` reading value `x`, at module path `path`; returns the value it writes.
    mutating func add(_ layer: LayerSpec, from x: Int, path: String) throws -> Int {
        func fail(_ text: String) -> KilnError { KilnError("\(name): layer \(path) (\(layer.typeName)): \(text)") }
        if let block = layer.op as? ResidualOp {
            let outputs = try block.branches.map { branch in
                try branch.layers.enumerated().reduce(x) { try add($1.element, from: $0, path: "\(path).\(branch.name).\($1.offset)") }
            }
            let (body, shortcut) = (shapes[outputs[0]], shapes[outputs[1]])
            guard body == shortcut else {
                throw fail("the body gives \(body) but the shortcut\(block.shortcut.isEmpty ? " (the identity)" : "") gives \(shortcut): they must match to be summed")
            }
            return append(Node(path: path, layer: layer, inputs: outputs, output: shapes.count), shape: body)
        }
        let shape: ImageShape
        do {
            shape = try layer.op.outputShape(shapes[x])
        } catch let problem as SpecProblem {
            throw fail("\(problem.field) \(problem.problem)")
        }
        // Sizes past 2³¹ elements exceed every device's indices (and memory): refused before any arithmetic
        // on them can overflow.
        guard let elements = byteCount([shape.channels, shape.size, shape.size]), elements <= ModelSpec.sizeLimit else {
            throw fail("output \(shape) has more than 2^31 elements per image")
        }
        guard layer.op.parameterShapes(shapes[x]).allSatisfy({ byteCount($0.shape).map { $0 <= ModelSpec.sizeLimit } ?? false }) else {
            throw fail("parameters number more than 2^31")
        }
        return append(Node(path: path, layer: layer, inputs: [x], output: shapes.count), shape: shape)
    }

    private mutating func append(_ node: Node, shape: ImageShape) -> Int {
        nodes.append(node)
        shapes.append(shape)
        return node.output
    }
}
