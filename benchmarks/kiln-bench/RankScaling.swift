import Foundation
import Kiln

/// `kiln-bench --ranks N`: the same epochs trained by one process with all the threads and by N ranks
/// under `mpirun` sharing them (data-parallel, `kiln train` under MPI), each from its run report: step
/// time, the all-reduce's share of it, and images/s. On one machine this shows what the all-reduce and
/// the smaller per-rank batches cost; across machines it is the scaling.
struct RankScaling {
    let ranks: Int, threads: Int, batchSize: Int, epochs: Int, trainLimit: Int?, device: String

    struct Row { let model: String, ranks: Int, threadsPerRank: Int, report: EpochReport, steps: Int }

    func run(models: [String]) throws -> String {
        guard let mpirun = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").map({ "\($0)/mpirun" })
            .first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw KilnError("--ranks needs Open MPI's mpirun on the PATH (Debian: openmpi-bin)")
        }
        let kiln = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("kiln").path
        guard FileManager.default.isExecutableFile(atPath: kiln) else { throw KilnError("--ranks runs the kiln binary beside kiln-bench; \(kiln) is missing") }
        var rows: [Row] = []
        for model in models {
            for (n, launcher) in [(1, [String]()), (ranks, [mpirun, "-np", "\(ranks)"] + (getuid() == 0 ? ["--allow-run-as-root"] : [])
                                                       + (ranks > System.coreCount ? ["--oversubscribe"] : []))] {
                FileHandle.standardError.write(Data("\(model): \(n) rank\(n == 1 ? "" : "s") × \(max(1, threads / n)) threads…\n".utf8))
                let report = try train(model, launcher: launcher, kiln: kiln, threads: max(1, threads / n))
                // The epoch's images, from its own figures.
                let count = Int((report.imagesPerSecond * report.epochSeconds).rounded())
                rows.append(Row(model: model, ranks: n, threadsPerRank: max(1, threads / n), report: report,
                                steps: (count + batchSize - 1) / batchSize))
            }
        }
        return table(rows)
    }

    /// The median epoch of one run (the run report of its epochs).
    private func train(_ model: String, launcher: [String], kiln: String, threads: Int) throws -> EpochReport {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-bench-ranks-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher.first ?? kiln)
        process.arguments = Array(launcher.dropFirst()) + (launcher.isEmpty ? [] : [kiln])
            + ["train", "--model", model, "--device", device, "--threads", "\(threads)", "--batch-size", "\(batchSize)",
               "--epochs", "\(epochs)", "--no-augment", "--log", log, "--data", Dataset.bundledFolder()]
            + (trainLimit.map { ["--train-limit", "\($0)"] } ?? [])
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw KilnError("\(model) on \(launcher.isEmpty ? "1 rank" : launcher.joined(separator: " ")) failed (exit \(process.terminationStatus))") }
        let reports = try EpochReport.read(log).sorted { $0.epochSeconds < $1.epochSeconds }
        return reports[reports.count / 2]
    }

    private func table(_ rows: [Row]) -> String {
        func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
        var lines = ["## Data-parallel ranks (`kiln-bench --ranks \(ranks)`, \(device), global batch \(batchSize), median of \(epochs) epochs)", "",
                     "| model | ranks × threads | epoch s | step ms | all-reduce ms per step | all-reduce share | images/s | vs 1 rank |",
                     "|---|---|---|---|---|---|---|---|"]
        for r in rows {
            let single = rows.first { $0.model == r.model && $0.ranks == 1 }
            let reduce = (r.report.allReduceSeconds ?? 0) / Double(r.steps)
            lines.append("| \(r.model) | \(r.ranks) × \(r.threadsPerRank) | \(f(r.report.epochSeconds)) | \(f(1000 * r.report.epochSeconds / Double(r.steps), 3)) "
                         + "| \(f(1000 * reduce, 3)) | \(f(100 * (r.report.allReduceSeconds ?? 0) / r.report.epochSeconds, 1))% "
                         + "| \(f(r.report.imagesPerSecond, 0)) | \(single.map { f(r.report.imagesPerSecond / $0.report.imagesPerSecond) + "x" } ?? "—") |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
