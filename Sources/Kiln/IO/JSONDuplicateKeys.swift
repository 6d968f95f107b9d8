import Foundation

/// Finds a key given twice in one JSON object. JSONSerialization and JSONDecoder silently keep one of
/// the two values, so a spec with a repeated field (a pasted layer, an edit that missed the old value)
/// would build a model its author did not write; Kiln refuses it instead.
enum JSONDuplicateKeys {
    /// The first key repeated within one object of `data` (escapes decoded, so `"out"` and `"\u006fut"` are
    /// the same key) and where that object is: "" for the top level, else e.g. `layers[1].body[0]`.
    /// Any bytes are scanned without trapping; in text that is not JSON a duplicate may go unseen.
    static func first(in data: Data) -> (key: String, path: String)? {
        // Each open object or array keeps only its step from its parent (".key" or "[i]"), so deep nesting
        // costs no more than its depth.
        struct Container {
            let step: String, isObject: Bool
            var keys: Set<String> = [], key = "", index = 0, expectsKey: Bool
        }
        let bytes = [UInt8](data), quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        var stack: [Container] = [], i = 0
        // The step to a value opened now: the key just read, or the array's current index.
        func step() -> String {
            guard let top = stack.last else { return "" }
            return top.isObject ? ".\(top.key)" : "[\(top.index)]"
        }
        while i < bytes.count {
            switch bytes[i] {
            case quote:
                var end = i + 1
                while end < bytes.count, bytes[end] != quote { end += bytes[end] == backslash ? 2 : 1 }
                guard end < bytes.count else { return nil }
                if let top = stack.last, top.isObject, top.expectsKey {
                    let key = decode(bytes[i...end])
                    guard stack[stack.count - 1].keys.insert(key).inserted else {
                        let path = stack.map(\.step).joined()
                        return (key, path.hasPrefix(".") ? String(path.dropFirst()) : path)
                    }
                    stack[stack.count - 1].key = key
                    stack[stack.count - 1].expectsKey = false
                }
                i = end
            case UInt8(ascii: "{"): stack.append(Container(step: step(), isObject: true, expectsKey: true))
            case UInt8(ascii: "["): stack.append(Container(step: step(), isObject: false, expectsKey: false))
            case UInt8(ascii: "}"), UInt8(ascii: "]"): _ = stack.popLast()
            case UInt8(ascii: ","):
                guard !stack.isEmpty else { break }
                if stack[stack.count - 1].isObject { stack[stack.count - 1].expectsKey = true } else { stack[stack.count - 1].index += 1 }
            default: break
            }
            i += 1
        }
        return nil
    }

    /// A quoted JSON string's value, escapes decoded; its raw text if it does not decode.
    private static func decode(_ quoted: ArraySlice<UInt8>) -> String {
        (try? JSONSerialization.jsonObject(with: Data(quoted), options: .fragmentsAllowed)) as? String
            ?? String(decoding: quoted.dropFirst().dropLast(), as: UTF8.self)
    }
}
