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

    /// Time to accuracy, MLPerf Training's measure: the first epoch whose test accuracy reaches `target`,
    /// and the training and evaluation seconds of the epochs up to it, warm-up (set-up, kernel builds,
    /// data upload) apart. Nil when no epoch reaches it.
    public func timeToTarget(_ reports: [EpochReport]) -> (epoch: Int, seconds: Double)? {
        guard let hit = reports.firstIndex(where: { $0.testAccuracy >= target }) else { return nil }
        return (reports[hit].epoch, reports[...hit].reduce(0) { $0 + $1.epochSeconds + $1.evalSeconds })
    }
}
