import Foundation

/// One layer of a model description, before it is built on a device: an op and its fields. Read from
/// and written to JSON as `{"type": …, fields…}`; two specs are equal when they write the same JSON.
public struct LayerSpec: Sendable, Equatable, Codable, CustomStringConvertible {
    public let op: any Op

    public init(_ op: any Op) { self.op = op }

    /// The name used in JSON specs.
    public var typeName: String { op.typeName }
    /// The PyTorch module this layer matches, as torchsummary names it.
    public var torchName: String { op.torchName }
    public var description: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // the same spec, the same bytes
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    public static func == (a: LayerSpec, b: LayerSpec) -> Bool { a.description == b.description }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        let path = Self.path(decoder.codingPath)
        guard let type = try? c.decode(String.self, forKey: FieldKey("type")) else { throw KilnError("layer \(path): missing \"type\"") }
        guard let op = OpRegistry.byName[type] else {
            throw KilnError("layer \(path): unknown layer type \"\(type)\" (known: \(OpRegistry.typeNames.joined(separator: ", ")))")
        }
        let fields = SpecFields(type: type, path: path, container: c)
        self.op = try op.init(fields)
        try fields.refuseUnread()
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: FieldKey.self)
        try c.encode(typeName, forKey: FieldKey("type"))
        try op.encode(to: SpecWriter(container: c))
    }

    /// "3", or "3.body.0" inside a residual block: the layer's module path, from the decoder's coding path.
    static func path(_ codingPath: [CodingKey]) -> String {
        codingPath.dropFirst().map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }

}
