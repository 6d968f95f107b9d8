import Foundation

/// Per-channel normalisation of 8-bit pixels: x = (byte / 255 − mean[c]) / std[c].
public struct Normalization: Codable, Equatable, Sendable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }

    /// The normalised value of a black pixel per channel: what augmentation fills with.
    public var black: [Float] { zip(mean, std).map { -$0 / $1 } }

    /// The mean and (population) standard deviation of each channel of `bytes`, laid out [C][N·H·W].
    static func measured(_ bytes: [UInt8], channels: Int) -> Normalization {
        let row = bytes.count / max(channels, 1)
        var mean: [Float] = [], std: [Float] = []
        for c in 0..<channels {
            var sum = 0.0, squares = 0.0
            for b in bytes[c * row..<(c + 1) * row] { sum += Double(b); squares += Double(b) * Double(b) }
            let m = sum / Double(max(row, 1)), variance = max(squares / Double(max(row, 1)) - m * m, 0)
            mean.append(Float(m / 255))
            std.append(Float(max(variance.squareRoot(), 1e-3) / 255))
        }
        return Normalization(mean: mean, std: std)
    }

    /// Normalised floats of `bytes` [C][N·H·W].
    func apply(_ bytes: ArraySlice<UInt8>, channels: Int) -> [Float] {
        let row = bytes.count / max(channels, 1), base = bytes.startIndex
        var out = [Float](repeating: 0, count: bytes.count)
        for c in 0..<channels {
            let scale = 1 / (255 * std[c]), shift = -mean[c] / std[c]
            for i in 0..<row { out[c * row + i] = Float(bytes[base + c * row + i]) * scale + shift }
        }
        return out
    }
}

/// Images and labels in host memory, images normalised and channel-major ([C][N][H][W], as on a device).
public struct Split: Sendable {
    public var images: [Float]
    public var labels: [Int32]
    public var count: Int { labels.count }
    public let shape: ImageShape
    /// Augmentation's fill per channel: a black pixel, normalised.
    public let fill: [Float]
    /// The file the labels came from (for error messages).
    public let labelFile: String
}

/// A split as a loader reads it: 8-bit images [C][N·H·W], labels, the image shape, and the files the
/// images and the labels came from (for error messages).
typealias RawSplit = (bytes: [UInt8], labels: [Int32], shape: ImageShape, source: String, labelSource: String)

/// A classification data set: a training and a test split of square images, their class count and the
/// normalisation their pixels went through. Loaders: a folder of MNIST-format IDX files (MNIST,
/// Fashion-MNIST; `MNIST.swift`), of NumPy arrays (`NumPyFolder.swift`, any data exported from any
/// tool) or of CIFAR-10's binary batches (`CIFARFolder.swift`); `load` tells them apart.
public struct Dataset: Sendable {
    public let train: Split
    public let test: Split
    /// The classes the labels name (MNIST's 10; a NumPy folder's largest label + 1). A model may score
    /// more: its labels must only be among the model's classes.
    public let classes: Int
    public let normalization: Normalization
    public let folder: String

    /// `trainLimit` / `testLimit` keep only the first images of a split (quick runs, benchmarks). A
    /// NumPy or CIFAR-10 folder is normalised with `normalization` when given (a checkpoint's), else with
    /// its training split's statistics; MNIST-format data always with MNIST's.
    public static func load(folder: String, trainLimit: Int? = nil, testLimit: Int? = nil,
                            normalization: Normalization? = nil) throws -> Dataset {
        guard FileManager.default.fileExists(atPath: folder) else {
            throw KilnError("\(folder): no such data folder (a data folder holds the four MNIST-format files, "
                            + "x_train.npy, y_train.npy, x_test.npy, y_test.npy, or CIFAR-10's data_batch_1.bin … test_batch.bin)")
        }
        if NumPyFolder.holds(folder) {
            return try NumPyFolder.load(folder, trainLimit: trainLimit, testLimit: testLimit, normalization: normalization)
        }
        if let location = CIFARFolder.location(folder) {
            return try CIFARFolder.load(folder, location: location, trainLimit: trainLimit, testLimit: testLimit,
                                        normalization: normalization)
        }
        return try MNIST.load(folder, trainLimit: trainLimit, testLimit: testLimit)
    }

    /// Builds the splits from 8-bit images [C][N·H·W] per split, checking the labels against `classes`.
    static func make(folder: String, train: RawSplit, test: RawSplit, classes: Int,
                     normalization: Normalization) throws -> Dataset {
        for split in [train, test] {
            guard normalization.mean.count == split.shape.channels, normalization.std.count == split.shape.channels else {
                throw KilnError("\(split.source): \(split.shape.channels) channels, but the normalisation has \(normalization.mean.count)")
            }
        }
        func split(_ s: RawSplit) -> Split {
            Split(images: normalization.apply(s.bytes[...], channels: s.shape.channels), labels: s.labels, shape: s.shape,
                  fill: normalization.black, labelFile: s.labelSource)
        }
        return Dataset(train: split(train), test: split(test), classes: classes, normalization: normalization, folder: folder)
    }

    /// Where `--dataset NAME` looks.
    public static func folder(forDataset name: String, bundled: String) throws -> String {
        switch name {
        case "mnist": return bundled
        case "fashion-mnist": return "/usr/share/datasets/fashion-mnist"
        default: throw KilnError("unknown dataset \"\(name)\" (known: mnist, fashion-mnist)")
        }
    }

    /// The bundled MNIST: `Data/mnist` in the current directory or a folder above `executable` (a build
    /// in a clone), else `share/kiln/mnist` above it (`make install`). The running program by default.
    public static func bundledFolder(executable: URL = URL(fileURLWithPath: "/proc/self/exe")) -> String {
        let binary = executable.resolvingSymlinksInPath().deletingLastPathComponent()
        let above = sequence(first: binary, next: { $0.path == "/" ? nil : $0.deletingLastPathComponent() })
        let candidates = [FileManager.default.currentDirectoryPath + "/Data/mnist"]
            + above.map { $0.appendingPathComponent("Data/mnist").path }
            + above.map { $0.appendingPathComponent("share/kiln/mnist").path }
        return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
    }
}
