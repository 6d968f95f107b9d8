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

    /// Random123's known-answer vectors for philox4x32_10 (its `kat_vectors`): zeros, all ones, and π's
    /// digits as counter and key. Seed 0 on stream 0 is key 0, so `block(0, step: 0)` is the first.
    @Test func philoxMatchesPublishedVectors() {
        let zero = SIMD4<UInt32>(0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8)
        #expect(Philox.rounds(SIMD4(0, 0, 0, 0), key: (0, 0)) == zero)
        #expect(Philox(seed: 0, stream: 0).block(0, step: 0) == zero)
        #expect(Philox.rounds(SIMD4(repeating: 0xFFFF_FFFF), key: (0xFFFF_FFFF, 0xFFFF_FFFF))
                == SIMD4(0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD))
        #expect(Philox.rounds(SIMD4(0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344), key: (0xA409_3822, 0x299F_31D0))
                == SIMD4(0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1))
    }

    /// Masks worked out by hand from the first published block (seed 0, stream 0, step 0): its words'
    /// top 24 bits over 2²⁴ (`Philox.unit`) are 0.399, 0.881, 0.736 and 0.605, so p = 0.5 drops the
    /// first of four decisions (elements, or Dropout2d's (c, n) planes) and scales the rest by 2.
    @Test(arguments: [false, true])
    func dropoutMaskKnownAnswer(channelwise: Bool) throws {
        let device = CPUDevice()
        let (shape, spread) = channelwise ? ([2, 2, 2, 2], 4) : ([4, 1, 1, 1], 1)
        let x = try tensor(device, shape, [Float](repeating: 1, count: 4 * spread))
        let y = try device.allocate(shape, .float32), mask = try device.allocate(shape, .float32)
        try device.dropoutForward(input: x, output: y, mask: mask, probability: 0.5, channelwise: channelwise,
                                  generator: Philox(seed: 0, stream: 0), step: 0)
        let expected: [Float] = [0, 2, 2, 2].flatMap { [Float](repeating: $0, count: spread) }
        #expect(try device.readFloats(mask) == expected)
        #expect(try device.readFloats(y) == expected)
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
