import Foundation

/// One layer's JSON object as its op reads it: typed fields whose errors are one line naming the layer.
/// It remembers which fields the op read, so a field no op reads (a typo) is refused rather than
/// silently ignored.
public final class SpecFields {
    /// The layer's `type`.
    public let type: String
    /// "layer 3 (conv2d): ", the start of every error about this layer.
    let prefix: String
    private let container: KeyedDecodingContainer<FieldKey>
    private(set) var read: Set<String> = ["type"]

    init(type: String, path: String, container: KeyedDecodingContainer<FieldKey>) {
        self.type = type
        prefix = "layer \(path) (\(type)): "
        self.container = container
    }

    /// An error about this layer.
    public func error(_ text: String) -> KilnError { KilnError(prefix + text) }

    public func contains(_ field: String) -> Bool {
        read.insert(field)
        return container.contains(FieldKey(field))
    }

    /// A number field, `fallback` when absent.
    public func number(_ field: String, default fallback: Double? = nil) throws -> Double? {
        guard contains(field) else { return fallback }
        guard let n = try? container.decode(Double.self, forKey: FieldKey(field)) else { throw error("field \"\(field)\" must be a number") }
        return n
    }

    /// An integer field (a whole number below 10⁹), `fallback` when absent.
    public func integer(_ field: String, default fallback: Int? = nil) throws -> Int? {
        guard let n = try number(field) else { return fallback }
        guard n == n.rounded(), abs(n) < 1e9 else { throw error("field \"\(field)\" must be an integer, got \(n)") }
        return Int(n)
    }

    /// An integer field that must be there unless it has a default.
    public func int(_ field: String, default fallback: Int? = nil) throws -> Int {
        guard let n = try integer(field, default: fallback) else { throw error("missing field \"\(field)\"") }
        return n
    }

    public func bool(_ field: String, default fallback: Bool) throws -> Bool {
        guard contains(field) else { return fallback }
        guard let b = try? container.decode(Bool.self, forKey: FieldKey(field)) else { throw error("field \"\(field)\" must be true or false") }
        return b
    }

    /// A list of layers (a block's branch); empty when absent.
    public func layers(_ field: String) throws -> [LayerSpec] {
        guard contains(field) else { return [] }
        return try container.decode([LayerSpec].self, forKey: FieldKey(field))
    }

    /// Refuses fields the op did not read.
    func refuseUnread() throws {
        if let unknown = Set(container.allKeys.map(\.stringValue)).subtracting(read).sorted().first {
            let allowed = read.subtracting(["type"]).sorted()
            throw error("unknown field \"\(unknown)\" (allowed: \(allowed.isEmpty ? "none" : allowed.joined(separator: ", ")))")
        }
    }
}

/// Where an op writes its fields back (`Op.encode(to:)`).
public struct SpecWriter {
    var container: KeyedEncodingContainer<FieldKey>

    public func set(_ field: String, _ value: Int) throws {
        var c = container
        try c.encode(value, forKey: FieldKey(field))
    }

    public func set(_ field: String, _ value: Float) throws {
        var c = container
        try c.encode(value, forKey: FieldKey(field))
    }

    public func set(_ field: String, _ value: Bool) throws {
        var c = container
        try c.encode(value, forKey: FieldKey(field))
    }

    public func set(_ field: String, _ layers: [LayerSpec]) throws {
        var c = container
        try c.encode(layers, forKey: FieldKey(field))
    }

    /// kernel, stride and padding; dilation and groups where they are not 1 (pooling's are always 1).
    func set(_ g: WindowGeometry) throws {
        for (field, value) in [("kernel", g.kernel), ("stride", g.stride), ("padding", g.padding)] { try set(field, value) }
        for (field, value) in [("dilation", g.dilation), ("groups", g.groups)] where value != 1 { try set(field, value) }
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
