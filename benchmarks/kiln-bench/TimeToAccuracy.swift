import Foundation
import Kiln
import KilnReports

/// Time to accuracy, MLPerf Training's measure: each seed's run trains the model with its recipe (the
/// defaults of `kiln train --model NAME`) until its test accuracy first reaches the target or its epochs
/// run out; the time is the training and evaluation seconds until then, warm-up apart
/// (`AccuracyCriterion.timeToTarget`). The median is over the seeds, a run that never reached the target
/// counting as the slowest: with half or more of them short, there is no median.
struct TimeToAccuracy: Encodable {
    var model: String
    var device: String
    var target: Double
    var seeds: [UInt64]
    /// Per seed: seconds and epoch at which the target was first reached (nil: never).
    var seconds: [Double?]
    var epochs: [Int?]
    var medianSeconds: Double?
    /// Each seed's run report, as `kiln train --log` writes it (so `kiln report` shows them).
    var runs: [[EpochReport]]

    enum CodingKeys: String, CodingKey {
        case model, device, target, seeds, seconds, epochs, medianSeconds = "median_seconds"
    }

    static func measure(_ spec: ModelSpec, on device: Device, data: Dataset, target: Double, seeds: [UInt64],
                        epochs: Int?, batchSize: Int) throws -> TimeToAccuracy {
        let criterion = AccuracyCriterion(target: target, last: 1)
        var runs: [[EpochReport]] = []
        for seed in seeds {
            FileHandle.standardError.write("\(spec.name) on \(device.summary), seed \(seed), to \(target)%…\n".data(using: .utf8)!)
            var options = TrainingOptions()
            options.learningRate = Presets.learningRates[spec.name] ?? options.learningRate
            options.seed = seed
            if let epochs { options.epochs = epochs }
            options.batchSize = batchSize
            options.normalization = data.normalization
            options.augmentation = Augmentation.standard(channels: data.train.shape.channels, size: data.train.shape.size)
            let trainer = try Trainer(model: try Model(spec: spec, device: device, seed: seed), data: data, options: options)
            runs.append(try trainer.run(until: target))
        }
        let hits = runs.map { criterion.timeToTarget($0) }
        // Never reaching the target sorts after every time.
        let middle = median(hits.map { $0?.seconds ?? .infinity })
        return TimeToAccuracy(model: spec.name, device: device.summary, target: target, seeds: seeds, seconds: hits.map { $0?.seconds },
                              epochs: hits.map { $0?.epoch }, medianSeconds: middle.isFinite ? middle : nil, runs: runs)
    }

    static func markdown(_ results: [TimeToAccuracy], machine: String) -> String {
        var lines = ["# kiln-bench: time to accuracy", "", machine, "",
                     "Each seed trains the model's recipe until its test accuracy first reaches the target; the time is "
                     + "training and evaluation until then, warm-up apart (MLPerf Training's measure). A run that never "
                     + "reaches it counts as the slowest.", "",
                     "| model | device | target % | seeds | median s | each seed: s (epoch) |", "|---|---|---|---|---|---|"]
        for r in results {
            let each = zip(r.seconds, r.epochs).map { s, e in s.map { String(format: "%.1f (%d)", $0, e!) } ?? "not reached" }
            lines.append("| \(r.model) | \(r.device) | \(LineChart.label(r.target)) | \(r.seeds.map(String.init).joined(separator: ",")) "
                         + "| \(r.medianSeconds.map { String(format: "%.1f", $0) } ?? "—") | \(each.joined(separator: ", ")) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
