import Foundation

/// Test-time augmentation (`kiln eval --tta flip`): the model scores each test image and its mirror image
/// (left to right), and its prediction is the mean of the two probability vectors, as is usual for
/// CIFAR-10 models trained with flips. Only for data whose classes do not change in a mirror: not digits.
public enum TestTimeAugmentation: String, CaseIterable, Codable, Sendable {
    case none, flip
}

extension Split {
    /// Every image mirrored left to right, labels unchanged.
    public func mirrored() -> Split {
        var out = self
        let width = shape.size
        images.withUnsafeBufferPointer { source in
            out.images.withUnsafeMutableBufferPointer { target in
                // Rows are `width` floats in every channel and image alike ([C][N][H][W]).
                for row in stride(from: 0, to: source.count, by: width) {
                    for x in 0..<width { target[row + x] = source[row + width - 1 - x] }
                }
            }
        }
        return out
    }
}

/// Every test image's outputs (log-probabilities, [N][classes]) and label in test-set order, as
/// `testOutputs`, with `tta`: with `.flip`, the log of the mean of the image's and its mirror's probabilities.
public func testOutputs(_ model: Model, on data: Dataset, batchSize: Int = 1000,
                        tta: TestTimeAugmentation) throws -> TestOutputs {
    let plain = try testOutputs(model, on: data, batchSize: batchSize)
    guard tta == .flip else { return TestOutputs(outputs: plain.outputs, labels: plain.labels) }
    let mirror = Dataset(train: data.train, test: data.test.mirrored(), classes: data.classes,
                         normalization: data.normalization, folder: data.folder)
    let flipped = try testOutputs(model, on: mirror, batchSize: batchSize).outputs
    let outputs = zip(plain.outputs, flipped).map { a, b in
        zip(a, b).map { Float(log((exp(Double($0)) + exp(Double($1))) / 2)) }
    }
    return TestOutputs(outputs: outputs, labels: plain.labels)
}

/// Log-probabilities of the test images and their labels.
public struct TestOutputs {
    public let outputs: [[Float]]
    public let labels: [Int]

    /// The test line's figures: mean negative log-likelihood of the labels, and how many images' most
    /// likely class is their label.
    public var scores: (loss: Double, correct: Int, count: Int) {
        var loss = 0.0, correct = 0
        for (row, label) in zip(outputs, labels) {
            loss -= Double(row[label])
            if row.indices.max(by: { row[$0] < row[$1] }) == label { correct += 1 }
        }
        return (loss / Double(max(labels.count, 1)), correct, labels.count)
    }
}
