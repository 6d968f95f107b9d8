import Testing
@testable import Kiln

@Suite struct BatchNormTests {
    /// `rectify` folds a ReLU in: the reference normalises max(x, 0) and zeroes the gradient where x ≤ 0.
    @Test(arguments: [(1, 1, 3), (3, 5, 5), (33, 3, 1), (5, 31, 3)], [false, true])
    func trainingForwardBackwardAndRunningStats(shape: (Int, Int, Int), rectify: Bool) throws {
        let (c, n, h) = shape
        let device = CPUDevice()
        let row = n * h * h
        let (x, xv) = try randomTensor(device, [c, n, h, h], bound: 3)
        let (gamma, gv) = try randomTensor(device, [c])
        let (beta, bv) = try randomTensor(device, [c])
        let (dy, dyv) = try randomTensor(device, [c, n, h, h])
        let (rm, rmv) = try randomTensor(device, [c])
        let rvv = randomFloats(c).map { $0 + 1.5 }
        let rv = try tensor(device, [c], rvv)
        let (sm, si) = (try device.allocate([c], .float32), try device.allocate([c], .float32))
        let y = try device.allocate([c, n, h, h], .float32)
        try device.batchNormTrainingForward(input: x, gamma: gamma, beta: beta, runningMean: rm, runningVar: rv, savedMean: sm,
                                            savedInvStd: si, output: y, momentum: 0.1, epsilon: 1e-5, activation: rectify ? .relu : .identity)
        let dx = try device.allocate([c, n, h, h], .float32)
        let (dg, db) = (try device.allocate([c], .float32), try device.allocate([c], .float32))
        try device.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, savedMean: sm, savedInvStd: si, gradInput: dx,
                                     gradGamma: dg, gradBeta: db, activation: rectify ? .relu : .identity)

        var yRef = [Double](), dxRef = [Double](), dgRef = [Double](), dbRef = [Double](), rmRef = [Double](), rvRef = [Double]()
        // The gradients are sums whose terms can be far larger than the result (a rectified channel of a
        // few elements can have σ ≈ 0, so 1/σ is ~300): float32 rounding scales with the terms' absolute
        // size, relative to the result's. Random draws make such channels now and then.
        var inputScale = 1.0, gammaScale = 1.0
        for ch in 0..<c {
            let raw = xv[ch * row..<(ch + 1) * row].map(Double.init), ds = dyv[ch * row..<(ch + 1) * row].map(Double.init)
            let xs = rectify ? raw.map { max($0, 0) } : raw
            let mean = xs.reduce(0, +) / Double(row)
            let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(row)
            let inv = 1 / (variance + 1e-5).squareRoot()
            let xhat = xs.map { ($0 - mean) * inv }
            yRef += xhat.map { $0 * Double(gv[ch]) + Double(bv[ch]) }
            let sumD = ds.reduce(0, +), sumDX = zip(ds, xhat).map(*).reduce(0, +)
            dbRef.append(sumD)
            dgRef.append(sumDX)
            dxRef += zip(zip(ds, xhat), raw).map { pair, x in
                rectify && x <= 0 ? 0 : Double(gv[ch]) * inv / Double(row) * (Double(row) * pair.0 - sumD - pair.1 * sumDX)
            }
            for (i, d) in ds.enumerated() {
                let terms = abs(Double(gv[ch])) * inv / Double(row) * (Double(row) * abs(d) + abs(sumD) + abs(xhat[i] * sumDX))
                inputScale = max(inputScale, terms / max(1, abs(dxRef[dxRef.count - row + i])))
            }
            let gammaTerms = zip(ds, xs).map { abs($0) * (abs($1) + abs(mean)) * inv }.reduce(0, +)
            gammaScale = max(gammaScale, gammaTerms / max(1, abs(sumDX)) / Double(row).squareRoot())
            rmRef.append(0.9 * Double(rmv[ch]) + 0.1 * mean)
            rvRef.append(0.9 * Double(rvv[ch]) + 0.1 * variance * Double(row) / Double(max(row - 1, 1)))
        }
        expectClose(try device.readFloats(y), yRef, terms: row, magnitude: 4, "forward")
        expectClose(try device.readFloats(dx), dxRef, terms: row, magnitude: 8 * inputScale, "backward input")
        expectClose(try device.readFloats(dg), dgRef, terms: row, magnitude: Double(row).squareRoot() * gammaScale,
                    "backward gamma")
        expectClose(try device.readFloats(db), dbRef, terms: row, magnitude: Double(row).squareRoot(), "backward beta")
        expectClose(try device.readFloats(rm), rmRef, terms: row, "running mean")
        if row > 1 { expectClose(try device.readFloats(rv), rvRef, terms: row, magnitude: 4, "running var") }
    }

    @Test(arguments: [false, true])
    func inferenceUsesRunningStatistics(rectify: Bool) throws {
        let device = CPUDevice()
        let (c, n, h) = (3, 5, 3)
        let (x, xv) = try randomTensor(device, [c, n, h, h])
        let (gamma, gv) = try randomTensor(device, [c])
        let (beta, bv) = try randomTensor(device, [c])
        let (rm, rmv) = try randomTensor(device, [c])
        let rvv = randomFloats(c).map { $0 + 1.5 }
        let y = try device.allocate([c, n, h, h], .float32)
        try device.batchNormInferenceForward(input: x, gamma: gamma, beta: beta, runningMean: rm,
                                             runningVar: tensor(device, [c], rvv), output: y, epsilon: 1e-5, activation: rectify ? .relu : .identity)
        let row = n * h * h
        let ref = xv.enumerated().map { i, v -> Double in
            let ch = i / row
            return ((rectify ? max(Double(v), 0) : Double(v)) - Double(rmv[ch])) / (Double(rvv[ch]) + 1e-5).squareRoot() * Double(gv[ch]) + Double(bv[ch])
        }
        expectClose(try device.readFloats(y), ref, terms: 2, magnitude: 4, "inference")
    }
}
