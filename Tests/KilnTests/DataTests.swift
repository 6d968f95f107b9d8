import CZlib
import Foundation
import Testing
@testable import Kiln

@Suite struct DataTests {
    /// A scratch folder holding MNIST-named IDX files built from the given bytes.
    func folder(images: [UInt8], labels: [UInt8]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-idx-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for prefix in ["train", "t10k"] {
            try Data(images).write(to: URL(fileURLWithPath: "\(dir)/\(prefix)-images-idx3-ubyte"))
            try Data(labels).write(to: URL(fileURLWithPath: "\(dir)/\(prefix)-labels-idx1-ubyte"))
        }
        return dir
    }

    func header(_ magic: UInt8, _ dims: [Int]) -> [UInt8] {
        [0, 0, 8, magic] + dims.flatMap { d in (0..<4).map { UInt8((d >> (24 - 8 * $0)) & 0xFF) } }
    }

    @Test func readsPlainIDX() throws {
        let pixels = (0..<3 * 4).map { UInt8($0 * 20) }
        let dir = try folder(images: header(3, [3, 2, 2]) + pixels, labels: header(1, [3]) + [7, 0, 9])
        let data = try MNISTData(folder: dir)
        #expect(data.train.labels == [7, 0, 9] && data.train.shape == ImageShape(channels: 1, size: 2))
        #expect(abs(data.train.images[1] - (20 / 255 - MNISTData.mean) / MNISTData.std) < 1e-6)
    }

    @Test func readsBundledGzip() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try MNISTData(folder: root.appendingPathComponent("Data/mnist").path, trainLimit: 100)
        #expect(data.train.count == 100 && data.test.count == 10_000 && data.train.shape.size == 28)
    }

    static let broken: [(String, [UInt8], [UInt8], String)] = [
        ("wrong magic", [0, 0, 9, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0], [0, 0, 8, 1, 0, 0, 0, 1, 0], "wrong magic number"),
        ("truncated", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3], [0, 0, 8, 1, 0, 0, 0, 2, 0, 0], "truncated"),
        ("count mismatch", [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5], [0, 0, 8, 1, 0, 0, 0, 2, 0, 0], "2 labels for 1 images"),
        ("bad label", [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5], [0, 0, 8, 1, 0, 0, 0, 1, 12], "label 12"),
        ("extra bytes", [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5, 6], [0, 0, 8, 1, 0, 0, 0, 1, 1], "more data than the header's 1 bytes"),
        ("overflowing dimensions", [0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1], [0, 0, 8, 1, 0, 0, 0, 1, 1],
         "make more than 2 GiB"),
    ]

    @Test(arguments: broken)
    func rejectsBrokenFiles(name: String, images: [UInt8], labels: [UInt8], message: String) throws {
        let dir = try folder(images: images, labels: labels)
        #expect {
            try MNISTData(folder: dir)
        } throws: { error in
            let text = String(describing: error)
            return text.contains(dir) && text.contains(message) && !text.contains("\n")
        }
    }

    /// A gzip file that inflates far past what its header promises is refused after the promised size,
    /// not after inflating it all.
    @Test func gzipBombStopsAtTheHeadersSize() throws {
        let dir = try folder(images: header(3, [1, 2, 2]) + [1, 2, 3, 4], labels: header(1, [1]) + [3])
        let path = "\(dir)/train-images-idx3-ubyte"
        try FileManager.default.removeItem(atPath: path)
        let file = try #require(gzopen(path + ".gz", "wb"))
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var header = header(3, [1, 2, 2])
        gzwrite(file, &header, UInt32(header.count))
        for _ in 0..<64 { _ = zeros.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) } }
        gzclose(file)
        #expect { try MNISTData(folder: dir) } throws: { String(describing: $0).contains("more data than the header's 4 bytes") }
    }

    @Test func missingFolderIsOneLine() {
        #expect(throws: KilnError.self) { try MNISTData(folder: "/nonexistent/mnist") }
    }

    @Test func gatherWithoutAugmentationCopiesInOrder() throws {
        let device = CPUDevice()
        let (images, values) = try randomTensor(device, [1, 7, 3, 3])
        let labels = try device.allocate([7], .int32), order = try device.allocate([7], .int32)
        try device.write((0..<7).map { Int32($0) }, to: labels)
        try device.write([6, 2, 4, 0, 1, 3, 5] as [Int32], to: order)
        let out = try device.allocate([1, 3, 3, 3], .float32), outLabels = try device.allocate([3], .int32)
        try device.gatherBatch(images: images, labels: labels, order: order, start: 2, output: out, outputLabels: outLabels,
                               augmentation: nil, generator: Philox(seed: 1, stream: 1), step: 0)
        #expect(try device.readInts(outLabels) == [4, 0, 1])
        expectClose(try device.readFloats(out), [4, 0, 1].flatMap { i in values[i * 9..<(i + 1) * 9].map(Double.init) }, terms: 1, "gather")
        // A zero-size augmentation is the identity; a real one moves pixels and keeps the background.
        try device.gatherBatch(images: images, labels: labels, order: order, start: 2, output: out, outputLabels: outLabels,
                               augmentation: Augmentation(maxDegrees: 0, maxShift: 0, background: -1),
                               generator: Philox(seed: 1, stream: 1), step: 3)
        expectClose(try device.readFloats(out), [4, 0, 1].flatMap { i in values[i * 9..<(i + 1) * 9].map(Double.init) }, terms: 4, "identity augmentation")
    }

    @Test func augmentationRotatesAboutTheCentre() throws {
        let device = CPUDevice()
        // A single bright pixel right of centre; rotated by ≤ 90° it stays on the ring of radius 2.
        var pixels = [Float](repeating: 0, count: 25)
        pixels[2 * 5 + 4] = 1
        let images = try tensor(device, [1, 1, 5, 5], pixels)
        let labels = try device.allocate([1], .int32), order = try device.allocate([1], .int32)
        try device.write([3] as [Int32], to: labels)
        try device.write([0] as [Int32], to: order)
        let out = try device.allocate([1, 1, 5, 5], .float32), outLabels = try device.allocate([1], .int32)
        try device.gatherBatch(images: images, labels: labels, order: order, start: 0, output: out, outputLabels: outLabels,
                               augmentation: Augmentation(maxDegrees: 90, maxShift: 0, background: 0),
                               generator: Philox(seed: testSeed, stream: 1), step: 1)
        let result = try device.readFloats(out)
        #expect(result[12] == 0, "the centre stays dark")
        #expect(result.reduce(0, +) > 0.3, "the pixel's mass is still in the image: \(result)")
    }
}
