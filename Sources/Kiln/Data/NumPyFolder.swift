import Foundation

/// A data set as four NumPy arrays in one folder, as any tool can export them (e.g. CIFAR-10 with
/// `numpy.save`): `x_train.npy` and `x_test.npy` uint8 images [N, H, W] (grey) or [N, H, W, C], square;
/// `y_train.npy` and `y_test.npy` integer labels [N]. The classes are 0 … the largest label, or more:
/// a model of more classes fits too.
enum NumPyFolder {
    static let files = ["x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy"]

    static func holds(_ folder: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(folder)/x_train.npy")
    }

    /// Normalised with `normalization` when given, else with the training split's own statistics.
    static func load(_ folder: String, trainLimit: Int?, testLimit: Int?, normalization: Normalization?) throws -> Dataset {
        for file in files where !FileManager.default.fileExists(atPath: "\(folder)/\(file)") {
            throw KilnError("\(folder)/\(file): file not found (a NumPy data folder holds \(files.joined(separator: ", ")))")
        }
        let train = try split(folder, "train", limit: trainLimit), test = try split(folder, "test", limit: testLimit)
        guard train.shape.channels == test.shape.channels, train.shape.size == test.shape.size else {
            throw KilnError("\(folder): training images are \(train.shape), test images \(test.shape)")
        }
        let classes = Int((train.labels + test.labels).max() ?? 0) + 1
        return try Dataset.make(folder: folder, train: train, test: test, classes: classes,
                                normalization: normalization ?? .measured(train.bytes, channels: train.shape.channels))
    }

    /// One split's images as bytes [C][N·H·W] (transposed from NumPy's [N, H, W, C]) and its labels.
    private static func split(_ folder: String, _ name: String,
                              limit: Int?) throws -> RawSplit {
        let imagePath = "\(folder)/x_\(name).npy", labelPath = "\(folder)/y_\(name).npy"
        let images = try NPYFile(path: imagePath), labels = try NPYFile(path: labelPath)
        guard images.shape.count == 3 || images.shape.count == 4 else {
            throw KilnError("\(imagePath): images of shape \(images.shape); Kiln reads [N, H, W] or [N, H, W, C]")
        }
        let (n, h, w, c) = (images.shape[0], images.shape[1], images.shape[2], images.shape.count == 4 ? images.shape[3] : 1)
        // PyTorch's channels-first [N, C, H, W] reads here as H = C and W = C = the image's height: say so.
        if images.shape.count == 4, h != w, w == c {
            throw KilnError("\(imagePath): images of shape \(images.shape) look like [N, C, H, W] (channels first); Kiln reads [N, H, W] "
                            + "or [N, H, W, C]: save numpy.transpose(x, (0, 2, 3, 1))")
        }
        guard h == w, h > 0, c > 0 else { throw KilnError("\(imagePath): images are \(h)x\(w)x\(c); Kiln needs square images") }
        guard labels.shape == [n] else { throw KilnError("\(labelPath): labels of shape \(labels.shape) for \(n) images in \(imagePath)") }
        guard n > 0 else { throw KilnError("\(imagePath): the split has no images") }
        guard images.isBytes else { throw KilnError("\(imagePath): Kiln reads uint8 images; convert with array.astype(numpy.uint8)") }
        let count = min(n, limit ?? .max), plane = h * w
        let values = (0..<count).map { labels.value($0) }
        if let bad = values.firstIndex(where: { !(0..<4096).contains($0) }) {
            throw KilnError("\(labelPath): label \(values[bad]) at index \(bad) is not a class 0-4095")
        }
        var bytes = [UInt8](repeating: 0, count: c * count * plane)
        images.data.withUnsafeBufferPointer { source in
            for image in 0..<count {
                for p in 0..<plane {
                    for ch in 0..<c { bytes[(ch * count + image) * plane + p] = source[(image * plane + p) * c + ch] }
                }
            }
        }
        return (bytes, values.map { Int32($0) }, ImageShape(channels: c, size: h), imagePath, labelPath)
    }
}
