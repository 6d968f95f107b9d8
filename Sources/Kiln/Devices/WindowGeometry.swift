/// Size arithmetic shared by convolution and pooling, on square kernels.
public struct WindowGeometry: Equatable, Sendable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(kernel: Int, stride: Int, padding: Int) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    /// Output length for an input length (floor mode, as PyTorch).
    public func outputSize(_ input: Int) -> Int {
        (input + 2 * padding - kernel) / stride + 1
    }

    /// A 1x1, stride-1, unpadded window: the convolution is a plain GEMM, no im2col.
    public var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
}
