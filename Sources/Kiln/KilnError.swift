/// The one error type Kiln throws. Its description is a single line meant for the user:
/// the CLI prints it as-is and exits non-zero.
public struct KilnError: Error, CustomStringConvertible, Equatable {
    public let message: String
    /// Control characters (from a file's text quoted in the message) are escaped, so the message stays
    /// one printable line whatever the input.
    public init(_ message: String) {
        var line = ""
        for c in message.unicodeScalars {
            if c.properties.generalCategory == .control { line += c.escaped(asASCII: true) } else { line.unicodeScalars.append(c) }
        }
        self.message = line
    }
    public var description: String { message }
}
