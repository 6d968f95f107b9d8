/// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
/// generator. The same (key, counter) gives the same four words on every device, so dropout masks and
/// augmentations drawn on the CPU and in an OpenCL kernel agree bit for bit, and a resumed run draws
/// exactly what an uninterrupted one would.
public struct Philox: Sendable {
    public var key: (UInt32, UInt32)

    /// Streams separate the uses of one seed (each dropout layer, augmentation, initialisation, shuffling).
    public init(seed: UInt64, stream: UInt32) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32) ^ (stream &* 0x9E37_79B9))
    }

    /// Four random words for counter (block, step), where `step` is usually the global training step.
    @inline(__always)
    public func block(_ index: UInt32, step: UInt64) -> SIMD4<UInt32> {
        Self.rounds(SIMD4(index, UInt32(truncatingIfNeeded: step), UInt32(truncatingIfNeeded: step >> 32), 0), key: key)
    }

    /// The ten rounds on a whole 128-bit counter: the function Random123's known-answer vectors give.
    @inline(__always)
    static func rounds(_ counter: SIMD4<UInt32>, key: (UInt32, UInt32)) -> SIMD4<UInt32> {
        var c = counter
        var k0 = key.0, k1 = key.1
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c[0])
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c[2])
            c = SIMD4(UInt32(truncatingIfNeeded: p1 >> 32) ^ c[1] ^ k0, UInt32(truncatingIfNeeded: p1),
                      UInt32(truncatingIfNeeded: p0 >> 32) ^ c[3] ^ k1, UInt32(truncatingIfNeeded: p0))
            k0 = k0 &+ 0x9E37_79B9
            k1 = k1 &+ 0xBB67_AE85
        }
        return c
    }

    /// A word as a float in [0, 1) with 24 random bits: exact in float32 on every device.
    @inline(__always)
    public static func unit(_ word: UInt32) -> Float {
        Float(word >> 8) * (1.0 / 16_777_216.0)
    }
}
