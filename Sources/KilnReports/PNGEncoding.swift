import CPNG
import Foundation
import Kiln

/// Pictures for the reports' pages (`kiln report`'s most confident mistakes), written with libpng's
/// simplified API. Reading pictures is the core library's (`ImageFile`, `kiln predict`).
enum PNGEncoding {
    /// Channel planes of 8-bit pixels (`[C][H·W]`, grey or RGB) as a PNG file's bytes.
    static func png(planes: [UInt8], channels: Int, height: Int, width: Int) throws -> Data {
        guard channels == 1 || channels == 3, height > 0, width > 0, planes.count == channels * height * width else {
            throw KilnError("a PNG needs 1 or 3 channels of \(width)x\(height) pixels, got \(planes.count) bytes for \(channels)")
        }
        var interleaved = [UInt8](repeating: 0, count: planes.count)
        for p in 0..<height * width { for c in 0..<channels { interleaved[p * channels + c] = planes[c * height * width + p] } }
        var image = png_image()
        (image.version, image.width, image.height) = (UInt32(PNG_IMAGE_VERSION), UInt32(width), UInt32(height))
        image.format = channels == 1 ? 0 : UInt32(PNG_FORMAT_FLAG_COLOR)
        defer { png_image_free(&image) }
        // The first call measures, the second writes.
        var size: png_alloc_size_t = 0
        guard png_image_write_to_memory(&image, nil, &size, 0, interleaved, 0, nil) != 0 else {
            throw KilnError("libpng cannot encode the image (\(message(image)))")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        guard png_image_write_to_memory(&image, &bytes, &size, 0, interleaved, 0, nil) != 0 else {
            throw KilnError("libpng cannot encode the image (\(message(image)))")
        }
        return Data(bytes.prefix(Int(size)))
    }

    private static func message(_ image: png_image) -> String {
        withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
