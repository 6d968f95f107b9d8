/// Batch norm on the CPU: one contiguous row of N·H·W per channel, channels split across threads.
extension CPUDevice {
    public func batchNormTrainingForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                         runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                         output: Tensor, momentum: Float, epsilon: Float, rectify: Bool) throws {
        try checkBatchNorm("batchNormTrainingForward", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar),
                                     ("savedMean", savedMean), ("savedInvStd", savedInvStd)])
        let row = input.rowLength
        let (x, y, g, b) = (floats(input), floats(output), floats(gamma), floats(beta))
        let (rm, rv, sm, si) = (floats(runningMean), floats(runningVar), floats(savedMean), floats(savedInvStd))
        parallel.chunks(input.channels) { channels in
            for c in channels {
                let xc = x + c * row, yc = y + c * row
                // Two passes (mean, then squared deviations): stable where E[x²]−E[x]² is not.
                let mean = Reduce.sum(xc, row, rectify: rectify) / Float(row)
                let variance = Reduce.squaredDeviations(xc, row, mean: mean, rectify: rectify) / Float(row)
                let invStd = 1 / (variance + epsilon).squareRoot()
                let scale = g[c] * invStd, shift = b[c] - mean * scale
                Self.affine(xc, yc, row, scale: scale, shift: shift, rectify: rectify)
                sm[c] = mean
                si[c] = invStd
                let unbiased = row > 1 ? variance * Float(row) / Float(row - 1) : variance
                rm[c] = (1 - momentum) * rm[c] + momentum * mean
                rv[c] = (1 - momentum) * rv[c] + momentum * unbiased
            }
        }
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
                                  rectify: Bool) throws {
        try checkBatchNorm("batchNormBackward", input: input, same: [("gradOutput", gradOutput), ("gradInput", gradInput)],
                           vectors: [("gamma", gamma), ("savedMean", savedMean), ("savedInvStd", savedInvStd), ("gradGamma", gradGamma), ("gradBeta", gradBeta)])
        let row = input.rowLength
        let (x, dy, dx, g) = (floats(input), floats(gradOutput), floats(gradInput), floats(gamma))
        let (sm, si, dg, db) = (floats(savedMean), floats(savedInvStd), floats(gradGamma), floats(gradBeta))
        parallel.chunks(input.channels) { channels in
            for c in channels {
                let xc = x + c * row, dyc = dy + c * row, dxc = dx + c * row
                let mean = sm[c], invStd = si[c]
                let sumDy = Reduce.sum(dyc, row)
                let sumDyXhat = Reduce.dotCentered(dyc, xc, row, mean: mean, rectify: rectify) * invStd
                db[c] = sumDy
                dg[c] = sumDyXhat
                // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂))
                let k = g[c] * invStd, meanDy = sumDy / Float(row), meanDyXhat = sumDyXhat / Float(row)
                // Folded ReLU: no gradient flows where its input was ≤ 0 (or NaN), as in `reluBackward`.
                for i in 0..<row {
                    let xhat = (Reduce.rectified(xc[i], rectify) - mean) * invStd
                    let d = k * (dyc[i] - meanDy - xhat * meanDyXhat)
                    dxc[i] = rectify && !(xc[i] > 0) ? 0 : d
                }
            }
        }
    }

    /// y = x·scale + shift over one channel's row (of max(x, 0) when `rectify`).
    @inline(__always)
    private static func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                               scale: Float, shift: Float, rectify: Bool) {
        for i in 0..<count { y[i] = Reduce.rectified(x[i], rectify) * scale + shift }
    }
}
