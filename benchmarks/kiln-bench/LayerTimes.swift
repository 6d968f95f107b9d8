import Dispatch
import Kiln

/// Median forward and backward time of one layer, milliseconds per batch.
struct LayerTime: Codable {
    var layer: String
    var forwardMs: Double
    var backwardMs: Double
    enum CodingKeys: String, CodingKey { case layer, forwardMs = "forward_ms", backwardMs = "backward_ms" }
}

/// Median time per stage (a layer, or the layers the device fuses: `Stage`) of forward and backward over
/// `repeats` training steps on one batch; the loss (the final log-softmax with NLL) and the optimizer's
/// update are rows of their own. The device is drained after each phase, which also completes the
/// gradient sums a stage's backward leaves (the real step adds them all up in one launch at its end).
/// `train` is the split the timed runs already uploaded.
func layerTimes(_ spec: ModelSpec, on device: Device, train: DeviceSplit, batch n: Int, repeats: Int) throws -> [LayerTime] {
    let step = try TrainingStep(model: Model(spec: spec, device: device, seed: 1),
                                optimizer: Optimizer(config: OptimizerConfig(kind: .sgd), device: device))
    let (x, labels) = try train.batch(start: 0, count: n, into: TensorSlot(), TensorSlot(), on: device)
    let totals = try device.allocate([2], .float32)
    let clock = PhaseClock(device: device, stages: step.stageCount)
    for index in 0...repeats {  // step 0 warms up
        try device.finish()
        clock.restart(recording: index > 0)
        try step.run(x, labels: labels, totals: totals, context: StepContext(mode: .training, step: UInt64(index)),
                     learningRate: 0.01, momentum: nil, observer: clock)
    }
    let names = try ModelSummary(spec).rows.map(\.name)
    let stages = step.model.stages
    return (0..<step.stageCount).map { s in
        LayerTime(layer: stages[s].nodes.map { names[$0] }.joined(separator: " + "), forwardMs: 1000 * median(clock.forward[s]),
                  backwardMs: 1000 * median(clock.backward[s]))
    } + [LayerTime(layer: "\(names.last!) + NLL loss", forwardMs: 1000 * median(clock.loss), backwardMs: 0),
         LayerTime(layer: "optimizer update", forwardMs: 0, backwardMs: 1000 * median(clock.update))]
}

/// Times each phase of a training step: the device is drained when a phase ends, and the clock read.
final class PhaseClock: StepObserver {
    let device: Device
    var forward: [[Double]], backward: [[Double]], loss: [Double] = [], update: [Double] = []
    private var last: UInt64 = 0, recording = false

    init(device: Device, stages: Int) {
        self.device = device
        forward = Array(repeating: [], count: stages)
        backward = forward
    }

    func restart(recording: Bool) {
        self.recording = recording
        last = DispatchTime.now().uptimeNanoseconds
    }

    /// Seconds since the previous phase ended.
    private func lap() throws -> Double {
        try device.finish()
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        return Double(now - last) / 1e9
    }

    private func record(_ list: inout [Double]) throws {
        let seconds = try lap()
        if recording { list.append(seconds) }
    }

    func forwardEnded(stage: Int, inputs: [Tensor], output: Tensor, context: StepContext) throws { try record(&forward[stage]) }
    func lossEnded(scores: Tensor, labels: Tensor, logProbs: Tensor, gradient: Tensor) throws { try record(&loss) }
    func backwardEnded(stage: Int, gradOutput: Tensor, gradInputs: [Tensor?]) throws { try record(&backward[stage]) }
    func updated() throws { try record(&update) }
}
