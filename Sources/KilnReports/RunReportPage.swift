import Foundation
import Kiln

/// `kiln report`: one HTML page about one run or comparing several (their `--log` reports): whether
/// they meet the accuracy criterion, the model, the curves, the speed per device, and, from a
/// checkpoint, what the model gets wrong on the test set.
public struct RunReportPage {
    public struct Run: Sendable {
        public let name: String
        public let epochs: [EpochReport]
        public init(name: String, epochs: [EpochReport]) { (self.name, self.epochs) = (name, epochs) }
    }

    public var runs: [Run]
    /// The models summarised (a checkpoint's, or the presets the runs name).
    public var models: [ModelSpec] = []
    public var criterion = AccuracyCriterion()
    public var analysis: TestAnalysis?
    public init(runs: [Run]) { self.runs = runs }

    public func html(title: String) -> String {
        var page = HTMLPage(title: title)
        criterionSection(&page)
        for spec in models { modelSection(spec, &page) }
        curvesSection(&page)
        speedSection(&page)
        if let analysis { analysis.section(&page) }
        return page.html
    }

    private func criterionSection(_ page: inout HTMLPage) {
        page.heading("Runs")
        let met = runs.filter { criterion.isMet(by: $0.epochs) }
        let seeds = Set(runs.map { $0.epochs.first?.seed ?? 0 }).sorted().map(String.init).joined(separator: ", ")
        page.paragraph("\(criterion): \(met.count == runs.count ? "yes" : "no") (\(met.count) of \(runs.count) runs; seed\(seeds.contains(",") ? "s" : "") \(seeds))",
                       classes: met.count == runs.count ? "yes" : "no")
        let rows: [[HTMLPage.Cell]] = runs.map { run in
            let first = run.epochs.first, best = run.epochs.max { $0.testAccuracy < $1.testAccuracy }, isMet = criterion.isMet(by: run.epochs)
            return [HTMLPage.Cell(run.name), HTMLPage.Cell(first?.model ?? "—"), number(first.map { grouped($0.parameters) }),
                    HTMLPage.Cell(first?.device ?? "—"), number(first.map { "\($0.batchSize)" }), number(first.map { "\($0.seed)" }),
                    number(run.epochs.last.map { "\($0.epoch) of \($0.epochs)" }),
                    number(run.epochs.suffix(criterion.last).map { String(format: "%.2f", $0.testAccuracy) }.joined(separator: " / ")),
                    HTMLPage.Cell(isMet ? "yes" : "no", classes: isMet ? "yes" : "no"),
                    number(best.map { String(format: "%.2f (%d)", $0.testAccuracy, $0.epoch) }),
                    number(criterion.timeToTarget(run.epochs).map { String(format: "%.1f s (%d)", $0.seconds, $0.epoch) } ?? "not reached"),
                    number(run.epochs.last.map { String(format: "%.4f", $0.testLoss) })]
        }
        page.table(["run", "model", "parameters", "device", "batch", "seed", "epochs", "last \(criterion.last) test acc. (%)",
                    "\(criterion)", "best (epoch)", "time to \(LineChart.label(criterion.target))% (epoch)", "final test loss"], rows)
    }

    private func modelSection(_ spec: ModelSpec, _ page: inout HTMLPage) {
        guard let summary = try? ModelSummary(spec) else { return }
        page.heading("Model: \(spec.name)")
        page.paragraph("\(grouped(summary.totalParameters)) parameters, receptive field \(summary.rows.last?.receptiveField ?? 0) pixels, "
                       + "\(grouped(summary.totalMACs)) multiply-accumulates per image (forward), input \(spec.input)")
        page.table(["layer", "output shape", "parameters", "receptive field", "jump", "MACs"], summary.rows.map { r in
            [HTMLPage.Cell(r.name), number("[\(r.outputShape.channels), \(r.outputShape.size), \(r.outputShape.size)]"),
             number(grouped(r.parameters)), number("\(r.receptiveField)"), number("\(r.jump)"), number(grouped(r.macs))]
        })
    }

    private func curvesSection(_ page: inout HTMLPage) {
        page.heading("Curves")
        func series(_ test: KeyPath<EpochReport, Double>, _ train: KeyPath<EpochReport, Double>) -> [LineChart.Series] {
            runs.enumerated().flatMap { i, run in
                [LineChart.Series(name: run.name, points: run.epochs.map { (Double($0.epoch), $0[keyPath: test]) }, colour: i),
                 LineChart.Series(name: run.name + " (train)", points: run.epochs.map { (Double($0.epoch), $0[keyPath: train]) },
                                  colour: i, dashed: true)]
            }
        }
        var accuracy = LineChart(title: "Accuracy (%)", xLabel: "epoch", yLabel: "accuracy", series: series(\.testAccuracy, \.trainAccuracy))
        var loss = LineChart(title: "Loss", xLabel: "epoch", yLabel: "NLL", series: series(\.testLoss, \.trainLoss))
        let epochs = runs.flatMap(\.epochs)
        accuracy.yRange = LineChart.laterEpochs(epochs, ceiling: 100) { [$0.testAccuracy, $0.trainAccuracy] }
        loss.yRange = LineChart.laterEpochs(epochs, floor: 0) { [$0.testLoss, $0.trainLoss] }
        page.markup(LineChart.page([accuracy, loss], heading: "Test (solid) and training (dashed) accuracy and loss per epoch"))
    }

    private func speedSection(_ page: inout HTMLPage) {
        page.heading("Speed")
        func median(_ values: [Double]) -> String {
            let sorted = values.filter(\.isFinite).sorted()
            return sorted.isEmpty ? "—" : LineChart.label(sorted[sorted.count / 2])
        }
        page.table(["run", "device", "CPU threads", "batch", "epoch s (median)", "images/s (median)", "warm-up s", "evaluation s (median)"],
                   runs.map { run in
            let first = run.epochs.first
            return [HTMLPage.Cell(run.name), HTMLPage.Cell(first?.device ?? "—"), number(first?.threads.map(String.init) ?? "—"),
                    number(first.map { "\($0.batchSize)" }), number(median(run.epochs.map(\.epochSeconds))),
                    number(median(run.epochs.map(\.imagesPerSecond))), number(first.map { LineChart.label($0.warmupSeconds) }),
                    number(median(run.epochs.map(\.evalSeconds)))]
        })
    }

    private func number(_ text: String?) -> HTMLPage.Cell { HTMLPage.Cell(text ?? "—", classes: "number") }
}

/// A checkpoint's model on the test split: every prediction, and pictures of the most confident mistakes.
public struct TestAnalysis {
    public let name: String
    public let predictions: [Prediction]
    public let classes: Int
    /// The most confident mistakes, most confident first, each with the test image as a PNG.
    public let mistakes: [(prediction: Prediction, png: Data)]
    let imageSize: Int

    /// Runs `model` over `data`'s test split; `mistakes` pictures at most.
    public init(model: Model, data: Dataset, name: String, mistakes count: Int) throws {
        predictions = try Kiln.predictions(model, on: data)
        let test = data.test, shape = test.shape, plane = shape.size * shape.size
        // The images back in 8-bit pixels: the normalisation undone.
        mistakes = try predictions.filter { $0.predicted != $0.label }.sorted { $0.confidence > $1.confidence }.prefix(count).map { p in
            var pixels = [UInt8](repeating: 0, count: shape.channels * plane)
            for c in 0..<shape.channels {
                let (mean, std) = (data.normalization.mean[c], data.normalization.std[c])
                for i in 0..<plane {
                    let value = (test.images[(c * test.count + p.index) * plane + i] * std + mean) * 255
                    pixels[c * plane + i] = UInt8(max(0, min(255, value.rounded())))
                }
            }
            return (p, try PNGEncoding.png(planes: pixels, channels: shape.channels, height: shape.size, width: shape.size))
        }
        (self.name, self.classes, imageSize) = (name, try model.spec.classCount(), shape.size)
    }

    func section(_ page: inout HTMLPage) {
        let correct = predictions.filter { $0.predicted == $0.label }.count
        page.heading("Test set: \(name)")
        page.paragraph(String(format: "%d of %d test images right (%.2f%%), %d wrong.", correct, predictions.count,
                              100 * Double(correct) / Double(max(predictions.count, 1)), predictions.count - correct))
        let counts = ConfusionMatrix(predictions, classes: classes).counts
        let largestMistake = max(1, counts.enumerated().flatMap { t, row in row.enumerated().filter { $0.offset != t }.map(\.element) }.max() ?? 1)
        let rows: [[HTMLPage.Cell]] = counts.enumerated().map { t, row in
            let total = row.reduce(0, +)
            let cells = row.enumerated().map { p, n -> HTMLPage.Cell in
                // Mistakes shaded red by their share of the largest; the diagonal green.
                let shade = p == t ? "#e3f4e6" : n == 0 ? nil : String(format: "rgba(198,40,40,%.2f)", 0.12 + 0.6 * Double(n) / Double(largestMistake))
                return HTMLPage.Cell("\(n)", classes: "number", background: shade)
            }
            let accuracy = total == 0 ? "—" : String(format: "%.2f%%", 100 * Double(row[t]) / Double(total))
            return [HTMLPage.Cell("\(t)")] + cells + [HTMLPage.Cell(accuracy, classes: "number")]
        }
        page.table(["true \\ predicted"] + (0..<classes).map(String.init) + ["accuracy"], rows,
                   caption: "Confusion matrix (rows: true class; columns: predicted) and each class's accuracy")
        guard !mistakes.isEmpty else { return }
        page.paragraph("The \(mistakes.count) most confident mistakes: test index, true → predicted label, confidence.")
        let scale = max(1, 84 / imageSize)
        page.markup(#"<div class="gallery">"# + mistakes.map { m in
            HTMLPage.figure(png: m.png, width: imageSize * scale,
                            caption: String(format: "#%d: %d → %d (%.1f%%)", m.prediction.index, m.prediction.label, m.prediction.predicted,
                                            100 * m.prediction.confidence))
        }.joined() + "</div>")
    }
}
