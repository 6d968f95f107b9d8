import Foundation

/// What a model says about one test image: its most likely class and that class's probability.
public struct Prediction: Codable, Equatable, Sendable {
    public let index: Int
    public let label: Int
    public let predicted: Int
    public let confidence: Double
}

extension Sequential {
    /// Class probabilities of `images` [C, N, H, W] in inference mode, per image: [N][classes]. Reads them
    /// back from the device (for evaluation reports and prediction, not for training).
    public func probabilities(_ images: Tensor) throws -> [[Double]] {
        let logProbs = try forward(images, context: StepContext(mode: .inference))
        let values = try device.readFloats(logProbs), (k, n) = (logProbs.channels, logProbs.rowLength)
        return (0..<n).map { j in (0..<k).map { exp(Double(values[$0 * n + j])) } }
    }
}

/// Every test image's prediction, in test-set order.
public func predictions(_ model: Sequential, on data: Dataset, batchSize: Int = 1000) throws -> [Prediction] {
    try Trainer.check(model.spec, against: data, splits: [("test", data.test)])
    let split = try DeviceSplit(data.test, on: model.device), images = TensorSlot(), labels = TensorSlot()
    var result: [Prediction] = []
    for start in stride(from: 0, to: split.count, by: batchSize) {
        let (x, y) = try split.batch(start: start, count: min(batchSize, split.count - start), into: images, labels, on: model.device)
        let truth = try model.device.readInts(y)
        for (j, p) in try model.probabilities(x).enumerated() {
            let best = p.indices.max { p[$0] < p[$1] }!
            result.append(Prediction(index: start + j, label: Int(truth[j]), predicted: best, confidence: p[best]))
        }
    }
    return result
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
