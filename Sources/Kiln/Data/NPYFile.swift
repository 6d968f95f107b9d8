import Foundation

/// A NumPy `.npy` array (format versions 1–3): its shape and its data bytes. Kiln reads 8-bit images
/// and integer labels, so the element types are the little-endian integers of 1, 2, 4 or 8 bytes
/// ('|u1', '<i8', …), in C order.
struct NPYFile {
    let shape: [Int]
    /// The elements' bytes, little-endian, `size` each.
    let data: ArraySlice<UInt8>
    let size: Int, signed: Bool
    var count: Int { data.count / size }
    /// Whether the elements are bytes (uint8): `data` is then the values themselves.
    var isBytes: Bool { size == 1 && !signed }

    /// Element i as an integer.
    func value(_ i: Int) -> Int64 {
        var v: UInt64 = 0
        for b in (0..<size).reversed() { v = v << 8 | UInt64(data[data.startIndex + i * size + b]) }
        guard signed, size < 8 else { return Int64(bitPattern: v) }
        let bits = UInt64(size * 8)
        return v & (1 << (bits - 1)) != 0 ? Int64(bitPattern: v) - Int64(1 << bits) : Int64(v)
    }

    init(path: String) throws {
        guard let contents = FileManager.default.contents(atPath: path) else { throw KilnError("\(path): cannot read the file") }
        let bytes = [UInt8](contents)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw KilnError("\(path): not a NumPy .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        guard (1...3).contains(major) else { throw KilnError("\(path): .npy format version \(major) is not supported") }
        let lengthBytes = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthBytes else { throw KilnError("\(path): the .npy header is cut short") }
        let headerLength = bytes[8..<8 + lengthBytes].reversed().reduce(0) { $0 << 8 | Int($1) }
        let start = 8 + lengthBytes
        guard headerLength <= bytes.count - start else { throw KilnError("\(path): the .npy header is cut short") }
        let header = String(decoding: bytes[start..<start + headerLength], as: UTF8.self)
        let (descr, fortran, shape) = try Self.parse(header, path)
        guard !fortran else { throw KilnError("\(path): the array is in Fortran order; save it with numpy.ascontiguousarray") }
        let types: [String: (size: Int, signed: Bool)] = [
            "|u1": (1, false), "<u1": (1, false), "|i1": (1, true), "<i1": (1, true), "<u2": (2, false), "<i2": (2, true),
            "<u4": (4, false), "<i4": (4, true), "<u8": (8, false), "<i8": (8, true)]
        guard let type = types[descr] else {
            throw KilnError("\(path): elements of type '\(descr)'; Kiln reads 8-bit images and integer labels (uint8, int64, …)")
        }
        guard let total = byteCount(shape, elementSize: type.size), total == bytes.count - start - headerLength else {
            throw KilnError("\(path): the header's shape \(shape) of '\(descr)' does not match the \(bytes.count - start - headerLength) data bytes")
        }
        data = bytes[(start + headerLength)...]
        size = type.size
        signed = type.signed
        self.shape = shape
    }

    /// The header dictionary, e.g. {'descr': '|u1', 'fortran_order': False, 'shape': (50000, 32, 32, 3), }.
    private static func parse(_ header: String, _ path: String) throws -> (String, Bool, [Int]) {
        func value(_ key: String) throws -> Substring {
            guard let range = header.range(of: "'\(key)':") else { throw KilnError("\(path): the .npy header has no '\(key)'") }
            return header[range.upperBound...].drop { $0 == " " }
        }
        let descrText = try value("descr")
        guard descrText.first == "'", let end = descrText.dropFirst().firstIndex(of: "'") else {
            throw KilnError("\(path): the .npy header's 'descr' is not a string")
        }
        let descr = String(descrText[descrText.index(after: descrText.startIndex)..<end])
        let fortran = try value("fortran_order").hasPrefix("True")
        let shapeText = try value("shape")
        guard shapeText.first == "(", let close = shapeText.firstIndex(of: ")") else {
            throw KilnError("\(path): the .npy header's 'shape' is not a tuple")
        }
        let parts = shapeText[shapeText.index(after: shapeText.startIndex)..<close].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = try parts.map { part -> Int in
            guard let n = Int(part), n >= 0 else { throw KilnError("\(path): the .npy shape has a dimension '\(part)'") }
            return n
        }
        return (descr, fortran, shape)
    }
}

/// A float32 array in C order as a version-1 `.npy` file (`kiln eval --outputs`): the header pads to a
/// multiple of 64 bytes and ends in a newline, as NumPy writes it.
public func npyFloat32(_ values: [Float], shape: [Int]) -> Data {
    let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
    header += String(repeating: " ", count: 63 - (10 + header.utf8.count) % 64) + "\n"
    var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
    data.append(contentsOf: Array(header.utf8))
    values.withUnsafeBytes { data.append(contentsOf: $0) }
    return data
}
