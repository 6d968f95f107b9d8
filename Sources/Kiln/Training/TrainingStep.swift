/// One training step of a classifier, the one place its call order is written: forward stage by stage
/// (`Model.stages`, as the device plans them) up to the class scores; the loss (the final
/// log-softmax with NLL in one primitive, which also gives the scores' gradient); backward through the
/// stages in reverse, summing the gradients that reach a value read by several stages
/// (`ValueGradients`); the gradients finished (`Device.finishGradients`); the optimizer's update.
///
/// The trainer runs it whole (`run`). A `StepObserver` sees each phase as it ends: kiln-bench times the
/// phases, and parity drives a second device's step phase by phase beside the reference's (the phase
/// methods below), comparing as it goes.
public final class TrainingStep {
    public let model: Model
    public let optimizer: Optimizer
    /// The stages before the loss: every stage but the final log-softmax.
    public var stageCount: Int { model.stages.count - 1 }
    /// Label smoothing ε of the training loss (`logSoftmaxNLL`); evaluation's loss is always the plain NLL.
    public var labelSmoothing: Float = 0
    private let logProbs = TensorSlot(), scoreGradient = TensorSlot()

    /// The optimizer creates its state at its first update (evaluation never makes one).
    public init(model: Model, optimizer: Optimizer) throws {
        guard model.graph.nodes.last?.op is LogSoftmaxOp, model.stages.last?.kind == .single else {
            throw KilnError("model \(model.spec.name) must end in logsoftmax to be trained or evaluated with the NLL loss")
        }
        self.model = model
        self.optimizer = optimizer
    }

    /// Trains on one gathered batch: adds its loss and correct count to `totals` [2] and updates the
    /// parameters. `context.step` is the step's dropout counter.
    public func run(_ images: Tensor, labels: Tensor, totals: Tensor, context: StepContext, learningRate: Float,
                    momentum: Float?, observer: StepObserver? = nil) throws {
        let scores = try model.forward(images, through: 0..<stageCount, context: context) { s, inputs, output in
            try observer?.forwardEnded(stage: s, inputs: inputs, output: output, context: context)
        }
        let (p, g) = try loss(scores: scores, labels: labels, totals: totals, training: true)
        try observer?.lossEnded(scores: scores, labels: labels, logProbs: p, gradient: g!)
        try model.backward(g!, through: 0..<stageCount) { s, gradOutput, gradInputs in
            try observer?.backwardEnded(stage: s, gradOutput: gradOutput, gradInputs: gradInputs)
        }
        try finishGradients()
        try observer?.gradientsFinished()
        try update(learningRate: learningRate, momentum: momentum)
        try observer?.updated()
    }

    /// Adds one batch's loss and correct count to `totals` in inference mode (no gradients).
    public func evaluate(_ images: Tensor, labels: Tensor, totals: Tensor) throws {
        let context = StepContext(mode: .inference)
        let scores = try model.forward(images, through: 0..<stageCount, context: context)
        _ = try loss(scores: scores, labels: labels, totals: totals, training: false)
    }

    // MARK: The phases, in the order `run` calls them

    public func forward(_ inputs: [Tensor], stage: Int, context: StepContext) throws -> Tensor {
        try model.forward(inputs, stage: stage, context: context)
    }

    /// The log-probabilities, and in training the scores' gradient; the loss sum (in training smoothed by
    /// `labelSmoothing`) and correct count are added to `totals`.
    public func loss(scores: Tensor, labels: Tensor, totals: Tensor, training: Bool) throws -> (logProbs: Tensor, gradient: Tensor?) {
        let device = model.device
        let p = try logProbs.tensor(scores.shape, on: device)
        let g = training ? try scoreGradient.tensor(scores.shape, on: device) : nil
        try device.logSoftmaxNLL(scores: scores, labels: labels, logProbs: p, totals: totals, gradient: g,
                                 smoothing: training ? labelSmoothing : 0)
        return (p, g)
    }

    /// The stage's parameter gradients, and the gradients it sends the values it reads (none to the
    /// input images).
    public func backward(_ gradOutput: Tensor, stage: Int) throws -> [Tensor?] {
        try model.backward(gradOutput, stage: stage, needInputGradient: model.inputs(ofStage: stage).contains { $0 != 0 })
    }

    public func finishGradients() throws { try model.device.finishGradients() }

    public func update(learningRate: Float, momentum: Float?) throws {
        try optimizer.update(model.parameterBuffer, learningRate: learningRate, momentum: momentum)
    }
}

/// Sees each phase of a `TrainingStep.run` as it ends (queued on the device: call `Device.finish`
/// before reading a clock). Every method does nothing unless implemented.
public protocol StepObserver: AnyObject {
    /// `inputs`: the values the stage read (one, or a residual sum's two).
    func forwardEnded(stage: Int, inputs: [Tensor], output: Tensor, context: StepContext) throws
    func lossEnded(scores: Tensor, labels: Tensor, logProbs: Tensor, gradient: Tensor) throws
    /// `gradInputs`: the gradient the stage sent each value it reads, before any sum with others'.
    func backwardEnded(stage: Int, gradOutput: Tensor, gradInputs: [Tensor?]) throws
    func gradientsFinished() throws
    func updated() throws
}

extension StepObserver {
    public func forwardEnded(stage: Int, inputs: [Tensor], output: Tensor, context: StepContext) throws {}
    public func lossEnded(scores: Tensor, labels: Tensor, logProbs: Tensor, gradient: Tensor) throws {}
    public func backwardEnded(stage: Int, gradOutput: Tensor, gradInputs: [Tensor?]) throws {}
    public func gradientsFinished() throws {}
    public func updated() throws {}
}
