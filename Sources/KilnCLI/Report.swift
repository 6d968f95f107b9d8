import ArgumentParser
import Foundation
import Kiln
import KilnReports

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write one self-contained HTML page about runs: criterion, model, curves, speed and, from a checkpoint, the mistakes.",
        discussion: """
            Takes run reports (`kiln train --log`) or folders of them (a `kiln sweep --out`). The page shows whether each \
            run meets --target in each of its last --last epochs, the model's summary (from --checkpoint, else the presets \
            the runs name), training and test accuracy and loss per epoch, epoch time and images/s per run and device, \
            and with --checkpoint the confusion matrix, each class's accuracy and the most confident mistakes as pictures \
            (on the CPU, with --data's test split). Everything is inline: no scripts, nothing fetched.
            """)

    @Argument(help: ArgumentHelp("Run reports (.jsonl) or folders of them.", valueName: "RUN.jsonl|DIR"))
    var runs: [String]
    @Option(help: ArgumentHelp("The HTML page to write.", valueName: "FILE.html"))
    var out = "report.html"
    @Option(help: "A checkpoint of the run (`kiln train --save`): adds the model's mistakes on the test set.")
    var checkpoint: String?
    @OptionGroup var weightsOptions: WeightsOptions
    @Option(help: "Mistakes pictured with --checkpoint, most confident first.")
    var misclassified = 32
    @OptionGroup var criterionOptions: CriterionOptions
    @Option(help: "The page's title.")
    var title = "Kiln run report"
    @OptionGroup var dataOptions: DataOptions

    func validate() throws {
        guard misclassified >= 0 else { throw ValidationError("--misclassified must be 0 or more") }
    }

    func run() throws {
        try checkWritable(out, flag: "--out")
        try checkNotAnInput(out, flag: "--out", inputs: runs.map { ($0, "the run report \($0)") } + (checkpoint.map { [($0, "--checkpoint")] } ?? []))
        var page = RunReportPage(runs: try runs.flatMap(Self.reports))
        page.criterion = criterionOptions.criterion()
        if let checkpoint {
            let saved = try Checkpoint(path: checkpoint)
            try Self.check(saved, named: checkpoint, against: page.runs)
            let model = try saved.model(on: CPUDevice(), weights: weightsOptions.weights)
            let data = try dataOptions.load(normalization: saved.state.options?.normalization)
            page.models = [saved.spec]
            page.analysis = try TestAnalysis(model: model, data: data, name: checkpoint, mistakes: misclassified)
        } else {
            page.models = Set(page.runs.compactMap { $0.epochs.first?.model }).sorted().compactMap { Presets.all[$0] }
        }
        try writeAtomically(Data(page.html(title: title).utf8), to: out, what: "the report")
        print("Wrote \(out): \(page.runs.count) run\(page.runs.count == 1 ? "" : "s")"
              + (page.analysis.map { ", \($0.mistakes.count) mistakes pictured" } ?? ""))
    }

    /// Refuses a checkpoint of none of the runs: its model and mistakes would sit under their table as if
    /// theirs. A run is the checkpoint's when its model, parameter count and seed are the checkpoint's.
    static func check(_ saved: Checkpoint, named path: String, against runs: [RunReportPage.Run]) throws {
        let parameters = try saved.spec.parameterCount(), seed = saved.state.options?.seed
        let matches = runs.contains { run in
            run.epochs.contains { $0.model == saved.spec.name && $0.parameters == parameters && (seed == nil || $0.seed == seed) }
        }
        guard !matches else { return }
        let theirs = Set(runs.flatMap { $0.epochs.map { "\($0.model) (\(grouped($0.parameters)) parameters, seed \($0.seed))" } }).sorted()
        throw KilnError("--checkpoint \(path) holds \(saved.spec.name) (\(grouped(parameters)) parameters\(seed.map { ", seed \($0)" } ?? "")), "
                        + "which none of the runs trained: they trained \(theirs.joined(separator: ", ")); pass the checkpoint one of them saved")
    }

    /// A report file, or every .jsonl in a folder (sorted by name), each a run named after its file.
    static func reports(_ path: String) throws -> [RunReportPage.Run] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw KilnError("\(path): no such run report or folder") }
        var files = [path]
        if isFolder.boolValue {
            do { files = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".jsonl") }.sorted().map { "\(path)/\($0)" } } catch {
                throw KilnError("\(path): cannot read the folder (\(fileProblem(error)))")
            }
        }
        guard !files.isEmpty else { throw KilnError("\(path): no run reports (.jsonl) in the folder") }
        return try files.map { file in
            let epochs = try EpochReport.read(file)
            guard !epochs.isEmpty else { throw KilnError("\(file): the run report is empty") }
            return RunReportPage.Run(name: ((file as NSString).lastPathComponent as NSString).deletingPathExtension, epochs: epochs)
        }
    }
}
