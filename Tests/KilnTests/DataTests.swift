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
        let data = try Dataset.load(folder: dir)
        #expect(data.train.labels == [7, 0, 9] && data.train.shape == ImageShape(channels: 1, size: 2) && data.classes == 10)
        #expect(abs(data.train.images[1] - (20 / 255 - 0.1307) / 0.3081) < 1e-6)
    }

    @Test func readsBundledGzip() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Dataset.load(folder: root.appendingPathComponent("Data/mnist").path, trainLimit: 100)
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
            try Dataset.load(folder: dir)
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
        #expect { try Dataset.load(folder: dir) } throws: { String(describing: $0).contains("more data than the header's 4 bytes") }
    }

    @Test func missingFolderIsOneLine() {
        #expect(throws: KilnError.self) { try Dataset.load(folder: "/nonexistent/mnist") }
    }

    /// NumPy images [N, H, W, C] become channel-major [C][N][H][W], each channel normalised with the training
    /// split's own mean and standard deviation (or with given ones), and the classes run to the largest label.
    @Test func readsNumPyRGB() throws {
        let dir = try numpyFolder(channels: 3, size: 2, train: 4, test: 3, classes: 3)
        let data = try Dataset.load(folder: dir)
        #expect(data.train.shape == ImageShape(channels: 3, size: 2) && data.train.count == 4 && data.test.count == 3)
        #expect(data.classes == 3 && data.train.labels == (0..<4).map { Int32(($0 * 7 + 3) % 3) })
        let raw = try NPYFile(path: "\(dir)/x_train.npy")
        let bytes = (0..<raw.count).map { Double(raw.value($0)) / 255 }
        for c in 0..<3 {
            let channel = (0..<16).map { bytes[$0 * 3 + c] }
            let mean = channel.reduce(0, +) / 16, std = (channel.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 16).squareRoot()
            #expect(abs(Double(data.normalization.mean[c]) - mean) < 1e-5 && abs(Double(data.normalization.std[c]) - std) < 1e-5)
            // Image 2, pixel 3 of channel c, and the fill: a black pixel.
            let x = data.train.images[(c * 4 + 2) * 4 + 3]
            #expect(abs(Double(x) - (bytes[(2 * 4 + 3) * 3 + c] - mean) / std) < 1e-4)
            #expect(abs(Double(data.train.fill[c]) + mean / std) < 1e-4)
        }
        let given = Normalization(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        #expect(try Dataset.load(folder: dir, normalization: given).normalization == given)
        let grey = try Dataset.load(folder: numpyFolder(channels: 1, size: 3, train: 2, test: 2, classes: 2), trainLimit: 1)
        #expect(grey.train.shape == ImageShape(channels: 1, size: 3) && grey.train.count == 1)
    }

    /// CIFAR-10 binary records (a label byte, then the red, green and blue planes of a 32×32 image) land
    /// channel-major: plane c of a record in channel c, pixel for pixel, across the five training files in
    /// order; a `cifar-10-batches-bin` inside the folder is read; `trainLimit` keeps the first records.
    /// kiln-bench's stand-in for data of a shape not at hand: the shape and counts asked for, labels among
    /// the classes (all of them used), normalised by its own statistics, and the same data for the same seed only.
    @Test func syntheticDataHasTheShapeAndIsASeedsOwn() throws {
        let shape = ImageShape(channels: 3, size: 5)
        let data = try Dataset.synthetic(shape: shape, trainCount: 31, testCount: 33, classes: 3, seed: 7)
        #expect(data.train.shape == shape && data.test.shape == shape && data.classes == 3)
        #expect(data.train.count == 31 && data.test.count == 33 && data.train.images.count == 3 * 31 * 25)
        #expect(Set(data.train.labels) == [0, 1, 2] && data.test.labels.allSatisfy { (0..<3).contains($0) })
        let mean = data.train.images.reduce(0.0) { $0 + Double($1) } / Double(data.train.images.count)
        #expect(abs(mean) < 1e-4 && data.normalization.std.allSatisfy { $0 > 0.2 && $0 < 0.4 })
        let again = try Dataset.synthetic(shape: shape, trainCount: 31, testCount: 33, classes: 3, seed: 7)
        let other = try Dataset.synthetic(shape: shape, trainCount: 31, testCount: 33, classes: 3, seed: 8)
        #expect(again.train.images == data.train.images && again.test.labels == data.test.labels)
        #expect(other.train.images != data.train.images)
    }

    @Test func readsCIFARBinary() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-cifar-\(UUID().uuidString)").path
        let batches = "\(dir)/cifar-10-batches-bin"
        try FileManager.default.createDirectory(atPath: batches, withIntermediateDirectories: true)
        // Image i's byte at plane c, pixel p; labels (3i + 1) mod 10.
        func byte(_ i: Int, _ c: Int, _ p: Int) -> UInt8 { UInt8((i * 37 + c * 101 + p * 7) % 256) }
        let files: [(String, Int)] = (1...5).map { ("data_batch_\($0).bin", 4) } + [("test_batch.bin", 3)]
        var image = 0
        for (name, records) in files {
            var bytes: [UInt8] = []
            for _ in 0..<records {
                bytes.append(UInt8((3 * image + 1) % 10))
                for c in 0..<3 { for p in 0..<1024 { bytes.append(byte(image, c, p)) } }
                image += 1
            }
            try Data(bytes).write(to: URL(fileURLWithPath: "\(batches)/\(name)"))
        }
        let given = Normalization(mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.5])
        let data = try Dataset.load(folder: dir, normalization: given)
        #expect(data.folder == dir && data.classes == 10 && data.train.shape == ImageShape(channels: 3, size: 32))
        let labels: [Int32] = (0..<20).map { Int32((3 * $0 + 1) % 10) }
        #expect(data.train.labels == labels && data.test.labels == [1, 4, 7])
        // Image 5 (data_batch_2.bin's second record), row 2, column 3 (pixel 67): bytes 142, 243 and 88 of
        // the red, green and blue planes, so (142/255 − 0.5)/0.2, (243/255 − 0.4)/0.25, (88/255 − 0.3)/0.5.
        let rgb: [UInt8] = [byte(5, 0, 67), byte(5, 1, 67), byte(5, 2, 67)]
        #expect(rgb == [142, 243, 88])
        let expected: [Float] = [0.28431373, 2.2117647, 0.09019608]
        for c in 0..<3 {
            let x: Float = data.train.images[(c * 20 + 5) * 1024 + 67]
            #expect(abs(x - expected[c]) < 1e-5)
        }
        // Test image 1 (record 21 overall), channel 2, pixel 1023.
        let blue: Float = data.test.images[(2 * 3 + 1) * 1024 + 1023], byte21: Float = Float(byte(21, 2, 1023)) / 255
        #expect(abs(blue - (byte21 - 0.3) / 0.5) < 1e-5)
        // Without given statistics, each channel's are the training split's.
        let measured = try Dataset.load(folder: batches, trainLimit: 6)
        #expect(measured.train.count == 6 && measured.test.count == 3)
        #expect(measured.train.labels == [1, 4, 7, 0, 3, 6])
        for c in 0..<3 {
            var sum = 0.0
            for i in 0..<6 { for p in 0..<1024 { sum += Double(byte(i, c, p)) } }
            let mean: Double = sum / (6 * 1024 * 255), got = Double(measured.normalization.mean[c])
            #expect(abs(got - mean) < 1e-5)
        }
    }

    static let brokenNumPy: [(String, String, [UInt8], String)] = [
        ("no magic", "x_train.npy", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "not a NumPy .npy file"),
        ("float images", "x_train.npy", npy("<f4", [1, 2, 2], [UInt8](repeating: 0, count: 16)), "Kiln reads 8-bit images"),
        ("fortran order", "x_train.npy", npy("|u1", [1, 2, 2], [1, 2, 3, 4], fortran: true), "Fortran order"),
        ("short data", "x_train.npy", npy("|u1", [2, 2, 2], [1, 2, 3]), "does not match the 3 data bytes"),
        ("overflowing shape", "x_train.npy", npy("|u1", [Int(Int32.max), Int(Int32.max), 4], [1]), "does not match"),
        ("non-square", "x_test.npy", npy("|u1", [1, 2, 3], [UInt8](repeating: 0, count: 6)), "square images"),
        ("label count", "y_train.npy", npy("<i8", [1], int64Bytes([0])), "labels of shape [1] for 2 images"),
        ("negative label", "y_test.npy", npy("<i8", [2], int64Bytes([0, -3])), "label -3 at index 1"),
        ("unknown type", "y_test.npy", npy("<f8", [2], [UInt8](repeating: 0, count: 16)), "elements of type '<f8'"),
    ]

    @Test(arguments: brokenNumPy)
    func rejectsBrokenNumPy(name: String, file: String, bytes: [UInt8], message: String) throws {
        let dir = try numpyFolder(channels: 1, size: 2, train: 2, test: 2, classes: 2, files: [file: bytes])
        #expect {
            try Dataset.load(folder: dir)
        } throws: { error in
            let text = String(describing: error)
            return text.contains("\(dir)/\(file)") && text.contains(message) && !text.contains("\n")
        }
    }

    @Test func gatherWithoutAugmentationCopiesInOrder() throws {
        let device = CPUDevice()
        let (images, values) = try randomTensor(device, [1, 7, 3, 3])
        let labels = try device.allocate([7], .int32), order = try device.allocate([7], .int32)
        try device.write((0..<7).map { Int32($0) }, to: labels)
        try device.write([6, 2, 4, 0, 1, 3, 5] as [Int32], to: order)
        let out = try device.allocate([1, 3, 3, 3], .float32), outLabels = try device.allocate([3], .int32)
        let fill = try tensor(device, [1], [-1])
        try device.gatherBatch(images: images, labels: labels, order: order, start: 2, output: out, outputLabels: outLabels,
                               augmentation: nil, fill: fill, generator: Philox(seed: 1, stream: 1), step: 0)
        #expect(try device.readInts(outLabels) == [4, 0, 1])
        expectClose(try device.readFloats(out), [4, 0, 1].flatMap { i in values[i * 9..<(i + 1) * 9].map(Double.init) }, terms: 1, "gather")
        // A zero-size augmentation is the identity; a real one moves pixels and keeps the background.
        try device.gatherBatch(images: images, labels: labels, order: order, start: 2, output: out, outputLabels: outLabels,
                               augmentation: Augmentation(maxDegrees: 0, maxShift: 0), fill: fill,
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
                               augmentation: Augmentation(maxDegrees: 90, maxShift: 0), fill: tensor(device, [1], [0]),
                               generator: Philox(seed: testSeed, stream: 1), step: 1)
        let result = try device.readFloats(out)
        #expect(result[12] == 0, "the centre stays dark")
        #expect(result.reduce(0, +) > 0.3, "the pixel's mass is still in the image: \(result)")
    }
}
