import Foundation
import Kiln

/// An SVG line chart: one line per series over shared axes (linear, or logarithmic in x), a legend, and
/// several charts side by side on one page (`page`). Plain SVG 1.1, no scripts or fonts to fetch.
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// The palette entry (default: the series' position), so that related lines can share a colour.
        public var colour: Int?
        public var dashed: Bool
        public init(name: String, points: [(x: Double, y: Double)], colour: Int? = nil, dashed: Bool = false) {
            (self.name, self.points, self.colour, self.dashed) = (name, points, colour, dashed)
        }
    }

    public var title: String, xLabel: String, yLabel: String
    public var series: [Series]
    public var logX = false
    /// The y axis, when not every point's range (points outside are drawn at its edge).
    public var yRange: (low: Double, high: Double)?
    /// Vertical lines at these x values, labelled.
    public var markers: [(x: Double, label: String)] = []
    public init(title: String, xLabel: String, yLabel: String, series: [Series], logX: Bool = false) {
        (self.title, self.xLabel, self.yLabel, self.series, self.logX) = (title, xLabel, yLabel, series, logX)
    }

    static let colours = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
    static let width = 460.0, height = 280.0

    /// Charts side by side under a heading (its lines split at newlines), with one legend for the series
    /// of the first chart: one entry per colour, named after its first series.
    public static func page(_ charts: [LineChart], heading: String) -> String {
        var seen: Set<Int> = [], legend: [(name: String, colour: Int)] = []
        for (i, s) in (charts.first?.series ?? []).enumerated() where seen.insert(s.colour ?? i).inserted { legend.append((s.name, s.colour ?? i)) }
        let headings = heading.split(separator: "\n")
        let legendRows = (legend.count + 2) / 3, top = 30 + 20 * Double(headings.count)
        let pageWidth = 40 + Double(charts.count) * (width + 40), pageHeight = top + height + 30 + Double(legendRows) * 18
        var svg = [#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(pageWidth))" height="\#(Int(pageHeight))" font-family="sans-serif" font-size="12">"#,
                   #"<rect width="100%" height="100%" fill="white"/>"#]
        for (i, line) in headings.enumerated() {
            svg.append(#"<text x="40" y="\#(26 + 20 * i)" font-size="\#(i == 0 ? 16 : 13)">\#(escape(String(line)))</text>"#)
        }
        for (i, chart) in charts.enumerated() { svg += chart.lines(left: 40 + Double(i) * (width + 40), top: top) }
        for (i, entry) in legend.enumerated() {
            let x = 40 + Double(i % 3) * 300, y = top + height + 36 + Double(i / 3) * 18
            svg.append(#"<rect x="\#(x)" y="\#(y - 10)" width="12" height="12" fill="\#(colours[entry.colour % colours.count])"/>"#)
            svg.append(#"<text x="\#(x + 18)" y="\#(y)">\#(escape(entry.name))</text>"#)
        }
        return (svg + ["</svg>"]).joined(separator: "\n") + "\n"
    }

    /// The chart's elements, its plot area at (left, top).
    func lines(left: Double, top: Double) -> [String] {
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) }
        let xs = finite.map { logX ? log10($0.x) : $0.x }, ys = finite.map(\.y)
        let (x0, x1) = Self.range(xs), (y0, y1) = yRange ?? Self.range(ys)
        let plotLeft = left + 50, plotWidth = Self.width - 60, plotTop = top + 20, plotHeight = Self.height - 60
        func px(_ x: Double) -> Double { plotLeft + ((logX ? log10(x) : x) - x0) / (x1 - x0) * plotWidth }
        func py(_ y: Double) -> Double { plotTop + plotHeight - (y - y0) / (y1 - y0) * plotHeight }
        var out = [#"<text x="\#(left)" y="\#(top + 8)" font-size="13">\#(Self.escape(title))</text>"#,
                   #"<rect x="\#(f(plotLeft))" y="\#(f(plotTop))" width="\#(f(plotWidth))" height="\#(f(plotHeight))" fill="none" stroke="gray"/>"#]
        for t in 0...4 {
            let y = y0 + (y1 - y0) * Double(t) / 4
            out.append(#"<text x="\#(f(plotLeft - 4))" y="\#(f(py(y) + 4))" text-anchor="end" font-size="10">\#(Self.label(y))</text>"#)
        }
        // Whole numbers (epochs) get whole ticks; other axes five evenly spaced ones.
        let xTicks: [Double]
        if !logX, let low = xs.min(), let high = xs.max(), xs.allSatisfy({ $0 == $0.rounded() }) {
            xTicks = Array(stride(from: low, through: high, by: max(1, ((high - low) / 6).rounded(.up))))
        } else {
            xTicks = (0...4).map { t in let x = x0 + (x1 - x0) * Double(t) / 4; return logX ? pow(10, x) : x }
        }
        for x in xTicks {
            out.append(#"<text x="\#(f(px(x)))" y="\#(f(plotTop + plotHeight + 14))" text-anchor="middle" font-size="10">\#(Self.label(x))</text>"#)
        }
        out.append(#"<text x="\#(f(plotLeft + plotWidth / 2))" y="\#(f(plotTop + plotHeight + 30))" text-anchor="middle">\#(Self.escape(xLabel))</text>"#)
        out.append(#"<text x="\#(f(left + 10))" y="\#(f(plotTop + plotHeight / 2))" text-anchor="middle" transform="rotate(-90 \#(f(left + 10)) \#(f(plotTop + plotHeight / 2)))">\#(Self.escape(yLabel))</text>"#)
        // Each marker's label on its own row inside the plot, so that close markers stay readable.
        for (row, marker) in markers.filter({ $0.x.isFinite && (!logX || $0.x > 0) }).enumerated() {
            let x = px(marker.x)
            out.append(#"<line x1="\#(f(x))" y1="\#(f(plotTop))" x2="\#(f(x))" y2="\#(f(plotTop + plotHeight))" stroke="black" stroke-dasharray="4 3"/>"#)
            out.append(#"<text x="\#(f(x + 3))" y="\#(f(plotTop + 12 + 13 * Double(row)))" font-size="10">\#(Self.escape(marker.label))</text>"#)
        }
        for (i, s) in series.enumerated() {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) }
                .map { "\(f(px($0.x))),\(f(py(min(max($0.y, y0), y1))))" }
            guard !points.isEmpty else { continue }
            let colour = Self.colours[(s.colour ?? i) % Self.colours.count], dash = s.dashed ? #" stroke-dasharray="5 3""# : ""
            out.append(#"<polyline fill="none" stroke="\#(colour)" stroke-width="1.8"\#(dash) points="\#(points.joined(separator: " "))"/>"#)
        }
        return out
    }

    /// A y axis for per-epoch figures that covers the second epoch on: the first epoch's low accuracy and
    /// high loss would flatten the epochs that matter (its points sit at the edge). Nil before epoch 2.
    public static func laterEpochs(_ reports: [EpochReport], floor: Double? = nil, ceiling: Double? = nil,
                                   _ values: (EpochReport) -> [Double]) -> (low: Double, high: Double)? {
        let later = reports.filter { $0.epoch >= 2 }.flatMap(values).filter(\.isFinite)
        guard !later.isEmpty else { return nil }
        let (low, high) = range(later)
        return (floor ?? low, ceiling.map { min($0, high) } ?? high)
    }

    /// The axis range of `values`, widened a little, and never empty.
    static func range(_ values: [Double]) -> (Double, Double) {
        guard let low = values.min(), let high = values.max() else { return (0, 1) }
        let pad = high > low ? (high - low) * 0.05 : max(abs(low) * 0.05, 0.5)
        return (low - pad, high + pad)
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
    /// A number as the axes show it: 3 significant digits.
    public static func label(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e6 ? String(format: "%.0f", v) : abs(v) >= 100 ? String(format: "%.0f", v) : abs(v) >= 1 ? String(format: "%.2f", v) : String(format: "%.3g", v)
    }

    /// Text for SVG or HTML, in elements and in quoted attributes.
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
