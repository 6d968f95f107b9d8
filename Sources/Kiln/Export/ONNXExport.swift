import Foundation
import ONNXProto
import SwiftProtobuf

/// The inference network of a model as an ONNX model (opset 13, IR version 7), for onnxruntime and
/// every other ONNX runtime. The graph takes `image`, float32 `[N, C, H, W]` pixel values in [0, 1],
/// and normalises it itself (the training data's mean and standard deviation), so a caller needs
/// nothing but the pixels. Each layer becomes the ONNX operator PyTorch's exporter would emit: Conv,
/// BatchNormalization (inference form, the running statistics), Relu, MaxPool, AveragePool (padding
/// counted, as PyTorch and Kiln), GlobalAveragePool, Flatten, Gemm, LogSoftmax, and Add for a residual
/// block's sum (each op's `exportNode`); group and layer norm, which have no operator before opset 17 and
/// 18, as PyTorch's opset-13 exporter writes them (Reshape, InstanceNormalization, Reshape, Mul, Add);
/// dropout is the identity at inference and is left out. Initializers keep the checkpoint's `state_dict` names.
public enum ONNXExport {
    public static let opset: Int64 = 13

    /// The serialized `ModelProto` of `model`'s current weights.
    public static func model(_ model: Model, normalization: Normalization) throws -> Data {
        let spec = model.spec
        let shapes = try spec.validate()
        guard normalization.mean.count == spec.input.channels, normalization.std.count == spec.input.channels else {
            throw KilnError("\(spec.name): the normalisation has \(normalization.mean.count) channels, the model's input \(spec.input.channels)")
        }
        var graph = GraphBuilder(name: spec.name)
        let channels = [1, Int64(spec.input.channels), 1, 1]
        graph.constant("input.mean", floats: normalization.mean, shape: channels)
        graph.constant("input.std", floats: normalization.std, shape: channels)
        var x = graph.node("Div", [graph.node("Sub", ["image", "input.mean"], name: "input.centred"), "input.std"], name: "input.normalised")

        var tensors: [String: Tensor] = [:]
        for (name, tensor) in model.namedTensors { tensors[name] = tensor }
        /// The node's tensor `field` ("weight", "running_mean", …) as an initializer under its state_dict name.
        func weight(_ node: ModelGraph.Node, _ field: String) throws -> String {
            let name = "\(node.path).\(field)"
            guard let tensor = tensors[name] else { throw KilnError("\(spec.name): layer \(node.path) has no \(field)") }
            graph.constant(name, floats: try model.device.readFloats(tensor), shape: tensor.shape.map(Int64.init))
            return name
        }
        // Convolutions and pooling need [N, C, H, W]; Gemm needs [N, features]. Kiln holds both as
        // [C, N, H, W] with H = W = 1 after a flatten, so the graph reshapes where the rank must change.
        // Each value of the model's graph: its ONNX name and whether it is [N, features].
        let modelGraph = try spec.graph()
        var values = [(name: String, flat: Bool)](repeating: ("", false), count: modelGraph.shapes.count)
        values[0] = (x, false)
        func layout(_ v: Int, flat: Bool) -> String {
            guard values[v].flat != flat else { return values[v].name }
            if flat {
                values[v] = (graph.node("Flatten", [values[v].name], attributes: [.int("axis", 1)]), true)
            } else {
                graph.constant("unsqueeze.axes", int64s: [2, 3], shape: [2])
                values[v] = (graph.node("Unsqueeze", [values[v].name, "unsqueeze.axes"]), false)
            }
            return values[v].name
        }
        for node in modelGraph.nodes {
            guard let export = node.op.exportNode(modelGraph.inputShape(node)) else {
                values[node.output] = values[node.inputs[0]]  // the identity at inference
                continue
            }
            // A sum's inputs meet in the first one's layout.
            let flat = export.layout == .any ? values[node.inputs[0]].flat : export.layout == .features
            let inputs = node.inputs.map { layout($0, flat: flat) }
            guard let op = export.op else {
                values[node.output] = (inputs[0], flat)
                continue
            }
            /// An operand's name in the graph, added as an initializer (and a Reshape of it) or a constant.
            func operand(_ operand: ExportNode.Operand) throws -> String {
                switch operand {
                case let .tensor(field, shape):
                    let tensor = try weight(node, field)
                    guard let shape else { return tensor }
                    graph.constant("\(tensor).shape", int64s: shape.map(Int64.init), shape: [Int64(shape.count)])
                    return graph.node("Reshape", [tensor, "\(tensor).shape"], name: "\(tensor).reshaped")
                case let .int64s(name, values):
                    graph.constant("\(node.path).\(name)", int64s: values.map(Int64.init), shape: [Int64(values.count)])
                    return "\(node.path).\(name)"
                case let .floats(name, values):
                    graph.constant("\(node.path).\(name)", floats: values, shape: [Int64(values.count)])
                    return "\(node.path).\(name)"
                }
            }
            let name = "\(node.path).\(node.layer.typeName)"
            var output = graph.node(op, inputs + (try export.operands.map(operand)), name: export.then.isEmpty ? name : nil,
                                    attributes: export.attributes)
            for (k, next) in export.then.enumerated() {
                guard let op = next.op else { continue }
                output = graph.node(op, [output] + (try next.operands.map(operand)), name: k == export.then.count - 1 ? name : nil,
                                    attributes: next.attributes)
            }
            values[node.output] = (output, flat)
        }
        // One row per image when the model ends in a single position, as a classifier does.
        let last = shapes.last!
        x = last.size == 1 ? layout(modelGraph.shapes.count - 1, flat: true) : layout(modelGraph.shapes.count - 1, flat: false)
        let outputName = modelGraph.nodes.last?.op is LogSoftmaxOp ? "log_probabilities" : "outputs"
        graph.node("Identity", [x], name: outputName)

        var proto = Onnx_ModelProto()
        proto.irVersion = 7
        proto.producerName = "kiln"
        proto.modelVersion = 1
        proto.docString = "\(spec.name): input image, float32 [N, C, H, W] pixel values in [0, 1]; output \(outputName)"
        var operatorSet = Onnx_OperatorSetIdProto()
        operatorSet.version = opset
        proto.opsetImport = [operatorSet]
        var metadata = Onnx_StringStringEntryProto()
        (metadata.key, metadata.value) = ("kiln.spec", try spec.jsonString())
        proto.metadataProps = [metadata]
        graph.proto.input = [valueInfo("image", [nil] + [spec.input.channels, spec.input.size, spec.input.size])]
        graph.proto.output = [valueInfo(outputName, last.size == 1 ? [nil, last.channels] : [nil, last.channels, last.size, last.size])]
        proto.graph = graph.proto
        return try proto.serializedData()
    }

    /// A float tensor's name, element type and shape; nil dimensions are the batch, named N.
    static func valueInfo(_ name: String, _ dims: [Int?]) -> Onnx_ValueInfoProto {
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.shape.dim = dims.map { size in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let size { dim.dimValue = Int64(size) } else { dim.dimParam = "N" }
            return dim
        }
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type.tensorType = tensor
        return info
    }

    /// Nodes in order, each output named after its node, and the initializers they read.
    struct GraphBuilder {
        var proto = Onnx_GraphProto()
        private var names: Set<String> = []
        init(name: String) { proto.name = name }

        /// Adds a node and returns its output's name (`name`, else the operator and a count).
        @discardableResult
        mutating func node(_ op: String, _ inputs: [String], name: String? = nil, attributes: [ExportNode.Attribute] = []) -> String {
            var node = Onnx_NodeProto()
            node.opType = op
            node.name = name ?? "\(op.lowercased()).\(proto.node.count)"
            node.input = inputs
            node.output = [node.name]
            node.attribute = attributes.map(\.proto)
            proto.node.append(node)
            return node.name
        }

        mutating func constant(_ name: String, floats: [Float], shape: [Int64]) {
            add(name, .float, shape, floats.withUnsafeBytes { Data($0) })
        }

        mutating func constant(_ name: String, int64s: [Int64], shape: [Int64]) {
            add(name, .int64, shape, int64s.withUnsafeBytes { Data($0) })
        }

        /// Raw data is little-endian, as every platform Kiln runs on stores it.
        private mutating func add(_ name: String, _ type: Onnx_TensorProto.DataType, _ shape: [Int64], _ bytes: Data) {
            guard names.insert(name).inserted else { return }
            var tensor = Onnx_TensorProto()
            (tensor.name, tensor.dims, tensor.dataType, tensor.rawData) = (name, shape, Int32(type.rawValue), bytes)
            proto.initializer.append(tensor)
        }
    }
}

extension ExportNode.Attribute {
    var proto: Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        switch self {
        case let .int(name, v): (a.name, a.type, a.i) = (name, .int, Int64(v))
        case let .ints(name, v): (a.name, a.type, a.ints) = (name, .ints, v.map(Int64.init))
        case let .float(name, v): (a.name, a.type, a.f) = (name, .float, v)
        }
        return a
    }
}
