#if canImport(Glibc)
import Glibc
#endif

/// Log-softmax and NLL over class scores laid out [K, N] (class-major, like every activation).
extension CPUDevice {
    public func logSoftmaxForward(input: Tensor, output: Tensor) throws {
        try checkSameShape("logSoftmaxForward", [("input", input), ("output", output)])
        let (k, n) = (input.channels, input.rowLength)
        let (x, y) = (floats(input), floats(output))
        for j in 0..<n {
            var top = -Float.infinity
            for c in 0..<k { top = max(top, x[c * n + j]) }
            var total: Float = 0
            for c in 0..<k { total += expf(x[c * n + j] - top) }
            let shift = top + logf(total)
            for c in 0..<k { y[c * n + j] = x[c * n + j] - shift }
        }
    }

    public func logSoftmaxBackward(output: Tensor, gradOutput: Tensor, gradInput: Tensor) throws {
        try checkSameShape("logSoftmaxBackward", [("output", output), ("gradOutput", gradOutput), ("gradInput", gradInput)])
        let (k, n) = (output.channels, output.rowLength)
        let (y, dy, dx) = (floats(output), floats(gradOutput), floats(gradInput))
        for j in 0..<n {
            var total: Float = 0
            for c in 0..<k { total += dy[c * n + j] }
            for c in 0..<k { dx[c * n + j] = dy[c * n + j] - expf(y[c * n + j]) * total }
        }
    }

    public func logSoftmaxNLL(scores: Tensor, labels: Tensor, logProbs: Tensor, totals: Tensor, gradient: Tensor?,
                              smoothing: Float) throws {
        try checkLoss(scores: scores, labels: labels, logProbs: logProbs, totals: totals, gradient: gradient, smoothing: smoothing)
        try logSoftmaxForward(input: scores, output: logProbs)
        let (k, n) = (logProbs.channels, logProbs.rowLength)
        let (p, label, out) = (floats(logProbs), ints(labels), floats(totals))
        var loss: Float = 0, correct: Float = 0
        for j in 0..<n {
            let target = Int(label[j])
            var sample = -p[target * n + j]
            if smoothing != 0 {
                var total: Float = 0
                for c in 0..<k { total += p[c * n + j] }
                sample = (1 - smoothing) * sample - smoothing * total / Float(k)
            }
            loss += sample
            var best = 0
            for c in 1..<k where p[c * n + j] > p[best * n + j] { best = c }
            if best == target { correct += 1 }
        }
        out[0] += loss
        out[1] += correct
        guard let gradient else { return }
        // The loss's gradient −q/N through the log-softmax's backward, g − exp(p)·Σg, with Σg = −1/N: the
        // same floats as the two passes gave one after the other. Without smoothing the other classes'
        // term is +0 (not −0·1/N), so ε = 0 gives the NLL's floats exactly.
        let g = floats(gradient), share = -1 / Float(n)
        let off = smoothing / Float(k), labelShare = (1 - smoothing + off) * share, otherShare = smoothing == 0 ? 0 : off * share
        for j in 0..<n {
            for c in 0..<k { g[c * n + j] = (c == Int(label[j]) ? labelShare : otherShare) - expf(p[c * n + j]) * share }
        }
    }
}
