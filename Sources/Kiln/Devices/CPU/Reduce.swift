/// Float reductions with 16 SIMD lanes, combined in a fixed order: fast, and the same result every run.
/// `rectify` reads max(x, 0) in place of x (a ReLU folded into batch norm).
enum Reduce {
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ count: Int, rectify: Bool = false) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            acc += load16(p + i, rectify)
            i += 16
        }
        var total = acc.sum()
        while i < count { total += rectified(p[i], rectify); i += 1 }
        return total
    }

    /// Σ (p[i] − mean)²
    @inline(__always)
    static func squaredDeviations(_ p: UnsafePointer<Float>, _ count: Int, mean: Float, rectify: Bool = false) -> Float {
        var acc = SIMD16<Float>()
        let m = SIMD16<Float>(repeating: mean)
        var i = 0
        while i + 16 <= count {
            let d = load16(p + i, rectify) - m
            acc += d * d
            i += 16
        }
        var total = acc.sum()
        while i < count { let d = rectified(p[i], rectify) - mean; total += d * d; i += 1 }
        return total
    }

    /// Σ a[i]·(b[i] − mean)
    @inline(__always)
    static func dotCentered(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int, mean: Float,
                            rectify: Bool = false) -> Float {
        var acc = SIMD16<Float>()
        let m = SIMD16<Float>(repeating: mean)
        var i = 0
        while i + 16 <= count {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            acc += x * (load16(b + i, rectify) - m)
            i += 16
        }
        var total = acc.sum()
        while i < count { total += a[i] * (rectified(b[i], rectify) - mean); i += 1 }
        return total
    }

    /// x, or max(x, 0) when `rectify` (a NaN stays NaN, as in `reluForward`).
    @inline(__always)
    static func rectified(_ x: Float, _ rectify: Bool) -> Float { rectify && x < 0 ? 0 : x }

    @inline(__always)
    static func load16(_ p: UnsafePointer<Float>, _ rectify: Bool) -> SIMD16<Float> {
        let v = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
        return rectify ? v.replacing(with: 0, where: v .< 0) : v
    }
}

extension Reduce {
    /// Σ p[i] accumulated in doubles.
    @inline(__always)
    static func preciseSum(_ p: UnsafePointer<Float>, _ count: Int, rectify: Bool = false) -> Double {
        var acc = SIMD16<Double>()
        var i = 0
        while i + 16 <= count {
            acc += SIMD16<Double>(load16(p + i, rectify))
            i += 16
        }
        var total = acc.sum()
        while i < count { total += Double(rectified(p[i], rectify)); i += 1 }
        return total
    }

    /// Σ (p[i] − mean)² accumulated in doubles.
    @inline(__always)
    static func preciseSquaredDeviations(_ p: UnsafePointer<Float>, _ count: Int, mean: Double, rectify: Bool = false) -> Double {
        var acc = SIMD16<Double>()
        let m = SIMD16<Double>(repeating: mean)
        var i = 0
        while i + 16 <= count {
            let d = SIMD16<Double>(load16(p + i, rectify)) - m
            acc += d * d
            i += 16
        }
        var total = acc.sum()
        while i < count { let d = Double(rectified(p[i], rectify)) - mean; total += d * d; i += 1 }
        return total
    }

    /// Σ a[i]·(b[i] − mean) accumulated in doubles.
    @inline(__always)
    static func preciseDotCentered(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int, mean: Float,
                                   rectify: Bool = false) -> Double {
        var acc = SIMD16<Double>()
        let m = SIMD16<Float>(repeating: mean)
        var i = 0
        while i + 16 <= count {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            acc += SIMD16<Double>(x) * SIMD16<Double>(load16(b + i, rectify) - m)
            i += 16
        }
        var total = acc.sum()
        while i < count { total += Double(a[i]) * Double(rectified(b[i], rectify) - mean); i += 1 }
        return total
    }
}
