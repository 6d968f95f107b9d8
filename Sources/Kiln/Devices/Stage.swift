/// Consecutive layers of a model that a device runs as one: the unit `Sequential` executes. The
/// device's `plan` cuts a model's layers into stages; fusing never changes what is computed, only
/// how many passes over memory and kernel launches it takes.
public struct Stage: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// One layer on its own.
        case single
        /// ReLU then BatchNorm2d: the batch norm rectifies as it reads, so the ReLU costs nothing.
        case rectifiedBatchNorm
        /// Conv2d, optionally ReLU, then BatchNorm2d: the convolution's primitives run the batch norm
        /// (`conv2dForward`/`conv2dBackward` with a normalization). On OpenCL the convolution computes the
        /// batch statistics' first stage as it writes its output, and its backward reads the batch norm's
        /// input gradient on the fly instead of from memory.
        case convolutionBatchNorm
    }
    /// Indices into the model's layers.
    public let layers: Range<Int>
    public let kind: Kind

    public init(_ layers: Range<Int>, _ kind: Kind) {
        self.layers = layers
        self.kind = kind
    }

    /// Every layer alone: what a plan that fuses nothing gives.
    public static func unfused(_ layers: [LayerSpec]) -> [Stage] {
        layers.indices.map { Stage($0..<$0 + 1, .single) }
    }

    /// The plan both built-in devices use: Conv2d [→ ReLU] → BatchNorm2d fused, else ReLU → BatchNorm2d.
    public static func standard(_ layers: [LayerSpec]) -> [Stage] {
        var stages: [Stage] = [], i = 0
        func isConv(_ j: Int) -> Bool { if j < layers.count, case .conv2d = layers[j] { true } else { false } }
        func at(_ j: Int, _ layer: LayerSpec) -> Bool { j < layers.count && layers[j] == layer }
        while i < layers.count {
            if isConv(i), at(i + 1, .batchNorm2d) {
                stages.append(Stage(i..<i + 2, .convolutionBatchNorm))
            } else if isConv(i), at(i + 1, .relu), at(i + 2, .batchNorm2d) {
                stages.append(Stage(i..<i + 3, .convolutionBatchNorm))
            } else if at(i, .relu), at(i + 1, .batchNorm2d) {
                stages.append(Stage(i..<i + 2, .rectifiedBatchNorm))
            } else {
                stages.append(Stage(i..<i + 1, .single))
            }
            i = stages.last!.layers.upperBound
        }
        return stages
    }
}

extension Device {
    /// Both built-in devices fuse the same layer patterns (the CPU by composing its primitives, OpenCL
    /// with fused kernels), so a model's stages are the same on both and parity compares like with like.
    public func plan(_ layers: [LayerSpec]) -> [Stage] { Stage.standard(layers) }
}
