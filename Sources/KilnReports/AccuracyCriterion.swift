import Kiln

/// The write-ups' test of a recipe: test accuracy at or above `target` (%) in each of the last `last`
/// epochs, not only at its best.
public struct AccuracyCriterion: Sendable, CustomStringConvertible {
    public var target: Double
    public var last: Int
    public init(target: Double = 99.4, last: Int = 3) { (self.target, self.last) = (target, last) }

    public var description: String { "≥ \(LineChart.label(target))% in each of the last \(last) epochs" }

    /// Whether a run's epochs meet it (a run shorter than `last` epochs does not).
    public func isMet(by reports: [EpochReport]) -> Bool {
        reports.count >= last && reports.suffix(last).allSatisfy { $0.testAccuracy >= target }
    }
}
