/// The one error type Kiln throws. Its description is a single line meant for the user:
/// the CLI prints it as-is and exits non-zero.
public struct KilnError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
