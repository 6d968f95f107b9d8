import Foundation

/// Reading and writing model specs as JSON:
///
///     {"name": "tiny", "input": [1, 28, 28], "layers": [
///       {"type": "conv2d", "out": 8, "kernel": 3, "padding": 1, "bias": false},
///       {"type": "relu"}, {"type": "batchnorm2d"}, {"type": "maxpool2d", "kernel": 2},
///       {"type": "conv2d", "out": 10, "kernel": 1}, {"type": "globalavgpool"}, {"type": "logsoftmax"}]}
///
/// Optional `in` on conv2d/linear and `channels` on batchnorm2d are checked against the shapes.
extension ModelSpec {
    /// The fields each layer type accepts (besides "type"), with defaults where a field is optional.
    private static let fields: [String: [String: Double?]] = [
        "conv2d": ["in": nil, "out": nil, "kernel": nil, "stride": 1, "padding": 0, "bias": nil],
        "linear": ["in": nil, "out": nil, "bias": nil],
        "batchnorm2d": ["channels": nil],
        "relu": [:], "flatten": [:], "logsoftmax": [:], "globalavgpool": [:],
        "maxpool2d": ["kernel": nil, "stride": nil, "padding": 0],
        "avgpool2d": ["kernel": nil, "stride": nil, "padding": 0],
        "dropout": ["p": 0.5], "dropout2d": ["p": 0.5],
    ]
    private static let optional: Set<String> = ["in", "channels", "stride"]

    public init(json data: Data, source: String) throws {
        func fail(_ problem: String) -> KilnError { KilnError("\(source): \(problem)") }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        if let unknown = Set(root.keys).subtracting(["name", "input", "layers"]).sorted().first {
            throw fail("unknown field \"\(unknown)\" (expected name, input, layers)")
        }
        let name = root["name"] as? String ?? source
        guard let input = root["input"] as? [Int], input.count == 3, input[1] == input[2] else {
            throw fail("\"input\" must be [channels, size, size] with a square image, e.g. [1, 28, 28]")
        }
        guard let rawLayers = root["layers"] as? [[String: Any]] else { throw fail("\"layers\" must be a list of objects") }

        var layers: [LayerSpec] = [], declared: [(index: Int, field: String, value: Int)] = []
        for (i, raw) in rawLayers.enumerated() {
            guard let type = raw["type"] as? String else { throw fail("layer \(i): missing \"type\"") }
            guard let allowed = Self.fields[type] else {
                throw fail("layer \(i): unknown layer type \"\(type)\" (known: \(Self.fields.keys.sorted().joined(separator: ", ")))")
            }
            func layerFail(_ problem: String) -> KilnError { fail("layer \(i) (\(type)): \(problem)") }
            if let unknown = Set(raw.keys).subtracting(allowed.keys).subtracting(["type"]).sorted().first {
                throw layerFail("unknown field \"\(unknown)\" (allowed: \(allowed.keys.sorted().joined(separator: ", ")))")
            }
            func number(_ field: String) throws -> Double? {
                if let value = raw[field] {
                    guard let n = value as? Double else { throw layerFail("field \"\(field)\" must be a number") }
                    return n
                }
                if let fallback = allowed[field], let fallback { return fallback }
                if Self.optional.contains(field) { return nil }
                throw layerFail("missing field \"\(field)\"")
            }
            func int(_ field: String) throws -> Int? {
                guard let n = try number(field) else { return nil }
                guard n == n.rounded(), abs(n) < 1e9 else { throw layerFail("field \"\(field)\" must be an integer, got \(n)") }
                return Int(n)
            }
            func bias() throws -> Bool {
                guard let value = raw["bias"] else { return true }
                guard let b = value as? Bool else { throw layerFail("field \"bias\" must be true or false") }
                return b
            }
            for field in ["in", "channels"] where raw[field] != nil { declared.append((i, field, try int(field)!)) }
            switch type {
            case "conv2d":
                layers.append(.conv2d(out: try int("out")!, kernel: try int("kernel")!, stride: try int("stride")!,
                                      padding: try int("padding")!, bias: try bias()))
            case "linear": layers.append(.linear(out: try int("out")!, bias: try bias()))
            case "batchnorm2d": layers.append(.batchNorm2d)
            case "relu": layers.append(.relu)
            case "flatten": layers.append(.flatten)
            case "logsoftmax": layers.append(.logSoftmax)
            case "globalavgpool": layers.append(.globalAvgPool)
            case "maxpool2d", "avgpool2d":
                let kernel = try int("kernel")!
                let g = WindowGeometry(kernel: kernel, stride: try int("stride") ?? kernel, padding: try int("padding")!)
                layers.append(type == "maxpool2d" ? .maxPool2d(g) : .avgPool2d(g))
            case "dropout": layers.append(.dropout(Float(try number("p")!)))
            default: layers.append(.dropout2d(Float(try number("p")!)))
            }
        }
        self.init(name: name, input: ImageShape(channels: input[0], size: input[1]), layers: layers)
        let shapes = try validate()
        for d in declared {
            let actual = d.index == 0 ? self.input.channels : shapes[d.index - 1].channels
            guard actual == d.value else {
                throw fail("layer \(d.index) (\(layers[d.index].typeName)): channel mismatch: \"\(d.field)\" is \(d.value) but its input has \(actual) channels")
            }
        }
    }

    /// The spec as JSON, in the format `init(json:source:)` reads.
    public func jsonString() -> String {
        func window(_ g: WindowGeometry) -> String { "\"kernel\": \(g.kernel), \"stride\": \(g.stride), \"padding\": \(g.padding)" }
        let lines = layers.map { layer -> String in
            let body: String
            switch layer {
            case let .conv2d(out, kernel, stride, padding, bias):
                body = ", \"out\": \(out), \"kernel\": \(kernel), \"stride\": \(stride), \"padding\": \(padding), \"bias\": \(bias)"
            case let .linear(out, bias): body = ", \"out\": \(out), \"bias\": \(bias)"
            case let .maxPool2d(g), let .avgPool2d(g): body = ", " + window(g)
            case let .dropout(p), let .dropout2d(p): body = ", \"p\": \(p)"
            default: body = ""
            }
            return "    {\"type\": \"\(layer.typeName)\"\(body)}"
        }
        let nameJSON = String(data: try! JSONSerialization.data(withJSONObject: [name]), encoding: .utf8)!.dropFirst().dropLast()
        return "{\"name\": \(nameJSON), \"input\": [\(input.channels), \(input.size), \(input.size)], \"layers\": [\n"
            + lines.joined(separator: ",\n") + "\n]}\n"
    }

    /// A preset name or a path to a JSON spec file.
    public static func named(_ nameOrPath: String) throws -> ModelSpec {
        if let preset = Presets.all[nameOrPath] { return preset }
        guard nameOrPath.hasSuffix(".json") || nameOrPath.contains("/") else {
            throw KilnError("unknown model \"\(nameOrPath)\": use a preset (\(Presets.all.keys.sorted().joined(separator: ", "))) or a .json spec file")
        }
        guard let data = FileManager.default.contents(atPath: nameOrPath) else {
            throw KilnError("\(nameOrPath): cannot read the model spec file")
        }
        return try ModelSpec(json: data, source: nameOrPath)
    }
}
