import ArgumentParser
import Foundation
import Kiln

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tune CLBlast's GEMM kernels for an OpenCL device at the shapes your models run, and keep the result.",
        discussion: """
            Runs one training step of each model to learn its CLBlast calls (pointwise convolutions and Linear \
            layers), runs CLBlast's tuners at those shapes within --budget seconds, times every shape with \
            CLBlast's own and each tuned parameter set, and stores the fastest in the cache folder, where \
            every later run on the device applies it (it prints `clblast: tuned parameters from …`). \
            Parameters hold for one driver and CLBlast version; after an update run `kiln tune` again. \
            Delete the file to go back to CLBlast's own parameters.
            """)

    @Option(help: "The OpenCL device: opencl (the first GPU, else the first device) or opencl:P.D.")
    var device = "opencl"
    @Option(parsing: .upToNextOption, help: "Presets (\(Presets.names)) or JSON spec files to tune for (default: lean8k, unless --shape is given).")
    var model: [String] = []
    @Option(help: "Images per training step of the models.")
    var batchSize = 128
    @Option(name: .customLong("shape"), help: "Also tune and time a plain GEMM of this size, MxNxK (repeatable).")
    var shapes: [String] = []
    @Option(help: "Seconds to spend, about; CLBlast compiles every configuration it tries.")
    var budget: Double = 600
    @Option(help: cacheDirHelp)
    var cacheDir: String?
    @Flag(help: "Print the OpenCL kernel build log when the kernels do not build.")
    var verbose = false

    func validate() throws {
        guard (1...1 << 20).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 1,048,576") }
        guard budget.isFinite, (10...86_400).contains(budget) else { throw ValidationError("--budget must be between 10 and 86400 seconds") }
    }

    func run() throws {
        let request = try DeviceRequest(flag: device)
        guard request != .cpu, request != .auto else {
            throw KilnError("--device \(device): kiln tune tunes CLBlast on an OpenCL device; pass opencl or opencl:P.D")
        }
        guard let cache = try cacheFolder(cacheDir) else { throw KilnError("no cache folder (no HOME); pass --cache-dir") }
        try cache.checkWritable(CLBlastTuning.folder)
        // CLBlast's own parameters as the baseline, not an earlier tuning.
        let selection = try select(request, cache: cache, verbose: verbose, tuned: false)
        guard let opencl = selection.device as? OpenCLDevice else { throw KilnError("--device \(device) is not an OpenCL device") }
        let extra = try shapes.map(GEMMShape.init(parsing:))
        let specs = try (model.isEmpty && shapes.isEmpty ? [Presets.defaultName] : model).map(ModelSpec.named)
        let tuner = CLBlastTuner(device: opencl, call: try childCall(device: opencl.info.address, cacheDir: cache.url.path))
        var calls: [GEMMShape: Int] = [:]
        if !specs.isEmpty {
            let data = try Dataset.load(folder: Dataset.bundledFolder(), trainLimit: batchSize, testLimit: 1)
            for spec in specs {
                let model = try Model(spec: spec, device: opencl, seed: 1)
                calls.merge(try opencl.gemmShapes(of: Trainer.oneStep(of: model, data: data, batchSize: batchSize)), uniquingKeysWith: +)
            }
        }
        for shape in extra where calls[shape] == nil { calls[shape] = 0 }
        let target = (specs.isEmpty ? [] : ["\(specs.map(\.name).joined(separator: ", ")) at batch \(batchSize)"])
            + extra.map { "\($0.m)x\($0.n)x\($0.k)" }
        print("Tuning CLBlast \(CLBlastTuning.Identity(opencl.info).clblast) on \(opencl.summary) for \(target.joined(separator: "; ")), "
              + "budget \(Int(budget)) s")
        print("GEMMs per step: " + calls.sorted { $0.key.description < $1.key.description }
            .map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
        let bar = ProgressLine(total: budget)
        let tuning = try tuner.run(calls, budget: budget, tunedFor: target.joined(separator: "; ")) { bar.show($0) }
        bar.end()
        print("GEMM (Kiln's call)         calls  GFLOP/s: CLBlast's own  tuned  speed-up")
        for m in tuning.measurements {
            print(m.shape.padding(toLength: 26, withPad: " ", startingAt: 0)
                  + String(format: " %5d  %22.2f  %5.2f  %7.2fx", m.calls, m.defaultGFLOPs, m.tunedGFLOPs, m.tunedGFLOPs / m.defaultGFLOPs))
        }
        for (kernel, values) in tuning.kernels.sorted(by: { $0.key < $1.key }) {
            print("kept \(kernel): " + CLBlastTuner.text(values))
        }
        if let untuned = tuning.untuned {
            print("No tuner call for \(untuned.joined(separator: ", ")) found parameters within the budget (CLBlast compiles every "
                  + "configuration it tries); a larger --budget tries more")
        }
        if tuning.kernels.isEmpty, !tuning.measurements.isEmpty { print("CLBlast's own parameters were the fastest; nothing to override") }
        let file = try tuning.save(in: cache, for: opencl.info)
        print("Saved \(file.path); runs on \(opencl.info.address) with this cache apply it")
    }
}

/// Tuner calls in child processes (`kiln tune-call`), each stopped when its seconds run out; a child
/// killed by a signal (a driver fault in a configuration) gives nothing, like a call that found nothing.
func childCall(device: String, cacheDir: String) throws -> CLBlastTuner.Call {
    let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    return { kernel, shape, fraction, seconds in
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["tune-call", "--device", device, "--kernel", kernel, "--shape", "\(shape.m)x\(shape.n)x\(shape.k)",
                             "--fraction", "\(fraction)", "--cache-dir", cacheDir]
        // The answer is one line; the driver's compiler chatter on stderr could fill a pipe, so it goes nowhere.
        let output = Pipe()
        (process.standardOutput, process.standardError) = (output, FileHandle.nullDevice)
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        try process.run()
        if finished.wait(timeout: .now() + max(seconds, 1)) == .timedOut {
            process.terminate()
            // A child stuck in a driver call may not answer SIGTERM.
            if finished.wait(timeout: .now() + 5) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                finished.wait()
            }
            return nil
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if process.terminationReason == .uncaughtSignal { return nil }
        guard process.terminationStatus == 0 else { throw KilnError("kiln tune-call \(kernel) ended with exit code \(process.terminationStatus)") }
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return line == "none" ? nil : try CLBlastTuner.values(line, from: "kiln tune-call")
    }
}

/// One CLBlast tuner call, in its own process so that `kiln tune` can stop it at the budget. Prints the
/// parameters found as NAME=VALUE pairs, or `none`.
struct TuneCall: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tune-call", abstract: "One CLBlast tuner call (kiln tune runs it).",
                                                    shouldDisplay: false)
    @Option var device: String
    @Option var kernel: String
    @Option var shape: String
    @Option var fraction: Double
    @Option var cacheDir: String?

    func validate() throws {
        guard fraction > 0, fraction <= 1 else { throw ValidationError("--fraction must be in (0, 1]") }
    }

    func run() throws {
        let selection = try select(DeviceRequest(flag: device), cache: cacheFolder(cacheDir), verbose: false, tuned: false)
        guard let opencl = selection.device as? OpenCLDevice else { throw KilnError("--device \(device) is not an OpenCL device") }
        // A configuration space that fails here (a size the tuner refuses, a driver error) gives nothing,
        // like one where no configuration ran: the other tuner calls go on.
        do {
            let found = try CLBlastTuner.tune(on: opencl, kernel: kernel, shape: GEMMShape(parsing: shape), fraction: fraction)
            print(found.map(CLBlastTuner.text) ?? "none")
        } catch {
            FileHandle.standardError.write(Data("kiln tune-call: \(error)\n".utf8))
            print("none")
        }
    }
}

/// One status line with a bar against an expected total of seconds: redrawn in place on a terminal,
/// printed when its text changes otherwise.
final class ProgressLine: @unchecked Sendable {
    private let total: Double, started = Date()
    private let interactive = isatty(STDOUT_FILENO) != 0
    private var last = ""
    private let lock = NSLock()

    init(total: Double) { self.total = total }

    func show(_ message: String) {
        lock.withLock {
            let elapsed = Date().timeIntervalSince(started)
            if interactive {
                let width = 24, done = min(width, Int(Double(width) * elapsed / total))
                let bar = String(repeating: "#", count: done) + String(repeating: "-", count: width - done)
                print("\r\u{1B}[K[\(bar)] \(Int(elapsed)) of ~\(Int(total)) s  \(message)", terminator: "")
            } else {
                // The part before the seconds count: one line per step in a log.
                let step = message.split(separator: ",").first.map(String.init) ?? message
                guard step != last else { return }
                last = step
                print("[\(Int(elapsed)) s] \(step)")
            }
            fflush(nil)
        }
    }

    func end() {
        if interactive { print("\r\u{1B}[K", terminator: "") }
        print(String(format: "Tuned in %.0f s", Date().timeIntervalSince(started)))
    }
}
