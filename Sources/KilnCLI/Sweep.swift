import ArgumentParser
import Foundation
import Kiln
import KilnReports

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train every combination of models, learning rates, batch sizes and seeds, one after another.",
        discussion: """
            Writes each run's report (NAME.jsonl, as `kiln train --log`), summary.md (one row per run: the last \
            epochs' test accuracy, the best, the final loss, seconds per epoch) and curves.svg (test accuracy and \
            loss per epoch, one line per run) into --out. A run that diverges or fails is marked in the table and \
            the sweep goes on; when every run failed, the sweep exits non-zero. --out must not hold an earlier \
            sweep's results (run reports, summary.md, curves.svg): `kiln report DIR` would mix those runs with the \
            new ones, so a second sweep into the same folder is refused; name a new folder, or remove the old \
            results first. Other training options take `kiln train`'s defaults.
            """)

    @Option(help: "Models, comma-separated: presets or JSON spec files.")
    var model = Presets.defaultName
    @Option(help: "Learning rates, comma-separated (the peak for onecycle), e.g. 0.1,0.2,0.5,0.8,1.0,2.0 (default: each model's, as kiln train).")
    var lr: String?
    @Option(help: "Batch sizes, comma-separated.")
    var batchSize = "128"
    @Option(help: "Seeds, comma-separated.")
    var seeds = "1"
    @Option(help: "Epochs per run.")
    var epochs = 15
    @OptionGroup var criterionOptions: CriterionOptions
    @Option(help: "Train on the first N training images only.")
    var trainLimit: Int?
    @Option(help: "Folder for the reports, the summary and the curves (created).")
    var out = "sweep"
    @OptionGroup var deviceOptions: DeviceOptions
    @OptionGroup var dataOptions: DataOptions

    /// A comma-separated list of values `parse` accepts, or a one-line error naming the flag and the item.
    /// An empty item (`0.1,,0.2`, a trailing comma) is refused, not skipped: it is likely a value left out.
    static func list<T>(_ text: String, _ flag: String, _ parse: (String) -> T?) throws -> [T] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return try items.enumerated().map { i, item in
            guard let value = item.isEmpty ? nil : parse(item) else {
                throw ValidationError("\(flag) \(text): expected a comma-separated list of valid values ("
                                      + (item.isEmpty ? "item \(i + 1) is empty" : "\"\(item)\" is not one") + ")")
            }
            return value
        }
    }

    /// --lr's rates, else the model's recipe's, as `kiln train` takes it.
    func learningRates(_ spec: ModelSpec) throws -> [Float] {
        guard let lr else { return [Presets.learningRates[spec.name] ?? TrainingOptions().learningRate] }
        return try Self.rates(lr)
    }

    static func rates(_ text: String) throws -> [Float] {
        try list(text, "--lr") { Float($0).flatMap { $0 > 0 && $0.isFinite ? $0 : nil } }
    }
    var batchSizes: [Int] { get throws { try Self.list(batchSize, "--batch-size") { Int($0).flatMap { (1...1 << 20).contains($0) ? $0 : nil } } } }
    var seedList: [UInt64] { get throws { try Self.list(seeds, "--seeds") { UInt64($0) } } }
    var models: [String] { get throws { try Self.list(model, "--model") { $0 } } }

    func validate() throws {
        if let lr { _ = try Self.rates(lr) }
        _ = try (batchSizes, seedList, models)
        guard (1...1_000_000).contains(epochs) else { throw ValidationError("--epochs must be between 1 and 1,000,000") }
        // An unset --last is clamped to --epochs (`criterion`); one given must fit.
        if let last = criterionOptions.last, last > epochs {
            throw ValidationError("--last \(last) must be between 1 and --epochs (\(epochs))")
        }
        if let trainLimit, trainLimit < 1 { throw ValidationError("--train-limit must be at least 1") }
    }

    /// One setting of the sweep and what became of it.
    struct Run {
        let name: String, model: String, parameters: Int, learningRate: Float, batchSize: Int, seed: UInt64
        var reports: [EpochReport] = []
        var problem: String?
    }

    /// A run's name as a file name inside --out: only letters, digits, `-`, `_`, `+` and inner dots (a
    /// spec's name could hold `../`), and unique in the sweep (two specs may share a name).
    static func fileName(_ name: String, taken: inout Set<String>) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+.")
        var safe = String(name.map { allowed.contains($0) ? $0 : "_" }.drop { $0 == "." })
        if safe.isEmpty { safe = "run" }
        var unique = safe, k = 1
        while !taken.insert(unique).inserted { k += 1; unique = "\(safe)-\(k)" }
        return unique
    }

    func run() throws {
        let specs = try models.map { try ModelSpec.named($0) }
        try Self.checkNoEarlierResults(out)
        try createFolder(out, what: "the --out folder")
        try checkWritable(out + "/summary.md", flag: "--out")
        let device = try deviceOptions.makeDevice()
        let data = try dataOptions.load(trainLimit: trainLimit)
        var runs: [Run] = [], taken: Set<String> = []
        for spec in specs {
            for batch in try batchSizes {
                for rate in try learningRates(spec) {
                    for seed in try seedList {
                        let name = Self.fileName("\(spec.name)-lr\(rate)-b\(batch)-s\(seed)", taken: &taken)
                        var run = Run(name: name, model: spec.name, parameters: try spec.parameterCount(), learningRate: rate,
                                      batchSize: batch, seed: seed)
                        var options = TrainingOptions()
                        (options.epochs, options.learningRate, options.batchSize, options.seed) = (epochs, rate, batch, seed)
                        (options.trainLimit, options.normalization) = (trainLimit, data.normalization)
                        options.augmentation = Augmentation.standard(channels: data.train.shape.channels, size: data.train.shape.size)
                        options.dataFolder = URL(fileURLWithPath: data.folder).standardizedFileURL.path
                        print("\(name): training \(epochs) epochs")
                        fflush(nil)
                        do {
                            let trainer = try Trainer(model: Model(spec: spec, device: device, seed: seed), data: data, options: options)
                            run.reports = try trainer.run(callbacks: [JSONLogWriter(path: "\(out)/\(name).jsonl", keepEpochs: 0), EpochLine()])
                        } catch let error as KilnError {
                            run.problem = error.message
                            print("\(name): \(error.message)")
                        }
                        runs.append(run)
                    }
                }
            }
        }
        let table = summary(runs)
        try writeAtomically(Data(table.utf8), to: "\(out)/summary.md", what: "the sweep summary")
        try writeAtomically(Data(curves(runs).utf8), to: "\(out)/curves.svg", what: "the sweep curves")
        print(table, terminator: "")
        print("Reports, summary.md and curves.svg are in \(out)")
        fflush(nil)  // the table before any error line, in a log file too
        let failed = runs.filter { $0.problem != nil }.count
        let failures = "\(failed) of \(runs.count) runs failed or diverged (see \(out)/summary.md)"
        if failed == runs.count { throw KilnError(failures) }
        if failed > 0 { print(failures) }
    }

    /// Refuses an --out holding results of an earlier sweep (or any run reports): `kiln report DIR` reads
    /// every .jsonl in it, so runs of the two sweeps would mix, and the summary would describe only the new.
    static func checkNoEarlierResults(_ out: String) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        let earlier = names.filter { $0.hasSuffix(".jsonl") || $0 == "summary.md" || $0 == "curves.svg" }.sorted()
        guard earlier.isEmpty else {
            throw KilnError("--out \(out) already holds results (\(earlier.prefix(3).joined(separator: ", "))\(earlier.count > 3 ? ", …" : "")): "
                            + "kiln report would mix them with this sweep's; name a new folder, or remove them first")
        }
    }

    /// The summary table, in Markdown.
    func summary(_ runs: [Run]) -> String {
        let criterion = criterionOptions.criterion(epochs: epochs), last = criterion.last
        var lines = ["| run | parameters | lr | batch | seed | last \(last) test acc. (%) | ≥ \(criterion.target)% in each | best (epoch) | final test loss | s/epoch |",
                     "|---|---|---|---|---|---|---|---|---|---|"]
        for r in runs {
            let tail = r.reports.suffix(last).map(\.testAccuracy)
            let best = r.reports.max { $0.testAccuracy < $1.testAccuracy }
            let status: String
            if let problem = r.problem { status = problem.contains("diverged") ? "diverged" : "failed" } else {
                status = criterion.isMet(by: r.reports) ? "yes" : "no"
            }
            let seconds = r.reports.map(\.epochSeconds).sorted()
            lines.append("| \(r.name) | \(r.parameters) | \(r.learningRate) | \(r.batchSize) | \(r.seed) | "
                         + (tail.isEmpty ? "—" : tail.map { String(format: "%.2f", $0) }.joined(separator: " / ")) + " | \(status) | "
                         + (best.map { String(format: "%.2f (%d)", $0.testAccuracy, $0.epoch) } ?? "—") + " | "
                         + (r.reports.last.map { String(format: "%.4f", $0.testLoss) } ?? "—") + " | "
                         + (seconds.isEmpty ? "—" : String(format: "%.1f", seconds[seconds.count / 2])) + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Test accuracy and loss per epoch, one line per run (a failed run has none).
    func curves(_ runs: [Run]) -> String {
        func series(_ value: @escaping (EpochReport) -> Double) -> [LineChart.Series] {
            runs.map { r in LineChart.Series(name: r.name + (r.problem == nil ? "" : " (diverged or failed)"),
                                             points: r.reports.map { (Double($0.epoch), value($0)) }) }
        }
        var accuracy = LineChart(title: "Test accuracy (%)", xLabel: "epoch", yLabel: "accuracy", series: series(\.testAccuracy))
        var loss = LineChart(title: "Test loss", xLabel: "epoch", yLabel: "NLL", series: series(\.testLoss))
        let reports = runs.flatMap(\.reports)
        accuracy.yRange = LineChart.laterEpochs(reports, ceiling: 100) { [$0.testAccuracy] }
        loss.yRange = LineChart.laterEpochs(reports, floor: 0) { [$0.testLoss] }
        return LineChart.page([accuracy, loss],
                              heading: "kiln sweep: \(runs.count) runs of \(epochs) epochs")
    }
}

/// One line per epoch: the sweep's progress without a progress bar.
final class EpochLine: TrainingCallback {
    func epochEnded(_ r: EpochReport, trainer: Trainer) throws {
        print(String(format: "  epoch %d/%d: train loss %.4f | test loss %.4f, accuracy %.2f%% | %.1f s", r.epoch, r.epochs,
                     r.trainLoss, r.testLoss, r.testAccuracy, r.epochSeconds))
        fflush(nil)
    }
}
