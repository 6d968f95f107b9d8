/// What max and average pooling share: a square window's fields (`kernel`, `stride` = kernel,
/// `padding` = 0), its output shape, its part in the receptive field and its reduction length.
public protocol WindowPooling: Op {
    var geometry: WindowGeometry { get }
}

extension WindowPooling {
    /// A pooling layer's kernel, stride (the kernel by default) and padding.
    static func geometry(_ f: SpecFields) throws -> WindowGeometry {
        let kernel = try f.int("kernel")
        return WindowGeometry(kernel: kernel, stride: try f.int("stride", default: kernel), padding: try f.int("padding", default: 0))
    }

    public func encode(to fields: SpecWriter) throws { try fields.set(geometry) }

    /// The padding may be at most half the window, as PyTorch requires.
    public func outputShape(_ input: ImageShape) throws -> ImageShape {
        guard geometry.padding * 2 <= geometry.kernel else {
            throw SpecProblem("padding", "must be at most half the kernel, got \(geometry.padding)")
        }
        return ImageShape(channels: input.channels, size: try geometry.checkedOutputSize(input.size))
    }

    public func window(_ input: ImageShape) -> (kernel: Int, stride: Int)? { (geometry.kernel, geometry.stride) }
    public func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int { geometry.kernel * geometry.kernel }
}
