import CZlib
import Foundation
import Synchronization
import Testing
@testable import Kiln

/// Fresh random numbers per test run: the seed is `KILN_TEST_SEED`, else the wall clock, and is printed
/// on first use (`make test` prints it again when a test fails). Models take it as their seed directly, so
/// `KILN_TEST_SEED=S swift test -c release --filter NAME` repeats their weights and batches exactly.
let testSeed: UInt64 = {
    let seed = ProcessInfo.processInfo.environment["KILN_TEST_SEED"].flatMap { UInt64($0) } ?? UInt64(Date().timeIntervalSince1970 * 1000)
    print("Kiln tests: seed \(seed) (KILN_TEST_SEED=\(seed) repeats it)")
    return seed
}()

/// How many arrays `randomFloats` has drawn: each draw is fresh. Tests running side by side share it, so a
/// test's inputs repeat exactly when it runs alone (`--filter`) with the same seed.
private let draws = Mutex<UInt64>(0)

func randomFloats(_ count: Int, bound: Float = 1, stream: UInt32 = 77) -> [Float] {
    let draw = draws.withLock { n in n += 1; return n }
    var random = HostRandom(seed: testSeed &+ draw, stream: stream)
    return random.uniform(count, bound: bound)
}

/// A CPU tensor holding `values`.
func tensor(_ device: Device, _ shape: [Int], _ values: [Float]) throws -> Tensor {
    let t = try device.allocate(shape, .float32)
    try device.write(values, to: t)
    return t
}

func randomTensor(_ device: Device, _ shape: [Int], bound: Float = 1) throws -> (Tensor, [Float]) {
    let values = randomFloats(shape.reduce(1, *), bound: bound)
    return (try tensor(device, shape, values), values)
}

/// Compares against a float64 reference with a tolerance that grows with the length of the sum
/// behind each value: √terms · ε · magnitude, times a safety factor.
func expectClose(_ actual: [Float], _ expected: [Double], terms: Int, magnitude: Double = 1,
                 _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
    let tolerance = 8 * Double(Float.ulpOfOne) * (Double(max(terms, 1)).squareRoot() + 1) * magnitude
    var worst = 0.0, at = 0
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let err = abs(Double(a) - e) / max(1, abs(e))
        if err > worst || err.isNaN { worst = err; at = i }
    }
    #expect(worst <= tolerance, "\(what): error \(worst) at \(at) (got \(actual[at]), want \(expected[at])) exceeds \(tolerance)",
            sourceLocation: sourceLocation)
}

/// Plain float64 reference convolution on channel-major data: x [Ci, N, H, W], w [Co, Ci/groups, k, k].
func referenceConv(_ x: [Float], _ w: [Float], ci: Int, co: Int, n: Int, h: Int, g: WindowGeometry) -> [Double] {
    let oh = g.outputSize(h), k = g.kernel, cg = ci / g.groups
    var y = [Double](repeating: 0, count: co * n * oh * oh)
    for o in 0..<co { for b in 0..<n { for oy in 0..<oh { for ox in 0..<oh {
        var total = 0.0
        for c in 0..<cg { for ky in 0..<k { for kx in 0..<k {
            let iy = oy * g.stride - g.padding + ky * g.dilation, ix = ox * g.stride - g.padding + kx * g.dilation
            if iy >= 0, iy < h, ix >= 0, ix < h {
                let channel = o / (co / g.groups) * cg + c
                total += Double(x[((channel * n + b) * h + iy) * h + ix]) * Double(w[((o * cg + c) * k + ky) * k + kx])
            }
        } } }
        y[((o * n + b) * oh + oy) * oh + ox] = total
    } } } }
    return y
}

/// Loads checkpoint `path` into a fresh model and optimizer on `device` and expects every saved tensor
/// (weights, running statistics, optimizer state) to equal the original's bit for bit.
@discardableResult
func expectCheckpointReloads(_ path: String, model: Model, optimizer: Optimizer, on device: Device,
                             sourceLocation: SourceLocation = #_sourceLocation) throws -> (Checkpoint, Model, Optimizer) {
    let saved = try Checkpoint(path: path)
    let copy = try Model(spec: saved.spec, device: device, seed: testSeed &+ 1)
    let copyOptimizer = Optimizer(config: optimizer.config, device: device)
    try saved.load(into: copy)
    try saved.load(into: copyOptimizer, of: copy)
    for ((name, a), (_, b)) in zip(model.namedTensors, copy.namedTensors) {
        #expect(try model.device.readFloats(a) == device.readFloats(b), "\(name)", sourceLocation: sourceLocation)
    }
    for (a, b) in zip(model.parameters, copy.parameters) {
        for (s, t) in zip(a.optimizerState, b.optimizerState) {
            #expect(try model.device.readFloats(s) == device.readFloats(t), "\(a.name) optimizer state", sourceLocation: sourceLocation)
        }
    }
    return (saved, copy, copyOptimizer)
}

/// The `kiln` binary built beside the tests.
func kilnBinary() throws -> URL {
    let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [folder, folder.deletingLastPathComponent()].map { $0.appendingPathComponent("kiln") }
    guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw KilnError("no kiln binary beside \(folder.path); build it first (swift build)")
    }
    return binary
}

/// Runs `kiln` with `arguments` and `environment` added to this process's, under `launcher` when given
/// (`["mpirun", "-np", "2"]`); `whenPrinted`, once the output contains it, runs `action` (by default,
/// sends `signal` to the process started).
func runKiln(_ arguments: [String], environment: [String: String] = [:], launcher: [String] = [],
             signal: (whenPrinted: String, signal: Int32)? = nil, action: (() -> Void)? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    if launcher.isEmpty {
        process.executableURL = try kilnBinary()
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = launcher + [try kilnBinary().path] + arguments
    }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    var output = Data()
    var sent = false
    while case let chunk = pipe.fileHandleForReading.availableData, !chunk.isEmpty {
        output.append(chunk)
        if let signal, !sent, String(decoding: output, as: UTF8.self).contains(signal.whenPrinted) {
            if let action { action() } else { kill(process.processIdentifier, signal.signal) }
            sent = true
        }
    }
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// A `.npy` file (format 1.0) of `shape` with NumPy type `descr` and the little-endian element bytes `data`.
func npy(_ descr: String, _ shape: [Int], _ data: [UInt8], fortran: Bool = false) -> [UInt8] {
    let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
    var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': (\(dims)), }"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    let n = header.utf8.count
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xFF), UInt8(n >> 8)] + Array(header.utf8) + data
}

/// Little-endian int64 bytes, as `numpy.save` writes an int64 label array.
func int64Bytes(_ values: [Int]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: Int64($0).littleEndian, Array.init) } }

/// A scratch folder of NumPy arrays (x_train.npy, …): random uint8 images [N, size, size, channels]
/// (or [N, size, size] for one channel) and labels cycling through `classes`. `files` replaces any file's bytes.
func numpyFolder(channels: Int, size: Int, train: Int, test: Int, classes: Int, files: [String: [UInt8]] = [:]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-npy-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var random = HostRandom(seed: testSeed, stream: 41)
    for (name, count) in [("train", train), ("test", test)] {
        let shape = [count, size, size] + (channels == 1 ? [] : [channels])
        let pixels = random.uniform(count * size * size * channels, bound: 1).map { UInt8(min(255, abs($0) * 256)) }
        let images = files["x_\(name).npy"] ?? npy("|u1", shape, pixels)
        let labels = files["y_\(name).npy"] ?? npy("<i8", [count], int64Bytes((0..<count).map { ($0 * 7 + 3) % classes }))
        try Data(images).write(to: URL(fileURLWithPath: "\(dir)/x_\(name).npy"))
        try Data(labels).write(to: URL(fileURLWithPath: "\(dir)/y_\(name).npy"))
    }
    return dir
}

/// A small RGB classifier for 8×8 images of 5 classes, with every layer kind the presets use.
let rgbSpec = """
    {"name": "rgb8", "input": [3, 8, 8], "layers": [
      {"type": "conv2d", "out": 6, "kernel": 3, "padding": 1}, {"type": "relu"}, {"type": "batchnorm2d"},
      {"type": "maxpool2d", "kernel": 2}, {"type": "conv2d", "out": 5, "kernel": 1, "bias": false},
      {"type": "conv2d", "out": 7, "kernel": 3, "bias": false}, {"type": "relu"}, {"type": "batchnorm2d"},
      {"type": "dropout2d", "p": 0.1}, {"type": "conv2d", "out": 5, "kernel": 1}, {"type": "globalavgpool"},
      {"type": "logsoftmax"}]}
    """

/// A PNG file (8-bit grey, or RGB when `rgb`) of the rows of `pixels` (interleaved RGB), written with zlib.
func pngBytes(width: Int, height: Int, rgb: Bool, _ pixels: [UInt8]) -> [UInt8] {
    func be(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (24 - 8 * $0)) & 0xFF) } }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be(data.count) + body + be(Int(body.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }))
    }
    let stride = width * (rgb ? 3 : 1)
    let raw = (0..<height).flatMap { [0] + pixels[$0 * stride..<($0 + 1) * stride] }
    var size = compressBound(UInt(raw.count))
    var packed = [UInt8](repeating: 0, count: Int(size))
    _ = compress(&packed, &size, raw, UInt(raw.count))
    let header = be(width) + be(height) + [8, rgb ? 2 : 0, 0, 0, 0]
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", Array(packed.prefix(Int(size))))
        + chunk("IEND", [])
}
