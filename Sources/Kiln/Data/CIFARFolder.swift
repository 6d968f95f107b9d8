import Foundation

/// CIFAR-10 in its binary format: training records in `data_batch_1.bin` … `data_batch_5.bin`, test
/// records in `test_batch.bin`. A record is one label byte (0–9), then a 32×32 image as three planes,
/// red, green, blue, each row-major: already channel-major, so a record's planes copy straight into
/// Kiln's [C][N·H·W]. Normalised like a NumPy folder: with a checkpoint's statistics when given, else
/// the training split's own.
enum CIFARFolder {
    static let trainFiles = (1...5).map { "data_batch_\($0).bin" }
    static let testFile = "test_batch.bin"
    static let shape = ImageShape(channels: 3, size: 32)
    static let classes = 10
    static let recordSize = 1 + 3 * 32 * 32

    /// Where the files are: `folder` itself, or the `cifar-10-batches-bin` the official tarball unpacks
    /// into, when `folder` is where it was unpacked. Nil when neither holds any of the files, so that a
    /// folder with some missing is still read as CIFAR-10 and the missing ones are named.
    static func location(_ folder: String) -> String? {
        [folder, folder + "/cifar-10-batches-bin"].first { candidate in
            (trainFiles + [testFile]).contains { FileManager.default.fileExists(atPath: "\(candidate)/\($0)") }
        }
    }

    /// Reads the files in `location`; the data set keeps `folder`, the name it was given by.
    static func load(_ folder: String, location: String, trainLimit: Int?, testLimit: Int?,
                     normalization: Normalization?) throws -> Dataset {
        // All six or none: a gap in the training batches would silently train on less than the set.
        let missing = (trainFiles + [testFile]).filter { !FileManager.default.fileExists(atPath: "\(location)/\($0)") }
        if let first = missing.first {
            let others = missing.count > 1 ? " (nor \(missing.dropFirst().joined(separator: ", ")))" : ""
            throw KilnError("\(location)/\(first): file not found\(others); a CIFAR-10 folder holds data_batch_1.bin … "
                            + "data_batch_5.bin and test_batch.bin")
        }
        let train = try split(location, trainFiles, limit: trainLimit), test = try split(location, [testFile], limit: testLimit)
        return try Dataset.make(folder: folder, train: train, test: test, classes: classes,
                                normalization: normalization ?? .measured(train.bytes, channels: shape.channels))
    }

    /// The records of `files` in order, the first `limit` of them kept: bytes [C][N·H·W] and labels.
    private static func split(_ location: String, _ files: [String], limit: Int?) throws -> RawSplit {
        let paths = files.map { "\(location)/\($0)" }
        let contents = try paths.map(records)
        let count = min(contents.reduce(0) { $0 + $1.count / recordSize }, limit ?? .max), plane = shape.size * shape.size
        var bytes = [UInt8](repeating: 0, count: shape.channels * count * plane)
        var labels: [Int32] = []
        labels.reserveCapacity(count)
        bytes.withUnsafeMutableBufferPointer { out in
            for file in contents where labels.count < count {
                file.withUnsafeBufferPointer { source in
                    for r in 0..<min(file.count / recordSize, count - labels.count) {
                        let record = source.baseAddress! + r * recordSize, image = labels.count
                        for ch in 0..<shape.channels {
                            (out.baseAddress! + (ch * count + image) * plane).update(from: record + 1 + ch * plane, count: plane)
                        }
                        labels.append(Int32(record[0]))
                    }
                }
            }
        }
        let source = files.count == 1 ? paths[0] : "\(location)/\(files[0]) … \(files[files.count - 1])"
        return (bytes, labels, shape, source, source)
    }

    /// One file's bytes, checked: whole records, each label a class.
    private static func records(_ path: String) throws -> [UInt8] {
        guard let contents = FileManager.default.contents(atPath: path) else { throw KilnError("\(path): cannot read the file") }
        guard !contents.isEmpty else { throw KilnError("\(path) is empty: no records") }
        guard contents.count % recordSize == 0 else {
            throw KilnError("\(path) is \(contents.count) bytes, not a whole number of 3,073-byte records "
                            + "(a label byte and a 3x32x32 image each)")
        }
        let bytes = [UInt8](contents)
        for r in 0..<bytes.count / recordSize where Int(bytes[r * recordSize]) >= classes {
            throw KilnError("\(path): record \(r) has label \(bytes[r * recordSize]), not a class 0-\(classes - 1)")
        }
        return bytes
    }
}
