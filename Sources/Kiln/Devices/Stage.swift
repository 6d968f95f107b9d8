/// Consecutive nodes of a model's graph that a device runs as one: the unit a `Model` executes. The
/// device's `plan` cuts a graph into stages; fusing never changes what is computed, only how many passes
/// over memory and kernel launches it takes. Only a chain fuses: each node reads the one before it,
/// and nothing else reads that node's output.
public struct Stage: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// One node on its own (a residual block's sum included).
        case single
        /// An activation then BatchNorm2d: the batch norm applies it as it reads, so the activation costs nothing.
        case activatedBatchNorm
        /// Conv2d, optionally an activation, then BatchNorm2d: the convolution's primitives run the batch
        /// norm (`conv2dForward`/`conv2dBackward` with a normalization). On OpenCL the convolution computes the
        /// batch statistics' first stage as it writes its output, and its backward reads the batch norm's
        /// input gradient on the fly instead of from memory.
        case convolutionBatchNorm
    }
    /// Indices into the graph's nodes.
    public let nodes: Range<Int>
    public let kind: Kind

    public init(_ nodes: Range<Int>, _ kind: Kind) {
        self.nodes = nodes
        self.kind = kind
    }

    /// The activation a fused batch norm applies to its input: the stage's activation node, if any.
    func foldedActivation(_ graph: ModelGraph) -> Activation {
        kind == .single ? .identity : nodes.compactMap { graph.nodes[$0].layer.activation }.first ?? .identity
    }

    /// Every node alone: what a plan that fuses nothing gives.
    public static func unfused(_ graph: ModelGraph) -> [Stage] {
        graph.nodes.indices.map { Stage($0..<$0 + 1, .single) }
    }

    /// The plan both built-in devices use: Conv2d [→ activation] → BatchNorm2d fused, else activation →
    /// BatchNorm2d.
    public static func standard(_ graph: ModelGraph) -> [Stage] {
        let nodes = graph.nodes, readers = graph.readers
        var stages: [Stage] = [], i = 0
        /// Whether node j exists, continues the chain from node j − 1, and runs `Kind`.
        func chained(_ j: Int, _ test: (any Op) -> Bool) -> Bool {
            guard j < nodes.count, test(nodes[j].op) else { return false }
            return j == i || (nodes[j].inputs == [nodes[j - 1].output] && readers[nodes[j - 1].output] == 1)
        }
        let isConv = { (op: any Op) in op is Conv2dOp }, isNorm = { (op: any Op) in op is BatchNorm2dOp }
        let isActivation = { (op: any Op) in op is ActivationOp }
        while i < nodes.count {
            if chained(i, isConv), chained(i + 1, isNorm) {
                stages.append(Stage(i..<i + 2, .convolutionBatchNorm))
            } else if chained(i, isConv), chained(i + 1, isActivation), chained(i + 2, isNorm) {
                stages.append(Stage(i..<i + 3, .convolutionBatchNorm))
            } else if chained(i, isActivation), chained(i + 1, isNorm) {
                stages.append(Stage(i..<i + 2, .activatedBatchNorm))
            } else {
                stages.append(Stage(i..<i + 1, .single))
            }
            i = stages.last!.nodes.upperBound
        }
        return stages
    }
}
