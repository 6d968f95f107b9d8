import Foundation
import Testing
@testable import Kiln

@Suite struct LossTests {
    /// Label smoothing ε against PyTorch's CrossEntropyLoss(label_smoothing: ε), in doubles: a sample's
    /// loss (1−ε)·(−logp[label]) + ε·meanₖ(−logp[k]), the gradient (softmax − (1−ε)·one-hot − ε/K)/N.
    @Test(arguments: [(1, 0), (3, 0), (31, 0), (1, 0.1), (3, 0.3), (31, 0.1)] as [(Int, Float)])
    func logSoftmaxAndNLL(n: Int, smoothing: Float) throws {
        let device = CPUDevice()
        let k = 10
        let (x, xv) = try randomTensor(device, [k, n, 1, 1], bound: 5)
        let labels = (0..<n).map { Int32($0 * 7 % k) }
        let labelTensor = try device.allocate([n], .int32)
        try device.write(labels, to: labelTensor)
        let y = try device.allocate(x.shape, .float32)
        try device.logSoftmaxForward(input: x, output: y)
        var ref = [Double](repeating: 0, count: k * n)
        for j in 0..<n {
            let column = (0..<k).map { Double(xv[$0 * n + j]) }
            let lse = log(column.map { exp($0) }.reduce(0, +))
            for c in 0..<k { ref[c * n + j] = column[c] - lse }
        }
        expectClose(try device.readFloats(y), ref, terms: k, magnitude: 10, "log softmax")

        let totals = try tensor(device, [2], [0.5, 2])
        let grad = try device.allocate(x.shape, .float32), p = try device.allocate(x.shape, .float32)
        try device.logSoftmaxNLL(scores: x, labels: labelTensor, logProbs: p, totals: totals, gradient: grad, smoothing: smoothing)
        expectClose(try device.readFloats(p), ref, terms: k, magnitude: 10, "log-probabilities of the loss")
        let e = Double(smoothing)
        let loss = (0..<n).map { j in
            (1 - e) * -ref[Int(labels[j]) * n + j] + e * (0..<k).map { -ref[$0 * n + j] }.reduce(0, +) / Double(k)
        }.reduce(0, +)
        let hits = (0..<n).filter { j in (0..<k).max { ref[$0 * n + j] < ref[$1 * n + j] } == Int(labels[j]) }.count
        expectClose(try device.readFloats(totals), [0.5 + loss, 2 + Double(hits)], terms: n, magnitude: 10, "totals accumulate")
        var gradRef = [Double](repeating: 0, count: k * n)
        for j in 0..<n {
            for c in 0..<k { gradRef[c * n + j] = (exp(ref[c * n + j]) - (1 - e) * (c == Int(labels[j]) ? 1 : 0) - e / Double(k)) / Double(n) }
        }
        expectClose(try device.readFloats(grad), gradRef, terms: k, "gradient of the mean loss with respect to the scores")

        let (dy, dyv) = try randomTensor(device, [k, n, 1, 1])
        let dx = try device.allocate(x.shape, .float32)
        try device.logSoftmaxBackward(output: y, gradOutput: dy, gradInput: dx)
        var dxRef = [Double](repeating: 0, count: k * n)
        for j in 0..<n {
            let total = (0..<k).map { Double(dyv[$0 * n + j]) }.reduce(0, +)
            for c in 0..<k { dxRef[c * n + j] = Double(dyv[c * n + j]) - exp(ref[c * n + j]) * total }
        }
        expectClose(try device.readFloats(dx), dxRef, terms: k, magnitude: 4, "log softmax backward")
    }
}
