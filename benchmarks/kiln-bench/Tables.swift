import Foundation
import Kiln

/// The markdown report: devices side by side per model, the ratio to the CPU, the sgemm limit, the
/// per-layer breakdown, and Kiln's CPU against PyTorch when given.
enum Tables {
    static func markdown(_ results: [BenchResult], machine: String, peakSize: Int, comparison: [EpochReport]?) -> String {
        var lines = ["# kiln-bench", "", machine, "",
                     "GFLOP/s counts training as 3x the forward MACs x 2. The sgemm peak is the device's own GEMM at \(peakSize)³; "
                     + "the conv-shape figure runs the model's convolution GEMM shapes at the same batch, and the fraction is what "
                     + "training achieves of it (OpenCL runs convolutions larger than 1×1 as its own direct kernels, not as GEMMs, "
                     + "so there training can pass it). Warm-up (device set-up, kernel compilation, data upload) is outside the train times.", "",
                     "| model | device | warm-up s | train s (median) | images/s | vs CPU | eval s | GFLOP/s | sgemm peak GFLOP/s | sgemm conv shapes GFLOP/s | of conv-shape limit | test acc % | host peak MB | device MB |",
                     "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in results {
            let cpu = results.first { $0.report.model == r.report.model && $0.report.device.hasPrefix("cpu") }
            let ratio = cpu.map { String(format: "%.2fx", r.report.imagesPerSecond / $0.report.imagesPerSecond) } ?? "—"
            lines.append("| \(r.report.model) | \(r.report.device) | \(f(r.report.warmupSeconds)) | \(f(r.report.epochSeconds)) (\(r.steps) steps) "
                         + "| \(f(r.report.imagesPerSecond, 0)) | \(ratio) | \(f(r.report.evalSeconds)) | \(f(r.trainGFLOPs, 1)) "
                         + "| \(f(r.sgemmPeakGFLOPs, 1)) | \(f(r.sgemmConvShapesGFLOPs, 1)) | \(f(100 * r.trainGFLOPs / r.sgemmConvShapesGFLOPs, 0))% "
                         + "| \(f(r.report.testAccuracy)) | \(f(r.peakHostMB, 0)) | \(r.deviceMB.map { f($0, 0) } ?? "—") |")
        }
        for model in unique(results.map(\.report.model)) {
            let rows = results.filter { $0.report.model == model }
            lines += ["", "## \(model): time per layer, ms per batch (forward / backward)", "",
                      "| layer | " + rows.map(\.report.device).joined(separator: " | ") + " |",
                      "|---|" + rows.map { _ in "---|" }.joined()]
            for (i, layer) in (rows.first?.layers ?? []).enumerated() {
                lines.append("| \(layer.layer) | " + rows.map { "\(f($0.layers[i].forwardMs, 3)) / \(f($0.layers[i].backwardMs, 3))" }
                    .joined(separator: " | ") + " |")
            }
        }
        for r in results {
            guard let gemms = r.clblastGEMMs, !gemms.isEmpty else { continue }
            let tuned = gemms.contains { $0.tunedGFLOPs != nil }
            lines += ["", "## \(r.report.model) on \(r.report.device): CLBlast calls per step, GFLOP/s"
                      + (tuned ? " with CLBlast's own parameters and with `kiln tune`'s" : " (not tuned: `kiln tune` adds a column)"), "",
                      "| GEMM (Kiln's call) | calls | CLBlast's own | tuned | speed-up |", "|---|---|---|---|---|"]
            for g in gemms {
                lines.append("| \(g.shape) | \(g.calls) | \(f(g.ownGFLOPs)) | \(g.tunedGFLOPs.map { f($0) } ?? "—") | "
                             + "\(g.tunedGFLOPs.map { f($0 / g.ownGFLOPs) + "x" } ?? "—") |")
            }
        }
        if let comparison {
            // Compared per image (images/s), so a Kiln run of --steps still compares with a full PyTorch epoch.
            lines += ["", "## Kiln against PyTorch on the CPU (time for one 60,000-image epoch)", "",
                      "| model | Kiln s | PyTorch s | Kiln / PyTorch |", "|---|---|---|---|"]
            for r in results where r.report.device.hasPrefix("cpu") {
                guard let torch = comparison.filter({ $0.model == r.report.model }).map(\.imagesPerSecond).max() else { continue }
                let kiln = 60_000 / r.report.imagesPerSecond, pytorch = 60_000 / torch
                lines.append("| \(r.report.model) | \(f(kiln)) | \(f(pytorch)) | \(f(kiln / pytorch))x |")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func f(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }

    static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}

/// The machine the numbers come from: CPU, cores, OS, OpenCL devices and library versions.
enum Machine {
    static func describe(cpuThreads: Int) -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?
            .trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        let os = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }?.dropFirst(12).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) ?? "unknown OS"
        let openCL = ((try? OpenCLPlatforms.devices()) ?? []).map { "\($0.address) \($0.name) (\($0.typeName), \($0.platformName), driver \($0.driverVersion))" }
        return ["Machine: \(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(os); Kiln CPU threads: \(cpuThreads)",
                "OpenCL: " + (openCL.isEmpty ? "none" : openCL.joined(separator: "; ")),
                "Libraries: " + packageVersions(["libopenblas0-pthread", "libclblast1", "pocl-opencl-icd", "ocl-icd-libopencl1"])]
            .joined(separator: "  \n")
    }

    private static func packageVersions(_ names: [String]) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/dpkg-query")
        process.arguments = ["-W", "-f", "${Package} ${Version}\\n"] + names
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return "unknown (no dpkg-query)" }
        process.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text.split(separator: "\n").joined(separator: ", ")
    }
}
