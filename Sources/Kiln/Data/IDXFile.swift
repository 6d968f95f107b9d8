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
        // The header is checked as soon as it is in, and reading stops at the size it promises, so a
        // small gzip file that inflates to gigabytes is refused before it takes the memory.
        var data: [UInt8] = [], header: (dimensions: [Int], size: Int)?
        let headerSize = 4 + 4 * expectedDimensions
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw fail("corrupt gzip data") }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<Int(n)])
            if header == nil, data.count >= headerSize { header = try Self.checkHeader(data, expectedDimensions, fail) }
            if let header, data.count - headerSize > header.size {
                throw fail("more data than the header's \(header.size) bytes: not an IDX file of that shape")
            }
        }
        let (dimensions, size) = try header ?? Self.checkHeader(data, expectedDimensions, fail)
        guard data.count - headerSize == size else {
            throw fail("truncated: \(data.count - headerSize) data bytes, the header promises \(size)")
        }
        self.dimensions = dimensions
        bytes = Array(data[headerSize...])
    }

    /// Checks the magic number and dimension count; the dimensions and the data size the header promises.
    private static func checkHeader(_ data: [UInt8], _ expectedDimensions: Int, _ fail: (String) -> KilnError) throws
        -> (dimensions: [Int], size: Int) {
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
        let dimensions = (0..<expectedDimensions).map { d in (0..<4).reduce(0) { $0 << 8 | Int(data[4 + 4 * d + $1]) } }
        guard let size = byteCount(dimensions), size <= Int(Int32.max) else {
            throw fail("dimensions \(dimensions) make more than 2 GiB of data")
        }
        return (dimensions, size)
    }
}
