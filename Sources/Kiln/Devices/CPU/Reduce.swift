/// Float reductions with 16 SIMD lanes, combined in a fixed order: fast, and the same result every run.
/// `activation` reads act(x) in place of x (an activation folded into batch norm).
enum Reduce {
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ count: Int, activation: Activation = .identity) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            acc += load16(p + i, activation)
            i += 16
        }
        var total = acc.sum()
        while i < count { total += activation.apply(p[i]); i += 1 }
        return total
    }

    @inline(__always)
    static func load16(_ p: UnsafePointer<Float>, _ activation: Activation) -> SIMD16<Float> {
        activation.apply(UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self))
    }
}

extension Reduce {
    /// Σ p[i], as precise as a sum in doubles.
    @inline(__always)
    static func preciseSum(_ p: UnsafePointer<Float>, _ count: Int, activation: Activation = .identity) -> Double {
        blockedSum(count, { load16(p + $0, activation) }, { Double(activation.apply(p[$0])) })
    }

    /// Σ (p[i] − mean)², as precise as a sum in doubles (each deviation is taken in floats).
    @inline(__always)
    static func preciseSquaredDeviations(_ p: UnsafePointer<Float>, _ count: Int, mean: Double, activation: Activation = .identity) -> Double {
        let m = SIMD16<Float>(repeating: Float(mean))
        return blockedSum(count, { let d = load16(p + $0, activation) - m; return d * d },
                          { let d = Double(activation.apply(p[$0])) - mean; return d * d })
    }

    /// Σ a[i]·(b[i] − mean), as precise as a sum in doubles.
    @inline(__always)
    static func preciseDotCentered(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int, mean: Float,
                                   activation: Activation = .identity) -> Double {
        let m = SIMD16<Float>(repeating: mean)
        return blockedSum(count, { UnsafeRawPointer(a + $0).loadUnaligned(as: SIMD16<Float>.self) * (load16(b + $0, activation) - m) },
                          { Double(a[$0]) * Double(activation.apply(b[$0]) - mean) })
    }

    /// Σ term(i) over i = 0, 16, 32, … (16 values each), then Σ tail(i) over the last count % 16: float
    /// lanes within runs of 256 values, doubles across runs. A run's 16 additions per lane round by a few
    /// parts in 10⁸ of the run; a row of N·H·W summed in floats drifts by some 1e-5. Doubles throughout
    /// cost batch norm 4% of resnet20's step on baseline x86-64 (SSE2: two doubles per instruction).
    @inline(__always)
    private static func blockedSum(_ count: Int, _ term: (Int) -> SIMD16<Float>, _ tail: (Int) -> Double) -> Double {
        var total = SIMD16<Double>()
        let blocks = count & ~15
        var i = 0
        while i < blocks {
            var run = SIMD16<Float>()
            let end = min(blocks, i + 256)
            while i < end {
                run += term(i)
                i += 16
            }
            total += SIMD16<Double>(run)
        }
        var sum = total.sum()
        while i < count { sum += tail(i); i += 1 }
        return sum
    }
}
