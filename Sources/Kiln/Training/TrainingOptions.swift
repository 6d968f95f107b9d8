/// Everything that shapes a training run.
public struct TrainingOptions: Codable, Equatable, Sendable {
    public var epochs = 15
    public var batchSize = 128
    public var optimizer = OptimizerConfig(kind: .sgd)
    public var schedule = Schedule.Kind.onecycle
    /// StepLR: epochs between decays, and the factor.
    public var stepSize = 5
    public var gamma: Float = 0.1
    public var learningRate: Float = 0.3
    public var augmentation: Augmentation? = Augmentation(maxDegrees: 7, maxShift: 1)
    public var seed: UInt64 = 1
    /// Test-set batch size: larger is faster, and the result does not depend on it.
    public var evalBatchSize = 1000
    /// Where the data came from and how much of the training split was used, so that a resumed run
    /// trains on the same (nil in checkpoints from before they were recorded).
    public var dataFolder: String?
    public var trainLimit: Int?
    /// The data's per-channel normalisation (nil in checkpoints from before it was recorded: MNIST's),
    /// so that evaluation and a resumed run normalise as training did.
    public var normalization: Normalization?
    /// Label smoothing ε of the training loss (nil: none, as in checkpoints from before it existed).
    public var labelSmoothing: Float?
    /// The order of the training images in each epoch (nil: `.random`, as before it could be chosen).
    public var shuffle: Shuffle?
    /// The decay of an exponential moving average of the weights, which the run evaluates, saves and
    /// exports (nil: none, as in checkpoints from before it existed).
    public var ema: Float?

    public init() {}

    /// `.random`: a new permutation every epoch, from the seed; `.none`: the data set's order every epoch.
    public enum Shuffle: String, Codable, Sendable, CaseIterable { case random, none }
}

/// What a run has done beyond its tensors, saved in checkpoints so that a resumed run continues it.
public struct TrainingState: Equatable, Sendable {
    /// nil in checkpoints written outside a training run.
    public var options: TrainingOptions?
    public var completedEpochs: Int

    public init(options: TrainingOptions?, completedEpochs: Int) {
        self.options = options
        self.completedEpochs = completedEpochs
    }
}
