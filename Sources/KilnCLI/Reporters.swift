import Foundation
import Kiln

/// Prints each epoch; on a terminal also a progress bar that refreshes during the epoch.
final class ConsoleReporter: TrainingCallback {
    /// Not under mpirun: it gives its ranks a terminal even when its own output goes to a file, which
    /// would then fill with progress lines.
    private let interactive = isatty(STDOUT_FILENO) != 0 && ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] == nil
    private var lastDraw = Date.distantPast

    func batchEnded(epoch: Int, batch: Int, of batches: Int, trainer: Trainer) throws {
        guard interactive, batch == batches || Date().timeIntervalSince(lastDraw) > 0.2 else { return }
        lastDraw = Date()
        let (loss, correct) = try trainer.readTotals()
        // Data-parallel, the totals are this rank's shard: about 1/ranks of the images.
        let seen = Double(min(batch * trainer.options.batchSize, trainer.trainCount)) / Double(trainer.parallel?.size ?? 1)
        let width = 30, done = width * batch / batches
        let bar = String(repeating: "=", count: done) + (done < width ? ">" : "") + String(repeating: " ", count: max(0, width - done - 1))
        print(String(format: "\rEpoch %d/%d [%@] %d/%d  loss %.4f  acc %.2f%%", epoch, trainer.options.epochs, bar, batch,
                     batches, loss / seen, 100 * correct / seen), terminator: "")
        fflush(nil)
    }

    func epochEnded(_ r: EpochReport, trainer: Trainer) throws {
        if interactive { print("\r\u{1B}[K", terminator: "") }
        print(String(format: "Epoch %d/%d: train loss %.4f, accuracy %.2f%% | %.2f s, %.0f images/s, lr %.5f",
                     r.epoch, r.epochs, r.trainLoss, r.trainAccuracy, r.epochSeconds, r.imagesPerSecond, r.learningRate))
        print(r.testLine)
        if let ema = r.ema, let loss = r.trainedTestLoss, let correct = r.trainedTestCorrect {
            print("  (the line above is the EMA of the weights, decay \(ema); the trained weights: "
                  + EpochReport.testLine(loss: loss, correct: correct, count: r.testCount).dropFirst("Test set: ".count) + ")")
        }
        fflush(nil)
    }
}

/// Keeps the `--log` file complete after every epoch: one JSON object per line, rewritten atomically.
final class JSONLogWriter: TrainingCallback {
    private let path: String
    private var lines: [String]

    /// A resumed run keeps the existing lines of the epochs it does not redo.
    init(path: String, keepEpochs: Int) throws {
        self.path = path
        let existing = keepEpochs > 0 ? (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" : ""
        lines = existing.split(separator: "\n").map(String.init).prefix(keepEpochs).map { $0 }
    }

    func epochEnded(_ report: EpochReport, trainer: Trainer) throws {
        lines.append(try report.jsonLine())
        try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: path, what: "the log")
    }
}

/// Keeps the `--step-log` file complete after every epoch: one JSON object per step, rewritten atomically.
final class StepLogWriter: TrainingCallback {
    private let path: String
    private var lines: [String]
    private let encoder = JSONEncoder()

    /// A resumed run keeps the existing lines of the epochs it does not redo.
    init(path: String, keepEpochs: Int) throws {
        self.path = path
        encoder.outputFormatting = [.sortedKeys]
        let existing = keepEpochs > 0 ? (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" : ""
        lines = existing.split(separator: "\n").map(String.init).filter { line in
            let epoch = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["epoch"] as? Int
            return epoch.map { $0 <= keepEpochs } ?? false
        }
    }

    func batchEnded(epoch: Int, batch: Int, of batches: Int, trainer: Trainer) throws {
        guard let step = trainer.lastStep else { return }
        lines.append(String(decoding: try encoder.encode(step), as: UTF8.self))
    }

    func epochEnded(_ report: EpochReport, trainer: Trainer) throws {
        try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: path, what: "the step log")
    }
}

/// Saves a checkpoint after every epoch, so an interrupted run loses at most one epoch.
final class CheckpointWriter: TrainingCallback {
    private let path: String
    init(path: String) { self.path = path }

    func epochEnded(_ report: EpochReport, trainer: Trainer) throws {
        try Checkpoint.save(trainer, to: path)
    }
}

/// Ctrl-C (SIGINT) or SIGTERM stops training at the end of the current batch, so a checkpoint or log
/// being written is finished first; a second signal ends the process at once.
final class StopOnSignal: TrainingCallback, @unchecked Sendable {
    /// Thrown out of the training loop by the first signal.
    struct Stopped: Error { let signal: Int32 }

    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var caught: Int32?

    init() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [unowned self] in
                let again = lock.withLock {
                    defer { caught = caught ?? number }
                    return caught != nil
                }
                if again { exit(128 + number) }
            }
            source.resume()
            sources.append(source)
        }
    }

    func batchEnded(epoch: Int, batch: Int, of batches: Int, trainer: Trainer) throws {
        if let number = lock.withLock({ caught }) { throw Stopped(signal: number) }
    }
}
