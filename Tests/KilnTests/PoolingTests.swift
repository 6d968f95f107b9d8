import Testing
@testable import Kiln

@Suite struct PoolingTests {
    static let geometries = [WindowGeometry(kernel: 2, stride: 2, padding: 0), WindowGeometry(kernel: 3, stride: 2, padding: 1),
                             WindowGeometry(kernel: 3, stride: 1, padding: 0), WindowGeometry(kernel: 5, stride: 5, padding: 0)]

    @Test(arguments: [(3, 5, 5), (1, 3, 11), (5, 1, 7)], geometries)
    func maxAndAverage(shape: (Int, Int, Int), g: WindowGeometry) throws {
        let (c, n, h) = shape
        guard h + 2 * g.padding >= g.kernel else { return }
        let device = CPUDevice()
        let oh = g.outputSize(h), planes = c * n
        let (x, xv) = try randomTensor(device, [c, n, h, h])
        let (dy, dyv) = try randomTensor(device, [c, n, oh, oh])
        var maxRef = [Double](), avgRef = [Double]()
        var maxGrad = [Double](repeating: 0, count: xv.count), avgGrad = [Double](repeating: 0, count: xv.count)
        for p in 0..<planes { for oy in 0..<oh { for ox in 0..<oh {
            var best = -Double.infinity, at = 0, total = 0.0
            for ky in 0..<g.kernel { for kx in 0..<g.kernel {
                let iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx
                guard iy >= 0, iy < h, ix >= 0, ix < h else { continue }
                let i = p * h * h + iy * h + ix
                if Double(xv[i]) > best { best = Double(xv[i]); at = i }
                total += Double(xv[i])
            } }
            let d = Double(dyv[p * oh * oh + oy * oh + ox])
            maxRef.append(best)
            avgRef.append(total / Double(g.kernel * g.kernel))
            maxGrad[at] += d
            for ky in 0..<g.kernel { for kx in 0..<g.kernel {
                let iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx
                if iy >= 0, iy < h, ix >= 0, ix < h { avgGrad[p * h * h + iy * h + ix] += d / Double(g.kernel * g.kernel) }
            } }
        } } }
        let y = try device.allocate([c, n, oh, oh], .float32), argmax = try device.allocate([c, n, oh, oh], .int32)
        let dx = try device.allocate([c, n, h, h], .float32)
        try device.maxPoolForward(input: x, output: y, argmax: argmax, geometry: g)
        expectClose(try device.readFloats(y), maxRef, terms: 1, "max forward")
        try device.maxPoolBackward(gradOutput: dy, argmax: argmax, gradInput: dx, geometry: g)
        expectClose(try device.readFloats(dx), maxGrad, terms: g.kernel * g.kernel, "max backward")
        try device.avgPoolForward(input: x, output: y, geometry: g)
        expectClose(try device.readFloats(y), avgRef, terms: g.kernel * g.kernel, "avg forward")
        try device.avgPoolBackward(gradOutput: dy, gradInput: dx, geometry: g)
        expectClose(try device.readFloats(dx), avgGrad, terms: g.kernel * g.kernel, "avg backward")
    }

    /// Ties keep the first element of the window and a NaN wins, as PyTorch: on quantised values,
    /// widths that use both the 4-wide path of the 2x2 window and its scalar tail.
    @Test(arguments: [WindowGeometry(kernel: 2, stride: 2, padding: 0), WindowGeometry(kernel: 3, stride: 2, padding: 1)])
    func maxPoolTiesAndNaN(g: WindowGeometry) throws {
        let (c, n, h) = (3, 5, 19)
        let device = CPUDevice()
        let oh = g.outputSize(h)
        var values = (0..<c * n * h * h).map { _ in Float(Int.random(in: 0..<3)) }
        for _ in 0..<7 { values[Int.random(in: 0..<values.count)] = .nan }
        let x = try device.allocate([c, n, h, h], .float32)
        try device.write(values, to: x)
        var expected = [Int32]()
        for p in 0..<c * n { for oy in 0..<oh { for ox in 0..<oh {
            var at = -1
            for ky in 0..<g.kernel { for kx in 0..<g.kernel {
                let iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx
                guard iy >= 0, iy < h, ix >= 0, ix < h else { continue }
                let v = values[p * h * h + iy * h + ix]
                if at < 0 || !(v <= values[p * h * h + at]) { at = iy * h + ix }
            } }
            expected.append(Int32(at))
        } } }
        let y = try device.allocate([c, n, oh, oh], .float32), argmax = try device.allocate([c, n, oh, oh], .int32)
        try device.maxPoolForward(input: x, output: y, argmax: argmax, geometry: g)
        let (indices, outputs) = (try device.readInts(argmax), try device.readFloats(y))
        let wrong = zip(indices, expected).filter { $0 != $1 }.count
        #expect(indices.count == expected.count && wrong == 0, "\(wrong) of \(expected.count) argmax indices differ")
        let plane = oh * oh
        #expect(outputs.indices.allSatisfy { i in
            let v = values[(i / plane) * h * h + Int(expected[i])]
            return v.isNaN ? outputs[i].isNaN : outputs[i] == v
        })
    }
}
