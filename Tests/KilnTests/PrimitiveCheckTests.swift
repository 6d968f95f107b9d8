import Testing
@testable import Kiln

/// Every primitive refuses arguments that do not fit before it touches memory: one line naming the call
/// and the argument, on every device.
@Suite struct PrimitiveCheckTests {
    static var devices: [Device] { [CPUDevice(threads: 1)] + (OpenCLSupport.device.map { [$0] } ?? []) }

    func expectRefused(_ message: String, _ body: () throws -> Void) {
        #expect { try body() } throws: { error in
            let text = String(describing: error)
            return text.contains(message) && !text.contains("\n")
        }
    }

    @Test func wrongShapesAreRefused() throws {
        for d in Self.devices {
            let g = WindowGeometry(kernel: 3, stride: 1, padding: 1)
            let x = try d.allocate([1, 3, 5, 5], .float32), w = try d.allocate([8, 3, 3, 3], .float32)
            let y = try d.allocate([8, 3, 5, 5], .float32), small = try d.allocate([8, 3, 4, 4], .float32)
            expectRefused("conv2dForward: weight is float32 [8, 3, 3, 3], expected float32 [8, 1, 3, 3]") {
                try d.conv2dForward(input: x, weight: w, bias: nil, output: y, geometry: g, normalization: nil)
            }
            let w1 = try d.allocate([8, 1, 3, 3], .float32)
            expectRefused("conv2dForward: output is float32 [8, 3, 4, 4], expected float32 [8, 3, 5, 5]") {
                try d.conv2dForward(input: x, weight: w1, bias: nil, output: small, geometry: g, normalization: nil)
            }
            expectRefused("conv2dBackward: gradInput is float32 [8, 3, 5, 5], expected float32 [1, 3, 5, 5]") {
                try d.conv2dBackward(input: x, gradOutput: y, weight: w1, gradWeight: w1, gradBias: nil, gradInput: y, accumulate: false,
                                     geometry: g, normalization: nil)
            }
            // Groups: the weight is [Co, Ci/groups, k, k], and groups must divide both channel counts.
            let x6 = try d.allocate([6, 3, 5, 5], .float32), grouped = WindowGeometry(kernel: 3, stride: 1, padding: 1, groups: 3)
            expectRefused("conv2dForward: weight is float32 [8, 1, 3, 3], expected float32 [8, 3, 3, 3]") {
                try d.conv2dForward(input: x6, weight: w1, bias: nil, output: y, geometry: WindowGeometry(kernel: 3, stride: 1, padding: 1, groups: 2),
                                    normalization: nil)
            }
            expectRefused("conv2dForward: groups 3 must divide the 6 input and 8 output channels") {
                try d.conv2dForward(input: x6, weight: w1, bias: nil, output: y, geometry: grouped, normalization: nil)
            }
            expectRefused("conv2dBackward: dilation must be at least 1, got 0") {
                try d.conv2dBackward(input: x, gradOutput: y, weight: w1, gradWeight: w1, gradBias: nil, gradInput: x, accumulate: false,
                                     geometry: WindowGeometry(kernel: 3, stride: 1, padding: 1, dilation: 0), normalization: nil)
            }
            expectRefused("activationForward: output is float32 [8, 3, 4, 4], expected float32 [8, 3, 5, 5]") {
                try d.activationForward(input: y, output: small, activation: .relu)
            }
            let argmax = try d.allocate([8, 3, 2, 2], .float32)
            expectRefused("maxPoolForward: argmax is float32 [8, 3, 2, 2], expected int32 [8, 3, 2, 2]") {
                try d.maxPoolForward(input: small, output: d.allocate([8, 3, 2, 2], .float32), argmax: argmax,
                                     geometry: WindowGeometry(kernel: 2, stride: 2, padding: 0))
            }
            let scores = try d.allocate([10, 5, 1, 1], .float32)
            expectRefused("logSoftmaxNLL: labels is int32 [3], expected int32 [5]") {
                try d.logSoftmaxNLL(scores: scores, labels: d.allocate([3], .int32), logProbs: scores, totals: d.allocate([2], .float32),
                                    gradient: nil, smoothing: 0)
            }
            expectRefused("logSoftmaxNLL: label smoothing 1.0 is outside [0, 1)") {
                try d.logSoftmaxNLL(scores: scores, labels: d.allocate([5], .int32), logProbs: scores, totals: d.allocate([2], .float32),
                                    gradient: nil, smoothing: 1)
            }
            let flat = try d.allocate([31], .float32)
            expectRefused("sgdStep: velocity is float32 [3], expected float32 [31]") {
                try d.sgdStep(parameter: flat, gradient: flat, velocity: d.allocate([3], .float32), learningRate: 0.1, momentum: 0.9,
                              nesterov: false, weightDecay: 0)
            }
            expectRefused("movingAverage: value is float32 [3], expected float32 [31]") {
                try d.movingAverage(average: flat, value: d.allocate([3], .float32), decay: 0.9)
            }
            let images = try d.allocate([1, 5, 5, 5], .float32), labels = try d.allocate([5], .int32)
            try d.write([Int32](0..<5), to: labels)
            expectRefused("gatherBatch: batch 3..<6 is outside the 5 shuffled indices") {
                try d.gatherBatch(images: images, labels: labels, order: labels, start: 3, output: x, outputLabels: d.allocate([3], .int32),
                                  augmentation: nil, fill: d.allocate([1], .float32), generator: Philox(seed: 1, stream: 0), step: 0)
            }
        }
    }

    /// A tensor of one device handed to another is refused, not reinterpreted.
    @Test(.enabled(if: OpenCLSupport.available, "no OpenCL device: nothing to mix with the CPU"))
    func tensorsOfAnotherDeviceAreRefused() throws {
        let cpu = CPUDevice(threads: 1), gpu = try #require(OpenCLSupport.device)
        for (a, b) in [(cpu as Device, gpu as Device), (gpu, cpu)] {
            let x = try a.allocate([3, 1, 5, 5], .float32), y = try b.allocate([3, 1, 5, 5], .float32)
            expectRefused("activationForward: input is a tensor of another device") { try b.activationForward(input: x, output: y, activation: .relu) }
            expectRefused("read: the tensor is another device's") { _ = try b.readFloats(x) }
            expectRefused("cannot copy into a tensor of another device") { try b.write([Float](repeating: 1, count: 75), to: x) }
        }
    }
}
