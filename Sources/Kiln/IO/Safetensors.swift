import Foundation

/// The safetensors format (what `safetensors.torch.save_file` writes): an 8-byte little-endian header
/// length, a JSON header naming each tensor's dtype, shape and byte range, then the raw bytes.
/// Written by hand because no Swift package for it is available here; it is ~100 lines.
public struct Safetensors {
    public struct Entry: Equatable {
        public var dtype: String
        public var shape: [Int]
        public var bytes: [UInt8]

        public static func float32(_ values: [Float], shape: [Int]) -> Entry {
            Entry(dtype: "F32", shape: shape, bytes: values.withUnsafeBytes { Array($0) })
        }

        public static func int64(_ value: Int64) -> Entry {
            Entry(dtype: "I64", shape: [], bytes: withUnsafeBytes(of: value.littleEndian) { Array($0) })
        }

        public var floats: [Float] {
            bytes.withUnsafeBytes { raw in (0..<raw.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
        }

        public var int64Value: Int64? {
            guard dtype == "I64", bytes.count == 8 else { return nil }
            return bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
        }
    }

    public var tensors: [String: Entry] = [:]
    public var metadata: [String: String] = [:]

    public init() {}

    static let elementSize = ["F32": 4, "I64": 8, "I32": 4, "F64": 8, "F16": 2, "BF16": 2, "U8": 1, "I8": 1, "BOOL": 1]

    public func encoded() throws -> Data {
        var header: [String: Any] = [:]
        var body: [UInt8] = []
        for name in tensors.keys.sorted() {
            let e = tensors[name]!
            header[name] = ["dtype": e.dtype, "shape": e.shape, "data_offsets": [body.count, body.count + e.bytes.count]]
            body += e.bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the tensor data starts 8-byte aligned, as the reference writer does.
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var data = Data(withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) })
        data.append(json)
        data.append(contentsOf: body)
        return data
    }

    public init(data: Data, source: String) throws {
        func fail(_ problem: String) -> KilnError { KilnError("\(source): not a valid safetensors file: \(problem)") }
        guard data.count >= 8 else { throw fail("shorter than its 8-byte header length") }
        let length = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(data.count - 8) else { throw fail("header length \(length) exceeds the file") }
        let bodyStart = 8 + Int(length)
        guard let header = (try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<bodyStart))) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        for (name, value) in header {
            if name == "__metadata__" {
                guard let meta = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = meta
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2,
                  let size = Self.elementSize[dtype] else {
                throw fail("bad entry for tensor \(name)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= data.count - bodyStart,
                  let bytes = byteCount(shape, elementSize: size), end - begin == bytes else {
                throw fail("tensor \(name): byte range \(begin)..<\(end) does not fit its shape \(shape) or the file")
            }
            tensors[name] = Entry(dtype: dtype, shape: shape, bytes: Array(data[(bodyStart + begin)..<(bodyStart + end)]))
        }
    }
}
