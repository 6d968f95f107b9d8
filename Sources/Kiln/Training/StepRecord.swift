/// One training step as `kiln train --step-log` writes it, one JSON object per line:
/// `{"epoch":1,"learning_rate":0.004,"loss":2.3026,"momentum":0.95,"step":1}`.
public struct StepRecord: Encodable, Equatable, Sendable {
    public var epoch: Int
    /// Updates taken, this one included (1 for a run's first step).
    public var step: Int
    /// The batch's mean training loss before the update (label-smoothed when the run smooths); a
    /// non-finite loss is written as `null`.
    public var loss: Double
    public var learningRate: Float
    /// The momentum the schedule gave the step (one-cycle's), nil where the optimizer's own applies.
    public var momentum: Float?

    enum CodingKeys: String, CodingKey { case epoch, step, loss, momentum, learningRate = "learning_rate" }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(step, forKey: .step)
        try c.encode(loss.isFinite ? loss : nil, forKey: .loss)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encodeIfPresent(momentum, forKey: .momentum)
    }
}
