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

/// Applies one update to every parameter of a model from its gradient, as one device call over the
/// model's flat `ParameterBuffer`; its state is flat too, and stays on the device.
public final class Optimizer {
    public let config: OptimizerConfig
    /// Updates taken so far (Adam's bias correction counts them).
    public var step = 0
    private let device: Device
    /// The buffer the state belongs to, and the state: one flat tensor per slot of `config.stateNames`.
    private var prepared: (buffer: ParameterBuffer, state: [Tensor])?

    public init(config: OptimizerConfig, device: Device) {
        self.config = config
        self.device = device
    }

    /// Creates zeroed state for `buffer` (once), and gives each parameter its views of it.
    public func prepare(_ buffer: ParameterBuffer) throws {
        if let prepared, prepared.buffer === buffer { return }
        let slots = try config.stateNames.map { _ in try buffer.state() }
        for (i, p) in buffer.parameters.enumerated() { p.optimizerState = slots.map { $0.views[i] } }
        prepared = (buffer, slots.map(\.flat))
    }

    /// `momentum`, when given, replaces SGD's momentum or Adam's β₁ for this step (one-cycle cycles it).
    public func update(_ buffer: ParameterBuffer, learningRate: Float, momentum: Float?) throws {
        try prepare(buffer)
        let state = prepared!.state
        step += 1
        switch config.kind {
        case .sgd:
            let m = config.momentum == 0 ? 0 : momentum ?? config.momentum
            try device.sgdStep(parameter: buffer.values, gradient: buffer.gradients, velocity: state.first ?? buffer.gradients,
                               learningRate: learningRate, momentum: m, nesterov: config.nesterov,
                               weightDecay: config.weightDecay)
        case .adam:
            try device.adamStep(parameter: buffer.values, gradient: buffer.gradients, firstMoment: state[0],
                                secondMoment: state[1], learningRate: learningRate, beta1: momentum ?? config.beta1,
                                beta2: config.beta2, epsilon: config.epsilon, weightDecay: config.weightDecay, step: step)
        }
    }
}
