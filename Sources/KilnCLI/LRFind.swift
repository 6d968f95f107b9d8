import ArgumentParser
import Foundation
import Kiln
import KilnReports

struct LRFind: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lr-find",
        abstract: "The learning-rate range test: train with a rate growing every step, and suggest OneCycle's peak.",
        discussion: """
            Starts from fresh weights (SGD, momentum 0.9, no augmentation) and multiplies the rate every step so \
            that it goes from --start to --end in --steps steps, stopping early once the loss blows up. Draws the \
            smoothed loss against the rate (log scale) into --out and prints the rate where the loss falls \
            fastest and where it is lowest, and the rate midway between them on the log scale as the peak for \
            `kiln train --lr` with the onecycle schedule.
            """)

    @Option(help: "A preset or a JSON spec file.")
    var model = Presets.defaultName
    @Option(help: "The first learning rate.")
    var start: Float = 1e-4
    @Option(help: "The last learning rate.")
    var end: Float = 10
    @Option(help: "Steps from --start to --end.")
    var steps = 300
    @Option(help: "Images per step.")
    var batchSize = 128
    @Option(help: "Seed for the weights and the shuffle.")
    var seed: UInt64 = 1
    @Option(help: "Train on the first N training images only.")
    var trainLimit: Int?
    @Option(help: "The SVG of loss against learning rate.")
    var out = "lr-find.svg"
    @OptionGroup var deviceOptions: DeviceOptions
    @OptionGroup var dataOptions: DataOptions

    func validate() throws {
        guard start > 0, start.isFinite, end.isFinite, end > start else { throw ValidationError("--start and --end must be positive, with --end above --start") }
        guard (10...100_000).contains(steps) else { throw ValidationError("--steps must be between 10 and 100,000") }
        guard (1...1 << 20).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 1,048,576") }
        if let trainLimit, trainLimit < 1 { throw ValidationError("--train-limit must be at least 1") }
    }

    func run() throws {
        try checkWritable(out, flag: "--out")
        let spec = try ModelSpec.named(model)
        let device = try deviceOptions.makeDevice()
        let data = try dataOptions.load(trainLimit: trainLimit)
        var finder = LearningRateFinder()
        (finder.start, finder.end, finder.steps, finder.batchSize, finder.seed) = (start, end, steps, batchSize, seed)
        let result = try finder.run(spec: spec, device: device, data: data)
        var chart = LineChart(title: "Loss during the range test", xLabel: "learning rate (log scale)", yLabel: "training loss",
                              series: [LineChart.Series(name: "smoothed loss", points: result.points.map { ($0.learningRate, $0.smoothedLoss) }),
                                       LineChart.Series(name: "loss of each step", points: result.points.map { ($0.learningRate, $0.loss) })],
                              logX: true)
        // The blow-up at the end would flatten the part that matters: the axis stops a little above the start.
        let first = result.points.first!.smoothedLoss, lowest = result.points.map(\.smoothedLoss).min()!
        chart.yRange = (max(0, lowest - 0.1 * (first - lowest)), first * 1.3)
        chart.markers = [(result.steepest, "steepest \(LineChart.label(result.steepest))"), (result.minimum, "lowest \(LineChart.label(result.minimum))"),
                         (result.suggestion, "peak \(LineChart.label(result.suggestion))")]
        let heading = "kiln lr-find: \(spec.name), batch \(batchSize), \(result.points.count) steps\n"
            + "steepest fall at lr \(LineChart.label(result.steepest)), lowest loss at \(LineChart.label(result.minimum)): OneCycle peak \(LineChart.label(result.suggestion))"
        try writeAtomically(Data(LineChart.page([chart], heading: heading).utf8), to: out, what: "the range test's chart")
        print(String(format: "%d steps, lr %.3g to %.3g: the loss falls fastest at lr %.3g and is lowest at lr %.3g.",
                     result.points.count, result.points.first!.learningRate, result.points.last!.learningRate, result.steepest, result.minimum))
        print(String(format: "Suggested OneCycle peak (between the two on the log scale): kiln train --model %@ --lr %.2g   (chart: %@)",
                     model, result.suggestion, out))
    }
}
