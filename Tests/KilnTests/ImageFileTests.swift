import Foundation
import Testing
@testable import Kiln

/// Pictures for `kiln predict`: PNG (grey, RGB) and PGM (binary, ASCII) read to [C][H][W] bytes, then
/// resized, turned grey or kept RGB, inverted and normalised into a model's input.
@Suite struct ImageFileTests {
    func file(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-img-\(UUID().uuidString)-\(name)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func readsPNGAndPGM() throws {
        let grey: [UInt8] = [0, 50, 100, 150, 200, 250]  // 3 wide, 2 high
        let rgb: [UInt8] = (0..<6).flatMap { (i: Int) -> [UInt8] in [UInt8(i * 40), UInt8(255 - i * 40), 7] }
        let binary: [UInt8] = Array("P5\n# made by a test\n3 2\n255\n".utf8) + grey
        let ascii: [UInt8] = Array("P2\n3 2\n250\n0 50 100\n150 200 250\n".utf8)
        let images: [ImageFile] = [try ImageFile(path: file(pngBytes(width: 3, height: 2, rgb: false, grey), "g.png")),
                                   try ImageFile(path: file(binary, "b.pgm")), try ImageFile(path: file(ascii, "a.pgm"))]
        for image in images.prefix(2) { #expect(image.channels == 1 && image.height == 2 && image.width == 3 && image.pixels == grey) }
        #expect(images[2].pixels == grey.map { UInt8(Int($0) * 255 / 250) })
        let colour = try ImageFile(path: file(pngBytes(width: 3, height: 2, rgb: true, rgb), "c.png"))
        let planes: [UInt8] = (0..<3).flatMap { (c: Int) -> [UInt8] in (0..<6).map { rgb[$0 * 3 + c] } }
        #expect(colour.channels == 3 && colour.pixels == planes)
    }

    @Test func makesTheModelsInput() throws {
        // A 4x4 picture of 2x2 blocks, resized to 2x2, gives the blocks back; grey from RGB is the luminance.
        let blocks: [UInt8] = [10, 10, 200, 200, 10, 10, 200, 200, 90, 90, 30, 30, 90, 90, 30, 30]
        let interleaved: [UInt8] = blocks.flatMap { [$0, $0, $0] }
        let picture = try ImageFile(path: file(pngBytes(width: 4, height: 4, rgb: true, interleaved), "q.png"))
        let plain = Normalization(mean: [0], std: [1])
        let grey = try picture.input(for: ImageShape(channels: 1, size: 2), normalization: plain, invert: false)
        #expect(zip(grey, [10, 200, 90, 30].map { Float($0) / 255 }).allSatisfy { abs($0 - $1) < 1e-3 }, "\(grey)")
        let inverted = try picture.input(for: ImageShape(channels: 1, size: 2), normalization: Normalization(mean: [0.5], std: [0.25]),
                                         invert: true)
        #expect(abs(inverted[0] - ((1 - 10 / 255) - 0.5) / 0.25) < 1e-3)
        let colour = try picture.input(for: ImageShape(channels: 3, size: 2), normalization: Normalization(mean: [0, 0, 0], std: [1, 1, 1]),
                                       invert: false)
        #expect(colour.count == 12 && abs(colour[4 + 1] - 200 / 255) < 1e-3)
        #expect(throws: KilnError.self) { try picture.input(for: ImageShape(channels: 2, size: 2), normalization: plain, invert: false) }
    }

    @Test(arguments: [("not an image", Array("hello".utf8), "not a PNG or PGM image"),
                      ("broken PNG", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3], "not a readable PNG"),
                      ("short PGM", Array("P5\n3 2\n255\n".utf8) + [1, 2], "fewer pixels"),
                      ("16-bit PGM", Array("P5\n1 1\n65535\n".utf8) + [1, 2], "Kiln reads 8-bit PGM"),
                      ("broken header", Array("P2\n3 x\n".utf8), "header is broken")])
    func rejectsBrokenPictures(name: String, bytes: [UInt8], message: String) throws {
        let path = try file(bytes, "bad")
        #expect { try ImageFile(path: path) } throws: {
            let text = String(describing: $0)
            return text.hasPrefix(path) && text.contains(message) && !text.contains("\n")
        }
    }
}
