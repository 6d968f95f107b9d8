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
    /// Σ p[i] accumulated in doubles.
    @inline(__always)
    static func preciseSum(_ p: UnsafePointer<Float>, _ count: Int, activation: Activation = .identity) -> Double {
        var acc = SIMD16<Double>()
        var i = 0
        while i + 16 <= count {
            acc += SIMD16<Double>(load16(p + i, activation))
            i += 16
        }
        var total = acc.sum()
        while i < count { total += Double(activation.apply(p[i])); i += 1 }
        return total
    }

    /// Σ (p[i] − mean)² accumulated in doubles.
    @inline(__always)
    static func preciseSquaredDeviations(_ p: UnsafePointer<Float>, _ count: Int, mean: Double, activation: Activation = .identity) -> Double {
        var acc = SIMD16<Double>()
        let m = SIMD16<Double>(repeating: mean)
        var i = 0
        while i + 16 <= count {
            let d = SIMD16<Double>(load16(p + i, activation)) - m
            acc += d * d
            i += 16
        }
        var total = acc.sum()
        while i < count { let d = Double(activation.apply(p[i])) - mean; total += d * d; i += 1 }
        return total
    }

    /// Σ a[i]·(b[i] − mean) accumulated in doubles.
    @inline(__always)
    static func preciseDotCentered(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int, mean: Float,
                                   activation: Activation = .identity) -> Double {
        var acc = SIMD16<Double>()
        let m = SIMD16<Float>(repeating: mean)
        var i = 0
        while i + 16 <= count {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            acc += SIMD16<Double>(x) * SIMD16<Double>(load16(b + i, activation) - m)
            i += 16
        }
        var total = acc.sum()
        while i < count { total += Double(a[i]) * Double(activation.apply(b[i]) - mean); i += 1 }
        return total
    }
}
