import Foundation

/// The learning-rate range test (Smith, 2015; fastai's `lr_find`): training from fresh weights with a
/// learning rate that grows exponentially every step, from `start` to `end`, recording the loss. The
/// loss first falls faster as the rate grows, then flattens and blows up. OneCycle's peak lies between
/// the steepest fall and the lowest loss: `suggestion` takes the middle of the two on the log scale
/// (for lean8k on MNIST 0.3, where a sweep of 0.1–2.0 finds 0.2–0.5 best).
public struct LearningRateFinder {
    public var start: Float = 1e-4, end: Float = 10
    public var steps = 300
    public var batchSize = 128
    public var seed: UInt64 = 1
    /// The weight of the past in the loss's moving average.
    public var smoothing = 0.98
    public init() {}

    public struct Point: Sendable {
        public let learningRate: Double, loss: Double, smoothedLoss: Double
    }

    public struct Result: Sendable {
        public let points: [Point]
        /// The rate where the smoothed loss falls fastest against log(lr).
        public let steepest: Double
        /// The rate of the lowest smoothed loss.
        public let minimum: Double
        /// The suggested OneCycle peak: √(steepest · minimum).
        public var suggestion: Double { (steepest * minimum).squareRoot() }
    }

    /// Runs the test on `spec` with SGD (momentum 0.9) and no augmentation; stops early once the smoothed
    /// loss passes four times its lowest (or is not finite).
    public func run(spec: ModelSpec, device: Device, data: Dataset) throws -> Result {
        guard start > 0, end > start, steps >= 10, batchSize >= 1, (0..<1).contains(smoothing) else {
            throw KilnError("the learning-rate range needs 0 < start < end, at least 10 steps, a batch of 1 or more and smoothing in [0, 1)")
        }
        try Trainer.check(spec, against: data, splits: [("training", data.train)])
        // A smaller batch is not the batch the rate is for: its gradient noise, and so its best rate, differ.
        guard data.train.count >= batchSize else {
            throw KilnError("the range test needs a whole batch of \(batchSize) training images; the data has \(data.train.count): "
                            + "lower the batch size or raise the image limit")
        }
        let step = try TrainingStep(model: Model(spec: spec, device: device, seed: seed),
                                    optimizer: Optimizer(config: OptimizerConfig(kind: .sgd), device: device))
        let split = try DeviceSplit(data.train, on: device)
        let images = TensorSlot(), labels = TensorSlot()
        let totals = try device.allocate([2], .float32)
        let batch = batchSize, perEpoch = split.count / batch
        let growth = pow(Double(end / start), 1 / Double(steps - 1))
        var points: [Point] = [], average = 0.0, lowest = Double.infinity
        for index in 0..<steps {
            if index % perEpoch == 0 {
                var random = HostRandom(seed: seed &+ UInt64(index / perEpoch), stream: RandomStream.shuffle)
                try device.write(random.permutation(split.count), to: split.order)
            }
            let (x, y) = try split.batch(start: index % perEpoch * batch, count: batch, into: images, labels, on: device)
            let rate = Double(start) * pow(growth, Double(index))
            try device.fill(totals, with: 0)
            try step.run(x, labels: y, totals: totals, context: StepContext(mode: .training, step: UInt64(index)),
                         learningRate: Float(rate), momentum: nil)
            let loss = Double(try device.readFloats(totals)[0]) / Double(batch)
            average = smoothing * average + (1 - smoothing) * loss
            let smoothed = average / (1 - pow(smoothing, Double(index + 1)))
            guard smoothed.isFinite, loss.isFinite else { break }
            points.append(Point(learningRate: rate, loss: loss, smoothedLoss: smoothed))
            lowest = min(lowest, smoothed)
            if index > 10, smoothed > 4 * lowest { break }
        }
        guard points.count >= 3 else { throw KilnError("the loss diverged within \(points.count) steps; lower the start rate") }
        let best = points.min { $0.smoothedLoss < $1.smoothedLoss }!
        // The steepest fall before the lowest point, against log(lr), skipping the first steps' noise.
        let head = points.prefix { $0.learningRate <= best.learningRate }
        let skip = min(head.count / 10, 10)
        var steepest = head.first!.learningRate, slope = 0.0
        for (a, b) in zip(head.dropFirst(skip), head.dropFirst(skip + 1)) {
            let s = (b.smoothedLoss - a.smoothedLoss) / (log(b.learningRate) - log(a.learningRate))
            if s < slope { (slope, steepest) = (s, b.learningRate) }
        }
        return Result(points: points, steepest: steepest, minimum: best.learningRate)
    }
}
