/// Size arithmetic shared by convolution and pooling, on square kernels. `dilation` and `groups` are a
/// convolution's (PyTorch's `nn.Conv2d`): pooling keeps both at 1.
public struct WindowGeometry: Equatable, Sendable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    /// The spacing of the window's taps: a k×k window spans dilation·(k − 1) + 1 pixels.
    public var dilation: Int
    /// Channel groups: output channel o reads only the input channels of its group (weight [Co, Ci/groups, k, k]).
    public var groups: Int

    public init(kernel: Int, stride: Int, padding: Int, dilation: Int = 1, groups: Int = 1) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    /// The pixels the window spans along an axis.
    public var span: Int { dilation * (kernel - 1) + 1 }

    /// Output length for an input length (floor mode, as PyTorch).
    public func outputSize(_ input: Int) -> Int {
        (input + 2 * padding - span) / stride + 1
    }

    /// A 1x1, stride-1, unpadded, ungrouped window: the convolution is a plain GEMM, no im2col.
    public var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 && groups == 1 }
}
