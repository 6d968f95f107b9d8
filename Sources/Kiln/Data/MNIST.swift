import Foundation

/// MNIST-format data sets (MNIST, Fashion-MNIST): four IDX files in one folder, gzipped or not,
/// 28×28 grey images normalised with MNIST's mean and standard deviation, ten classes.
enum MNIST {
    static let normalization = Normalization(mean: [0.1307], std: [0.3081])
    static let classes = 10

    static func load(_ folder: String, trainLimit: Int?, testLimit: Int?) throws -> Dataset {
        try Dataset.make(folder: folder, train: split(folder, "train", limit: trainLimit),
                         test: split(folder, "t10k", limit: testLimit), classes: classes, normalization: normalization)
    }

    private static func split(_ folder: String, _ prefix: String,
                              limit: Int?) throws -> RawSplit {
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
        return (Array(images.bytes[0..<count * pixels]), labels.bytes[0..<count].map { Int32($0) },
                ImageShape(channels: 1, size: images.dimensions[1]), imagePath, labelPath)
    }
}
