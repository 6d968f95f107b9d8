import Foundation
import ONNXProto
import Testing
@testable import Kiln

/// The ONNX graph's structure; Tests/onnx-roundtrip.sh runs the exported models in onnxruntime.
@Suite struct ExportTests {
    @Test func graphHasOneOperatorPerLayerAndTheCheckpointsWeights() throws {
        let device = CPUDevice(threads: 1)
        let spec = try ModelSpec(json: Data("""
            {"name": "small", "input": [3, 9, 9], "layers": [
              {"type": "conv2d", "out": 4, "kernel": 3, "padding": 1}, {"type": "relu"}, {"type": "batchnorm2d"}, {"type": "dropout2d", "p": 0.3},
              {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"}, {"type": "linear", "out": 5}, {"type": "logsoftmax"}]}
            """.utf8), source: "test")
        let model = try Model(spec: spec, device: device, seed: testSeed)
        for (_, t) in model.namedTensors { try device.write(randomFloats(t.count), to: t) }
        let normalization = Normalization(mean: [0.1, 0.2, 0.3], std: [0.5, 0.6, 0.7])
        let proto = try Onnx_ModelProto(serializedBytes: ONNXExport.model(model, normalization: normalization))

        #expect(proto.opsetImport.map(\.version) == [13] && proto.irVersion == 7)
        #expect(proto.graph.node.map(\.opType) == ["Sub", "Div", "Conv", "Relu", "BatchNormalization", "MaxPool", "Flatten", "Gemm", "LogSoftmax", "Identity"])
        let conv = proto.graph.node[2]
        #expect(conv.input == ["input.normalised", "0.weight", "0.bias"])
        #expect(conv.attribute.first { $0.name == "pads" }?.ints == [1, 1, 1, 1])
        #expect(proto.graph.input.first?.type.tensorType.shape.dim.map(\.dimValue) == [0, 3, 9, 9])
        #expect(proto.graph.input.first?.type.tensorType.shape.dim.first?.dimParam == "N")
        #expect(proto.graph.output.map(\.name) == ["log_probabilities"])

        var initializers: [String: Onnx_TensorProto] = [:]
        for t in proto.graph.initializer { initializers[t.name] = t }
        for (name, tensor) in model.namedTensors {
            let stored = try #require(initializers[name], "\(name)")
            let values = stored.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }, weights = try device.readFloats(tensor)
            #expect(stored.dims == tensor.shape.map(Int64.init) && values == weights, "\(name)")
        }
        let std = try #require(initializers["input.std"])
        #expect(std.dims == [1, 3, 1, 1] && std.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } == [0.5, 0.6, 0.7])
        #expect(throws: KilnError.self) { try ONNXExport.model(model, normalization: Normalization(mean: [0], std: [1])) }
    }

    /// A grouped, dilated convolution carries ONNX Conv's `group` and `dilations`; a plain one neither.
    @Test func groupedDilatedConvolutionAttributes() throws {
        let device = CPUDevice(threads: 1)
        let spec = ModelSpec(name: "dw", input: ImageShape(channels: 4, size: 9), layers: [
            .conv2d(out: 4, kernel: 3, padding: 2, dilation: 2, groups: 4), .conv2d(out: 10, kernel: 1), .globalAvgPool, .logSoftmax])
        let model = try Model(spec: spec, device: device, seed: testSeed)
        let proto = try Onnx_ModelProto(serializedBytes: ONNXExport.model(model, normalization: Normalization(mean: [0, 0, 0, 0], std: [1, 1, 1, 1])))
        let convs = proto.graph.node.filter { $0.opType == "Conv" }
        #expect(convs.count == 2)
        #expect(convs[0].attribute.first { $0.name == "group" }?.i == 4)
        #expect(convs[0].attribute.first { $0.name == "dilations" }?.ints == [2, 2])
        #expect(!convs[1].attribute.contains { $0.name == "group" || $0.name == "dilations" })
    }

    /// `kiln eval --outputs` writes what NumPy reads: the header padded to 64 bytes, then the floats.
    @Test func outputsAreANumPyFloatArray() {
        let values: [Float] = [1.5, -2, 0.25, 3, 7, -0.5]
        let bytes = [UInt8](npyFloat32(values, shape: [3, 2]))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8, header = String(decoding: bytes[10..<10 + headerLength], as: UTF8.self)
        #expect(Array(bytes[0..<8]) == [0x93] + Array("NUMPY".utf8) + [1, 0] && (10 + headerLength) % 64 == 0)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }") && header.hasSuffix(" \n"))
        #expect(bytes[(10 + headerLength)...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } == values)
    }

    @Test func exportRefusesBadArguments() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-export-\(UUID().uuidString)").path
        for (arguments, message) in [(["--checkpoint", "/nonexistent.safetensors", "--onnx", "\(folder).onnx"], "cannot read the checkpoint"),
                                     (["--checkpoint", "x.safetensors", "--onnx", "/nonexistent/x.onnx"], "--onnx /nonexistent/x.onnx: the folder"),
                                     (["--checkpoint", "x.safetensors"], "Missing expected argument '--onnx"),
                                     (["--onnx", "x.onnx"], "Missing expected argument '--checkpoint")] {
            let run = try runKiln(["export"] + arguments)
            #expect(run.status != 0 && run.output.contains(message) && !run.output.contains("Fatal"), "\(arguments): \(run.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(folder).onnx"))
    }
}
