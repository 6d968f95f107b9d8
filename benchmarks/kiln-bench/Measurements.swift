import Foundation
import Kiln

/// Everything measured for one model on one device. Encodes as the run report of `kiln train --log`
/// (the last repeat's record, with the median epoch time) plus the benchmark's own keys.
struct BenchResult: Encodable {
    var report: EpochReport
    /// Every repeat's training time, seconds.
    var epochSecondsRuns: [Double]
    var steps: Int
    var trainGFLOPs: Double
    var sgemmPeakGFLOPs: Double
    /// The model's convolution GEMM shapes at their own measured speeds, as one effective rate.
    var sgemmConvShapesGFLOPs: Double
    var peakHostMB: Double
    var deviceMB: Double?
    var layers: [LayerTime]
    /// OpenCL: the step's CLBlast calls, with CLBlast's own parameters and with `kiln tune`'s.
    var clblastGEMMs: [GEMMTiming]?

    enum Keys: String, CodingKey {
        case epochSecondsRuns = "epoch_seconds_runs", steps, trainGFLOPs = "train_gflops"
        case sgemmPeakGFLOPs = "sgemm_peak_gflops", sgemmConvShapesGFLOPs = "sgemm_conv_shapes_gflops"
        case peakHostMB = "peak_host_mb", deviceMB = "device_mb", layers, clblastGEMMs = "clblast_gemms"
    }

    func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(epochSecondsRuns, forKey: .epochSecondsRuns)
        try c.encode(steps, forKey: .steps)
        try c.encode(trainGFLOPs, forKey: .trainGFLOPs)
        try c.encode(sgemmPeakGFLOPs, forKey: .sgemmPeakGFLOPs)
        try c.encode(sgemmConvShapesGFLOPs, forKey: .sgemmConvShapesGFLOPs)
        try c.encode(peakHostMB, forKey: .peakHostMB)
        try c.encodeIfPresent(deviceMB, forKey: .deviceMB)
        try c.encode(layers, forKey: .layers)
        try c.encodeIfPresent(clblastGEMMs, forKey: .clblastGEMMs)
    }
}

/// One CLBlast GEMM shape of a training step: calls per step, GFLOP/s with CLBlast's own parameters and
/// with the tuned ones (nil when the device has no tuning).
struct GEMMTiming: Codable {
    var shape: String
    var calls: Int
    var ownGFLOPs: Double
    var tunedGFLOPs: Double?
    enum CodingKeys: String, CodingKey { case shape, calls, ownGFLOPs = "own_gflops", tunedGFLOPs = "tuned_gflops" }
}

/// The CLBlast calls of one training step of `spec` on `device`, timed with CLBlast's own parameters and
/// with the device's tuning.
func clblastGEMMs(_ spec: ModelSpec, on device: OpenCLDevice, data: Dataset, batchSize: Int, repeats: Int) throws -> [GEMMTiming] {
    let step = try Trainer.oneStep(of: Model(spec: spec, device: device, seed: 1), data: data, batchSize: batchSize)
    let calls = try device.gemmShapes(of: step)
    let shapes = calls.keys.sorted { $0.description < $1.description }
    return try device.timeGEMMs(shapes, repeats: repeats).map { t in
        GEMMTiming(shape: t.shape.description, calls: calls[t.shape]!, ownGFLOPs: t.shape.flops / t.own / 1e9,
                   tunedGFLOPs: t.tuned.map { t.shape.flops / $0 / 1e9 })
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Seconds `body` takes once `device` has finished everything queued before and by it.
func timed(_ device: Device, _ body: () throws -> Void) throws -> Double {
    try device.finish()
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    try device.finish()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// The device's own sgemm speed for C[m×n] = A[m×k]·B[k×n], through its pointwise-convolution primitive
/// (OpenBLAS on the CPU, CLBlast on OpenCL): the median of `repeats` runs after one warm-up.
func sgemmGFLOPs(_ device: Device, m: Int, n: Int, k: Int, repeats: Int) throws -> Double {
    let a = try device.allocate([m, k, 1, 1], .float32), b = try device.allocate([k, n, 1, 1], .float32)
    let c = try device.allocate([m, n, 1, 1], .float32)
    try device.fill(a, with: 0.01)
    try device.fill(b, with: 0.02)
    let pointwise = WindowGeometry(kernel: 1, stride: 1, padding: 0)
    try device.conv2dForward(input: b, weight: a, bias: nil, output: c, geometry: pointwise, normalization: nil)
    let seconds = try (0..<repeats).map { _ in try timed(device) { try device.conv2dForward(input: b, weight: a, bias: nil, output: c, geometry: pointwise, normalization: nil) } }
    return 2 * Double(m) * Double(n) * Double(k) / median(seconds) / 1e9
}

/// The GEMM shapes of a model's convolutions at batch `n`: (M = Co, N = N·OH·OW, K = Ci·k·k, forward MACs).
func convolutionGEMMs(_ spec: ModelSpec, batch n: Int) throws -> [(m: Int, n: Int, k: Int)] {
    let graph = try spec.graph()
    return graph.nodes.compactMap { node in
        let input = graph.inputShape(node), output = graph.outputShape(node)
        switch node.op {
        case let conv as Conv2dOp: return (conv.out, n * output.size * output.size, input.channels * conv.geometry.kernel * conv.geometry.kernel)
        case let linear as LinearOp: return (linear.out, n, input.channels)
        default: return nil
        }
    }
}

/// Peak resident memory of this process so far, in MB.
func peakHostMB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
