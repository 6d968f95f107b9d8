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

    enum CodingKeys: String, CodingKey {
        case model, device, parameters, epoch, epochs, seed, threads
        case batchSize = "batch_size", learningRate = "learning_rate", warmupSeconds = "warmup_seconds"
        case epochSeconds = "epoch_seconds", imagesPerSecond = "images_per_second", trainLoss = "train_loss"
        case trainAccuracy = "train_accuracy", evalSeconds = "eval_seconds", testLoss = "test_loss"
        case testCorrect = "test_correct", testCount = "test_count", testAccuracy = "test_accuracy"
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
