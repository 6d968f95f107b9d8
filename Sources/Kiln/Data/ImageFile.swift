import CPNG
import Foundation

/// One picture from a file, as 8-bit channels [C][H][W] (1 grey or 3 RGB): PNG through libpng, or
/// binary/ASCII PGM (P5, P2) read here. `kiln predict` turns it into a model's input (`input(for:)`).
public struct ImageFile {
    public let channels: Int, height: Int, width: Int
    /// Bytes [C][H][W].
    public let pixels: [UInt8]

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw KilnError("\(path): cannot read the image") }
        let bytes = [UInt8](data)
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
            (channels, height, width, pixels) = try Self.png(bytes, path)
        } else if bytes.starts(with: Array("P5".utf8)) || bytes.starts(with: Array("P2".utf8)) {
            (channels, height, width, pixels) = try Self.pgm(bytes, path)
        } else {
            throw KilnError("\(path): not a PNG or PGM image")
        }
    }

    /// The model's input for this picture: resized (bilinear) to `shape`, turned grey (luminance) or RGB
    /// as the model needs, optionally inverted (dark strokes on a light ground, as MNIST is not), and
    /// normalised with `normalization`. Returns floats [C][H][W].
    public func input(for shape: ImageShape, normalization: Normalization, invert: Bool) throws -> [Float] {
        guard shape.channels == 1 || shape.channels == 3, normalization.mean.count == shape.channels else {
            throw KilnError("the model takes \(shape.channels)-channel images; pictures give 1 (grey) or 3 (RGB)")
        }
        let size = shape.size
        var out = [Float](repeating: 0, count: shape.channels * size * size)
        for c in 0..<shape.channels {
            for y in 0..<size {
                for x in 0..<size {
                    var v = sample(shape.channels == 1 ? nil : c, y: (Float(y) + 0.5) * Float(height) / Float(size) - 0.5,
                                   x: (Float(x) + 0.5) * Float(width) / Float(size) - 0.5)
                    if invert { v = 255 - v }
                    out[(c * size + y) * size + x] = (v / 255 - normalization.mean[c]) / normalization.std[c]
                }
            }
        }
        return out
    }

    /// Bilinear sample at (y, x), edges clamped, of channel c, or of the luminance when c is nil.
    private func sample(_ c: Int?, y: Float, x: Float) -> Float {
        func at(_ yy: Int, _ xx: Int) -> Float {
            let (cy, cx) = (min(max(yy, 0), height - 1), min(max(xx, 0), width - 1))
            func channel(_ k: Int) -> Float { Float(pixels[(k * height + cy) * width + cx]) }
            if let c { return channel(channels == 1 ? 0 : c) }
            return channels == 1 ? channel(0) : 0.299 * channel(0) + 0.587 * channel(1) + 0.114 * channel(2)
        }
        let (y0, x0) = (y.rounded(.down), x.rounded(.down))
        let (fy, fx) = (y - y0, x - x0), (iy, ix) = (Int(y0), Int(x0))
        return (at(iy, ix) * (1 - fx) + at(iy, ix + 1) * fx) * (1 - fy) + (at(iy + 1, ix) * (1 - fx) + at(iy + 1, ix + 1) * fx) * fy
    }

    private static func png(_ bytes: [UInt8], _ path: String) throws -> (Int, Int, Int, [UInt8]) {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        // libpng reads from the memory between begin and finish, so both run while it is pinned.
        let (channels, height, width, interleaved) = try bytes.withUnsafeBytes { raw -> (Int, Int, Int, [UInt8]) in
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                throw KilnError("\(path): not a readable PNG (\(message(image)))")
            }
            let grey = image.format & UInt32(PNG_FORMAT_FLAG_COLOR) == 0
            image.format = grey ? 0 : UInt32(PNG_FORMAT_FLAG_COLOR)  // PNG_FORMAT_GRAY, PNG_FORMAT_RGB: 8 bits, no alpha
            let (height, width, channels) = (Int(image.height), Int(image.width), grey ? 1 : 3)
            guard height > 0, width > 0, height * width <= 1 << 26 else { throw KilnError("\(path): a \(width)x\(height) PNG is too large") }
            var interleaved = [UInt8](repeating: 0, count: height * width * channels)
            guard png_image_finish_read(&image, nil, &interleaved, 0, nil) != 0 else {
                throw KilnError("\(path): the PNG data is broken (\(message(image)))")
            }
            return (channels, height, width, interleaved)
        }
        var planes = [UInt8](repeating: 0, count: interleaved.count)
        for p in 0..<height * width { for c in 0..<channels { planes[c * height * width + p] = interleaved[p * channels + c] } }
        return (channels, height, width, planes)
    }

    private static func message(_ image: png_image) -> String {
        withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// P5 (binary) or P2 (ASCII) PGM with a maximum value up to 255; `#` comments in the header.
    private static func pgm(_ bytes: [UInt8], _ path: String) throws -> (Int, Int, Int, [UInt8]) {
        var i = 2
        func token() throws -> Int {
            while i < bytes.count {
                if bytes[i] == UInt8(ascii: "#") { while i < bytes.count && bytes[i] != 10 { i += 1 } }
                else if [9, 10, 13, 32].contains(bytes[i]) { i += 1 } else { break }
            }
            var value = 0, digits = 0
            while i < bytes.count, (48...57).contains(bytes[i]), digits < 9 { value = value * 10 + Int(bytes[i] - 48); i += 1; digits += 1 }
            guard digits > 0 else { throw KilnError("\(path): the PGM header is broken") }
            return value
        }
        let (width, height, maximum) = (try token(), try token(), try token())
        guard width > 0, height > 0, width * height <= 1 << 26, (1...255).contains(maximum) else {
            throw KilnError("\(path): a \(width)x\(height) PGM with maximum \(maximum); Kiln reads 8-bit PGM")
        }
        let count = width * height
        var pixels: [UInt8]
        if bytes[1] == UInt8(ascii: "5") {
            i += 1  // the single whitespace after the maximum
            guard bytes.count - i >= count else { throw KilnError("\(path): the PGM has fewer pixels than its \(width)x\(height)") }
            pixels = Array(bytes[i..<i + count])
        } else {
            pixels = try (0..<count).map { _ in UInt8(min(try token(), maximum)) }
        }
        if maximum != 255 { pixels = pixels.map { UInt8(min(Int($0), maximum) * 255 / maximum) } }
        return (1, height, width, pixels)
    }
}
