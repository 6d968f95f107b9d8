/// Batch norm on the CPU: one contiguous row of N·H·W per channel, channels split across threads.
extension CPUDevice {
    public func batchNormTrainingForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                         runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                         output: Tensor, momentum: Float, epsilon: Float, activation: Activation) throws {
        try checkBatchNorm("batchNormTrainingForward", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar),
                                     ("savedMean", savedMean), ("savedInvStd", savedInvStd)])
        let row = input.rowLength, x = floats(input)
        let norm = NormalizeStage(self, input, gamma, beta, runningMean, runningVar, savedMean, savedInvStd, output, momentum,
                                 epsilon, activation)
        // Both stages per channel while its row is in cache. Mean and m2 (squared deviations) in two
        // passes, stable where E[x²]−E[x]² is not, and as precise as doubles (`Reduce.precise*`, as the
        // synchronized path's moments): float sums over a row of N·H·W drift by some 1e-5, and the
        // backward's cancellation turns that into 1e-3 of the convolution's weight step below
        // (benchmarks/pytorch/same_steps.py --float64).
        parallel.chunks(input.channels) {
            for c in $0 {
                let mean = Reduce.preciseSum(x + c * row, row, activation: activation) / Double(row)
                let m2 = Reduce.preciseSquaredDeviations(x + c * row, row, mean: mean, activation: activation)
                norm.apply(c, count: Float(row), mean: Float(mean), m2: Float(m2))
            }
        }
    }

    /// Raw moments summed in doubles: float sums over a long row drift by some 1e-5 (relative), by an
    /// amount that depends on how the batch is shared out, and training amplifies the difference.
    public func batchNormMoments(input: Tensor, activation: Activation) throws -> [Double] {
        try checkBatchNorm("batchNormMoments", input: input, same: [], vectors: [])
        let row = input.rowLength, x = floats(input)
        var moments = [Double](repeating: 0, count: 3 * input.channels)
        moments.withUnsafeMutableBufferPointer { p in
            parallel.chunks(input.channels) {
                for c in $0 {
                    let n = Double(row), sum = Reduce.preciseSum(x + c * row, row, activation: activation), mean = sum / n
                    let m2 = Reduce.preciseSquaredDeviations(x + c * row, row, mean: mean, activation: activation)
                    (p[3 * c], p[3 * c + 1], p[3 * c + 2]) = (n, sum, m2 + n * mean * mean)
                }
            }
        }
        return moments
    }

    public func batchNormNormalize(input: Tensor, moments: [Double], gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                   runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor, output: Tensor,
                                   momentum: Float, epsilon: Float, activation: Activation) throws {
        try checkBatchNorm("batchNormNormalize", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar),
                                     ("savedMean", savedMean), ("savedInvStd", savedInvStd)], moments: (moments.count, 3))
        let norm = NormalizeStage(self, input, gamma, beta, runningMean, runningVar, savedMean, savedInvStd, output, momentum,
                                 epsilon, activation)
        parallel.chunks(input.channels) {
            for c in $0 {
                let s = BatchNormMoments.statistics(moments, c)
                norm.apply(c, count: Float(s.count), mean: Float(s.mean), m2: Float(s.m2))
            }
        }
    }

    /// The second stage of a training forward, per channel, from the channel's count, mean and m2.
    private struct NormalizeStage {
        let x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>
        let b: UnsafeMutablePointer<Float>, rm: UnsafeMutablePointer<Float>, rv: UnsafeMutablePointer<Float>
        let sm: UnsafeMutablePointer<Float>, si: UnsafeMutablePointer<Float>
        let row: Int, momentum: Float, epsilon: Float, activation: Activation

        init(_ d: CPUDevice, _ input: Tensor, _ gamma: Tensor, _ beta: Tensor, _ runningMean: Tensor, _ runningVar: Tensor,
             _ savedMean: Tensor, _ savedInvStd: Tensor, _ output: Tensor, _ momentum: Float, _ epsilon: Float,
             _ activation: Activation) {
            (x, y, g, b) = (d.floats(input), d.floats(output), d.floats(gamma), d.floats(beta))
            (rm, rv, sm, si) = (d.floats(runningMean), d.floats(runningVar), d.floats(savedMean), d.floats(savedInvStd))
            (row, self.momentum, self.epsilon, self.activation) = (input.rowLength, momentum, epsilon, activation)
        }

        /// Normalises channel c, saves its mean and 1/σ, and updates its running statistics as PyTorch does.
        func apply(_ c: Int, count: Float, mean: Float, m2: Float) {
            let variance = m2 / count, invStd = 1 / (variance + epsilon).squareRoot()
            let scale = g[c] * invStd, shift = b[c] - mean * scale
            CPUDevice.affine(x + c * row, y + c * row, row, scale: scale, shift: shift, activation: activation)
            sm[c] = mean
            si[c] = invStd
            let unbiased = count > 1 ? variance * count / (count - 1) : variance
            rm[c] = (1 - momentum) * rm[c] + momentum * mean
            rv[c] = (1 - momentum) * rv[c] + momentum * unbiased
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
                                  activation: Activation) throws {
        try checkBatchNorm("batchNormBackward", input: input, same: [("gradOutput", gradOutput), ("gradInput", gradInput)],
                           vectors: [("gamma", gamma), ("savedMean", savedMean), ("savedInvStd", savedInvStd), ("gradGamma", gradGamma), ("gradBeta", gradBeta)])
        let row = input.rowLength, (x, dy) = (floats(input), floats(gradOutput))
        let (sm, si, dg, db) = (floats(savedMean), floats(savedInvStd), floats(gradGamma), floats(gradBeta))
        let data = InputGradient(self, input, gradOutput, gamma, savedMean, savedInvStd, gradInput, activation)
        let n = Double(row)
        parallel.chunks(input.channels) {
            for c in $0 {
                // β's and γ's gradients, Σ dy and Σ dy·x̂ (precise sums, as the forward's moments), then the
                // input gradient from them.
                let sum = Reduce.preciseSum(dy + c * row, row)
                let dot = Reduce.preciseDotCentered(dy + c * row, x + c * row, row, mean: sm[c], activation: activation) * Double(si[c])
                (db[c], dg[c]) = (Float(sum), Float(dot))
                data.apply(c, meanDy: Float(sum / n), meanDyXhat: Float(dot / n))
            }
        }
    }

    /// Summed in doubles, as the moments; γ's and β's gradients are this process's own sums.
    public func batchNormGradientSums(input: Tensor, gradOutput: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                      gradGamma: Tensor, gradBeta: Tensor, activation: Activation) throws -> [Double] {
        try checkBatchNorm("batchNormGradientSums", input: input, same: [("gradOutput", gradOutput)],
                           vectors: [("savedMean", savedMean), ("savedInvStd", savedInvStd), ("gradGamma", gradGamma), ("gradBeta", gradBeta)])
        let row = input.rowLength, (x, dy) = (floats(input), floats(gradOutput))
        let (sm, si, dg, db) = (floats(savedMean), floats(savedInvStd), floats(gradGamma), floats(gradBeta))
        var sums = [Double](repeating: 0, count: 2 * input.channels)
        sums.withUnsafeMutableBufferPointer { p in
            parallel.chunks(input.channels) {
                for c in $0 {
                    p[2 * c] = Reduce.preciseSum(dy + c * row, row)
                    p[2 * c + 1] = Reduce.preciseDotCentered(dy + c * row, x + c * row, row, mean: sm[c], activation: activation) * Double(si[c])
                    (db[c], dg[c]) = (Float(p[2 * c]), Float(p[2 * c + 1]))
                }
            }
        }
        return sums
    }

    public func batchNormBackwardData(input: Tensor, gradOutput: Tensor, sums: [Double], gamma: Tensor, savedMean: Tensor,
                                      savedInvStd: Tensor, gradInput: Tensor, activation: Activation) throws {
        try checkBatchNorm("batchNormBackwardData", input: input, same: [("gradOutput", gradOutput), ("gradInput", gradInput)],
                           vectors: [("gamma", gamma), ("savedMean", savedMean), ("savedInvStd", savedInvStd)], moments: (sums.count, 2))
        let data = InputGradient(self, input, gradOutput, gamma, savedMean, savedInvStd, gradInput, activation)
        let n = Double(input.rowLength)
        parallel.chunks(input.channels) { for c in $0 { data.apply(c, meanDy: Float(sums[2 * c] / n), meanDyXhat: Float(sums[2 * c + 1] / n)) } }
    }

    /// dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂)) per channel, through a folded activation as in
    /// `activationBackward`.
    private struct InputGradient {
        let x: UnsafeMutablePointer<Float>, dy: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>
        let g: UnsafeMutablePointer<Float>, sm: UnsafeMutablePointer<Float>, si: UnsafeMutablePointer<Float>
        let row: Int, activation: Activation

        init(_ d: CPUDevice, _ input: Tensor, _ gradOutput: Tensor, _ gamma: Tensor, _ savedMean: Tensor, _ savedInvStd: Tensor,
             _ gradInput: Tensor, _ activation: Activation) {
            (x, dy, dx) = (d.floats(input), d.floats(gradOutput), d.floats(gradInput))
            (g, sm, si) = (d.floats(gamma), d.floats(savedMean), d.floats(savedInvStd))
            (row, self.activation) = (input.rowLength, activation)
        }

        func apply(_ c: Int, meanDy: Float, meanDyXhat: Float) {
            let (xc, dyc, dxc) = (x + c * row, dy + c * row, dx + c * row)
            let mean = sm[c], invStd = si[c], k = g[c] * invStd
            // SIMD16 blocks, then the same arithmetic one at a time: the floats are the same either way.
            var i = 0
            while i &+ 16 <= row {
                let x = UnsafeRawPointer(xc + i).loadUnaligned(as: SIMD16<Float>.self)
                let dy = UnsafeRawPointer(dyc + i).loadUnaligned(as: SIMD16<Float>.self)
                let xhat = (activation.apply(x) - mean) * invStd
                let d = k * (dy - meanDy - xhat * meanDyXhat)
                UnsafeMutableRawPointer(dxc + i).storeBytes(of: activation.gradient(d, at: x), as: SIMD16<Float>.self)
                i &+= 16
            }
            while i < row {
                let xhat = (activation.apply(xc[i]) - mean) * invStd
                let d = k * (dyc[i] - meanDy - xhat * meanDyXhat)
                dxc[i] = activation.gradient(d, at: xc[i])
                i &+= 1
            }
        }
    }

    /// y = x·scale + shift over one channel's row (of act(x)).
    @inline(__always)
    fileprivate static func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                                   scale: Float, shift: Float, activation: Activation) {
        var i = 0
        while i &+ 16 <= count {
            let v = Reduce.load16(x + i, activation) * scale + shift
            UnsafeMutableRawPointer(y + i).storeBytes(of: v, as: SIMD16<Float>.self)
            i &+= 16
        }
        while i < count { y[i] = activation.apply(x[i]) * scale + shift; i &+= 1 }
    }
}
