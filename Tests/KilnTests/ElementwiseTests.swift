import Testing
@testable import Kiln

@Suite struct ElementwiseTests {
    @Test(arguments: [1, 3, 33, 4099])
    func reluForwardBackward(count: Int) throws {
        let device = CPUDevice()
        let (x, xv) = try randomTensor(device, [count, 1, 1, 1])
        let (dy, dyv) = try randomTensor(device, [count, 1, 1, 1])
        let y = try device.allocate(x.shape, .float32), dx = try device.allocate(x.shape, .float32)
        try device.activationForward(input: x, output: y, activation: .relu)
        try device.activationBackward(output: y, gradOutput: dy, gradInput: dx, activation: .relu)
        expectClose(try device.readFloats(y), xv.map { Double(max($0, 0)) }, terms: 1, "relu")
        expectClose(try device.readFloats(dx), zip(xv, dyv).map { $0 > 0 ? Double($1) : 0 }, terms: 1, "relu backward")
    }

    @Test(arguments: [false, true])
    func dropoutMasksFollowPhilox(channelwise: Bool) throws {
        let device = CPUDevice()
        let (c, n, h) = (33, 31, channelwise ? 3 : 1)
        let p: Float = 0.3
        let (x, xv) = try randomTensor(device, [c, n, h, h])
        let y = try device.allocate(x.shape, .float32), mask = try device.allocate(x.shape, .float32)
        let generator = Philox(seed: testSeed, stream: 5)
        try device.dropoutForward(input: x, output: y, mask: mask, probability: p, channelwise: channelwise,
                                  generator: generator, step: 17)
        let spread = h * h
        let expectedMask = (0..<x.count).map { i -> Double in
            let d = i / spread
            return Philox.unit(generator.block(UInt32(d / 4), step: 17)[d % 4]) >= p ? Double(1 / (1 - p)) : 0
        }
        expectClose(try device.readFloats(mask), expectedMask, terms: 1, "mask")
        expectClose(try device.readFloats(y), zip(xv, expectedMask).map { Double($0) * $1 }, terms: 1, "output")
        let dropped = expectedMask.filter { $0 == 0 }.count
        #expect(abs(Double(dropped) / Double(x.count) - Double(p)) < 0.1, "drop rate \(dropped) of \(x.count)")
    }

    @Test func philoxMatchesPublishedVector() {
        // Random123's known-answer test for philox4x32_10 with zero counter and key.
        var zero = Philox(seed: 0, stream: 0)
        zero.key = (0, 0)
        #expect(zero.block(0, step: 0) == SIMD4(0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8))
    }

    @Test func flattenMatchesPyTorchOrder() throws {
        let device = CPUDevice()
        let (c, n, h) = (3, 5, 3)
        let (x, xv) = try randomTensor(device, [c, n, h, h])
        let y = try device.allocate([c * h * h, n, 1, 1], .float32), back = try device.allocate(x.shape, .float32)
        try device.flattenForward(input: x, output: y)
        var ref = [Double](repeating: 0, count: xv.count)
        for ch in 0..<c { for b in 0..<n { for p in 0..<h * h { ref[(ch * h * h + p) * n + b] = Double(xv[(ch * n + b) * h * h + p]) } } }
        expectClose(try device.readFloats(y), ref, terms: 1, "flatten")
        try device.flattenBackward(gradOutput: y, gradInput: back)
        expectClose(try device.readFloats(back), xv.map(Double.init), terms: 1, "unflatten")
    }
}
