/// Which update rule, and its hyper-parameters (PyTorch's names and defaults).
public struct OptimizerConfig: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case sgd, adam }
    public var kind: Kind
    public var momentum: Float = 0.9
    public var nesterov = false
    public var weightDecay: Float = 0
    public var beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8

    public init(kind: Kind) { self.kind = kind }

    /// Names of the per-parameter state tensors, as PyTorch's optimizer state calls them.
    public var stateNames: [String] {
        switch kind {
        case .sgd: momentum == 0 ? [] : ["momentum_buffer"]
        case .adam: ["exp_avg", "exp_avg_sq"]
        }
    }
}

/// Applies one update to every parameter from its gradient; its state stays on the device.
public final class Optimizer {
    public let config: OptimizerConfig
    /// Updates taken so far (Adam's bias correction counts them).
    public var step = 0
    private let device: Device

    public init(config: OptimizerConfig, device: Device) {
        self.config = config
        self.device = device
    }

    /// Creates zeroed state for any parameter that has none yet.
    public func prepare(_ parameters: [Parameter]) throws {
        for p in parameters where p.optimizerState.count != config.stateNames.count {
            p.optimizerState = try config.stateNames.map { _ in
                let t = try device.allocate(p.value.shape, .float32)
                try device.fill(t, with: 0)
                return t
            }
        }
    }

    /// `momentum`, when given, replaces SGD's momentum or Adam's β₁ for this step (one-cycle cycles it).
    public func update(_ parameters: [Parameter], learningRate: Float, momentum: Float?) throws {
        try prepare(parameters)
        step += 1
        for p in parameters {
            switch config.kind {
            case .sgd:
                let m = config.momentum == 0 ? 0 : momentum ?? config.momentum
                try device.sgdStep(parameter: p.value, gradient: p.gradient, velocity: p.optimizerState.first ?? p.gradient,
                                   learningRate: learningRate, momentum: m, nesterov: config.nesterov,
                                   weightDecay: config.weightDecay)
            case .adam:
                try device.adamStep(parameter: p.value, gradient: p.gradient, firstMoment: p.optimizerState[0],
                                    secondMoment: p.optimizerState[1], learningRate: learningRate,
                                    beta1: momentum ?? config.beta1, beta2: config.beta2, epsilon: config.epsilon,
                                    weightDecay: config.weightDecay, step: step)
            }
        }
    }
}
