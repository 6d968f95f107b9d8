import Foundation

/// What a model says about one test image: its most likely class and that class's probability.
public struct Prediction: Codable, Equatable, Sendable {
    public let index: Int
    public let label: Int
    public let predicted: Int
    public let confidence: Double
}

extension Model {
    /// The model's outputs for `images` [C, N, H, W] in inference mode, per image: [N][classes]
    /// (log-probabilities for a model ending in LogSoftmax). Reads them back from the device (for
    /// evaluation reports, prediction and export checks, not for training).
    public func outputs(_ images: Tensor) throws -> [[Float]] {
        let y = try forward(images, context: StepContext(mode: .inference))
        let values = try device.readFloats(y), (k, n) = (y.channels, y.rowLength)
        return (0..<n).map { j in (0..<k).map { values[$0 * n + j] } }
    }

    /// Class probabilities of `images` [C, N, H, W] in inference mode, per image: [N][classes].
    public func probabilities(_ images: Tensor) throws -> [[Double]] {
        try outputs(images).map { $0.map { exp(Double($0)) } }
    }
}

/// Every test image's outputs ([N][classes], as `Model.outputs`) and label, in test-set order.
public func testOutputs(_ model: Model, on data: Dataset, batchSize: Int = 1000) throws -> (outputs: [[Float]], labels: [Int]) {
    try Trainer.check(model.spec, against: data, splits: [("test", data.test)])
    let split = try DeviceSplit(data.test, on: model.device), images = TensorSlot(), labels = TensorSlot()
    var outputs: [[Float]] = [], truth: [Int] = []
    for start in stride(from: 0, to: split.count, by: batchSize) {
        let (x, y) = try split.batch(start: start, count: min(batchSize, split.count - start), into: images, labels, on: model.device)
        truth += try model.device.readInts(y).map(Int.init)
        outputs += try model.outputs(x)
    }
    return (outputs, truth)
}

/// Every test image's prediction, in test-set order (with `tta`, from the augmented outputs).
public func predictions(_ model: Model, on data: Dataset, batchSize: Int = 1000,
                        tta: TestTimeAugmentation = .none) throws -> [Prediction] {
    let result = try testOutputs(model, on: data, batchSize: batchSize, tta: tta)
    return zip(result.outputs, result.labels).enumerated().map { index, pair in
        let p = pair.0.map { exp(Double($0)) }, best = p.indices.max { p[$0] < p[$1] }!
        return Prediction(index: index, label: pair.1, predicted: best, confidence: p[best])
    }
}

/// How often each true class was predicted as each class: `counts[true][predicted]`.
public struct ConfusionMatrix: Sendable {
    public let counts: [[Int]]

    public init(_ predictions: [Prediction], classes: Int) {
        var counts = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for p in predictions { counts[p.label][p.predicted] += 1 }
        self.counts = counts
    }

    /// A text table: one row per true class, one column per predicted class, and the class's accuracy.
    public var table: String {
        let width = max(5, String(counts.flatMap { $0 }.max() ?? 0).count + 1)
        func cell(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        var lines = ["true\\pred" + counts.indices.map { cell(String($0)) }.joined() + "  accuracy"]
        for (c, row) in counts.enumerated() {
            let total = row.reduce(0, +)
            let accuracy = total == 0 ? "-" : String(format: "%.2f%%", 100 * Double(row[c]) / Double(total))
            lines.append(String(c).padding(toLength: 9, withPad: " ", startingAt: 0) + row.map { cell(String($0)) }.joined() + "  " + accuracy)
        }
        return lines.joined(separator: "\n")
    }
}
