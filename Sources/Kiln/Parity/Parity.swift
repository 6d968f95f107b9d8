import Foundation

/// Settings of a parity run: the same model, weights, batches and dropout masks on two devices.
public struct ParityOptions: Sendable {
    public var batchSize = 32
    public var steps = 3
    public var seed: UInt64 = 1
    /// A constant SGD learning rate (momentum 0.9), so updated weights are compared too.
    public var learningRate: Float = 0.05
    /// Tolerance on the relative error: `factor · ε · √K`, K the reductions so far (see `Parity`).
    public var factor: Float = 32
    public init() {}
}

/// One compared tensor: after which step, which layer, what, and how far apart.
public struct ParityEntry: Codable, Sendable {
    public let step: Int
    /// The layer's module path: "3", or "3.body.0" inside a residual block.
    public let layer: String
    public let layerType: String
    /// "output", "input gradient", "weight gradient", "weight updated", "running_mean updated", …
    public let quantity: String
    public let maxAbsError: Double
    /// max |reference − device| / scale: the error relative to the tensor's scale, the larger of
    /// max |reference| and `termScale`.
    public let maxRelError: Double
    /// The magnitude of the terms the tensor sums where it may cancel to far less (see `TermScales`); 0 elsewhere.
    public let termScale: Double
    public let tolerance: Double
    public let passed: Bool
    public let count: Int

    enum CodingKeys: String, CodingKey {
        case step, layer, quantity, count, tolerance, passed
        case layerType = "layer_type", maxAbsError = "max_abs_error", maxRelError = "max_rel_error", termScale = "term_scale"
    }
}

public struct ParityReport: Codable, Sendable {
    public let model: String
    public let reference: String
    public let device: String
    public let batchSize: Int
    public let steps: Int
    public let seed: UInt64
    public let entries: [ParityEntry]
    /// Activation inputs inside a fused stage that fell on different sides of zero on the two devices,
    /// a rounding apart (see `Parity`); the device's backward took the reference's side.
    public let activationTies: Int
    public var passed: Bool { entries.allSatisfy(\.passed) }
    /// The first entry over its tolerance, in execution order.
    public var firstFailure: ParityEntry? { entries.first { !$0.passed } }

    enum CodingKeys: String, CodingKey {
        case model, reference, device, steps, seed, entries
        case batchSize = "batch_size", activationTies = "activation_ties"
    }
}

/// Runs K training steps of one model on a reference device (the CPU) and on another device from the
/// same initial weights, the same batches (no augmentation) and the same Philox dropout masks, and
/// compares every layer's output, every gradient and every updated weight as soon as it is computed.
///
/// Each stage (a layer, or the layers a device fuses, see `Stage`) is compared on identical inputs: the
/// device's stage gets a copy of the reference's input to it (forward) and of the reference's gradient
/// (backward); parameter gradients are compared once backward is done; every step starts from the
/// reference's weights and optimizer state. Without this, rounding-level differences flip a ReLU near
/// zero or a max-pool winner upstream and move a whole gradient to another pixel: a real divergence of
/// the trajectories, but not a disagreement of the two devices' primitives, which is what is checked.
/// The same holds inside a stage that fuses a convolution, an activation and a batch norm: the
/// convolution's output it keeps for backward is compared, then replaced by the reference's, so that an
/// activation input a rounding from zero takes the same side on both devices (`activationTies` counts them).
///
/// Tolerance: a float32 result that sums K terms is off by about √K·ε relative to its scale. Each layer
/// (a stage: the longest of its layers') has a reduction length K (`Op.reductionLength`: a convolution's longest
/// sum, Ci·k·k, Co·k·k or N·OH·OW; batch norm's N·H·W; a pooling window; the classes of log-softmax; 1 for
/// element-wise layers and sums), and a tensor passes when
/// max |reference − device| / scale ≤ `factor · ε · √K`. The scale is max |reference|, or the magnitude
/// of the terms summed where that is larger: a sum that cancels (a bias before batch norm) is rounding
/// noise of its terms' size (`TermScales`).
public enum Parity {
    public static func run(spec: ModelSpec, reference: Device, device: Device, data: Dataset,
                           options: ParityOptions) throws -> ParityReport {
        try Trainer.check(spec, against: data, splits: [("training", data.train)])
        let graph = try spec.graph()
        let n = options.batchSize
        guard n >= 1, options.steps >= 1 else { throw KilnError("parity needs a batch size and steps of at least 1") }
        guard data.train.count >= n * options.steps else {
            throw KilnError("parity needs \(n * options.steps) training images, the data has \(data.train.count)")
        }
        let lengths = graph.nodes.map { $0.op.reductionLength(graph.inputShape($0), graph.outputShape($0), batch: n) }
        let steps = try [reference, device].map {
            try TrainingStep(model: Model(spec: spec, device: $0, seed: options.seed),
                             optimizer: Optimizer(config: OptimizerConfig(kind: .sgd), device: $0))
        }
        // Each stage's own input gradient is compared, before it is summed with others' (`OpRegistryTests`
        // compare the sums the convolutions accumulate).
        for step in steps { step.model.accumulatesInPlace = false }
        // Both devices must cut the model into the same stages, so that each stage meets its counterpart.
        guard steps[1].model.stages == steps[0].model.stages else {
            throw KilnError("parity needs a model that both devices run in the same stages")
        }
        let split = try DeviceSplit(data.train, on: reference)
        let images = TensorSlot(), labels = TensorSlot()
        let totals = try [reference, device].map { try $0.allocate([2], .float32) }
        for (d, t) in zip([reference, device], totals) { try d.fill(t, with: 0) }
        let comparison = Comparison(reference: steps[0], device: steps[1], totals: totals[1], lengths: lengths, options: options)
        for step in 0..<options.steps {
            // Every step starts from the reference's state.
            for (r, d) in zip(steps[0].model.layers, steps[1].model.layers) {
                let pairs = zip(r.parameters, d.parameters).flatMap { [($0.value, $1.value)] + zip($0.optimizerState, $1.optimizerState) }
                for (from, to) in pairs + zip(r.buffers.map(\.tensor), d.buffers.map(\.tensor)) {
                    try device.write(reference.readFloats(from), to: to)
                }
            }
            let (x, y) = try split.batch(start: step * n, count: n, into: images, labels, on: reference)
            comparison.step = step
            try steps[0].run(x, labels: y, totals: totals[0], context: StepContext(mode: .training, step: UInt64(step)),
                             learningRate: options.learningRate, momentum: nil, observer: comparison)
        }
        // Loss summed and correct predictions counted over all steps, by the loss primitive on each device.
        let entries = comparison.entries + [
            Self.compare(options.steps - 1, graph.nodes.last!, "loss totals",
                         try reference.readFloats(totals[0]), try device.readFloats(totals[1]), n * options.steps, 0, options),
        ]
        return ParityReport(model: spec.name, reference: reference.summary, device: device.summary, batchSize: n,
                            steps: options.steps, seed: options.seed, entries: entries, activationTies: comparison.activationTies)
    }

    /// Runs the device's step phase by phase as the reference's step ends each phase, on copies of the
    /// reference's inputs to it, and compares the results.
    private final class Comparison: StepObserver {
        let reference: TrainingStep, device: TrainingStep
        let totals: Tensor, lengths: [Int], options: ParityOptions
        var step = 0
        var entries: [ParityEntry] = []
        var activationTies = 0
        /// The device stages' inputs, alive until their backward.
        private var kept: [[Tensor]] = []
        private var terms = TermScales()

        init(reference: TrainingStep, device: TrainingStep, totals: Tensor, lengths: [Int], options: ParityOptions) {
            (self.reference, self.device, self.totals, self.lengths, self.options) = (reference, device, totals, lengths, options)
        }

        /// A copy on the device of a reference tensor.
        func mirror(_ t: Tensor) throws -> Tensor {
            let (from, to) = (reference.model.device, device.model.device)
            let copy = try to.allocate(t.shape, t.dtype)
            if t.dtype == .int32 { try to.write(from.readInts(t), to: copy) } else { try to.write(from.readFloats(t), to: copy) }
            return copy
        }

        /// Compares a result of node i, or of the stage `s` that ends (forward) or starts (backward) at it.
        func compare(_ i: Int, _ quantity: String, _ r: Tensor, _ d: Tensor, stage s: Int? = nil) throws {
            let depth = s.map { reference.model.stages[$0].nodes.map { lengths[$0] }.max()! } ?? lengths[i]
            entries.append(Parity.compare(step, reference.model.graph.nodes[i], quantity, try reference.model.device.readFloats(r),
                                          try device.model.device.readFloats(d), depth, terms.scale(i, quantity), options))
        }

        func forwardEnded(stage s: Int, inputs: [Tensor], output: Tensor, context: StepContext) throws {
            let copies = try inputs.map(mirror)
            kept.append(copies)
            try terms.forwardEnded(reference.model, stage: s, input: inputs[0], output: output)
            try compare(reference.model.stages[s].nodes.upperBound - 1, "output", output,
                        device.forward(copies, stage: s, context: context), stage: s)
            try shareConvolutionOutput(stage: s)
        }

        /// In a fused convolution–batch-norm stage, compares the convolution output each device keeps for
        /// backward, then gives the device the reference's: backward applies the folded activation's
        /// derivative to it, and an input a rounding from zero would otherwise send that element's whole
        /// gradient down the other side on one device.
        private func shareConvolutionOutput(stage s: Int) throws {
            guard let r = reference.model.runner(ofStage: s) as? ConvBatchNorm, let rz = r.convOutput,
                  let dz = (device.model.runner(ofStage: s) as? ConvBatchNorm)?.convOutput else { return }
            let first = reference.model.stages[s].nodes.lowerBound
            try compare(first, "convolution output", rz, dz)
            let (a, b) = try (reference.model.device.readFloats(rz), device.model.device.readFloats(dz))
            if reference.model.stages[s].foldedActivation != .identity {
                activationTies += zip(a, b).count(where: { ($0 > 0) != ($1 > 0) })
            }
            try device.model.device.write(a, to: dz)
        }

        func lossEnded(scores: Tensor, labels: Tensor, logProbs: Tensor, gradient: Tensor) throws {
            let last = reference.model.layers.count - 1
            let (p, g) = try device.loss(scores: mirror(scores), labels: mirror(labels), totals: totals, training: true)
            try compare(last, "output", logProbs, p)
            try compare(last, "input gradient", gradient, g!)
        }

        func backwardEnded(stage s: Int, gradOutput: Tensor, gradInputs: [Tensor?]) throws {
            try terms.backwardEnded(reference.model, stage: s, gradOutput: gradOutput, learningRate: options.learningRate)
            let deviceGradients = try device.backward(mirror(gradOutput), stage: s)
            for (k, (r, d)) in zip(gradInputs, deviceGradients).enumerated() {
                guard let r, let d else { continue }
                let quantity = gradInputs.count > 1 ? "input \(k + 1) gradient" : "input gradient"
                try compare(reference.model.stages[s].nodes.lowerBound, quantity, r, d, stage: s)
            }
        }

        func gradientsFinished() throws {
            kept = []
            try device.finishGradients()
            for (i, (r, d)) in zip(reference.model.layers, device.model.layers).enumerated() {
                for (a, b) in zip(r.parameters, d.parameters) { try compare(i, "\(a.name) gradient", a.gradient, b.gradient) }
            }
        }

        func updated() throws {
            try device.update(learningRate: options.learningRate, momentum: nil)
            for (i, (r, d)) in zip(reference.model.layers, device.model.layers).enumerated() {
                for (a, b) in zip(r.parameters, d.parameters) { try compare(i, "\(a.name) updated", a.value, b.value) }
                for (a, b) in zip(r.buffers, d.buffers) { try compare(i, "\(a.name) updated", a.tensor, b.tensor) }
            }
        }
    }

    fileprivate static func compare(_ step: Int, _ node: ModelGraph.Node, _ quantity: String,
                                _ reference: [Float], _ values: [Float], _ depth: Int, _ terms: Double,
                                _ options: ParityOptions) -> ParityEntry {
        var maxAbs: Double = 0, scale = terms
        var broken = reference.count != values.count
        for (r, v) in zip(reference, values) {
            let difference = abs(Double(r) - Double(v))
            if difference.isNaN { broken = broken || !(r.isNaN && v.isNaN) } else { maxAbs = max(maxAbs, difference) }
            scale = max(scale, abs(Double(r)))
        }
        let relative = broken ? .infinity : maxAbs / max(scale, Double(Float.leastNormalMagnitude))
        let tolerance = Double(options.factor) * Double(Float.ulpOfOne) * Double(depth).squareRoot()
        return ParityEntry(step: step + 1, layer: node.path, layerType: node.layer.typeName, quantity: quantity, maxAbsError: maxAbs,
                           maxRelError: relative, termScale: terms, tolerance: tolerance, passed: relative <= tolerance, count: reference.count)
    }
}
