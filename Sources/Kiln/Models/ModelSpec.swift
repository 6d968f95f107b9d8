/// The shape of one image: channels × size × size (Kiln's images are square).
public struct ImageShape: Equatable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var size: Int
    public init(channels: Int, size: Int) { self.channels = channels; self.size = size }
    public var description: String { "[\(channels), \(size), \(size)]" }
}

/// One layer of a model description, before it is built on a device.
public enum LayerSpec: Equatable, Sendable {
    case conv2d(out: Int, kernel: Int, stride: Int, padding: Int, bias: Bool)
    case batchNorm2d
    case relu
    case maxPool2d(WindowGeometry)
    case avgPool2d(WindowGeometry)
    case globalAvgPool
    case dropout(Float)
    case dropout2d(Float)
    case flatten
    case linear(out: Int, bias: Bool)
    case logSoftmax

    /// The name used in JSON specs.
    public var typeName: String {
        switch self {
        case .conv2d: "conv2d"
        case .batchNorm2d: "batchnorm2d"
        case .relu: "relu"
        case .maxPool2d: "maxpool2d"
        case .avgPool2d: "avgpool2d"
        case .globalAvgPool: "globalavgpool"
        case .dropout: "dropout"
        case .dropout2d: "dropout2d"
        case .flatten: "flatten"
        case .linear: "linear"
        case .logSoftmax: "logsoftmax"
        }
    }

    /// The PyTorch module this layer matches, as torchsummary names it.
    public var torchName: String {
        switch self {
        case .conv2d: "Conv2d"
        case .batchNorm2d: "BatchNorm2d"
        case .relu: "ReLU"
        case .maxPool2d: "MaxPool2d"
        case .avgPool2d: "AvgPool2d"
        case .globalAvgPool: "AdaptiveAvgPool2d"
        case .dropout: "Dropout"
        case .dropout2d: "Dropout2d"
        case .flatten: "Flatten"
        case .linear: "Linear"
        case .logSoftmax: "LogSoftmax"
        }
    }
}

/// A `Sequential` model: an input shape and a list of layers. Check it with `validate()`.
public struct ModelSpec: Equatable, Sendable {
    public var name: String
    public var input: ImageShape
    public var layers: [LayerSpec]

    public init(name: String, input: ImageShape, layers: [LayerSpec]) {
        self.name = name
        self.input = input
        self.layers = layers
    }

    /// Each layer's output shape; throws one line naming the first layer that cannot be built.
    public func validate() throws -> [ImageShape] {
        guard input.channels >= 1, input.size >= 1 else { throw KilnError("\(name): input \(input) must be positive") }
        guard let inputElements = byteCount([input.channels, input.size, input.size]), inputElements <= Self.sizeLimit else {
            throw KilnError("\(name): input \(input) has more than 2^31 elements per image")
        }
        guard !layers.isEmpty else { throw KilnError("\(name): no layers") }
        var shape = input, shapes: [ImageShape] = []
        for (i, layer) in layers.enumerated() {
            func fail(_ field: String, _ problem: String) -> KilnError {
                KilnError("\(name): layer \(i) (\(layer.typeName)): \(field) \(problem)")
            }
            func window(_ g: WindowGeometry) throws -> Int {
                guard g.kernel >= 1 else { throw fail("kernel", "must be at least 1, got \(g.kernel)") }
                guard g.stride >= 1 else { throw fail("stride", "must be at least 1, got \(g.stride)") }
                guard g.padding >= 0 else { throw fail("padding", "must not be negative, got \(g.padding)") }
                let out = g.outputSize(shape.size)
                guard shape.size + 2 * g.padding >= g.kernel, out >= 1 else {
                    throw fail("kernel", "\(g.kernel) does not fit the \(shape.size)x\(shape.size) input with padding \(g.padding): the output would shrink below 1")
                }
                return out
            }
            switch layer {
            case let .conv2d(out, kernel, stride, padding, _):
                guard out >= 1 else { throw fail("out", "must be at least 1, got \(out)") }
                shape = ImageShape(channels: out, size: try window(WindowGeometry(kernel: kernel, stride: stride, padding: padding)))
            case let .maxPool2d(g), let .avgPool2d(g):
                guard g.padding * 2 <= g.kernel else { throw fail("padding", "must be at most half the kernel, got \(g.padding)") }
                shape.size = try window(g)
            case .globalAvgPool:
                shape.size = 1
            case let .dropout(p), let .dropout2d(p):
                guard p >= 0, p < 1 else { throw fail("p", "must be in [0, 1), got \(p)") }
            case .flatten:
                shape = ImageShape(channels: shape.channels * shape.size * shape.size, size: 1)
            case let .linear(out, _):
                guard shape.size == 1 else { throw fail("input", "is \(shape): put a flatten (or globalavgpool) before linear") }
                guard out >= 1 else { throw fail("out", "must be at least 1, got \(out)") }
                shape.channels = out
            case .batchNorm2d, .relu, .logSoftmax:
                break
            }
            // Sizes past 2³¹ elements exceed every device's indices (and memory): refused before any arithmetic
            // on them can overflow.
            guard let elements = byteCount([shape.channels, shape.size, shape.size]), elements <= Self.sizeLimit else {
                throw fail("output", "\(shape) has more than 2^31 elements per image")
            }
            let parameters = Self.parameterShapes(layer, input: i == 0 ? input : shapes[i - 1]).map { byteCount($0.shape) }
            guard parameters.allSatisfy({ $0.map { $0 <= Self.sizeLimit } ?? false }) else {
                throw fail("parameters", "number more than 2^31")
            }
            shapes.append(shape)
        }
        return shapes
    }

    /// The most elements an activation (per image) or one parameter tensor may have.
    static let sizeLimit = 1 << 31

    /// A layer's learnable parameters given its input shape: PyTorch's names and shapes, in `state_dict` order.
    public static func parameterShapes(_ layer: LayerSpec, input: ImageShape) -> [(name: String, shape: [Int])] {
        switch layer {
        case let .conv2d(out, k, _, _, bias): [("weight", [out, input.channels, k, k])] + (bias ? [("bias", [out])] : [])
        case let .linear(out, bias): [("weight", [out, input.channels])] + (bias ? [("bias", [out])] : [])
        case .batchNorm2d: [("weight", [input.channels]), ("bias", [input.channels])]
        default: []
        }
    }

    /// Learnable parameters of a layer given its input shape.
    public static func parameterCount(_ layer: LayerSpec, input: ImageShape) -> Int {
        parameterShapes(layer, input: input).reduce(0) { $0 + $1.shape.reduce(1, *) }
    }

    public func parameterCount() throws -> Int {
        let shapes = try validate()
        return zip(layers, [input] + shapes).reduce(0) { $0 + Self.parameterCount($1.0, input: $1.1) }
    }
}
