import Foundation

/// Hooks into a run: progress display, logs, checkpoints.
public protocol TrainingCallback: AnyObject {
    func batchEnded(epoch: Int, batch: Int, of batches: Int, trainer: Trainer) throws
    func epochEnded(_ report: EpochReport, trainer: Trainer) throws
}

extension TrainingCallback {
    public func batchEnded(epoch: Int, batch: Int, of batches: Int, trainer: Trainer) throws {}
    public func epochEnded(_ report: EpochReport, trainer: Trainer) throws {}
}

/// Trains a `Model` classifier with NLL loss: per batch, gather → forward → loss → backward →
/// update, all on the model's device. Host and device exchange only the epoch's shuffled order and
/// the loss/accuracy totals.
public final class Trainer {
    public var model: Model { step.model }
    public var optimizer: Optimizer { step.optimizer }
    /// Gathered batches go through this.
    public let step: TrainingStep
    public let options: TrainingOptions
    public let schedule: Schedule
    /// Images in the training split.
    public var trainCount: Int { trainSplit.count }
    /// Epochs finished (a resumed run starts past 0).
    public var completedEpochs = 0
    public var state: TrainingState { TrainingState(options: options, completedEpochs: completedEpochs) }
    /// Seconds from set-up start to the end of `warmUp` (0 until it has run).
    public private(set) var warmupSeconds: Double = 0
    private let setupStart: Date
    private var warmedUp = false
    private let device: Device
    /// The training images and labels on the device (uploaded once).
    public let trainSplit: DeviceSplit
    private let testSplit: DeviceSplit
    private let batch = TensorSlot(), batchLabels = TensorSlot()
    private let totals: Tensor
    /// The moving average of the weights (`options.ema`), updated after every step: each epoch's test
    /// figures are its own, and the trained weights' are reported beside them.
    public let average: ExponentialMovingAverage?
    /// The other ranks of a data-parallel run (nil: this process alone).
    public let parallel: DataParallel?
    private let gradientAverage: DataParallel.GradientAverage?
    /// Data-parallel: what every rank must share, checked once before the first step (`run`).
    private var runFacts: RunFacts?
    /// When set, each step's loss is read back after the step into `lastStep`, for `batchEnded`
    /// callbacks (`--step-log`): a wait on the device every step, so off by default. Data-parallel,
    /// every rank must set it (the loss is summed over the ranks).
    public var recordsSteps = false
    public private(set) var lastStep: StepRecord?
    /// The epoch's totals of the steps recorded so far: the device's are cleared at each read.
    private var recorded: (loss: Float, correct: Float) = (0, 0)

    /// `setupStart` is when device and model set-up began, for the warm-up figure. With `parallel`, this
    /// process is one rank of a data-parallel run: `options.batchSize` is the global batch.
    public init(model: Model, data: Dataset, options: TrainingOptions, setupStart: Date = Date(),
                parallel: DataParallel? = nil) throws {
        try Self.check(model.spec, against: data, splits: [("training", data.train), ("test", data.test)])
        guard options.batchSize >= 1, options.epochs >= 1 else { throw KilnError("batch size and epochs must be at least 1") }
        // Checkpoints record how the inputs were scaled: a loader refuses one that does not say.
        var options = options
        if options.normalization == nil { options.normalization = data.normalization }
        self.options = options
        device = model.device
        step = try TrainingStep(model: model, optimizer: Optimizer(config: options.optimizer, device: device))
        step.labelSmoothing = options.labelSmoothing ?? 0
        trainSplit = try DeviceSplit(data.train, on: device)
        testSplit = try DeviceSplit(data.test, on: device)
        totals = try device.allocate([2], .float32)
        var schedule = Schedule(kind: options.schedule, learningRate: options.learningRate, epochs: options.epochs,
                                stepsPerEpoch: (trainSplit.count + options.batchSize - 1) / options.batchSize)
        schedule.stepSize = options.stepSize
        schedule.gamma = options.gamma
        self.schedule = schedule
        self.setupStart = setupStart
        try parallel?.check(batchSize: options.batchSize, trainCount: trainSplit.count)
        self.parallel = parallel
        gradientAverage = parallel.map { DataParallel.GradientAverage($0, model: model) }
        parallel?.synchronise(model)
        average = try options.ema.map { try ExponentialMovingAverage(of: model, decay: $0) }
        if parallel != nil { runFacts = try Self.facts(model.spec, options, data) }
    }

    /// The model, the options that shape the run (not where the data lives: another host may keep it
    /// elsewhere) and the data itself, for ranks to compare.
    private static func facts(_ spec: ModelSpec, _ options: TrainingOptions, _ data: Dataset) throws -> RunFacts {
        var facts = RunFacts()
        facts.add("the model", "\(spec.name) (spec checksum \(FNV1a.of(Array(try spec.jsonString().utf8)).hex))")
        var shaping = options
        shaping.dataFolder = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let fields = try JSONSerialization.jsonObject(with: encoder.encode(shaping), options: [.fragmentsAllowed]) as? [String: Any] ?? [:]
        for key in fields.keys.sorted() {
            let value = try JSONSerialization.data(withJSONObject: fields[key]!, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
            facts.add("the option \(key)", String(decoding: value, as: UTF8.self))
        }
        facts.add("the classes", "\(data.classes)")
        for (name, split) in [("training", data.train), ("test", data.test)] {
            var pixels = FNV1a(), labels = FNV1a()
            pixels.add(split.images)
            for label in split.labels { labels.add(UInt64(UInt32(bitPattern: label))) }
            facts.add("the \(name) images", "\(split.count) of \(split.shape), checksum \(pixels.hex)")
            facts.add("the \(name) labels' checksum", labels.hex)
        }
        return facts
    }

    /// Compiles every kernel before the first epoch's clock starts (see below); `run` calls it first.
    public func warmUp() throws {
        guard !warmedUp else { return }
        try Self.warmUp(model.spec, on: device, train: trainSplit, test: testSplit, options: options)
        warmupSeconds = Date().timeIntervalSince(setupStart)
        warmedUp = true
    }

    /// One training step and one evaluation batch on a throwaway copy of the model, so every kernel
    /// (CLBlast's GEMMs included) is compiled before the first epoch's clock starts. The real model,
    /// the optimizer and the random streams are untouched.
    private static func warmUp(_ spec: ModelSpec, on device: Device, train: DeviceSplit, test: DeviceSplit,
                               options: TrainingOptions) throws {
        let step = try TrainingStep(model: Model(spec: spec, device: device, seed: options.seed),
                                    optimizer: Optimizer(config: options.optimizer, device: device))
        let images = TensorSlot(), labels = TensorSlot()
        let totals = try device.allocate([2], .float32)
        try device.fill(totals, with: 0)
        let (x, y) = try train.batch(start: 0, count: min(options.batchSize, train.count), into: images, labels, on: device,
                                     augmentation: options.augmentation)
        try step.run(x, labels: y, totals: totals, context: StepContext(mode: .training), learningRate: 0, momentum: nil)
        let (tx, ty) = try test.batch(start: 0, count: min(options.evalBatchSize, test.count), into: images, labels, on: device)
        try step.evaluate(tx, labels: ty, totals: totals)
        _ = try device.readFloats(totals)  // waits for the queue
    }

    /// Trains the remaining epochs, evaluating after each, and reports them to the callbacks; with
    /// `targetAccuracy` (%), stops after the first epoch whose test accuracy reaches it (time to accuracy).
    @discardableResult
    public func run(callbacks: [TrainingCallback] = [], until targetAccuracy: Double? = nil) throws -> [EpochReport] {
        if let parallel, var facts = runFacts {
            // After a resume has loaded its checkpoint: the weights and the place in the run it starts from.
            facts.add("the starting weights' checksum", try DataParallel.checksum(of: model).hex)
            facts.add("the epochs done", "\(completedEpochs) (\(optimizer.step) steps)")
            try parallel.checkAgreement(facts)
            runFacts = nil
        }
        try warmUp()
        var reports: [EpochReport] = []
        while completedEpochs < options.epochs {
            let epoch = completedEpochs + 1
            let learningRate = schedule.at(optimizer.step).learningRate
            let started = Date(), reduceStarted = parallel?.communicator.reduceSeconds ?? 0
            let (loss, accuracy) = try trainEpoch(epoch, callbacks: callbacks)
            let trained = Date(), reduceSeconds = (parallel?.communicator.reduceSeconds ?? 0) - reduceStarted
            if let parallel {
                // Synchronised batch norms' running statistics are the same on every rank already.
                if !parallel.syncBatchNorm {
                    try parallel.averageBuffers(model.namedBuffers.map(\.tensor) + (average?.bufferAverages ?? []), on: device)
                }
                try parallel.checkReplicas(of: model, after: epoch)
            }
            let ownWeights = try evaluate()
            let result = try average?.evaluating { try evaluate() } ?? ownWeights
            // A diverged run stops here, before any callback: the last checkpoint and log stay as they were.
            guard loss.isFinite, ownWeights.loss.isFinite, result.loss.isFinite else {
                let bad = loss.isFinite ? (ownWeights.loss.isFinite ? result.loss : ownWeights.loss) : loss
                throw KilnError("epoch \(epoch): the \(loss.isFinite ? "test" : "training") loss is \(bad.isNaN ? "NaN" : "infinite"): "
                                + "the run diverged (\(Self.divergenceHint(learningRate: learningRate, peak: options.learningRate, options.optimizer)))")
            }
            completedEpochs = epoch
            let seconds = trained.timeIntervalSince(started)
            var report = EpochReport(
                model: model.spec.name, device: device.summary, parameters: try model.spec.parameterCount(),
                epoch: epoch, epochs: options.epochs, batchSize: options.batchSize, threads: device.threads,
                seed: options.seed, learningRate: learningRate, warmupSeconds: warmupSeconds, epochSeconds: seconds,
                imagesPerSecond: Double(trainSplit.count) / seconds, trainLoss: loss, trainAccuracy: accuracy,
                evalSeconds: Date().timeIntervalSince(trained), testLoss: result.loss, testCorrect: result.correct,
                testCount: result.count, testAccuracy: 100 * Double(result.correct) / Double(result.count))
            if let parallel { (report.ranks, report.allReduceSeconds) = (parallel.size, reduceSeconds) }
            report.augmentation = options.augmentation?.summary ?? "off"
            if let average { (report.ema, report.trainedTestLoss, report.trainedTestCorrect) = (average.decay, ownWeights.loss, ownWeights.correct) }
            for callback in callbacks { try callback.epochEnded(report, trainer: self) }
            reports.append(report)
            if let targetAccuracy, report.testAccuracy >= targetAccuracy { break }
        }
        return reports
    }

    /// What to lower after a divergence. SGD's weight decay shrinks each weight by lr·wd per step, so once
    /// that passes 1 the decay itself overshoots zero, whatever the gradients do.
    static func divergenceHint(learningRate: Float, peak: Float, _ optimizer: OptimizerConfig) -> String {
        let decay = optimizer.weightDecay, shrink = peak * decay
        if optimizer.kind == .sgd, shrink >= 1 {
            return "weight decay \(decay) times the peak learning rate \(peak) is \(shrink), over 1: each step overshoots zero; lower the weight decay"
        }
        return "learning rate \(learningRate)" + (decay > 0 ? ", weight decay \(decay)); try a lower learning rate or weight decay" : "); try a lower learning rate")
    }

    /// One pass over the shuffled training set. Returns mean loss and accuracy (%).
    public func trainEpoch(_ epoch: Int, callbacks: [TrainingCallback] = []) throws -> (loss: Double, accuracy: Double) {
        if options.shuffle == TrainingOptions.Shuffle.none {
            try device.write((0..<Int32(trainSplit.count)).map { $0 }, to: trainSplit.order)
        } else {
            var random = HostRandom(seed: options.seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15, stream: RandomStream.shuffle)
            try device.write(random.permutation(trainSplit.count), to: trainSplit.order)
        }
        try device.fill(totals, with: 0)
        recorded = (0, 0)
        let batches = schedule.stepsPerEpoch
        for b in 0..<batches {
            let start = b * options.batchSize, count = min(options.batchSize, trainSplit.count - start)
            try trainStep(start: start, count: count)
            if recordsSteps { try recordStep(epoch: epoch, images: count) }
            for callback in callbacks { try callback.batchEnded(epoch: epoch, batch: b + 1, of: batches, trainer: self) }
        }
        var (loss, correct) = try readTotals()
        if let parallel {
            let sums = try parallel.sum([loss, correct])
            (loss, correct) = (sums[0], sums[1])
        }
        return (loss / Double(trainSplit.count), 100 * correct / Double(trainSplit.count))
    }

    /// One training step on images `start ..< start+count` of the epoch's shuffled order: gather (and
    /// augment), forward, loss (added to the epoch's totals), backward, update. Data-parallel, this rank
    /// takes its shard of those images, and the gradients are averaged over the ranks before the update.
    public func trainStep(start: Int, count: Int) throws {
        let (first, n) = parallel?.shard(start: start, count: count) ?? (start, count)
        let index = parallel?.counter(UInt64(optimizer.step)) ?? UInt64(optimizer.step)
        let (x, labels) = try trainSplit.batch(start: first, count: n, into: batch, batchLabels, on: device,
                                               augmentation: options.augmentation,
                                               generator: Philox(seed: options.seed, stream: RandomStream.augmentation),
                                               step: index)
        let (learningRate, momentum) = schedule.at(optimizer.step)
        parallel?.share = Float(n) / Float(count)
        try step.run(x, labels: labels, totals: totals, context: StepContext(mode: .training, step: index),
                     learningRate: learningRate, momentum: momentum, observer: gradientAverage)
        try average?.update()
    }

    /// Reads the step's loss into `lastStep` and clears the device's totals, so that each read is one
    /// step's; `recorded` adds them up in the order the device would have, so the epoch's totals are
    /// the same floats as without recording.
    private func recordStep(epoch: Int, images: Int) throws {
        let values = try device.readFloats(totals)
        try device.fill(totals, with: 0)
        recorded = (recorded.loss + values[0], recorded.correct + values[1])
        let loss = try parallel?.sum([Double(values[0])])[0] ?? Double(values[0])
        let (learningRate, momentum) = schedule.at(optimizer.step - 1)
        lastStep = StepRecord(epoch: epoch, step: optimizer.step, loss: loss / Double(images), learningRate: learningRate,
                              momentum: momentum)
    }

    /// Loss summed and correct predictions counted so far this epoch (reads two numbers back).
    public func readTotals() throws -> (loss: Double, correct: Double) {
        let values = try device.readFloats(totals)
        return (Double(recorded.loss + values[0]), Double(recorded.correct + values[1]))
    }

    /// Mean NLL and correct count over the test set, in inference mode; data-parallel, each rank
    /// evaluates its shard and the totals are summed.
    public func evaluate() throws -> (loss: Double, correct: Int, count: Int) {
        let (first, n) = parallel?.shard(start: 0, count: testSplit.count) ?? (0, testSplit.count)
        let (loss, correct) = try Self.evaluate(step, on: testSplit, range: first..<first + n, batchSize: options.evalBatchSize,
                                                totals: totals, batch: batch, labels: batchLabels)
        let sums = try parallel?.sum([loss, correct]) ?? [loss, correct]
        return (sums[0] / Double(testSplit.count), Int(sums[1]), testSplit.count)
    }

    /// Refuses a model and data that do not fit each other: the model must classify the data's images
    /// (each split's shape is its input, it ends in log-softmax over its classes at size 1), every label
    /// must be one of its classes, and no split may be empty. Labels that reach fewer classes than the
    /// model scores fit (a 10-class model on data labelled 0 and 1).
    static func check(_ spec: ModelSpec, against data: Dataset, splits: [(name: String, split: Split)]) throws {
        let output = try spec.validate().last!
        guard spec.layers.last?.isLogSoftmax == true, output.size == 1 else {
            throw KilnError("model \(spec.name) must end in logsoftmax over its classes at size 1, it gives \(output)")
        }
        for (name, split) in splits {
            guard split.shape == spec.input else {
                throw KilnError("model \(spec.name) takes \(spec.input) images, the \(name) images of \(data.folder) are \(split.shape)")
            }
            guard split.count > 0 else { throw KilnError("the \(name) split of \(data.folder) has no images") }
            if let bad = split.labels.firstIndex(where: { $0 >= output.channels }) {
                throw KilnError("\(split.labelFile): label \(split.labels[bad]) at index \(bad) is out of range for model \(spec.name)'s "
                                + "\(output.channels) classes (0-\(output.channels - 1))")
            }
        }
    }

    /// The loss summed and the correct predictions counted over images `range` of `split`.
    static func evaluate(_ step: TrainingStep, on split: DeviceSplit, range: Range<Int>, batchSize: Int, totals: Tensor,
                         batch: TensorSlot, labels: TensorSlot) throws -> (loss: Double, correct: Double) {
        let device = step.model.device
        try device.fill(totals, with: 0)
        for start in stride(from: range.lowerBound, to: range.upperBound, by: batchSize) {
            let n = min(batchSize, range.upperBound - start)
            let (x, y) = try split.batch(start: start, count: n, into: batch, labels, on: device)
            try step.evaluate(x, labels: y, totals: totals)
        }
        let values = try device.readFloats(totals)
        return (Double(values[0]), Double(values[1]))
    }
}

/// Evaluates a model on a data set's test split (for `kiln eval`).
public func evaluate(_ model: Model, on data: Dataset, batchSize: Int = 1000) throws -> (loss: Double, correct: Int, count: Int) {
    try Trainer.check(model.spec, against: data, splits: [("test", data.test)])
    let device = model.device
    let step = try TrainingStep(model: model, optimizer: Optimizer(config: OptimizerConfig(kind: .sgd), device: device))
    let split = try DeviceSplit(data.test, on: device)
    let (loss, correct) = try Trainer.evaluate(step, on: split, range: 0..<split.count, batchSize: batchSize,
                                               totals: device.allocate([2], .float32), batch: TensorSlot(), labels: TensorSlot())
    return (loss / Double(split.count), Int(correct), split.count)
}
