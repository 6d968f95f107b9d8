/// Batch norm on the CPU: one contiguous row of N·H·W per channel, channels split across threads.
extension CPUDevice {
    public func batchNormTrainingForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                         runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                         output: Tensor, momentum: Float, epsilon: Float, rectify: Bool,
                                         sync: BatchNormSync?) throws {
        try checkBatchNorm("batchNormTrainingForward", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar),
                                     ("savedMean", savedMean), ("savedInvStd", savedInvStd)])
        let row = input.rowLength, channels = input.channels
        let (x, y, g, b) = (floats(input), floats(output), floats(gamma), floats(beta))
        let (rm, rv, sm, si) = (floats(runningMean), floats(runningVar), floats(savedMean), floats(savedInvStd))
        /// Channel c's mean and m2 (squared deviations) in two passes: stable where E[x²]−E[x]² is not.
        func statistics(_ c: Int) -> (mean: Float, m2: Float) {
            let mean = Reduce.sum(x + c * row, row, rectify: rectify) / Float(row)
            return (mean, Reduce.squaredDeviations(x + c * row, row, mean: mean, rectify: rectify))
        }
        func normalize(_ c: Int, count: Float, mean: Float, m2: Float) {
            let variance = m2 / count, invStd = 1 / (variance + epsilon).squareRoot()
            let scale = g[c] * invStd, shift = b[c] - mean * scale
            Self.affine(x + c * row, y + c * row, row, scale: scale, shift: shift, rectify: rectify)
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
        var local = [Float](repeating: 0, count: 3 * channels)
        local.withUnsafeMutableBufferPointer { p in
            parallel.chunks(channels) { for c in $0 { let s = statistics(c); (p[3 * c], p[3 * c + 1], p[3 * c + 2]) = (Float(row), s.mean, s.m2) } }
        }
        let global = try sync.globalStatistics(local, channels: channels, parts: 1)
        parallel.chunks(channels) { for c in $0 { normalize(c, count: global[3 * c], mean: global[3 * c + 1], m2: global[3 * c + 2]) } }
    }

    public func batchNormInferenceForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                          runningVar: Tensor, output: Tensor, epsilon: Float, rectify: Bool) throws {
        try checkBatchNorm("batchNormInferenceForward", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar)])
        let row = input.rowLength
        let (x, y, g, b, rm, rv) = (floats(input), floats(output), floats(gamma), floats(beta),
                                    floats(runningMean), floats(runningVar))
        parallel.chunks(input.channels) { channels in
            for c in channels {
                let scale = g[c] / (rv[c] + epsilon).squareRoot(), shift = b[c] - rm[c] * scale
                Self.affine(x + c * row, y + c * row, row, scale: scale, shift: shift, rectify: rectify)
            }
        }
    }

    public func batchNormBackward(input: Tensor, gradOutput: Tensor, gamma: Tensor, savedMean: Tensor,
                                  savedInvStd: Tensor, gradInput: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                  rectify: Bool, sync: BatchNormSync?) throws {
        try checkBatchNorm("batchNormBackward", input: input, same: [("gradOutput", gradOutput), ("gradInput", gradInput)],
                           vectors: [("gamma", gamma), ("savedMean", savedMean), ("savedInvStd", savedInvStd), ("gradGamma", gradGamma), ("gradBeta", gradBeta)])
        let row = input.rowLength, channels = input.channels
        let (x, dy, dx, g) = (floats(input), floats(gradOutput), floats(gradInput), floats(gamma))
        let (sm, si, dg, db) = (floats(savedMean), floats(savedInvStd), floats(gradGamma), floats(gradBeta))
        /// β's and γ's gradients: Σ dy and Σ dy·x̂ over channel c.
        func sums(_ c: Int) {
            db[c] = Reduce.sum(dy + c * row, row)
            dg[c] = Reduce.dotCentered(dy + c * row, x + c * row, row, mean: sm[c], rectify: rectify) * si[c]
        }
        // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂))
        func inputGradient(_ c: Int, sumDy: Float, sumDyXhat: Float) {
            let (xc, dyc, dxc) = (x + c * row, dy + c * row, dx + c * row)
            let mean = sm[c], invStd = si[c]
            let k = g[c] * invStd, meanDy = sumDy / Float(row), meanDyXhat = sumDyXhat / Float(row)
            // Folded ReLU: no gradient flows where its input was ≤ 0 (or NaN), as in `reluBackward`.
            for i in 0..<row {
                let xhat = (Reduce.rectified(xc[i], rectify) - mean) * invStd
                let d = k * (dyc[i] - meanDy - xhat * meanDyXhat)
                dxc[i] = rectify && !(xc[i] > 0) ? 0 : d
            }
        }
        guard let sync else {
            parallel.chunks(channels) { for c in $0 { sums(c); inputGradient(c, sumDy: db[c], sumDyXhat: dg[c]) } }
            return
        }
        // γ's and β's gradients stay this process's own (the data-parallel average adds them up).
        parallel.chunks(channels) { for c in $0 { sums(c) } }
        let global = try sync.globalGradientSums((0..<channels).flatMap { [db[$0], dg[$0]] }, channels: channels, parts: 1)
        parallel.chunks(channels) { for c in $0 { inputGradient(c, sumDy: global[2 * c], sumDyXhat: global[2 * c + 1]) } }
    }

    /// y = x·scale + shift over one channel's row (of max(x, 0) when `rectify`).
    @inline(__always)
    private static func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                               scale: Float, shift: Float, rectify: Bool) {
        for i in 0..<count { y[i] = Reduce.rectified(x[i], rectify) * scale + shift }
    }
}
