import Foundation

/// A self-contained HTML page: inline style, inline SVG, images as data URIs, no scripts and nothing
/// fetched, so it opens from a file, an e-mail or an artifact store. `kiln report` and
/// `kiln-bench --out` write their pages with it, so the two look alike.
public struct HTMLPage: Sendable {
    public var title: String
    private var parts: [String] = []
    public init(title: String) { self.title = title }

    /// A table cell: text (escaped here), an optional CSS class (`yes`, `no`, `number`) and background.
    public struct Cell: Sendable, ExpressibleByStringLiteral {
        public var text: String, classes: String?, background: String?
        public init(_ text: String, classes: String? = nil, background: String? = nil) {
            (self.text, self.classes, self.background) = (text, classes, background)
        }
        public init(stringLiteral text: String) { self.init(text) }
    }

    public mutating func heading(_ text: String, level: Int = 2) { parts.append("<h\(level)>\(Self.escape(text))</h\(level)>") }
    public mutating func paragraph(_ text: String, classes: String? = nil) {
        parts.append("<p\(classes.map { #" class="\#($0)""# } ?? "")>\(Self.escape(text))</p>")
    }
    public mutating func preformatted(_ text: String) { parts.append("<pre>\(Self.escape(text))</pre>") }
    /// Markup the caller built (an inline SVG, a figure), added as it is.
    public mutating func markup(_ html: String) { parts.append(html) }

    public mutating func table(_ header: [String], _ rows: [[Cell]], caption: String? = nil) {
        var html = ["<table>"]
        if let caption { html.append("<caption>\(Self.escape(caption))</caption>") }
        html.append("<tr>" + header.map { "<th>\(Self.escape($0))</th>" }.joined() + "</tr>")
        for row in rows {
            html.append("<tr>" + row.map { cell in
                let classes = cell.classes.map { #" class="\#($0)""# } ?? ""
                let style = cell.background.map { #" style="background:\#($0)""# } ?? ""
                return "<td\(classes)\(style)>\(Self.escape(cell.text))</td>"
            }.joined() + "</tr>")
        }
        html.append("</table>")
        parts.append(html.joined(separator: "\n"))
    }

    /// The Markdown that Kiln's tools write (`kiln-bench`'s results.md): `##` headings, pipe tables
    /// whose second row is the rule, and paragraphs; a `#` heading is the page's title and is skipped.
    public mutating func markdown(_ text: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)[...]
        func cells(_ line: String) -> [String] {
            line.trimmingCharacters(in: .whitespaces).dropFirst().dropLast().split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        while let line = lines.popFirst() {
            if line.hasPrefix("## ") { heading(String(line.dropFirst(3))) }
            else if line.hasPrefix("|") {
                var rows: [[String]] = []
                while let next = lines.first, next.hasPrefix("|") { rows.append(cells(next)); lines.removeFirst() }
                // Cells that start with a digit are figures: right-aligned.
                table(cells(line), rows.filter { !$0.allSatisfy { $0.allSatisfy { "-:".contains($0) } } }.map { row in
                    row.map { HTMLPage.Cell($0, classes: $0.first?.isNumber == true ? "number" : nil) }
                })
            } else if !line.isEmpty, !line.hasPrefix("# ") { paragraph(line) }
        }
    }

    /// An image as a data URI, with a caption under it (the style keeps small images sharp when scaled).
    public static func figure(png: Data, width: Int, caption: String) -> String {
        #"<figure><img src="data:image/png;base64,\#(png.base64EncodedString())" width="\#(width)" alt="\#(escape(caption))"><figcaption>\#(escape(caption))</figcaption></figure>"#
    }

    public var html: String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>\(Self.escape(title))</title>
        <style>
        \(Self.style)
        </style>
        </head>
        <body>
        <h1>\(Self.escape(title))</h1>
        \(parts.joined(separator: "\n"))
        </body>
        </html>

        """
    }

    static let style = """
        body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1120px; padding: 0 16px; color: #222; }
        h1 { font-size: 24px; } h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
        table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
        th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
        th { background: #f3f3f3; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
        caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
        .yes { color: #1a7f37; font-weight: 600; } .no { color: #c62828; font-weight: 600; }
        pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
        .gallery { display: flex; flex-wrap: wrap; gap: 10px; }
        figure { margin: 0; text-align: center; font-size: 11px; width: 92px; }
        figure img { image-rendering: pixelated; border: 1px solid #ccc; }
        svg { max-width: 100%; height: auto; }
        """

    public static func escape(_ s: String) -> String { LineChart.escape(s) }
}
