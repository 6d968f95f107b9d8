import CZlib

/// An IDX file (the MNIST format) of unsigned bytes: magic 0x0000_08_NN with NN dimensions, then the
/// big-endian dimensions, then the data. Read through zlib, which takes gzip and plain files alike.
public struct IDXFile {
    public let dimensions: [Int]
    public let bytes: [UInt8]

    public init(path: String, expectedDimensions: Int) throws {
        func fail(_ problem: String) -> KilnError { KilnError("\(path): \(problem)") }
        guard let file = gzopen(path, "rb") else { throw fail("cannot open the file") }
        defer { gzclose(file) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw fail("corrupt gzip data") }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<Int(n)])
        }
        guard data.count >= 4 else { throw fail("too short to be an IDX file (\(data.count) bytes)") }
        guard data[0] == 0, data[1] == 0, data[2] == 0x08 else {
            let magic = data[0..<4].map { String($0, radix: 16) }.joined(separator: " ")
            throw fail("wrong magic number (bytes \(magic)): not an IDX file of unsigned bytes")
        }
        guard Int(data[3]) == expectedDimensions else {
            throw fail("has \(data[3]) dimensions, expected \(expectedDimensions)")
        }
        let headerSize = 4 + 4 * expectedDimensions
        guard data.count >= headerSize else { throw fail("truncated header") }
        dimensions = (0..<expectedDimensions).map { d in
            (0..<4).reduce(0) { $0 << 8 | Int(data[4 + 4 * d + $1]) }
        }
        let expected = dimensions.reduce(1, *)
        guard data.count - headerSize == expected else {
            throw fail(data.count - headerSize < expected
                       ? "truncated: \(data.count - headerSize) data bytes, the header promises \(expected)"
                       : "\(data.count - headerSize - expected) unexpected bytes after the data")
        }
        bytes = Array(data[headerSize...])
    }
}
