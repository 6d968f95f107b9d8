import Foundation

/// Model specs as JSON, through `Codable` (a layer's `type` field says which case it is):
///
///     {"name": "tiny", "input": [1, 28, 28], "layers": [
///       {"type": "conv2d", "out": 8, "kernel": 3, "padding": 1, "bias": false},
///       {"type": "relu"}, {"type": "batchnorm2d"}, {"type": "maxpool2d", "kernel": 2},
///       {"type": "conv2d", "out": 10, "kernel": 1}, {"type": "globalavgpool"}, {"type": "logsoftmax"}]}
///
/// Optional `in` on conv2d/linear and `channels` on batchnorm2d are checked against the shapes.
/// Unknown fields are refused, so a typo never silently takes a default. Each layer's fields are its
/// op's (`Op`, `SpecFields`); a residual block's branches are lists of layers in the same form.
extension ModelSpec: Codable {
    /// Reads a spec; every problem is one line starting with `source`. A key given twice in one object is
    /// refused: JSON would keep one of the two values unseen.
    public init(json data: Data, source: String) throws {
        if let duplicate = JSONDuplicateKeys.first(in: data) {
            throw KilnError("\(source): the key \"\(duplicate.key)\" appears twice in "
                            + (duplicate.path.isEmpty ? "the top-level object" : duplicate.path) + "; keep one")
        }
        let decoder = JSONDecoder()
        decoder.userInfo[Self.sourceKey] = source
        do {
            self = try decoder.decode(ModelSpec.self, from: data)
        } catch let error as KilnError {
            // A spec without a name is named after its file, which its shape errors then already begin with.
            throw error.message.hasPrefix("\(source): ") ? error : KilnError("\(source): \(error.message)")
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            throw KilnError("\(source): not JSON")
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw KilnError("\(source): not a JSON object")
        } catch {
            throw KilnError("\(source): \(Self.describe(error))")
        }
    }

    /// The spec as JSON, one layer a line, in the format `init(json:source:)` reads. Throws for a field
    /// JSON cannot hold (a NaN or infinite number, which only a spec built in code can have).
    public func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // the same spec, the same bytes
        func text(_ value: some Encodable) throws -> String {
            do {
                return String(decoding: try encoder.encode(value), as: UTF8.self)
            } catch EncodingError.invalidValue(let field, _) {
                throw KilnError("\(name): \(field) cannot be written in a JSON spec")
            }
        }
        return "{\"name\": \(try text(name)), \"input\": \(try text([input.channels, input.size, input.size])), \"layers\": [\n"
            + (try layers.map { "  " + (try text($0)) }).joined(separator: ",\n") + "\n]}\n"
    }

    static let sourceKey = CodingUserInfoKey(rawValue: "kiln.source")!

    enum CodingKeys: String, CodingKey, CaseIterable { case name, input, layers }

    public init(from decoder: Decoder) throws {
        let fields = try decoder.container(keyedBy: FieldKey.self)
        if let unknown = Set(fields.allKeys.map(\.stringValue)).subtracting(CodingKeys.allCases.map(\.rawValue)).sorted().first {
            throw KilnError("unknown field \"\(unknown)\" (allowed: \(CodingKeys.allCases.map(\.rawValue).sorted().joined(separator: ", ")))")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decodeIfPresent(String.self, forKey: .name) ?? decoder.userInfo[Self.sourceKey] as? String ?? "model"
        guard let input = try? c.decode([Int].self, forKey: .input), input.count == 3, input[1] == input[2] else {
            throw KilnError("\"input\" must be [channels, size, size] with a square image, e.g. [1, 28, 28]")
        }
        guard c.contains(.layers) else { throw KilnError("\"layers\" must be a list of objects") }
        self.init(name: name, input: ImageShape(channels: input[0], size: input[1]), layers: try c.decode([LayerSpec].self, forKey: .layers))
        _ = try validate()
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
