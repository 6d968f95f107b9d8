import ArgumentParser
import Foundation
import Kiln

struct Parity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a few steps on the CPU and on an OpenCL device side by side and compare every layer.",
        discussion: """
            Same initial weights, batches and dropout masks on both devices. For each step and layer it prints the \
            largest absolute and relative error of outputs, gradients and updated weights against a tolerance that \
            grows with the length of the sums involved, names the first layer over it, and exits 1 if any is.
            """)

    @Option(help: "A preset (\(Presets.names)) or a JSON spec file.")
    var model = Presets.defaultName
    @Option(help: "The device compared with the CPU: opencl or opencl:P.D.")
    var device = "opencl"
    @Option(help: launchShapeHelp)
    var launchShape = "auto"
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Images per step.")
    var batchSize = 32
    @Option(help: "Training steps to compare.")
    var steps = 3
    @Option(help: "Seed for the initial weights and dropout masks.")
    var seed: UInt64 = 1
    @Option(help: "Write the report as JSON here.")
    var json: String?
    @Flag(help: "Print only failures and the summary.")
    var quiet = false
    @Flag(help: "Print the OpenCL kernel build log when the kernels do not build.")
    var verbose = false
    @Option(help: cacheDirHelp)
    var cacheDir: String?

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
    }

    func run() throws {
        if let json { try checkWritable(json, flag: "--json") }
        let request = try DeviceRequest(flag: device)
        guard request != .cpu, request != .auto else { throw KilnError("--device \(device): parity compares the CPU with an OpenCL device; pass opencl or opencl:P.D") }
        let selection = try select(request, cache: cacheFolder(cacheDir), verbose: verbose, shape: LaunchShape(flag: launchShape))
        selection.notes.forEach { print($0) }
        let other = selection.device
        let spec = try ModelSpec.named(model)
        var options = ParityOptions()
        options.batchSize = batchSize
        options.steps = steps
        options.seed = seed
        let data = try dataOptions.load(trainLimit: batchSize * steps)
        let report = try Kiln.Parity.run(spec: spec, reference: CPUDevice(), device: other, data: data, options: options)
        print("Parity \(spec.name): \(report.reference) vs \(report.device), batch \(batchSize), \(steps) step\(steps == 1 ? "" : "s"), seed \(seed)")
        // Layers by module path: "3", or "3.body.0" inside a residual block.
        let width = max(5, report.entries.map(\.layer.count).max() ?? 0)
        func padded(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        print("step \(padded("layer")) type           quantity                 max abs err  max rel err  tolerance")
        for e in report.entries where !quiet || !e.passed {
            print(String(format: "%4d %@ %-14@ %-24@ %11.3e  %11.3e  %9.2e%@", e.step, padded(e.layer), e.layerType, e.quantity,
                         e.maxAbsError, e.maxRelError, e.tolerance, e.passed ? "" : "  FAIL"))
        }
        if report.activationTies > 0 {
            print("\(report.activationTies) activation input\(report.activationTies == 1 ? "" : "s") inside fused stages fell a rounding either side of zero; the device's backward took the CPU's side")
        }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeAtomically(encoder.encode(report), to: json, what: "the parity report")
        }
        if let first = report.firstFailure {
            let failures = report.entries.filter { !$0.passed }.count
            throw KilnError("parity FAILED: \(failures) of \(report.entries.count) tensors over tolerance; first: step \(first.step), layer \(first.layer) (\(first.layerType)) \(first.quantity), relative error \(String(format: "%.3e", first.maxRelError)) > \(String(format: "%.2e", first.tolerance))")
        }
        let worst = report.entries.map { $0.maxRelError / $0.tolerance }.max() ?? 0
        print("parity passed: \(report.entries.count) tensors within tolerance (worst at \(String(format: "%.0f", 100 * worst))% of its tolerance)")
    }
}
