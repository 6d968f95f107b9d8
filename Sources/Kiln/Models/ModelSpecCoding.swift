import Foundation

/// Model specs as JSON, through `Codable` (a layer's `type` field says which case it is):
///
///     {"name": "tiny", "input": [1, 28, 28], "layers": [
///       {"type": "conv2d", "out": 8, "kernel": 3, "padding": 1, "bias": false},
///       {"type": "relu"}, {"type": "batchnorm2d"}, {"type": "maxpool2d", "kernel": 2},
///       {"type": "conv2d", "out": 10, "kernel": 1}, {"type": "globalavgpool"}, {"type": "logsoftmax"}]}
///
/// Optional `in` on conv2d/linear and `channels` on batchnorm2d are checked against the shapes.
/// Unknown fields are refused, so a typo never silently takes a default.
extension ModelSpec: Codable {
    /// Reads a spec; every problem is one line starting with `source`.
    public init(json data: Data, source: String) throws {
        let decoder = JSONDecoder()
        decoder.userInfo[Self.sourceKey] = source
        do {
            self = try decoder.decode(ModelSpec.self, from: data)
        } catch let error as KilnError {
            throw KilnError("\(source): \(error.message)")
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            throw KilnError("\(source): not JSON")
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw KilnError("\(source): not a JSON object")
        } catch {
            throw KilnError("\(source): \(Self.describe(error))")
        }
    }

    /// The spec as JSON, one layer a line, in the format `init(json:source:)` reads.
    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // the same spec, the same bytes
        func text(_ value: some Encodable) -> String { String(decoding: try! encoder.encode(value), as: UTF8.self) }
        return "{\"name\": \(text(name)), \"input\": \(text([input.channels, input.size, input.size])), \"layers\": [\n"
            + layers.map { "  " + text($0) }.joined(separator: ",\n") + "\n]}\n"
    }

    static let sourceKey = CodingUserInfoKey(rawValue: "kiln.source")!

    enum CodingKeys: String, CodingKey, CaseIterable { case name, input, layers }

    public init(from decoder: Decoder) throws {
        let fields = try decoder.container(keyedBy: FieldKey.self)
        try fields.refuseUnknown(allowed: CodingKeys.allCases.map(\.rawValue), what: "")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decodeIfPresent(String.self, forKey: .name) ?? decoder.userInfo[Self.sourceKey] as? String ?? "model"
        guard let input = try? c.decode([Int].self, forKey: .input), input.count == 3, input[1] == input[2] else {
            throw KilnError("\"input\" must be [channels, size, size] with a square image, e.g. [1, 28, 28]")
        }
        guard c.contains(.layers) else { throw KilnError("\"layers\" must be a list of objects") }
        self.init(name: name, input: ImageShape(channels: input[0], size: input[1]), layers: try c.decode([LayerSpec].self, forKey: .layers))
        // The channel counts a spec may declare, checked once the shapes are known.
        let shapes = try validate()
        for (i, declared) in try c.decode([DeclaredChannels].self, forKey: .layers).enumerated() {
            guard let (field, value) = declared.value else { continue }
            let actual = i == 0 ? self.input.channels : shapes[i - 1].channels
            guard actual == value else {
                throw KilnError("layer \(i) (\(layers[i].typeName)): channel mismatch: \"\(field)\" is \(value) but its input has \(actual) channels")
            }
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode([input.channels, input.size, input.size], forKey: .input)
        try c.encode(layers, forKey: .layers)
    }

    /// A decoding error as one line naming the layer and field.
    private static func describe(_ error: Error) -> String {
        guard let error = error as? DecodingError else { return error.localizedDescription }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map { $0.intValue.map { "layer \($0)" } ?? "\"\($0.stringValue)\"" }
            return path.joined(separator: " ") + ": " + (path.last == "\"layers\"" ? "must be a list of objects" : "has the wrong type")
        @unknown default: return error.localizedDescription
        }
    }
}

/// `in` (conv2d, linear) or `channels` (batchnorm2d), where a spec states them.
private struct DeclaredChannels: Decodable {
    let value: (field: String, count: Int)?

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        value = try ["in", "channels"].lazy.compactMap { field in
            try c.integer(FieldKey(field), layer: "").map { (field, $0) }
        }.first
    }
}

extension LayerSpec: Codable {
    /// The fields each layer type accepts (besides "type"), with defaults where a field has one.
    private static let fields: [String: [String: Double?]] = [
        "conv2d": ["in": nil, "out": nil, "kernel": nil, "stride": 1, "padding": 0, "bias": nil],
        "linear": ["in": nil, "out": nil, "bias": nil],
        "batchnorm2d": ["channels": nil],
        "relu": [:], "flatten": [:], "logsoftmax": [:], "globalavgpool": [:],
        "maxpool2d": ["kernel": nil, "stride": nil, "padding": 0],
        "avgpool2d": ["kernel": nil, "stride": nil, "padding": 0],
        "dropout": ["p": 0.5], "dropout2d": ["p": 0.5],
    ]

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        let index = decoder.codingPath.last?.intValue ?? 0
        guard let type = try? c.decode(String.self, forKey: FieldKey("type")) else { throw KilnError("layer \(index): missing \"type\"") }
        guard let allowed = Self.fields[type] else {
            throw KilnError("layer \(index): unknown layer type \"\(type)\" (known: \(Self.fields.keys.sorted().joined(separator: ", ")))")
        }
        let layer = "layer \(index) (\(type)): "
        try c.refuseUnknown(allowed: Array(allowed.keys) + ["type"], what: layer)
        /// A field's value, its default, or (with `required`) an error naming it.
        func number(_ field: String) throws -> Double? {
            try c.number(FieldKey(field), layer: layer) ?? allowed[field] ?? nil
        }
        func int(_ field: String) throws -> Int {
            guard let n = try c.integer(FieldKey(field), layer: layer) ?? (allowed[field] ?? nil).map(Int.init) else {
                throw KilnError(layer + "missing field \"\(field)\"")
            }
            return n
        }
        func bias() throws -> Bool {
            guard c.contains(FieldKey("bias")) else { return true }
            guard let b = try? c.decode(Bool.self, forKey: FieldKey("bias")) else { throw KilnError(layer + "field \"bias\" must be true or false") }
            return b
        }
        switch type {
        case "conv2d":
            self = .conv2d(out: try int("out"), kernel: try int("kernel"), stride: try int("stride"), padding: try int("padding"), bias: try bias())
        case "linear": self = .linear(out: try int("out"), bias: try bias())
        case "batchnorm2d": self = .batchNorm2d
        case "relu": self = .relu
        case "flatten": self = .flatten
        case "logsoftmax": self = .logSoftmax
        case "globalavgpool": self = .globalAvgPool
        case "maxpool2d", "avgpool2d":
            let kernel = try int("kernel")
            let g = WindowGeometry(kernel: kernel, stride: try c.integer(FieldKey("stride"), layer: layer) ?? kernel, padding: try int("padding"))
            self = type == "maxpool2d" ? .maxPool2d(g) : .avgPool2d(g)
        case "dropout": self = .dropout(Float(try number("p")!))
        default: self = .dropout2d(Float(try number("p")!))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        try c.encode(typeName, forKey: FieldKey("type"))
        func window(_ g: WindowGeometry) throws {
            for (field, value) in [("kernel", g.kernel), ("stride", g.stride), ("padding", g.padding)] { try c.encode(value, forKey: FieldKey(field)) }
        }
        switch self {
        case let .conv2d(out, kernel, stride, padding, bias):
            try window(WindowGeometry(kernel: kernel, stride: stride, padding: padding))
            try c.encode(out, forKey: FieldKey("out"))
            try c.encode(bias, forKey: FieldKey("bias"))
        case let .linear(out, bias):
            try c.encode(out, forKey: FieldKey("out"))
            try c.encode(bias, forKey: FieldKey("bias"))
        case let .maxPool2d(g), let .avgPool2d(g): try window(g)
        case let .dropout(p), let .dropout2d(p): try c.encode(p, forKey: FieldKey("p"))
        case .batchNorm2d, .relu, .globalAvgPool, .flatten, .logSoftmax: break
        }
    }
}

/// Any field name: specs are checked for unknown fields, which fixed coding keys cannot see.
struct FieldKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer<FieldKey> {
    func refuseUnknown(allowed: [String], what: String) throws {
        if let unknown = Set(allKeys.map(\.stringValue)).subtracting(allowed).sorted().first {
            throw KilnError(what + "unknown field \"\(unknown)\" (allowed: \(allowed.filter { $0 != "type" }.sorted().joined(separator: ", ")))")
        }
    }

    /// A number field, nil when absent.
    func number(_ key: FieldKey, layer: String) throws -> Double? {
        guard contains(key) else { return nil }
        guard let n = try? decode(Double.self, forKey: key) else { throw KilnError(layer + "field \"\(key.stringValue)\" must be a number") }
        return n
    }

    /// An integer field (a whole number below 10⁹), nil when absent.
    func integer(_ key: FieldKey, layer: String) throws -> Int? {
        guard let n = try number(key, layer: layer) else { return nil }
        guard n == n.rounded(), abs(n) < 1e9 else { throw KilnError(layer + "field \"\(key.stringValue)\" must be an integer, got \(n)") }
        return Int(n)
    }
}
