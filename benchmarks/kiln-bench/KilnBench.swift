import ArgumentParser
import Foundation
import Kiln
import KilnReports

@main
struct KilnBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln-bench",
        abstract: "Time training, evaluation and each layer of models on every device, against each device's sgemm peak.",
        discussion: """
            For each model and device: warm-up (kernel compilation) apart, the median training time of --repeats \
            epochs (or of --steps steps), images/s, evaluation time, GFLOP/s (training = 3x the forward MACs), test \
            accuracy, peak host memory and device memory, a per-layer forward/backward breakdown, the device's own \
            sgemm speed at 1024^3 and at the model's convolution shapes, and on OpenCL each CLBlast call of a step with \
            CLBlast's own parameters and with `kiln tune`'s. Prints a markdown table; --out DIR also \
            writes results.jsonl (the run-report schema of `kiln train --log`), results.md and chart.svg.
            """)

    @Option(help: "Comma-separated presets or JSON spec files.")
    var models = "lean8k,strided12k,ref18k,resnet20"
    @Option(help: "Comma-separated devices (cpu, opencl:P.D); default: the CPU and every OpenCL device.")
    var devices: String?
    @Option(help: "Training steps per timed run (default: a full epoch).")
    var steps: Int?
    @Option(help: "Timed runs; the median is reported.")
    var repeats = 3
    @Option(help: "Images per step.")
    var batchSize = 128
    @Option(help: "Test images evaluated after each run (default: all).")
    var testLimit: Int?
    @Option(help: "CPU threads (default: all cores).")
    var threads: Int?
    @Option(help: "How OpenCL launches are cut: auto (by the device's kind), gpu or cpu (gpu shows a GPU's launches on a CPU device).")
    var launchShape = "auto"
    @Option(help: "Write results.jsonl, results.md, chart.svg and report.html (the tables and chart as one page) into this folder.")
    var out: String?
    @Option(help: "A JSON-lines file from benchmarks/pytorch/mnist_epoch.py: print Kiln's CPU epochs against it.")
    var compare: String?
    @Flag(help: "Record every kernel launch (Kiln's and CLBlast's) of one training step per model on each OpenCL device, with launches cut for a GPU.")
    var profile = false
    @Option(help: "With --profile: a launch with fewer work-groups than this is small (264: two per SM of a 132-SM GPU).")
    var minGroups = 264
    @Option(help: "Cache folder whose `kiln tune` results OpenCL devices use (default: as kiln's --cache-dir).")
    var cacheDir: String?
    @Flag(help: "A smoke run: 2 steps of 16 images, 1 repeat, 500 test images, 256³ peak GEMM; all models and devices.")
    var quick = false
    @Option(help: "Data for the models of its image shape (MNIST-format, NumPy or CIFAR-10 folder); models of another shape train on the bundled MNIST when theirs, else on synthetic images of their shape.")
    var data: String?
    @Option(help: ArgumentHelp("Instead: time to accuracy. Each of --seeds trains each model with its recipe until its test accuracy (%) first reaches this, or its epochs run out; reports the median seconds of training and evaluation, warm-up apart.", valueName: "PERCENT"))
    var toAccuracy: Double?
    @Option(help: "With --to-accuracy: the seeds, comma-separated.")
    var seeds = "1,2,3"
    @Option(help: "With --to-accuracy: the most epochs a run trains (default: the recipe's).")
    var epochs: Int?
    @Option(help: "Instead: train --repeats epochs of each model as 1 process with --threads and as N data-parallel ranks under mpirun sharing them (--devices: one device, default cpu), and compare step time, all-reduce time and images/s.")
    var ranks: Int?

    func validate() throws {
        guard repeats >= 1, batchSize >= 1 else { throw ValidationError("--repeats and --batch-size must be at least 1") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard minGroups >= 1 else { throw ValidationError("--min-groups must be at least 1") }
        if let ranks { guard ranks >= 2 else { throw ValidationError("--ranks must be at least 2") } }
        do { _ = try LaunchShape.request(launchShape) } catch { throw ValidationError("--launch-shape must be auto, gpu or cpu") }
        if ranks != nil, devices?.contains(",") == true { throw ValidationError("--ranks takes one device in --devices") }
        if let toAccuracy {
            guard toAccuracy > 0, toAccuracy <= 100 else { throw ValidationError("--to-accuracy must be a percentage in (0, 100]") }
            guard !seedList.isEmpty, seedList.count == seeds.split(separator: ",", omittingEmptySubsequences: false).count else {
                throw ValidationError("--seeds must be comma-separated whole numbers, e.g. 1,2,3")
            }
            guard ranks == nil, !quick, !profile else { throw ValidationError("--to-accuracy cannot be combined with --ranks, --quick or --profile") }
        }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1") }
    }

    var seedList: [UInt64] { seeds.split(separator: ",").compactMap { UInt64($0) } }

    /// The CPU device's threads.
    var cpuThreads: Int { threads ?? System.coreCount }

    func run() throws {
        if let ranks {
            let device = devices ?? "cpu"
            let table = try RankScaling(ranks: ranks, threads: cpuThreads, batchSize: self.batchSize, epochs: self.repeats,
                                        trainLimit: self.steps.map { $0 * self.batchSize }, device: device)
                .run(models: models.split(separator: ",").map(String.init))
            print(table, terminator: "")
            if let out {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                try writeAtomically(Data(table.utf8), to: "\(out)/ranks.md", what: "ranks.md")
            }
            return
        }
        let steps = quick ? 2 : self.steps, repeats = quick ? 1 : self.repeats, batchSize = quick ? 16 : self.batchSize
        let testLimit = quick ? 500 : self.testLimit
        let specs = try models.split(separator: ",").map { try ModelSpec.named(String($0)) }
        let requests = try deviceRequests()
        if let toAccuracy { return try timeToAccuracy(specs, on: requests, target: toAccuracy) }
        let bench = BenchData(folder: self.data, trainLimit: steps.map { $0 * batchSize }, testLimit: testLimit)
        let comparison = try compare.map(EpochReport.read)
        var results: [BenchResult] = [], profiles: [LaunchProfile] = []
        for request in requests {
            let opened = Date()
            let selection = try DeviceSelection.select(request, cache: CacheFolder.resolve(cacheDir), threads: cpuThreads,
                                                       shape: LaunchShape.request(launchShape))
            selection.notes.forEach { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) }
            let device = selection.device
            let openSeconds = Date().timeIntervalSince(opened)
            let peak = try sgemmGFLOPs(device, m: peakSize, n: peakSize, k: peakSize, repeats: quick ? 1 : 3)
            for spec in specs {
                let data = try bench.dataset(for: spec)
                FileHandle.standardError.write("\(spec.name) on \(device.summary)…\n".data(using: .utf8)!)
                results.append(try measure(spec, on: device, openSeconds: openSeconds, data: data, batchSize: batchSize,
                                           repeats: repeats, peak: peak))
                if profile, let device = device as? OpenCLDevice {
                    profiles.append(try profileStep(spec, on: device, data: data, batchSize: batchSize, minGroups: minGroups))
                }
            }
        }
        let markdown = Tables.markdown(results, machine: Machine.describe(cpuThreads: cpuThreads), peakSize: peakSize, comparison: comparison)
        let launches = profile ? Tables.launches(profiles) : ""
        print(markdown + launches)
        if let out { try write(results, profiles: profile ? profiles : nil, markdown: markdown, launches: launches, to: out) }
    }

    private var peakSize: Int { quick ? 256 : 1024 }

    /// `--to-accuracy`: each model's time to the target on each device, on real data only.
    private func timeToAccuracy(_ specs: [ModelSpec], on requests: [DeviceRequest], target: Double) throws {
        let bench = BenchData(folder: data, trainLimit: nil, testLimit: nil)
        var results: [TimeToAccuracy] = []
        for request in requests {
            let device = try DeviceSelection.select(request, cache: CacheFolder.resolve(cacheDir), threads: cpuThreads,
                                                    shape: LaunchShape.request(launchShape)).device
            for spec in specs {
                guard let data = try bench.real(for: spec) else {
                    throw KilnError("--to-accuracy needs real data of \(spec.name)'s shape \(spec.input) (synthetic images have no accuracy to reach): pass it with --data")
                }
                results.append(try TimeToAccuracy.measure(spec, on: device, data: data, target: target, seeds: seedList,
                                                          epochs: epochs, batchSize: batchSize))
            }
        }
        let markdown = TimeToAccuracy.markdown(results, machine: Machine.describe(cpuThreads: cpuThreads))
        print(markdown, terminator: "")
        guard let out else { return }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try writeAtomically(Data(markdown.utf8), to: "\(out)/to-accuracy.md", what: "to-accuracy.md")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let summary = try results.map { String(decoding: try encoder.encode($0), as: UTF8.self) }.joined(separator: "\n") + "\n"
        try writeAtomically(Data(summary.utf8), to: "\(out)/to-accuracy.jsonl", what: "to-accuracy.jsonl")
        // One run report per run, for `kiln report OUT/runs`.
        try FileManager.default.createDirectory(atPath: "\(out)/runs", withIntermediateDirectories: true)
        for r in results {
            for (seed, run) in zip(r.seeds, r.runs) {
                let name = "\(r.model)-\(r.device.prefix { $0 != " " })-seed\(seed).jsonl"
                let lines = try run.map { try $0.jsonLine() }.joined(separator: "\n") + "\n"
                try writeAtomically(Data(lines.utf8), to: "\(out)/runs/\(name)", what: name)
            }
        }
    }

    private func deviceRequests() throws -> [DeviceRequest] {
        if let devices { return try devices.split(separator: ",").map { try DeviceRequest(parsing: String($0)) } }
        let openCL = (try? OpenCLPlatforms.devices()) ?? []
        return [.cpu] + openCL.map { .opencl(platform: $0.platformIndex, device: $0.deviceIndex) }
    }

    private func measure(_ spec: ModelSpec, on device: Device, openSeconds: Double, data: Dataset, batchSize: Int,
                         repeats: Int, peak: Double) throws -> BenchResult {
        let gemmRepeats = quick ? 1 : 3
        let setupStart = Date()
        let model = try Model(spec: spec, device: device, seed: 1)
        var options = TrainingOptions()
        options.epochs = repeats
        options.batchSize = batchSize
        options.schedule = .none
        options.learningRate = 0.01
        options.augmentation = nil
        let trainer = try Trainer(model: model, data: data, options: options, setupStart: setupStart)
        let reports = try trainer.run()
        var report = reports.last!
        // The device's program build happens once per process: the first model on a device pays it.
        report.warmupSeconds += openSeconds
        report.epochSeconds = median(reports.map(\.epochSeconds))
        report.imagesPerSecond = Double(trainer.trainCount) / report.epochSeconds
        let macs = try ModelSummary(spec).totalMACs
        let gemms = try convolutionGEMMs(spec, batch: batchSize)
        // Time for one step's GEMMs at each shape's own speed (forward, backward-data, backward-weights alike).
        let gemmSeconds = try gemms.reduce(0.0) { total, g in
            let flops = 2 * Double(g.m) * Double(g.n) * Double(g.k)
            return total + flops / (try sgemmGFLOPs(device, m: g.m, n: g.n, k: g.k, repeats: gemmRepeats) * 1e9)
        }
        let stepFLOPs = 2 * Double(macs) * Double(batchSize)
        let result = BenchResult(
            report: report, epochSecondsRuns: reports.map(\.epochSeconds), steps: trainer.schedule.stepsPerEpoch,
            trainGFLOPs: 3 * 2 * Double(macs) * report.imagesPerSecond / 1e9, sgemmPeakGFLOPs: peak,
            sgemmConvShapesGFLOPs: stepFLOPs / gemmSeconds / 1e9, peakHostMB: peakHostMB(),
            deviceMB: device.allocatedBytes.map { Double($0) / 1_048_576 },
            layers: try layerTimes(spec, on: device, train: trainer.trainSplit, batch: min(batchSize, trainer.trainCount),
                                   repeats: gemmRepeats),
            clblastGEMMs: try (device as? OpenCLDevice).map {
                try clblastGEMMs(spec, on: $0, data: data, batchSize: batchSize, repeats: gemmRepeats)
            })
        return result
    }

    private func write(_ results: [BenchResult], profiles: [LaunchProfile]?, markdown: String, launches: String,
                       to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let lines = try results.map { String(decoding: try encoder.encode($0), as: UTF8.self) }.joined(separator: "\n") + "\n"
        try writeAtomically(Data(lines.utf8), to: "\(folder)/results.jsonl", what: "results.jsonl")
        try writeAtomically(Data(markdown.utf8), to: "\(folder)/results.md", what: "results.md")
        try writeAtomically(Data(Chart.svg(results).utf8), to: "\(folder)/chart.svg", what: "chart.svg")
        // The same tables and chart as one page in `kiln report`'s style.
        var page = HTMLPage(title: "kiln-bench")
        page.markup(Chart.svg(results))
        page.markdown(markdown)
        try writeAtomically(Data(page.html.utf8), to: "\(folder)/report.html", what: "report.html")
        if let profiles {
            let lines = try profiles.map { String(decoding: try encoder.encode($0), as: UTF8.self) }.joined(separator: "\n") + "\n"
            try writeAtomically(Data(lines.utf8), to: "\(folder)/launches.jsonl", what: "launches.jsonl")
            let page = "# Kernel launches per training step\n\nWritten by `kiln-bench --profile --out`.\n" + launches
            try writeAtomically(Data(page.utf8), to: "\(folder)/launches.md", what: "launches.md")
        }
    }
}
