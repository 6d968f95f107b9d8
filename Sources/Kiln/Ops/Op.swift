/// One kind of layer, and everything Kiln knows about it in one place: its name and fields in the JSON
/// spec, its shape inference and checks, its parameters with PyTorch's names, the layer that runs it on
/// a device (forward and backward), its ONNX node, its summary figures and its parity reduction length.
///
/// A new layer is a type conforming to `Op` in a file of its own, listed in `OpRegistry`, with the
/// primitives it calls on each device. `OpRegistryTests` then checks its gradients by finite
/// differences and its CPU↔OpenCL parity.
public protocol Op: Sendable {
    /// The JSON `type` names the op reads (an activation reads one per function).
    static var typeNames: [String] { get }
    /// Reads one layer of a spec; `fields.type` is one of `typeNames`. Fields are checked for type here,
    /// for fit against the input in `outputShape`.
    init(_ fields: SpecFields) throws
    /// The JSON `type` this instance writes.
    var typeName: String { get }
    /// The PyTorch module it matches, as torchsummary names it.
    var torchName: String { get }
    /// Writes its fields besides `type`, in the form `init(_:)` reads.
    func encode(to fields: SpecWriter) throws

    /// The output shape for `input`, or a `SpecProblem` naming the field that does not fit.
    func outputShape(_ input: ImageShape) throws -> ImageShape
    /// Learnable parameters for `input`: PyTorch's names and shapes, in `state_dict` order.
    func parameterShapes(_ input: ImageShape) -> [(name: String, shape: [Int])]
    /// The window it slides over its input, for the receptive field: nil for element-wise ops.
    func window(_ input: ImageShape) -> (kernel: Int, stride: Int)?
    /// Multiply-accumulates per image in the forward pass.
    func macs(_ input: ImageShape, _ output: ImageShape) -> Int
    /// The longest sum one of its primitives computes at batch `batch` (parity's tolerance grows with √K).
    func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int

    /// What the device's plan sees of it (the fusions it may take part in).
    var planKind: PlanNode.Kind { get }
    /// The layer that runs it on `context.device`.
    func makeLayer(_ context: LayerContext) throws -> Layer
    /// Its ONNX node at inference; nil when it is the identity there (dropout).
    func exportNode(_ input: ImageShape) -> ExportNode?

    /// Instances on odd input sizes that the tests check for every op in the registry: gradients by
    /// finite differences, and CPU↔OpenCL parity forward and backward (`OpRegistryTests`).
    static var examples: [(layer: LayerSpec, input: ImageShape)] { get }
}

extension Op {
    public func parameterShapes(_ input: ImageShape) -> [(name: String, shape: [Int])] { [] }
    public var planKind: PlanNode.Kind { .other }
    public func window(_ input: ImageShape) -> (kernel: Int, stride: Int)? { nil }
    public func macs(_ input: ImageShape, _ output: ImageShape) -> Int { 0 }
    public func reductionLength(_ input: ImageShape, _ output: ImageShape, batch: Int) -> Int { 1 }
    public func encode(to fields: SpecWriter) throws {}

    /// Learnable parameters for `input`.
    public func parameterCount(_ input: ImageShape) -> Int {
        parameterShapes(input).reduce(0) { $0 + $1.shape.reduce(1, *) }
    }
}

/// A field of a layer that does not fit its input: `ModelGraph` names the layer and model around it.
public struct SpecProblem: Error {
    public let field: String, problem: String
    public init(_ field: String, _ problem: String) { (self.field, self.problem) = (field, problem) }
}

/// What a layer is built with: its device, input shape, parameters, the initialisation stream, and the
/// fusion the device's plan chose around it.
public final class LayerContext {
    public let device: Device
    public let input: ImageShape
    /// The layer's parameters as the model's `ParameterBuffer` laid them out (`parameterShapes`' order).
    public let parameters: [Parameter]
    /// PyTorch's default initialisation draws from here, layer after layer in the model's order.
    public var random: HostRandom
    /// The run's seed and the layer's position in the model, for layers with random streams of their own.
    public let seed: UInt64, position: Int
    /// The layer's module path ("3.body.0"), for its errors.
    public let path: String
    /// An activation folded into this layer's input by the plan (a batch norm after a ReLU, see `Stage`).
    public let inputActivation: Activation

    init(device: Device, input: ImageShape, parameters: [Parameter], random: HostRandom, seed: UInt64, position: Int,
         path: String, inputActivation: Activation) {
        (self.device, self.input, self.parameters, self.random) = (device, input, parameters, random)
        (self.seed, self.position, self.path, self.inputActivation) = (seed, position, path, inputActivation)
    }
}

/// An op's ONNX node, described without the protobuf (`ONNXExport` writes it): the operator, the layout
/// its input must have, what it reads after its input (the op's tensors by `state_dict` field, or
/// constants), attributes, and for an op that opset 13 has no single operator for, the nodes after it.
public struct ExportNode {
    /// `[N, C, H, W]` for convolutions and pooling, `[N, features]` for Gemm, or whichever the input has.
    public enum Layout { case image, features, any }
    public enum Attribute {
        case int(String, Int), ints(String, [Int]), float(String, Float)
    }
    /// An input of the node after the value it transforms.
    public enum Operand {
        /// The op's tensor `field` ("weight"), an initializer under its `state_dict` name; with `shape`,
        /// reshaped to that in the graph (to broadcast).
        case tensor(String, shape: [Int]? = nil)
        /// A constant of the export's own, named after the layer and `name`.
        case int64s(String, [Int]), floats(String, [Float])
    }
    /// The ONNX operator; nil when the op only changes the layout (flatten).
    public var op: String?
    public var layout: Layout
    public var operands: [Operand]
    public var attributes: [Attribute]
    /// Nodes after this one, each reading the output of the one before it, then its own operands.
    public var then: [ExportNode]

    public init(_ op: String?, layout: Layout = .any, tensors: [String] = [], attributes: [Attribute] = []) {
        self.init(op, layout: layout, operands: tensors.map { .tensor($0) }, attributes: attributes)
    }

    public init(_ op: String?, layout: Layout = .any, operands: [Operand], attributes: [Attribute] = [], then: [ExportNode] = []) {
        (self.op, self.layout, self.operands, self.attributes, self.then) = (op, layout, operands, attributes, then)
    }

    /// kernel_shape, strides and pads of a square window; dilations and group where they are not 1.
    static func window(_ g: WindowGeometry) -> [Attribute] {
        [.ints("kernel_shape", [g.kernel, g.kernel]), .ints("strides", [g.stride, g.stride]), .ints("pads", [Int](repeating: g.padding, count: 4))]
            + (g.dilation == 1 ? [] : [.ints("dilations", [g.dilation, g.dilation])]) + (g.groups == 1 ? [] : [.int("group", g.groups)])
    }
}

/// Output shape of an activation [C, N, H, W] after a window op.
func windowOutputShape(_ input: Tensor, channels: Int, _ g: WindowGeometry) -> [Int] {
    [channels, input.batch, g.outputSize(input.height), g.outputSize(input.width)]
}

extension WindowGeometry {
    /// The window's output size on `input`, or a `SpecProblem` when the fields do not fit it.
    func checkedOutputSize(_ input: Int) throws -> Int {
        guard kernel >= 1 else { throw SpecProblem("kernel", "must be at least 1, got \(kernel)") }
        guard stride >= 1 else { throw SpecProblem("stride", "must be at least 1, got \(stride)") }
        guard padding >= 0 else { throw SpecProblem("padding", "must not be negative, got \(padding)") }
        guard dilation >= 1 else { throw SpecProblem("dilation", "must be at least 1, got \(dilation)") }
        let out = outputSize(input)
        guard input + 2 * padding >= span, out >= 1 else {
            let window = dilation == 1 ? "\(kernel)" : "\(kernel) with dilation \(dilation) (span \(span))"
            throw SpecProblem("kernel", "\(window) does not fit the \(input)x\(input) input with padding \(padding): the output would shrink below 1")
        }
        return out
    }
}
