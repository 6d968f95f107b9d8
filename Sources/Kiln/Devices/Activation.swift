/// An element-wise activation function, as the primitives take it: the activation layer's
/// (`ActivationOp`), and the one a fused batch norm applies to its input (a ReLU before a batch norm). Each is
/// x above zero and `slope`·x below, which is what the OpenCL kernels take; the CPU's loops switch on
/// the case (`CPUActivation.swift`).
public enum Activation: Sendable, Equatable {
    case identity, relu
    /// x below zero scaled by `slope` (≥ 0), as `nn.LeakyReLU(negative_slope=slope)`.
    case leakyRelu(slope: Float)

    /// The factor below zero.
    public var slope: Float {
        switch self {
        case .identity: 1
        case .relu: 0
        case let .leakyRelu(slope): slope
        }
    }
}
