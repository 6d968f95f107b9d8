/// What a device's plan sees of a node of a model's graph: the kind of work, the values it reads and
/// the value it writes (value 0 is the model's input).
public struct PlanNode: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case convolution, batchNorm, activation(Activation), other
    }
    public let kind: Kind
    public let inputs: [Int], output: Int

    public init(_ kind: Kind, inputs: [Int], output: Int) { (self.kind, self.inputs, self.output) = (kind, inputs, output) }
}

/// Consecutive nodes of a model's graph that a device runs as one: the unit a `Model` executes. The
/// device's `plan` cuts the nodes into stages; fusing never changes what is computed, only how many
/// passes over memory and kernel launches it takes. Only a chain fuses: each node reads the one before
/// it, and nothing else reads that node's output.
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
    /// The activation a fused batch norm applies to its input: the stage's activation node's, if any.
    public let foldedActivation: Activation

    public init(_ nodes: Range<Int>, _ kind: Kind, foldedActivation: Activation = .identity) {
        (self.nodes, self.kind, self.foldedActivation) = (nodes, kind, foldedActivation)
    }

    /// Every node alone: what a plan that fuses nothing gives.
    public static func unfused(_ nodes: [PlanNode]) -> [Stage] {
        nodes.indices.map { Stage($0..<$0 + 1, .single) }
    }

    /// The plan both built-in devices use: Conv2d [→ activation] → BatchNorm2d fused, else activation →
    /// BatchNorm2d.
    public static func standard(_ nodes: [PlanNode]) -> [Stage] {
        var readers: [Int: Int] = [:]
        for node in nodes { for v in node.inputs { readers[v, default: 0] += 1 } }
        var stages: [Stage] = [], i = 0
        /// Whether node j exists, continues the chain from node i (no other reader of node j − 1's output),
        /// and passes `test`.
        func chained(_ j: Int, _ test: (PlanNode.Kind) -> Bool) -> Bool {
            guard j < nodes.count, test(nodes[j].kind) else { return false }
            return j == i || (nodes[j].inputs == [nodes[j - 1].output] && readers[nodes[j - 1].output] == 1)
        }
        let isConv = { (k: PlanNode.Kind) in k == .convolution }, isNorm = { (k: PlanNode.Kind) in k == .batchNorm }
        let isActivation = { (k: PlanNode.Kind) in if case .activation = k { true } else { false } }
        func activation(_ j: Int) -> Activation { if case let .activation(a) = nodes[j].kind { a } else { .identity } }
        while i < nodes.count {
            if chained(i, isConv), chained(i + 1, isNorm) {
                stages.append(Stage(i..<i + 2, .convolutionBatchNorm))
            } else if chained(i, isConv), chained(i + 1, isActivation), chained(i + 2, isNorm) {
                stages.append(Stage(i..<i + 3, .convolutionBatchNorm, foldedActivation: activation(i + 1)))
            } else if chained(i, isActivation), chained(i + 1, isNorm) {
                stages.append(Stage(i..<i + 2, .activatedBatchNorm, foldedActivation: activation(i)))
            } else {
                stages.append(Stage(i..<i + 1, .single))
            }
            i = stages.last!.nodes.upperBound
        }
        return stages
    }
}
