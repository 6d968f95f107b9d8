/// A torchsummary-style description of a model: output shapes, parameters, receptive field, MACs.
public struct ModelSummary {
    public struct Row {
        public var name: String
        public var outputShape: ImageShape
        public var parameters: Int
        /// Receptive field (pixels of the input one output pixel sees) and jump (input pixels between
        /// neighbouring outputs).
        public var receptiveField: Int
        public var jump: Int
        /// Multiply-accumulates per image in the forward pass (convolutions and linear layers).
        public var macs: Int
    }

    public let spec: ModelSpec
    public let rows: [Row]
    public var totalParameters: Int { rows.reduce(0) { $0 + $1.parameters } }
    public var totalMACs: Int { rows.reduce(0) { $0.plusSaturating($1.macs) } }

    /// One row per node of the model's graph, in order; a residual block's row is its sum ("Add"), whose
    /// receptive field is the larger of its branches'.
    public init(_ spec: ModelSpec) throws {
        let graph = try spec.graph()
        var field = [Int](repeating: 1, count: graph.shapes.count), jump = field
        var rows: [Row] = []
        for (i, node) in graph.nodes.enumerated() {
            let input = graph.inputShape(node), output = graph.outputShape(node)
            let (f, j) = (node.inputs.map { field[$0] }.max()!, node.inputs.map { jump[$0] }.max()!)
            (field[node.output], jump[node.output]) = node.op.window(input).map {
                (f.plusSaturating(($0.kernel - 1).timesSaturating(j)), j.timesSaturating($0.stride))
            } ?? (f, j)
            let name = "\(node.layer.torchName)-\(i + 1)" + (node.path.contains(".") ? " (\(node.path))" : "")
            rows.append(Row(name: name, outputShape: output, parameters: node.op.parameterCount(input),
                            receptiveField: field[node.output], jump: jump[node.output], macs: node.op.macs(input, output)))
        }
        self.spec = spec
        self.rows = rows
    }

    /// The table as text.
    public func render() -> String {
        func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        let width = max(24, (rows.map(\.name.count).max() ?? 0) + 2)
        let rule = String(repeating: "-", count: width + 60), heavy = String(repeating: "=", count: width + 60)
        var lines = [rule, pad("Layer (type)", width) + pad("Output Shape", 22) + pad("Param #", 12) + pad("RF", 6)
                     + pad("Jump", 6) + pad("MACs", 14), heavy]
        for r in rows {
            let shape = "[-1, \(r.outputShape.channels), \(r.outputShape.size), \(r.outputShape.size)]"
            lines.append(pad(r.name, width) + pad(shape, 22) + pad(grouped(r.parameters), 12) + pad("\(r.receptiveField)", 6)
                         + pad("\(r.jump)", 6) + pad(grouped(r.macs), 14))
        }
        lines += [heavy,
                  "Model: \(spec.name), input \(spec.input)",
                  "Total params: \(grouped(totalParameters))",
                  "Trainable params: \(grouped(totalParameters))",
                  "Forward MACs per image: \(grouped(totalMACs))",
                  "Receptive field of the output: \(rows.last?.receptiveField ?? 1)",
                  rule]
        return lines.joined(separator: "\n")
    }
}

/// 18738 → "18,738".
public func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
}
