/// Model random numbers on the host (weight initialisation, shuffling), drawn from Philox so a
/// seed means the same thing everywhere in Kiln.
public struct HostRandom {
    private let generator: Philox
    private var counter: UInt64 = 0
    private var words = SIMD4<UInt32>()
    private var used = 4

    public init(seed: UInt64, stream: UInt32) { generator = Philox(seed: seed, stream: stream) }

    public mutating func next() -> UInt32 {
        if used == 4 {
            words = generator.block(UInt32(truncatingIfNeeded: counter), step: counter >> 32)
            counter += 1
            used = 0
        }
        used += 1
        return words[used - 1]
    }

    /// `count` floats uniform in [−bound, bound).
    public mutating func uniform(_ count: Int, bound: Float) -> [Float] {
        (0..<count).map { _ in (Philox.unit(next()) * 2 - 1) * bound }
    }

    /// A uniformly random permutation of 0..<count (Fisher–Yates).
    public mutating func permutation(_ count: Int) -> [Int32] {
        var order = (0..<Int32(count)).map { $0 }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int((UInt64(next()) * UInt64(i + 1)) >> 32)
            order.swapAt(i, j)
        }
        return order
    }
}

/// Philox streams: one purpose each, so no two uses of a seed draw the same numbers.
enum RandomStream {
    static let initialisation: UInt32 = 1
    static let shuffle: UInt32 = 2
    static let augmentation: UInt32 = 3
    /// `Dataset.synthetic`'s images and labels.
    static let syntheticData: UInt32 = 4
    /// Dropout layer i uses `dropout + i`.
    static let dropout: UInt32 = 1000
}
