/// The activation functions on the CPU, per value and per 16 lanes: what `activationForward` applies, and
/// batch norm to an activation folded into its input (`Reduce`'s `activation:`).
extension Activation {
    /// act(x); a NaN stays NaN.
    @inline(__always)
    func apply(_ x: Float) -> Float {
        switch self {
        case .identity: x
        case .relu: x < 0 ? 0 : x
        case let .leakyRelu(slope): x < 0 ? x * slope : x
        }
    }

    @inline(__always)
    func apply(_ v: SIMD16<Float>) -> SIMD16<Float> {
        switch self {
        case .identity: v
        case .relu: v.replacing(with: 0, where: v .< 0)
        case let .leakyRelu(slope): v.replacing(with: v * slope, where: v .< 0)
        }
    }

    /// d · act′ where the input (or the output: they are positive together) is `v`.
    @inline(__always)
    func gradient(_ d: Float, at v: Float) -> Float {
        switch self {
        case .identity: d
        case .relu: v > 0 ? d : 0
        case let .leakyRelu(slope): v > 0 ? d : d * slope
        }
    }

    @inline(__always)
    func gradient(_ d: SIMD16<Float>, at v: SIMD16<Float>) -> SIMD16<Float> {
        switch self {
        case .identity: d
        case .relu: d.replacing(with: 0, where: .!(v .> 0))
        case let .leakyRelu(slope): d.replacing(with: d * slope, where: .!(v .> 0))
        }
    }
}
