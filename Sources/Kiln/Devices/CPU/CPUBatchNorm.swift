/// Batch norm on the CPU: one contiguous row of N·H·W per channel, channels split across threads.
extension CPUDevice {
    public func batchNormTrainingForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                         runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                         output: Tensor, momentum: Float, epsilon: Float, activation: Activation,
                                         sync: BatchNormSync?) throws {
        try checkBatchNorm("batchNormTrainingForward", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar),
                                     ("savedMean", savedMean), ("savedInvStd", savedInvStd)])
        let row = input.rowLength, channels = input.channels
        let (x, y, g, b) = (floats(input), floats(output), floats(gamma), floats(beta))
        let (rm, rv, sm, si) = (floats(runningMean), floats(runningVar), floats(savedMean), floats(savedInvStd))
        /// Channel c's mean and m2 (squared deviations) in two passes: stable where E[x²]−E[x]² is not.
        func statistics(_ c: Int) -> (mean: Float, m2: Float) {
            let mean = Reduce.sum(x + c * row, row, activation: activation) / Float(row)
            return (mean, Reduce.squaredDeviations(x + c * row, row, mean: mean, activation: activation))
        }
        func normalize(_ c: Int, count: Float, mean: Float, m2: Float) {
            let variance = m2 / count, invStd = 1 / (variance + epsilon).squareRoot()
            let scale = g[c] * invStd, shift = b[c] - mean * scale
            Self.affine(x + c * row, y + c * row, row, scale: scale, shift: shift, activation: activation)
            sm[c] = mean
            si[c] = invStd
            let unbiased = count > 1 ? variance * count / (count - 1) : variance
            rm[c] = (1 - momentum) * rm[c] + momentum * mean
            rv[c] = (1 - momentum) * rv[c] + momentum * unbiased
        }
        guard let sync else {
            // Both stages per channel while its row is in cache.
            parallel.chunks(channels) { for c in $0 { let s = statistics(c); normalize(c, count: Float(row), mean: s.mean, m2: s.m2) } }
            return
        }
        // Raw moments summed in doubles: float sums over a long row drift by some 1e-5 (relative), by an
        // amount that depends on how the batch is shared out, and training amplifies the difference.
        var moments = [Double](repeating: 0, count: 3 * channels)
        moments.withUnsafeMutableBufferPointer { p in
            parallel.chunks(channels) {
                for c in $0 {
                    let n = Double(row), sum = Reduce.preciseSum(x + c * row, row, activation: activation), mean = sum / n
                    let m2 = Reduce.preciseSquaredDeviations(x + c * row, row, mean: mean, activation: activation)
                    (p[3 * c], p[3 * c + 1], p[3 * c + 2]) = (n, sum, m2 + n * mean * mean)
                }
            }
        }
        try sync.reduceMoments(&moments)
        parallel.chunks(channels) {
            for c in $0 {
                let n = moments[3 * c], mean = moments[3 * c + 1] / n, m2 = max(0, moments[3 * c + 2] - n * mean * mean)
                normalize(c, count: Float(n), mean: Float(mean), m2: Float(m2))
            }
        }
    }

    public func batchNormInferenceForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                          runningVar: Tensor, output: Tensor, epsilon: Float, activation: Activation) throws {
        try checkBatchNorm("batchNormInferenceForward", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar)])
        let row = input.rowLength
        let (x, y, g, b, rm, rv) = (floats(input), floats(output), floats(gamma), floats(beta),
                                    floats(runningMean), floats(runningVar))
        parallel.chunks(input.channels) { channels in
            for c in channels {
                let scale = g[c] / (rv[c] + epsilon).squareRoot(), shift = b[c] - rm[c] * scale
                Self.affine(x + c * row, y + c * row, row, scale: scale, shift: shift, activation: activation)
            }
        }
    }

    public func batchNormBackward(input: Tensor, gradOutput: Tensor, gamma: Tensor, savedMean: Tensor,
                                  savedInvStd: Tensor, gradInput: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                  activation: Activation, sync: BatchNormSync?) throws {
        try checkBatchNorm("batchNormBackward", input: input, same: [("gradOutput", gradOutput), ("gradInput", gradInput)],
                           vectors: [("gamma", gamma), ("savedMean", savedMean), ("savedInvStd", savedInvStd), ("gradGamma", gradGamma), ("gradBeta", gradBeta)])
        let row = input.rowLength, channels = input.channels
        let (x, dy, dx, g) = (floats(input), floats(gradOutput), floats(gradInput), floats(gamma))
        let (sm, si, dg, db) = (floats(savedMean), floats(savedInvStd), floats(gradGamma), floats(gradBeta))
        /// β's and γ's gradients: Σ dy and Σ dy·x̂ over channel c.
        func sums(_ c: Int) {
            db[c] = Reduce.sum(dy + c * row, row)
            dg[c] = Reduce.dotCentered(dy + c * row, x + c * row, row, mean: sm[c], activation: activation) * si[c]
        }
        // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂))
        func inputGradient(_ c: Int, meanDy: Float, meanDyXhat: Float) {
            let (xc, dyc, dxc) = (x + c * row, dy + c * row, dx + c * row)
            let mean = sm[c], invStd = si[c], k = g[c] * invStd
            // A folded activation: the gradient goes through it as in `activationBackward`.
            for i in 0..<row {
                let xhat = (activation.apply(xc[i]) - mean) * invStd
                let d = k * (dyc[i] - meanDy - xhat * meanDyXhat)
                dxc[i] = activation.gradient(d, at: xc[i])
            }
        }
        guard let sync else {
            parallel.chunks(channels) {
                for c in $0 { sums(c); inputGradient(c, meanDy: db[c] / Float(row), meanDyXhat: dg[c] / Float(row)) }
            }
            return
        }
        // Summed in doubles, as the forward's moments. γ's and β's gradients stay this process's own (the
        // data-parallel average adds them up); the input gradient takes the global batch's sums.
        var global = [Double](repeating: 0, count: 2 * channels)
        global.withUnsafeMutableBufferPointer { p in
            parallel.chunks(channels) {
                for c in $0 {
                    p[2 * c] = Reduce.preciseSum(dy + c * row, row)
                    p[2 * c + 1] = Reduce.preciseDotCentered(dy + c * row, x + c * row, row, mean: sm[c], activation: activation) * Double(si[c])
                    (db[c], dg[c]) = (Float(p[2 * c]), Float(p[2 * c + 1]))
                }
            }
        }
        try sync.reduceGradientSums(&global)
        let n = Double(row)
        parallel.chunks(channels) { for c in $0 { inputGradient(c, meanDy: Float(global[2 * c] / n), meanDyXhat: Float(global[2 * c + 1] / n)) } }
    }

    /// y = x·scale + shift over one channel's row (of act(x)).
    @inline(__always)
    private static func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                               scale: Float, shift: Float, activation: Activation) {
        for i in 0..<count { y[i] = activation.apply(x[i]) * scale + shift }
    }
}
