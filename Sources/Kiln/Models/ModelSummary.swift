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

    public init(_ spec: ModelSpec) throws {
        let shapes = try spec.validate()
        var rows: [Row] = [], field = 1, jump = 1, counts: [String: Int] = [:]
        for (i, layer) in spec.layers.enumerated() {
            let input = i == 0 ? spec.input : shapes[i - 1], output = shapes[i]
            var macs = 0
            switch layer {
            case let .conv2d(out, k, s, _, _):
                field = field.plusSaturating((k - 1).timesSaturating(jump))
                jump = jump.timesSaturating(s)
                macs = [input.channels, k, k, output.size, output.size].reduce(out) { $0.timesSaturating($1) }
            case let .maxPool2d(g), let .avgPool2d(g):
                field = field.plusSaturating((g.kernel - 1).timesSaturating(jump))
                jump = jump.timesSaturating(g.stride)
            case .globalAvgPool, .flatten:
                field = field.plusSaturating((input.size - 1).timesSaturating(jump))
                jump = jump.timesSaturating(input.size)
            case let .linear(out, _):
                macs = out.timesSaturating(input.channels)
            default: break
            }
            counts[layer.torchName, default: 0] += 1
            rows.append(Row(name: "\(layer.torchName)-\(i + 1)", outputShape: output,
                            parameters: ModelSpec.parameterCount(layer, input: input),
                            receptiveField: field, jump: jump, macs: macs))
        }
        self.spec = spec
        self.rows = rows
    }

    /// The table as text.
    public func render() -> String {
        func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        let rule = String(repeating: "-", count: 84), heavy = String(repeating: "=", count: 84)
        var lines = [rule, pad("Layer (type)", 24) + pad("Output Shape", 22) + pad("Param #", 12) + pad("RF", 6)
                     + pad("Jump", 6) + pad("MACs", 14), heavy]
        for r in rows {
            let shape = "[-1, \(r.outputShape.channels), \(r.outputShape.size), \(r.outputShape.size)]"
            lines.append(pad(r.name, 24) + pad(shape, 22) + pad(grouped(r.parameters), 12) + pad("\(r.receptiveField)", 6)
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
