/// Float reductions with 16 SIMD lanes, combined in a fixed order: fast, and the same result every run.
enum Reduce {
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
            i += 16
        }
        var total = acc.sum()
        while i < count { total += p[i]; i += 1 }
        return total
    }

    /// Σ (p[i] − mean)²
    @inline(__always)
    static func squaredDeviations(_ p: UnsafePointer<Float>, _ count: Int, mean: Float) -> Float {
        var acc = SIMD16<Float>()
        let m = SIMD16<Float>(repeating: mean)
        var i = 0
        while i + 16 <= count {
            let d = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self) - m
            acc += d * d
            i += 16
        }
        var total = acc.sum()
        while i < count { let d = p[i] - mean; total += d * d; i += 1 }
        return total
    }

    /// Σ a[i]·(b[i] − mean)
    @inline(__always)
    static func dotCentered(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int, mean: Float) -> Float {
        var acc = SIMD16<Float>()
        let m = SIMD16<Float>(repeating: mean)
        var i = 0
        while i + 16 <= count {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self) - m
            acc += x * y
            i += 16
        }
        var total = acc.sum()
        while i < count { total += a[i] * (b[i] - mean); i += 1 }
        return total
    }
}
