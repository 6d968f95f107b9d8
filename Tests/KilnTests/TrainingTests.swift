import Foundation
import Testing
@testable import Kiln

/// Training end to end on a subset of MNIST: an accuracy a broken trainer cannot reach, the same
/// numbers for the same seed, and a resumed run equal to an uninterrupted one.
@Suite(.serialized) struct TrainingTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let data = try! Dataset.load(folder: root.appendingPathComponent("Data/mnist").path, trainLimit: 12_000)

    func trainer(epochs: Int, seed: UInt64 = 3) throws -> Trainer {
        var options = TrainingOptions()
        options.epochs = epochs
        options.seed = seed
        options.learningRate = 0.1
        let model = try Sequential(spec: Presets.all["lean8k"]!, device: CPUDevice(), seed: seed)
        return try Trainer(model: model, data: Self.data, options: options)
    }

    @Test func lean8kLearnsMNIST() throws {
        let reports = try trainer(epochs: 3).run()
        // Chance is 10%; a trainer with a wrong gradient anywhere stays far below this.
        #expect(reports.last!.testAccuracy > 97.5, "test accuracy \(reports.last!.testAccuracy)%")
    }

    @Test func sameSeedSameRunAndResumeMatches() throws {
        let straight = try trainer(epochs: 2)
        try straight.run()
        let again = try trainer(epochs: 2)
        _ = try again.trainEpoch(1)
        again.completedEpochs = 1
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).safetensors").path
        try Checkpoint.save(again, to: path)
        let resumed = try trainer(epochs: 2, seed: 3)
        let saved = try Checkpoint(path: path)
        try saved.load(into: resumed.model)
        try saved.load(into: resumed.optimizer, of: resumed.model)
        resumed.completedEpochs = saved.state.completedEpochs
        try resumed.run()
        for ((name, a), (_, b)) in zip(straight.model.namedTensors, resumed.model.namedTensors) {
            #expect(try a.count == b.count && straight.model.device.readFloats(a) == resumed.model.device.readFloats(b),
                    "\(name) differs between an uninterrupted and a resumed run")
        }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A diverging run stops with an error naming the epoch, before any callback sees a non-finite
    /// report: the last checkpoint and log are never overwritten with NaN.
    @Test func divergenceStopsTheRunBeforeTheCallbacks() throws {
        final class Recorder: TrainingCallback {
            var epochs: [Int] = []
            func epochEnded(_ report: EpochReport, trainer: Trainer) throws { epochs.append(report.epoch) }
        }
        var options = TrainingOptions()
        options.epochs = 2
        options.learningRate = 1e9
        options.schedule = .none
        let data = try Dataset.load(folder: Self.root.appendingPathComponent("Data/mnist").path, trainLimit: 512, testLimit: 100)
        let trainer = try Trainer(model: Sequential(spec: Presets.all["lean8k"]!, device: CPUDevice(), seed: 1), data: data,
                                  options: options)
        let recorder = Recorder()
        #expect { try trainer.run(callbacks: [recorder]) } throws: { "\($0)".contains("epoch 1:") && "\($0)".contains("diverged") }
        #expect(recorder.epochs.isEmpty)
    }
}
