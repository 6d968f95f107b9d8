import Foundation

/// Learning-rate schedules, stepped once per batch, matching torch.optim.lr_scheduler.
public struct Schedule: Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case onecycle, step, none }
    public var kind: Kind
    /// The peak rate for one-cycle, the starting rate otherwise.
    public var learningRate: Float
    public var totalSteps: Int
    public var stepsPerEpoch: Int
    /// StepLR: multiply by `gamma` every `stepSize` epochs.
    public var stepSize = 5
    public var gamma: Float = 0.1
    /// OneCycleLR's defaults.
    public var warmupFraction: Float = 0.3, divFactor: Float = 25, finalDivFactor: Float = 1e4
    public var baseMomentum: Float = 0.85, maxMomentum: Float = 0.95

    public init(kind: Kind, learningRate: Float, epochs: Int, stepsPerEpoch: Int) {
        self.kind = kind
        self.learningRate = learningRate
        self.totalSteps = epochs * stepsPerEpoch
        self.stepsPerEpoch = stepsPerEpoch
    }

    /// For a one-cycle run too short to come near its peak (as PyTorch's OneCycleLR, one step trains at
    /// the schedule's end, lr/25/10⁴): a line saying so, since the rate given is not the rate used.
    public var shortRunWarning: String? {
        guard kind == .onecycle, totalSteps < 100 else { return nil }
        let highest = (0..<totalSteps).map { at($0).learningRate }.max() ?? 0
        guard highest < learningRate / 2 else { return nil }
        return "OneCycle over \(totalSteps) step\(totalSteps == 1 ? "" : "s") never comes near its peak lr \(learningRate): "
            + "the highest rate it trains at is \(highest); train more steps or pass --schedule none"
    }

    /// The learning rate for update number `step` (0-based), and the momentum one-cycle prescribes.
    public func at(_ step: Int) -> (learningRate: Float, momentum: Float?) {
        switch kind {
        case .none:
            return (learningRate, nil)
        case .step:
            return (learningRate * powf(gamma, Float(step / stepsPerEpoch / stepSize)), nil)
        case .onecycle:
            // Cosine warm-up from lr/div to lr over the first 30%, then cosine down to lr/div/finalDiv.
            let initial = learningRate / divFactor, minimum = initial / finalDivFactor
            let peak = Float(warmupFraction * Float(totalSteps)) - 1, end = Float(totalSteps - 1)
            let s = Float(step)
            func anneal(_ from: Float, _ to: Float, _ pct: Float) -> Float { to + (from - to) / 2 * (cosf(.pi * pct) + 1) }
            if s <= peak {
                let pct = s / peak
                return (anneal(initial, learningRate, pct), anneal(maxMomentum, baseMomentum, pct))
            }
            let pct = min(1, (s - peak) / (end - peak))
            return (anneal(learningRate, minimum, pct), anneal(baseMomentum, maxMomentum, pct))
        }
    }
}
