import Foundation

/// Images and labels in host memory, images already normalised.
public struct Split: Sendable {
    public var images: [Float]
    public var labels: [Int32]
    public var count: Int { labels.count }
    public let shape: ImageShape
}

/// MNIST-format data sets (MNIST, Fashion-MNIST): four IDX files in one folder, gzipped or not.
public struct MNISTData: Sendable {
    public static let mean: Float = 0.1307, std: Float = 0.3081
    public static let classes = 10
    public let train: Split
    public let test: Split
    public let folder: String

    /// Where `--dataset NAME` looks.
    public static func folder(forDataset name: String, bundled: String) throws -> String {
        switch name {
        case "mnist": return bundled
        case "fashion-mnist": return "/usr/share/datasets/fashion-mnist"
        default: throw KilnError("unknown dataset \"\(name)\" (known: mnist, fashion-mnist)")
        }
    }

    /// The bundled Data/mnist: beside the current directory, or above the executable (a moved binary
    /// needs `--data`).
    public static func bundledFolder() -> String {
        let candidates = [FileManager.default.currentDirectoryPath + "/Data/mnist"]
            + sequence(first: URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent(),
                       next: { $0.path == "/" ? nil : $0.deletingLastPathComponent() })
              .map { $0.appendingPathComponent("Data/mnist").path }
        return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
    }

    /// `trainLimit` / `testLimit` keep only the first images of a split (quick runs, benchmarks).
    public init(folder: String, trainLimit: Int? = nil, testLimit: Int? = nil) throws {
        guard FileManager.default.fileExists(atPath: folder) else {
            throw KilnError("\(folder): no such data folder (pass --data DIR with the four MNIST-format files; "
                            + "for Fashion-MNIST: apt-get install dataset-fashion-mnist)")
        }
        self.folder = folder
        train = try Self.split(folder, "train", limit: trainLimit)
        test = try Self.split(folder, "t10k", limit: testLimit)
    }

    private static func split(_ folder: String, _ prefix: String, limit: Int?) throws -> Split {
        func path(_ kind: String) throws -> String {
            let base = "\(folder)/\(prefix)-\(kind)-idx\(kind == "images" ? 3 : 1)-ubyte"
            for candidate in [base + ".gz", base] where FileManager.default.fileExists(atPath: candidate) { return candidate }
            throw KilnError("\(base)(.gz): file not found")
        }
        let imagePath = try path("images"), labelPath = try path("labels")
        let images = try IDXFile(path: imagePath, expectedDimensions: 3)
        let labels = try IDXFile(path: labelPath, expectedDimensions: 1)
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw KilnError("\(labelPath): \(labels.dimensions[0]) labels for \(images.dimensions[0]) images in \(imagePath)")
        }
        guard images.dimensions[1] == images.dimensions[2], images.dimensions[1] > 0 else {
            throw KilnError("\(imagePath): images are \(images.dimensions[1])x\(images.dimensions[2]); Kiln needs square images")
        }
        if let bad = labels.bytes.firstIndex(where: { Int($0) >= classes }) {
            throw KilnError("\(labelPath): label \(labels.bytes[bad]) at index \(bad) is not a class 0-\(classes - 1)")
        }
        let count = min(images.dimensions[0], limit ?? .max), pixels = images.dimensions[1] * images.dimensions[2]
        let scale = 1 / (255 * std), shift = -mean / std
        return Split(images: images.bytes[0..<count * pixels].map { Float($0) * scale + shift },
                     labels: labels.bytes[0..<count].map { Int32($0) },
                     shape: ImageShape(channels: 1, size: images.dimensions[1]))
    }

    /// The value an empty (black) pixel takes after normalisation: augmentation's fill.
    public static var background: Float { -mean / std }
}
