import Foundation
import Testing
@testable import Kiln

/// Every op in the registry, through its examples (`Op.examples`, odd sizes): its JSON round trip, and
/// its forward and backward on the CPU against OpenCL in both launch cuts. `GradientTests` checks the
/// same examples' gradients by finite differences; so a new op is tested once it is listed. Serialized,
/// on OpenCL devices of its own: a device's scratch buffers and gradient arena serve one caller at a time.
@Suite(.serialized) struct OpRegistryTests {
    static let examples: [(layer: LayerSpec, input: ImageShape)] = OpRegistry.ops.flatMap { $0.examples }
    nonisolated(unsafe) static let openCL: Result<[LaunchShape: OpenCLDevice], Error> = Result {
        guard let info = OpenCLSupport.device?.info else { return [:] }
        return try Dictionary(uniqueKeysWithValues: LaunchShape.allCases.map { ($0, try OpenCLDevice(info, shape: $0, cache: nil, tuned: false)) })
    }

    @Test func everyOpHasExamplesThatRoundTrip() throws {
        for op in OpRegistry.ops {
            #expect(!op.examples.isEmpty, "\(op) has no examples")
            for (layer, input) in op.examples {
                #expect(op.typeNames.contains(layer.typeName))
                let spec = ModelSpec(name: "example", input: input, layers: [layer])
                #expect(try ModelSpec(json: Data(spec.jsonString().utf8), source: "example") == spec)
            }
        }
        #expect(Set(OpRegistry.ops.flatMap { $0.typeNames }).count == OpRegistry.ops.map { $0.typeNames.count }.reduce(0, +),
                "two ops read the same type name")
    }

    /// One training forward and backward of the example on the CPU and on OpenCL, same weights, input and
    /// output gradient; outputs, input gradients and parameter gradients agree to √K·ε of the terms' size
    /// (K the longest sum in the graph; inputs, weights and gradients are all within ±1).
    @Test(.enabled(if: OpenCLSupport.available, "no OpenCL device: registry parity skipped"),
          arguments: examples.indices, [LaunchShape.cpu, .gpu])
    func cpuAndOpenCLAgree(_ index: Int, shape: LaunchShape) throws {
        let (layer, input) = Self.examples[index]
        let spec = ModelSpec(name: "example", input: input, layers: [layer])
        let n = 3, graph = try spec.graph()
        let depth = graph.nodes.map { $0.op.reductionLength(graph.inputShape($0), graph.outputShape($0), batch: n) }.max()!
        let output = graph.shapes.last!
        let x = randomFloats(input.channels * n * input.size * input.size, stream: 31)
        let dy = randomFloats(output.channels * n * output.size * output.size, stream: 32)
        var results: [[(String, [Float])]] = []
        for device in [CPUDevice(), try #require(try Self.openCL.get()[shape])] as [Device] {
            let model = try Model(spec: spec, device: device, seed: testSeed)
            let context = StepContext(mode: .training, step: 2)
            let y = try model.forward(tensor(device, [input.channels, n, input.size, input.size], x), context: context)
            let dx = try model.backward(tensor(device, y.shape, dy), needInputGradient: true)
            try device.finishGradients()
            results.append([("output", try device.readFloats(y)), ("input gradient", try device.readFloats(#require(dx)))]
                           + (try model.namedParameters.map { ("\($0.name) gradient", try device.readFloats($0.parameter.gradient)) }))
        }
        let tolerance = 32 * Double(Float.ulpOfOne) * Double(depth).squareRoot()
        for ((what, cpu), (_, gpu)) in zip(results[0], results[1]) {
            let scale = max(1, cpu.map { abs(Double($0)) }.max() ?? 0)
            let error = zip(cpu, gpu).map { abs(Double($0) - Double($1)) }.max() ?? 0
            #expect(cpu.count == gpu.count && error / scale <= tolerance,
                    "\(layer) (\(shape)) \(what): error \(error / scale) > \(tolerance) (seed \(testSeed))")
        }
    }
}
