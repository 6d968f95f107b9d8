import Foundation

/// One epoch's record: what `kiln train --log` writes, one JSON object per line, and what the
/// benchmark writes too, so two devices or two runs compare field by field.
public struct EpochReport: Codable, Equatable, Sendable {
    public var model: String
    public var device: String
    public var parameters: Int
    public var epoch: Int
    public var epochs: Int
    public var batchSize: Int
    /// The CPU device's threads; absent for other devices.
    public var threads: Int?
    public var seed: UInt64
    public var learningRate: Float
    /// Device set-up before the first step: model build and dataset upload (and kernel builds on OpenCL).
    public var warmupSeconds: Double
    public var epochSeconds: Double
    public var imagesPerSecond: Double
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var evalSeconds: Double
    public var testLoss: Double
    public var testCorrect: Int
    public var testCount: Int
    public var testAccuracy: Double
    /// A data-parallel run's ranks, and the epoch's seconds in all-reduces (absent for one process).
    public var ranks: Int?
    public var allReduceSeconds: Double?
    /// How training images were augmented (`Augmentation.summary`, or "off"); absent where not recorded.
    public var augmentation: String?
    /// With `--ema`: its decay, and the trained weights' test loss and correct count; the test figures
    /// above are then the average's (absent without one).
    public var ema: Float?
    public var trainedTestLoss: Double?
    public var trainedTestCorrect: Int?

    enum CodingKeys: String, CodingKey {
        case model, device, parameters, epoch, epochs, seed, threads
        case batchSize = "batch_size", learningRate = "learning_rate", warmupSeconds = "warmup_seconds"
        case epochSeconds = "epoch_seconds", imagesPerSecond = "images_per_second", trainLoss = "train_loss"
        case trainAccuracy = "train_accuracy", evalSeconds = "eval_seconds", testLoss = "test_loss"
        case testCorrect = "test_correct", testCount = "test_count", testAccuracy = "test_accuracy"
        case ranks, allReduceSeconds = "allreduce_seconds", augmentation
        case ema, trainedTestLoss = "trained_test_loss", trainedTestCorrect = "trained_test_correct"
    }

    /// The fields that may be non-finite (a diverged loss): written as `null` (JSON has no NaN or
    /// infinity), read back as NaN.
    private static var measures: [(CodingKeys, WritableKeyPath<EpochReport, Double>)] { [
        (.warmupSeconds, \.warmupSeconds), (.epochSeconds, \.epochSeconds), (.imagesPerSecond, \.imagesPerSecond),
        (.trainLoss, \.trainLoss), (.trainAccuracy, \.trainAccuracy), (.evalSeconds, \.evalSeconds),
        (.testLoss, \.testLoss), (.testAccuracy, \.testAccuracy),
    ] }

    public init(model: String, device: String, parameters: Int, epoch: Int, epochs: Int, batchSize: Int, threads: Int?,
                seed: UInt64, learningRate: Float, warmupSeconds: Double, epochSeconds: Double, imagesPerSecond: Double,
                trainLoss: Double, trainAccuracy: Double, evalSeconds: Double, testLoss: Double, testCorrect: Int,
                testCount: Int, testAccuracy: Double) {
        (self.model, self.device, self.parameters, self.epoch, self.epochs, self.batchSize, self.threads, self.seed) =
            (model, device, parameters, epoch, epochs, batchSize, threads, seed)
        (self.learningRate, self.warmupSeconds, self.epochSeconds, self.imagesPerSecond, self.trainLoss) =
            (learningRate, warmupSeconds, epochSeconds, imagesPerSecond, trainLoss)
        (self.trainAccuracy, self.evalSeconds, self.testLoss, self.testCorrect, self.testCount, self.testAccuracy) =
            (trainAccuracy, evalSeconds, testLoss, testCorrect, testCount, testAccuracy)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(model: try c.decode(String.self, forKey: .model), device: try c.decode(String.self, forKey: .device),
                  parameters: try c.decode(Int.self, forKey: .parameters), epoch: try c.decode(Int.self, forKey: .epoch),
                  epochs: try c.decode(Int.self, forKey: .epochs), batchSize: try c.decode(Int.self, forKey: .batchSize),
                  threads: try c.decodeIfPresent(Int.self, forKey: .threads), seed: try c.decode(UInt64.self, forKey: .seed),
                  learningRate: try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? .nan, warmupSeconds: 0, epochSeconds: 0,
                  imagesPerSecond: 0, trainLoss: 0, trainAccuracy: 0, evalSeconds: 0, testLoss: 0,
                  testCorrect: try c.decode(Int.self, forKey: .testCorrect), testCount: try c.decode(Int.self, forKey: .testCount),
                  testAccuracy: 0)
        for (key, path) in Self.measures { self[keyPath: path] = try c.decodeIfPresent(Double.self, forKey: key) ?? .nan }
        ranks = try c.decodeIfPresent(Int.self, forKey: .ranks)
        allReduceSeconds = try c.decodeIfPresent(Double.self, forKey: .allReduceSeconds)
        augmentation = try c.decodeIfPresent(String.self, forKey: .augmentation)
        ema = try c.decodeIfPresent(Float.self, forKey: .ema)
        trainedTestLoss = try c.decodeIfPresent(Double.self, forKey: .trainedTestLoss)
        trainedTestCorrect = try c.decodeIfPresent(Int.self, forKey: .trainedTestCorrect)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(device, forKey: .device)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encodeIfPresent(threads, forKey: .threads)
        try c.encode(seed, forKey: .seed)
        try c.encode(learningRate.isFinite ? learningRate : nil, forKey: .learningRate)
        try c.encode(testCorrect, forKey: .testCorrect)
        try c.encode(testCount, forKey: .testCount)
        for (key, path) in Self.measures {
            let value = self[keyPath: path]
            try c.encode(value.isFinite ? value : nil, forKey: key)
        }
        try c.encodeIfPresent(ranks, forKey: .ranks)
        try c.encodeIfPresent(allReduceSeconds, forKey: .allReduceSeconds)
        try c.encodeIfPresent(augmentation, forKey: .augmentation)
        try c.encodeIfPresent(ema, forKey: .ema)
        try c.encodeIfPresent(trainedTestLoss, forKey: .trainedTestLoss)
        try c.encodeIfPresent(trainedTestCorrect, forKey: .trainedTestCorrect)
    }

    /// `Test set: Average loss: 0.0190, Accuracy: 9939/10000 (99.39%)`
    public var testLine: String { Self.testLine(loss: testLoss, correct: testCorrect, count: testCount) }

    public static func testLine(loss: Double, correct: Int, count: Int) -> String {
        String(format: "Test set: Average loss: %.4f, Accuracy: %d/%d (%.2f%%)", loss, correct, count,
               100 * Double(correct) / Double(max(count, 1)))
    }

    public func jsonLine() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

extension EpochReport {
    /// A run report as `--log` writes it: one JSON object per line.
    public static func read(_ path: String) throws -> [EpochReport] {
        guard let data = FileManager.default.contents(atPath: path) else { throw KilnError("\(path): cannot read the run report") }
        guard let text = String(data: data, encoding: .utf8) else { throw KilnError("\(path): is not a run report (not UTF-8 text)") }
        return try text.split(separator: "\n").enumerated().map { i, line in
            do { return try JSONDecoder().decode(EpochReport.self, from: Data(line.utf8)) } catch {
                throw KilnError("\(path): line \(i + 1) is not a run report (\(error.localizedDescription))")
            }
        }
    }
}
