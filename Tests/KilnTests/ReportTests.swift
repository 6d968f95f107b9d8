import Foundation
import KilnReports
import Testing
@testable import Kiln

/// The HTML run report and its pieces; Tests/report-render.sh renders a whole page in Chromium.
@Suite struct ReportTests {
    func epochs(_ accuracies: [Double], seed: UInt64 = 1) -> [EpochReport] {
        accuracies.enumerated().map { i, accuracy in
            EpochReport(model: "lean8k", device: "cpu", parameters: 7416, epoch: i + 1, epochs: accuracies.count, batchSize: 128,
                        threads: 2, seed: seed, learningRate: 0.1, warmupSeconds: 0.3, epochSeconds: 10 + Double(i), imagesPerSecond: 6000,
                        trainLoss: 0.1 / Double(i + 1), trainAccuracy: accuracy - 0.5, evalSeconds: 1, testLoss: 0.05 / Double(i + 1),
                        testCorrect: Int(accuracy * 100), testCount: 10_000, testAccuracy: accuracy)
        }
    }

    @Test func criterionLooksAtEachOfTheLastEpochs() {
        let criterion = AccuracyCriterion(target: 99.4, last: 3)
        #expect(criterion.isMet(by: epochs([98, 99.4, 99.41, 99.5])))
        #expect(!criterion.isMet(by: epochs([99.6, 99.39, 99.5, 99.5])))
        #expect(!criterion.isMet(by: epochs([99.5, 99.5])))
        #expect(criterion.description == "≥ 99.40% in each of the last 3 epochs")
    }

    /// MLPerf's time to accuracy: training and evaluation seconds up to the first epoch at the target.
    @Test func timeToTargetSumsTheEpochsUpToTheFirstThatReachesIt() {
        let criterion = AccuracyCriterion(target: 99.4, last: 3)
        let run = epochs([98, 99.41, 99.3, 99.5])
        #expect(criterion.timeToTarget(run)?.epoch == 2 && criterion.timeToTarget(run)?.seconds == (10 + 1) + (11 + 1))
        #expect(criterion.timeToTarget(epochs([99.4]))?.seconds == 11)
        #expect(criterion.timeToTarget(epochs([98, 99.39])) == nil)
        var page = RunReportPage(runs: [.init(name: "a", epochs: run), .init(name: "b", epochs: epochs([98]))])
        page.criterion = criterion
        let html = page.html(title: "t")
        #expect(html.contains("time to 99.40% (epoch)") && html.contains(">23.0 s (2)<") && html.contains(">not reached<"))
    }

    @Test func markdownBecomesHeadingsTablesAndParagraphs() {
        var page = HTMLPage(title: "t")
        page.markdown("# skipped\n\nA \"quoted\" <line>.\n\n| model | s |\n|---|---|\n| lean8k | 1.5 |\n\n## Part")
        let html = page.html
        #expect(html.contains("<p>A &quot;quoted&quot; &lt;line&gt;.</p>") && !html.contains("skipped") && html.contains("<h2>Part</h2>"))
        #expect(html.contains("<tr><th>model</th><th>s</th></tr>\n<tr><td>lean8k</td><td class=\"number\">1.5</td></tr>") && !html.contains("---"))
    }

    @Test func runsSharingAColourShareALegendEntry() {
        let chart = LineChart(title: "c", xLabel: "x", yLabel: "y", series: [
            LineChart.Series(name: "a", points: [(1, 1), (2, 2)], colour: 0), LineChart.Series(name: "a (train)", points: [(1, 2), (2, 3)], colour: 0, dashed: true),
            LineChart.Series(name: "b", points: [(1, 0), (2, 1)], colour: 1)])
        let svg = LineChart.page([chart], heading: "h")
        #expect(svg.contains(">a</text>") && !svg.contains(">a (train)</text>") && svg.contains(">b</text>"))
        #expect(svg.components(separatedBy: "stroke-dasharray=\"5 3\"").count == 2 && svg.contains(">1</text>") && svg.contains(">2</text>"))
    }

    @Test func pageSaysWhetherTheRunsMeetTheCriterionAndPicturesTheMistakes() throws {
        let folder = try numpyFolder(channels: 3, size: 8, train: 64, test: 31, classes: 5)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let data = try Dataset.load(folder: folder)
        let spec = try ModelSpec(json: Data(rgbSpec.utf8), source: "test")
        let model = try Model(spec: spec, device: CPUDevice(threads: 1), seed: testSeed)
        let analysis = try TestAnalysis(model: model, data: data, name: "model.safetensors", mistakes: 4)
        #expect(analysis.predictions.count == 31 && analysis.mistakes.count == 4)
        #expect(analysis.mistakes.map(\.prediction.confidence) == analysis.mistakes.map(\.prediction.confidence).sorted(by: >))
        // Each picture is its test image: read back and normalised, it is what the model saw.
        let plane = 64
        for mistake in analysis.mistakes {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).png").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try mistake.png.write(to: URL(fileURLWithPath: path))
            let input = try ImageFile(path: path).input(for: spec.input, normalization: data.normalization, invert: false)
            let seen = (0..<3).flatMap { c in data.test.images[((c * 31 + mistake.prediction.index) * plane)...].prefix(plane) }
            #expect(zip(input, seen).allSatisfy { abs($0 - $1) < 1e-4 }, "test image \(mistake.prediction.index)")
        }

        var page = RunReportPage(runs: [RunReportPage.Run(name: "seed1", epochs: epochs([98, 99.45, 99.5, 99.42])),
                                        RunReportPage.Run(name: "seed2", epochs: epochs([98, 99.45, 99.38, 99.5], seed: 2))])
        (page.models, page.analysis) = ([spec], analysis)
        let html = page.html(title: "Report <1>")
        #expect(html.contains("<title>Report &lt;1&gt;</title>"))
        #expect(html.contains(#"<p class="no">≥ 99.40% in each of the last 3 epochs: no (1 of 2 runs; seeds 1, 2)</p>"#))
        #expect(html.contains("<h2>Model: rgb8</h2>") && html.contains("<h2>Test set: model.safetensors</h2>"))
        #expect(html.components(separatedBy: "<svg").count == 2 && html.components(separatedBy: "data:image/png;base64,").count == 5)
        // Self-contained: nothing to fetch, no scripts.
        #expect(!html.contains("<script") && html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http") == false)
    }
}
