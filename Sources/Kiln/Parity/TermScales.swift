/// The magnitude of the terms behind each result parity compares, where the result itself can be far
/// smaller than its terms: a sum that cancels. Rounding noise scales with the terms, not with the sum,
/// so a tolerance taken from the result alone calls noise an error. Sums that cancel are common:
/// - a convolution's bias followed by batch norm: its gradient is the sum of batch norm's input
///   gradient, which is mathematically zero (batch norm subtracts the mean);
/// - batch norm's γ gradient `Σ dy·x̂` when `dy` is constant over a channel (global average pooling
///   at batch 1), and its input gradient, which then vanishes too;
/// - a mean of normalised values (average pooling after batch norm, a running mean after a
///   convolution of zero-mean channels);
/// - group norm's input gradient where `dy` is constant over each group (global average pooling after
///   a group norm of one channel per group).
///
/// Each scale is the 2-norm of the terms of a sum, which is what such a sum comes to when it does not
/// cancel (or a bound of it), read on the reference device. `Parity` compares a tensor against
/// `max(max |result|, scale)`, so results that do not cancel are judged about as before.
struct TermScales {
    /// Per stage, from its forward: what the stage's backward terms are built from.
    private struct Forward {
        var inputMax: Double
        /// The largest root mean square of a channel of the input.
        var inputRMS: Double
        /// Per channel of the stage's batch norm, if it has one: |γ|, 1/σ, max |x̂| and max |x|.
        var gamma: [Double] = [], invStd: [Double] = [], normalizedMax: [Double] = [], normInputMax: [Double] = []
        /// Of a group norm (or layer norm), over all its images and groups: the largest 1/σ, |weight| and |x̂|.
        var groupNorm: (invStd: Double, weight: Double, normalized: Double)?
    }

    private var forwards: [Int: Forward] = [:]
    /// The scale of each quantity of each layer ("weight gradient", "running_mean updated", …).
    private var scales: [Int: [String: Double]] = [:]

    func scale(_ layer: Int, _ quantity: String) -> Double { scales[layer]?[quantity] ?? 0 }

    /// After stage `s`'s forward on the reference: the output scales of its means, and what backward needs.
    mutating func forwardEnded(_ model: Model, stage s: Int, input: Tensor, output: Tensor) throws {
        let stage = model.stages[s], device = model.device
        let x = try device.readFloats(input)
        let rows = Self.rows(x, channels: input.channels)
        var forward = Forward(inputMax: Self.maxAbs(x), inputRMS: rows.map { Self.norm($0) / Double(max($0.count, 1)).squareRoot() }.max() ?? 0)
        let last = stage.nodes.upperBound - 1
        switch model.layers[last] {
        case let norm as BatchNorm2d:
            let y = try device.readFloats(output), row = output.rowLength
            let (gamma, beta) = try (device.readFloats(norm.parameters[0].value), device.readFloats(norm.parameters[1].value))
            let (mean, invStd) = try (device.readFloats(norm.savedMean), device.readFloats(norm.savedInvStd))
            for c in 0..<output.channels {
                // x̂ = (y − β)/γ, read from the output since a fused stage keeps no batch-norm input.
                let g = max(abs(Double(gamma[c])), 1e-12)
                let hat = y[c * row..<(c + 1) * row].reduce(0.0) { max($0, abs(Double($1) - Double(beta[c])) / g) }
                forward.gamma.append(abs(Double(gamma[c])))
                forward.invStd.append(Double(invStd[c]))
                forward.normalizedMax.append(hat)
                forward.normInputMax.append(abs(Double(mean[c])) + hat / max(Double(invStd[c]), 1e-12))
            }
            // The running mean moves by momentum × a mean of the batch norm's input.
            set(last, "running_mean updated", Double(BatchNorm2d.momentum) * (forward.normInputMax.max() ?? 0))
        case let norm as GroupNorm:
            let shape = [input.batch, norm.groups], plane = input.height * input.width, perGroup = input.channels / norm.groups
            let (mean, invStd) = try (device.readFloats(norm.savedMean.tensor(shape, on: device)),
                                      device.readFloats(norm.savedInvStd.tensor(shape, on: device)))
            var normalized = 0.0
            for (i, v) in x.enumerated() {
                let u = i / plane % input.batch * norm.groups + i / (plane * input.batch) / perGroup
                normalized = max(normalized, abs((Double(v) - Double(mean[u])) * Double(invStd[u])))
            }
            forward.groupNorm = (Self.maxAbs(invStd), Self.maxAbs(try device.readFloats(norm.parameters[0].value)), normalized)
        case is AvgPool2d:
            set(last, "output", forward.inputMax)
        default: break
        }
        forwards[s] = forward
    }

    /// After stage `s`'s backward on the reference, from the gradient of its output `dy`.
    mutating func backwardEnded(_ model: Model, stage s: Int, gradOutput: Tensor, learningRate: Float) throws {
        guard let forward = forwards[s] else { return }
        let stage = model.stages[s], device = model.device
        // A per-channel sum runs over the batch's pixels (or images): a row of dy.
        let dy = Self.rows(try device.readFloats(gradOutput), channels: gradOutput.channels)
        let dyMax = dy.map { Self.maxAbs($0) }, dyNorm = dy.map { Self.norm($0) }
        let first = stage.nodes.lowerBound, last = stage.nodes.upperBound - 1
        /// Each parameter's gradient scale, and its update's: the learning rate times it.
        func gradient(_ layer: Int, _ name: String, _ scale: Double) {
            set(layer, "\(name) gradient", scale)
            set(layer, "\(name) updated", Double(learningRate) * scale)
        }
        if let norm = forward.groupNorm {
            // Its input gradient (d − mean d − x̂·mean(d·x̂))/σ with d = dy·weight, which cancels to nothing
            // where dy is constant over a group (after global average pooling): its largest term. Its
            // weight's and bias's gradients sum dy·x̂ and dy over the batch (and the plane).
            set(last, "input gradient", norm.invStd * norm.weight * (dyMax.max() ?? 0) * (2 + norm.normalized))
            gradient(last, "weight", (dyNorm.max() ?? 0) * norm.normalized)
            gradient(last, "bias", dyNorm.max() ?? 0)
            return
        }
        guard model.layers[last] is BatchNorm2d else {
            // A convolution or Linear alone: its bias gradient sums dy over the batch's pixels (or images),
            // its weight gradient dy times the input.
            let parameters = model.layers[first].parameters.count
            if parameters > 0 { gradient(first, "weight", (dyNorm.max() ?? 0) * forward.inputRMS) }
            if parameters > 1 { gradient(first, "bias", dyNorm.max() ?? 0) }
            return
        }
        let channels = forward.gamma.indices
        gradient(last, "bias", dyNorm.max() ?? 0)
        gradient(last, "weight", channels.map { dyNorm[$0] * forward.normalizedMax[$0] }.max() ?? 0)
        // Batch norm's input gradient γ/σ·(dy − mean dy − x̂·mean(dy·x̂)): its largest term, per channel.
        let inputTerms = channels.map { forward.gamma[$0] * forward.invStd[$0] * dyMax[$0] * (2 + forward.normalizedMax[$0]) }
        let largest = inputTerms.max() ?? 0
        let inputTermNorm = channels.map { forward.gamma[$0] * forward.invStd[$0] * dyNorm[$0] * (2 + forward.normalizedMax[$0]) }.max() ?? 0
        if stage.kind == .convolutionBatchNorm, let conv = model.layers[first] as? Conv2d {
            // The convolution's sums run over batch norm's input gradient instead of dy.
            let weight = try device.readFloats(conv.parameters[0].value)
            // An input gradient sums over its group's output channels' windows.
            let window = Double(conv.outChannels / conv.geometry.groups * conv.geometry.kernel * conv.geometry.kernel).squareRoot()
            set(first, "input gradient", window * Self.maxAbs(weight[...]) * largest)
            gradient(first, "weight", inputTermNorm * forward.inputMax)
            if conv.parameters.count > 1 { gradient(first, "bias", inputTermNorm) }
        } else {
            set(first, "input gradient", largest)
        }
    }

    private mutating func set(_ layer: Int, _ quantity: String, _ value: Double) {
        scales[layer, default: [:]][quantity] = value
    }

    private static func maxAbs(_ values: some Collection<Float>) -> Double {
        values.reduce(0.0) { max($0, abs(Double($1))) }
    }

    private static func norm(_ values: ArraySlice<Float>) -> Double {
        values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    }

    /// A [C, …] tensor's values per channel.
    private static func rows(_ values: [Float], channels: Int) -> [ArraySlice<Float>] {
        let row = values.count / max(channels, 1)
        return (0..<channels).map { values[$0 * row..<($0 + 1) * row] }
    }
}
