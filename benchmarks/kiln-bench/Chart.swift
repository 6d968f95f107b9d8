import Foundation
import Kiln
import KilnReports

/// An SVG bar chart: for each model, one bar per device, in two panels (epoch seconds, images/s).
enum Chart {
    static func svg(_ results: [BenchResult]) -> String {
        let models = Tables.unique(results.map(\.report.model)), devices = Tables.unique(results.map(\.report.device))
        let colours = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"]
        let panelWidth = 460.0, panelHeight = 260.0, top = 60.0, left = 60.0, gap = 80.0
        let width = left + 2 * panelWidth + gap + 20, height = top + panelHeight + 60 + Double(devices.count) * 18
        var svg = [#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" font-family="sans-serif" font-size="12">"#,
                   #"<rect width="100%" height="100%" fill="white"/>"#,
                   #"<text x="\#(left)" y="24" font-size="16">kiln-bench: training time and throughput per model and device</text>"#]
        let panels: [(String, (BenchResult) -> Double)] = [("train seconds (median, lower is better)", { $0.report.epochSeconds }),
                                                           ("images per second (higher is better)", { $0.report.imagesPerSecond })]
        for (p, (title, value)) in panels.enumerated() {
            let x0 = left + Double(p) * (panelWidth + gap)
            let top = top + 10
            let largest = results.map(value).max() ?? 1
            svg.append(#"<text x="\#(x0)" y="\#(top - 12)">\#(title)</text>"#)
            svg.append(#"<line x1="\#(x0)" y1="\#(top + panelHeight)" x2="\#(x0 + panelWidth)" y2="\#(top + panelHeight)" stroke="black"/>"#)
            let groupWidth = panelWidth / Double(max(models.count, 1)), barWidth = groupWidth * 0.8 / Double(max(devices.count, 1))
            for (m, model) in models.enumerated() {
                let gx = x0 + Double(m) * groupWidth + groupWidth * 0.1
                for (d, device) in devices.enumerated() {
                    guard let r = results.first(where: { $0.report.model == model && $0.report.device == device }) else { continue }
                    let h = value(r) / largest * (panelHeight - 20), x = gx + Double(d) * barWidth
                    svg.append(#"<rect x="\#(f(x))" y="\#(f(top + panelHeight - h))" width="\#(f(barWidth - 2))" height="\#(f(h))" fill="\#(colours[d % colours.count])"/>"#)
                    svg.append(#"<text x="\#(f(x + barWidth / 2))" y="\#(f(top + panelHeight - h - 4))" text-anchor="middle" font-size="10">\#(label(value(r)))</text>"#)
                }
                svg.append(#"<text x="\#(f(gx + groupWidth * 0.4))" y="\#(f(top + panelHeight + 16))" text-anchor="middle">\#(escape(model))</text>"#)
            }
        }
        for (d, device) in devices.enumerated() {
            let y = top + panelHeight + 48 + Double(d) * 18
            svg.append(#"<rect x="\#(left)" y="\#(f(y - 10))" width="12" height="12" fill="\#(colours[d % colours.count])"/>"#)
            svg.append(#"<text x="\#(left + 18)" y="\#(f(y))">\#(escape(device))</text>"#)
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    private static func f(_ v: Double) -> String { String(format: "%.1f", v) }
    private static func label(_ v: Double) -> String { v >= 100 ? String(format: "%.0f", v) : String(format: "%.2f", v) }
    private static func escape(_ s: String) -> String { LineChart.escape(s) }
}
