import Foundation
import ONNXProto
import Testing
@testable import Kiln

/// Group norm's primitives (GroupNorm's per-channel weight; LayerNorm's per-element one, as one group)
/// against a float64 reference, on the CPU and on OpenCL in both launch cuts, with random weights and
/// biases (the registry's examples start from PyTorch's 1 and 0). Spec and argument errors are one line.
@Suite(.serialized) struct GroupNormTests {
    /// (channels, batch, size, groups, per-element weight). (4, 1, 13, 2) and (3, 2, 11, 1): groups of more
    /// than 128 values, which OpenCL reduces in several slices and folds.
    static let cases: [(c: Int, n: Int, h: Int, g: Int, perElement: Bool)] = [
        (3, 5, 5, 3, false), (9, 3, 3, 3, false), (5, 31, 3, 1, false), (4, 1, 13, 2, false), (6, 2, 1, 2, false),
        (3, 5, 3, 1, true), (1, 3, 5, 1, true), (5, 1, 1, 1, true), (3, 2, 11, 1, true),
    ]

    /// OpenCL devices of the suite's own, one per launch cut: on the shared device, the gradient sums that
    /// suites running beside this one queue would meet this one's in its gradient arena.
    nonisolated(unsafe) static let openCL: Result<[(String, OpenCLDevice)], Error> = Result {
        guard let info = OpenCLSupport.device?.info else { return [] }
        return try LaunchShape.allCases.map { ("opencl, \($0) launches", try OpenCLDevice(info, shape: $0, cache: nil, tuned: false)) }
    }

    @Test(arguments: cases.indices)
    func forwardAndBackwardMatchTheReference(_ index: Int) throws {
        let (c, n, h, g, perElement) = Self.cases[index]
        let plane = h * h, cpg = c / g, m = cpg * plane, affine = perElement ? [c, h, h] : [c]
        let xv = randomFloats(c * n * plane, bound: 3), dyv = randomFloats(c * n * plane)
        let wv = randomFloats(affine.reduce(1, *), bound: 2), bv = randomFloats(affine.reduce(1, *))

        // The reference, per (image, group) and per weight.
        var y = [Double](repeating: 0, count: xv.count), dx = y, xhat = y
        var dw = [Double](repeating: 0, count: wv.count), db = dw, inputScale = 1.0
        func at(_ ch: Int, _ b: Int, _ p: Int) -> Int { (ch * n + b) * plane + p }
        func weightIndex(_ ch: Int, _ p: Int) -> Int { perElement ? ch * plane + p : ch }
        for b in 0..<n {
            for group in 0..<g {
                let members = (group * cpg..<(group + 1) * cpg).flatMap { ch in (0..<plane).map { at(ch, b, $0) } }
                let weights = (group * cpg..<(group + 1) * cpg).flatMap { ch in (0..<plane).map { weightIndex(ch, $0) } }
                let mean = members.reduce(0.0) { $0 + Double(xv[$1]) } / Double(m)
                let variance = members.reduce(0.0) { $0 + (Double(xv[$1]) - mean) * (Double(xv[$1]) - mean) } / Double(m)
                let inv = 1 / (variance + 1e-5).squareRoot()
                for (i, w) in zip(members, weights) {
                    xhat[i] = (Double(xv[i]) - mean) * inv
                    y[i] = xhat[i] * Double(wv[w]) + Double(bv[w])
                }
                let d = zip(members, weights).map { Double(dyv[$0]) * Double(wv[$1]) }
                let meanD = d.reduce(0, +) / Double(m), meanDXhat = zip(d, members).reduce(0.0) { $0 + $1.0 * xhat[$1.1] } / Double(m)
                for (k, i) in members.enumerated() {
                    dx[i] = inv * (d[k] - meanD - xhat[i] * meanDXhat)
                    inputScale = max(inputScale, inv * (abs(d[k]) + abs(meanD) + abs(xhat[i] * meanDXhat)))
                }
                for (i, w) in zip(members, weights) {
                    db[w] += Double(dyv[i])
                    dw[w] += Double(dyv[i]) * xhat[i]
                }
            }
        }
        let parameterTerms = perElement ? n : n * plane, xhatMax = xhat.map(abs).max() ?? 1

        let devices: [(String, Device)] = [("cpu", CPUDevice())] + (try Self.openCL.get()).map { ($0.0, $0.1) }
        for (name, device) in devices {
            let (x, dy) = (try tensor(device, [c, n, h, h], xv), try tensor(device, [c, n, h, h], dyv))
            let (weight, bias) = (try tensor(device, affine, wv), try tensor(device, affine, bv))
            let (mean, invStd) = (try device.allocate([n, g], .float32), try device.allocate([n, g], .float32))
            let (output, gradInput) = (try device.allocate([c, n, h, h], .float32), try device.allocate([c, n, h, h], .float32))
            let (gradWeight, gradBias) = (try device.allocate(affine, .float32), try device.allocate(affine, .float32))
            for t in [output, gradInput, gradWeight, gradBias] { try device.fill(t, with: .nan) }  // an output left unwritten shows up
            try device.groupNormForward(input: x, weight: weight, bias: bias, savedMean: mean, savedInvStd: invStd, output: output,
                                        groups: g, epsilon: 1e-5)
            try device.groupNormBackward(input: x, gradOutput: dy, weight: weight, savedMean: mean, savedInvStd: invStd,
                                         gradInput: gradInput, gradWeight: gradWeight, gradBias: gradBias, groups: g)
            try device.finishGradients()
            let what = "\(Self.cases[index]) on \(name)"
            expectClose(try device.readFloats(output), y, terms: m, magnitude: 8, "\(what): forward")
            expectClose(try device.readFloats(gradInput), dx, terms: m, magnitude: 8 * inputScale, "\(what): input gradient")
            expectClose(try device.readFloats(gradWeight), dw, terms: parameterTerms, magnitude: 2 * xhatMax, "\(what): weight gradient")
            expectClose(try device.readFloats(gradBias), db, terms: parameterTerms, magnitude: 2, "\(what): bias gradient")
        }
    }

    /// One line for a spec whose groups do not divide the channels, or other bad fields.
    @Test(arguments: [(#"{"type": "groupnorm", "groups": 4}"#, "layer 0 (groupnorm): groups 4 does not divide the input's 6 channels"),
                      (#"{"type": "groupnorm", "groups": 0}"#, "layer 0 (groupnorm): groups must be at least 1, got 0"),
                      (#"{"type": "groupnorm"}"#, "layer 0 (groupnorm): missing field \"groups\""),
                      (#"{"type": "layernorm", "eps": -1}"#, "layer 0 (layernorm): eps must be a positive number, got -1.0"),
                      (#"{"type": "layernorm", "groups": 2}"#, "layer 0 (layernorm): unknown field \"groups\"")])
    func specErrorsAreOneLine(layer: String, message: String) throws {
        let json = #"{"name": "bad", "input": [6, 5, 5], "layers": ["# + layer + "]}"
        do {
            let spec = try ModelSpec(json: Data(json.utf8), source: "test")
            _ = try spec.validate()
            Issue.record("\(layer) was accepted")
        } catch let error as KilnError {
            #expect(error.description.contains(message) && !error.description.contains("\n"), "\(error.description)")
        }
    }

    @Test func argumentsAreChecked() throws {
        for device in [CPUDevice()] + (try Self.openCL.get()).map { $0.1 as Device } {
            let x = try device.allocate([6, 2, 3, 3], .float32), vector = try device.allocate([6], .float32)
            let (four, three) = (try device.allocate([2, 4], .float32), try device.allocate([2, 3], .float32))
            #expect(throws: KilnError("groupNormForward: 4 groups do not divide the input's 6 channels")) {
                try device.groupNormForward(input: x, weight: vector, bias: vector, savedMean: four, savedInvStd: four, output: x,
                                            groups: 4, epsilon: 1e-5)
            }
            #expect(throws: KilnError("groupNormForward: weight is float32 [6, 3], expected float32 [6, 3, 3]")) {
                try device.groupNormForward(input: x, weight: device.allocate([6, 3], .float32), bias: vector, savedMean: three,
                                            savedInvStd: three, output: x, groups: 3, epsilon: 1e-5)
            }
            #expect(throws: KilnError("groupNormBackward: savedMean is float32 [2, 4], expected float32 [2, 3]")) {
                try device.groupNormBackward(input: x, gradOutput: x, weight: vector, savedMean: four, savedInvStd: three,
                                             gradInput: x, gradWeight: vector, gradBias: vector, groups: 3)
            }
            #expect(throws: KilnError("groupNormBackward: gradBias is float32 [6, 3, 3], expected float32 [6]")) {
                try device.groupNormBackward(input: x, gradOutput: x, weight: vector, savedMean: three, savedInvStd: three,
                                             gradInput: x, gradWeight: vector, gradBias: device.allocate([6, 3, 3], .float32), groups: 3)
            }
        }
    }

    /// Opset 13 has neither GroupNormalization nor LayerNormalization: the export writes PyTorch's
    /// decomposition, with the weights under their state_dict names (Tests/onnx-roundtrip.sh runs it).
    @Test func exportDecomposesIntoOpset13Operators() throws {
        let device = CPUDevice(threads: 1)
        let spec = ModelSpec(name: "norms", input: ImageShape(channels: 6, size: 5), layers: [.groupNorm(groups: 2), .layerNorm])
        let model = try Model(spec: spec, device: device, seed: testSeed)
        let proto = try Onnx_ModelProto(serializedBytes: ONNXExport.model(model, normalization: Normalization(mean: [Float](repeating: 0, count: 6), std: [Float](repeating: 1, count: 6))))
        #expect(proto.opsetImport.map(\.version) == [13])
        #expect(proto.graph.node.map(\.opType) == ["Sub", "Div", "Reshape", "InstanceNormalization", "Reshape", "Reshape", "Mul", "Reshape",
                                                   "Add", "Reshape", "InstanceNormalization", "Reshape", "Mul", "Add", "Identity"])
        #expect(proto.graph.node.map(\.name).contains("0.groupnorm") && proto.graph.node.map(\.name).contains("1.layernorm"))
        var initializers: [String: Onnx_TensorProto] = [:]
        for t in proto.graph.initializer { initializers[t.name] = t }
        func int64s(_ name: String) -> [Int64]? { initializers[name]?.rawData.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) } }
        #expect(initializers["0.weight"]?.dims == [6] && int64s("0.weight.shape") == [6, 1, 1] && int64s("0.grouped_shape") == [0, 2, -1])
        #expect(initializers["1.weight"]?.dims == [6, 5, 5] && int64s("1.grouped_shape") == [0, 1, -1] && int64s("1.image_shape") == [0, 6, 5, 5])
        let instanceNorm = try #require(proto.graph.node.first { $0.opType == "InstanceNormalization" })
        #expect(instanceNorm.attribute.first { $0.name == "epsilon" }?.f == 1e-5 && instanceNorm.input.count == 3)
    }
}
