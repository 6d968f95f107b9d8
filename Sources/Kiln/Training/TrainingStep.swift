/// One training step of a classifier, the one place its call order is written: forward stage by stage
/// (`Sequential.stages`, as the device plans them) up to the class scores; the loss (the final
/// log-softmax with NLL in one primitive, which also gives the scores' gradient); backward through the
/// stages in reverse; the gradients finished (`Device.finishGradients`); the optimizer's update.
///
/// The trainer runs it whole (`run`). A `StepObserver` sees each phase as it ends: kiln-bench times the
/// phases, and parity drives a second device's step phase by phase beside the reference's (the phase
/// methods below), comparing as it goes.
public final class TrainingStep {
    public let model: Sequential
    public let optimizer: Optimizer
    /// The stages before the loss: every stage but the final log-softmax.
    public var stageCount: Int { model.stages.count - 1 }
    private let logProbs = TensorSlot(), scoreGradient = TensorSlot()

    /// The optimizer creates its state at its first update (evaluation never makes one).
    public init(model: Sequential, optimizer: Optimizer) throws {
        guard model.spec.layers.last == .logSoftmax, model.stages.last?.kind == .single else {
            throw KilnError("model \(model.spec.name) must end in logsoftmax to be trained or evaluated with the NLL loss")
        }
        self.model = model
        self.optimizer = optimizer
    }

    /// Trains on one gathered batch: adds its loss and correct count to `totals` [2] and updates the
    /// parameters. `context.step` is the step's dropout counter.
    public func run(_ images: Tensor, labels: Tensor, totals: Tensor, context: StepContext, learningRate: Float,
                    momentum: Float?, observer: StepObserver? = nil) throws {
        var x = images
        for s in 0..<stageCount {
            let input = x
            x = try forward(input, stage: s, context: context)
            try observer?.forwardEnded(stage: s, input: input, output: x, context: context)
        }
        let (p, g) = try loss(scores: x, labels: labels, totals: totals, training: true)
        try observer?.lossEnded(scores: x, labels: labels, logProbs: p, gradient: g!)
        var gradient = g
        for s in (0..<stageCount).reversed() {
            guard let gradOutput = gradient else { break }
            gradient = try backward(gradOutput, stage: s)
            try observer?.backwardEnded(stage: s, gradOutput: gradOutput, gradInput: gradient)
        }
        try finishGradients()
        try observer?.gradientsFinished()
        try update(learningRate: learningRate, momentum: momentum)
        try observer?.updated()
    }

    /// Adds one batch's loss and correct count to `totals` in inference mode (no gradients).
    public func evaluate(_ images: Tensor, labels: Tensor, totals: Tensor) throws {
        let context = StepContext(mode: .inference)
        let scores = try (0..<stageCount).reduce(images) { try forward($0, stage: $1, context: context) }
        _ = try loss(scores: scores, labels: labels, totals: totals, training: false)
    }

    // MARK: The phases, in the order `run` calls them

    public func forward(_ input: Tensor, stage: Int, context: StepContext) throws -> Tensor {
        try model.forward(input, stage: stage, context: context)
    }

    /// The log-probabilities, and in training the scores' gradient; the loss sum and correct count are
    /// added to `totals`.
    public func loss(scores: Tensor, labels: Tensor, totals: Tensor, training: Bool) throws -> (logProbs: Tensor, gradient: Tensor?) {
        let device = model.device
        let p = try logProbs.tensor(scores.shape, on: device)
        let g = training ? try scoreGradient.tensor(scores.shape, on: device) : nil
        try device.logSoftmaxNLL(scores: scores, labels: labels, logProbs: p, totals: totals, gradient: g)
        return (p, g)
    }

    /// The stage's parameter gradients, and its input's gradient (nil for the first stage, which needs none).
    public func backward(_ gradOutput: Tensor, stage: Int) throws -> Tensor? {
        try model.backward(gradOutput, stage: stage, needInputGradient: stage > 0)
    }

    public func finishGradients() throws { try model.device.finishGradients() }

    public func update(learningRate: Float, momentum: Float?) throws {
        try optimizer.update(model.parameterBuffer, learningRate: learningRate, momentum: momentum)
    }
}

/// Sees each phase of a `TrainingStep.run` as it ends (queued on the device: call `Device.finish`
/// before reading a clock). Every method does nothing unless implemented.
public protocol StepObserver: AnyObject {
    func forwardEnded(stage: Int, input: Tensor, output: Tensor, context: StepContext) throws
    func lossEnded(scores: Tensor, labels: Tensor, logProbs: Tensor, gradient: Tensor) throws
    func backwardEnded(stage: Int, gradOutput: Tensor, gradInput: Tensor?) throws
    func gradientsFinished() throws
    func updated() throws
}

extension StepObserver {
    public func forwardEnded(stage: Int, input: Tensor, output: Tensor, context: StepContext) throws {}
    public func lossEnded(scores: Tensor, labels: Tensor, logProbs: Tensor, gradient: Tensor) throws {}
    public func backwardEnded(stage: Int, gradOutput: Tensor, gradInput: Tensor?) throws {}
    public func gradientsFinished() throws {}
    public func updated() throws {}
}
