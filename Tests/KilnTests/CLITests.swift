import Foundation
import Testing
@testable import Kiln

/// The `kiln` command in its own process: what a user sees when a run is stopped or given data that
/// does not fit.
@Suite struct CLITests {
    func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("kiln-cli-\(UUID().uuidString)-\(name)").path
    }

    @Test func ctrlCStopsAfterTheBatchAndSaysHowToResume() throws {
        let save = temporary("run.safetensors")
        defer { try? FileManager.default.removeItem(atPath: save) }
        let run = try runKiln(["train", "--device", "cpu", "--threads", "1", "--train-limit", "256", "--batch-size", "64",
                               "--epochs", "1000", "--save", save], signal: ("Epoch 2/1000:", SIGINT))
        #expect(run.status == 130, "\(run.output)")
        let last = run.output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("Stopped by Ctrl-C during epoch") && last.contains("continue with `kiln train --resume \(save) --epochs 1000`"),
                "\(run.output)")
        let saved = try Checkpoint(path: save)
        #expect(saved.state.completedEpochs >= 2 && last.contains("holds epoch \(saved.state.completedEpochs)"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (save as NSString).deletingLastPathComponent)
            .filter { $0.contains((save as NSString).lastPathComponent) && $0 != (save as NSString).lastPathComponent }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    @Test func resumeKeepsTheSavedRunAndRefusesOtherOptions() throws {
        let save = temporary("resume.safetensors")
        defer { try? FileManager.default.removeItem(atPath: save) }
        let first = try runKiln(["train", "--device", "cpu", "--train-limit", "128", "--epochs", "1", "--lr", "0.05", "--save", save])
        #expect(first.status == 0, "\(first.output)")
        let saved = try #require(try Checkpoint(path: save).state.options)
        #expect(saved.trainLimit == 128 && saved.dataFolder?.hasSuffix("Data/mnist") == true && saved.learningRate == 0.05)

        let other = try runKiln(["train", "--resume", save, "--epochs", "2", "--lr", "0.3", "--seed", "4"])
        #expect(other.status != 0 && other.output.contains("drop --lr, --seed"), "\(other.output)")
        let limit = try runKiln(["train", "--resume", save, "--epochs", "2", "--train-limit", "256"])
        #expect(limit.status == 1 && limit.output.contains("trained with --train-limit 128, not 256"), "\(limit.output)")
        let resumed = try runKiln(["train", "--resume", save, "--epochs", "2", "--device", "cpu"])
        #expect(resumed.status == 0 && resumed.output.contains("128 training images") && resumed.output.contains("lr 0.05"),
                "\(resumed.output)")
    }

    /// Kiln opens libOpenCL and libclblast at first use, so without them (KILN_OPENCL_LIBRARY naming a
    /// missing file) the CPU path works and `auto` says why it chose the CPU; the binary links neither.
    @Test func runsWithoutTheOpenCLLibrary() throws {
        let ldd = Process()
        ldd.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
        ldd.arguments = [try kilnBinary().path]
        let pipe = Pipe()
        ldd.standardOutput = pipe
        try ldd.run()
        let libraries = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ldd.waitUntilExit()
        #expect(libraries.contains("libc.so") && !libraries.contains("libOpenCL") && !libraries.contains("libclblast"), "\(libraries)")

        let missing = ["KILN_OPENCL_LIBRARY": "/nonexistent/libOpenCL.so.1"]
        let summary = try runKiln(["summary"], environment: missing)
        #expect(summary.status == 0 && summary.output.contains("Total params: 7,416"), "\(summary.output)")
        let save = temporary("no-opencl.safetensors")
        defer { try? FileManager.default.removeItem(atPath: save) }
        let train = try runKiln(["train", "--device", "auto", "--train-limit", "128", "--epochs", "1", "--save", save], environment: missing)
        #expect(train.status == 0 && train.output.contains("device: cpu (auto: no OpenCL platform, cannot load the OpenCL library: /nonexistent/libOpenCL.so.1"),
                "\(train.output)")
        let eval = try runKiln(["eval", "--checkpoint", save, "--device", "cpu"], environment: missing)
        #expect(eval.status == 0 && eval.output.contains("Accuracy:"), "\(eval.output)")
        let opencl = try runKiln(["train", "--device", "opencl", "--epochs", "1"], environment: missing)
        #expect(opencl.status == 1 && opencl.output.contains("--device opencl: no OpenCL device (cannot load the OpenCL library"),
                "\(opencl.output)")
        let clblast = try runKiln(["train", "--device", "opencl", "--epochs", "1", "--train-limit", "128"],
                                  environment: ["KILN_CLBLAST_LIBRARY": "/nonexistent/libclblast.so.1"])
        #expect(clblast.status == 1 && clblast.output.contains("cannot load CLBlast: /nonexistent/libclblast.so.1")
                || !OpenCLSupport.available, "\(clblast.output)")
    }

    @Test func evalRefusesDataTheModelCannotRead() throws {
        let save = temporary("model.safetensors")
        defer { try? FileManager.default.removeItem(atPath: save) }
        let trained = try runKiln(["train", "--device", "cpu", "--train-limit", "128", "--epochs", "1", "--save", save])
        #expect(trained.status == 0, "\(trained.output)")
        // Test images of 3x3 pixels: a 28x28 model cannot read them.
        let folder = temporary("data")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func idx(_ dims: [Int], _ body: [UInt8]) -> Data {
            Data([0, 0, 8, UInt8(dims.count)] + dims.flatMap { d in (0..<4).map { UInt8((d >> (24 - 8 * $0)) & 0xFF) } } + body)
        }
        for prefix in ["train", "t10k"] {
            try idx([2, 3, 3], [UInt8](repeating: 9, count: 18)).write(to: URL(fileURLWithPath: "\(folder)/\(prefix)-images-idx3-ubyte"))
            try idx([2], [1, 2]).write(to: URL(fileURLWithPath: "\(folder)/\(prefix)-labels-idx1-ubyte"))
        }
        let eval = try runKiln(["eval", "--checkpoint", save, "--device", "cpu", "--data", folder])
        #expect(eval.status == 1, "\(eval.output)")
        #expect(eval.output.contains("takes [1, 28, 28] images, the test images of \(folder) are [1, 3, 3]"), "\(eval.output)")
        // Parity checks the data against the model too (no OpenCL device here: it refuses that first).
        let parity = try runKiln(["parity", "--data", folder, "--batch-size", "1", "--steps", "1"])
        #expect(parity.status == 1 && (parity.output.contains("the training images of \(folder) are [1, 3, 3]")
                                       || (!OpenCLSupport.available && parity.output.contains("no OpenCL device"))), "\(parity.output)")
    }

    /// An RGB spec trains from a NumPy folder, and its checkpoint evaluates to the same test line with the
    /// normalisation it saved, even when the training images it was measured on are not there.
    @Test func rgbSpecTrainsFromNumPyAndEvaluatesTheSame() throws {
        let data = try numpyFolder(channels: 3, size: 8, train: 96, test: 40, classes: 5)
        let spec = temporary("rgb8.json"), save = temporary("rgb8.safetensors")
        try Data(rgbSpec.utf8).write(to: URL(fileURLWithPath: spec))
        defer { for path in [spec, save, data] { try? FileManager.default.removeItem(atPath: path) } }
        let trained = try runKiln(["train", "--device", "cpu", "--model", spec, "--data", data, "--epochs", "2",
                                   "--batch-size", "16", "--save", save])
        #expect(trained.status == 0, "\(trained.output)")
        let last = try #require(trained.output.split(separator: "\n").last { $0.hasPrefix("Test set:") })
        // Other training images: the checkpoint's normalisation still applies.
        var random = HostRandom(seed: 5, stream: 5)
        let other = random.uniform(4 * 64 * 3, bound: 1).map { UInt8(min(255, abs($0) * 40)) }
        try Data(npy("|u1", [4, 8, 8, 3], other)).write(to: URL(fileURLWithPath: "\(data)/x_train.npy"))
        try Data(npy("<i8", [4], int64Bytes([0, 1, 2, 3]))).write(to: URL(fileURLWithPath: "\(data)/y_train.npy"))
        let eval = try runKiln(["eval", "--checkpoint", save, "--device", "cpu", "--data", data])
        #expect(eval.status == 0 && eval.output.contains(last), "train: \(last)\neval: \(eval.output)")
    }

    /// `kiln eval --confusion --misclassified N` and `kiln predict` on pictures of test digits.
    @Test func evalReportsMistakesAndPredictClassifiesPictures() throws {
        let save = temporary("model.safetensors")
        defer { try? FileManager.default.removeItem(atPath: save) }
        let trained = try runKiln(["train", "--device", "cpu", "--train-limit", "256", "--epochs", "1", "--save", save])
        #expect(trained.status == 0, "\(trained.output)")
        let eval = try runKiln(["eval", "--checkpoint", save, "--device", "cpu", "--confusion", "--misclassified", "2"])
        let rows = eval.output.split(separator: "\n").filter { $0.first?.isNumber == true && $0.hasSuffix("%") }
        #expect(eval.status == 0 && eval.output.contains("true\\pred") && rows.count == 10, "\(eval.output)")
        #expect(eval.output.contains("most confident:") && eval.output.contains("test image"), "\(eval.output)")
        #expect(try runKiln(["eval", "--checkpoint", save, "--misclassified", "-1"]).status != 0)

        let data = try Dataset.load(folder: Dataset.bundledFolder(), trainLimit: 1, testLimit: 2)
        // Test images back to bytes (grey PGM and an upscaled RGB PNG), labels data.test.labels.
        let digits = (0..<2).map { i in data.test.images[i * 784..<(i + 1) * 784].map { UInt8(max(0, min(255, ($0 * 0.3081 + 0.1307) * 255))) } }
        let pgm = temporary("digit.pgm"), png = temporary("digit.png")
        try Data(Array("P5\n28 28\n255\n".utf8) + digits[0]).write(to: URL(fileURLWithPath: pgm))
        let upscaled = (0..<56).flatMap { y in (0..<56).flatMap { x in [UInt8](repeating: digits[1][y / 2 * 28 + x / 2], count: 3) } }
        try Data(pngBytes(width: 56, height: 56, rgb: true, upscaled)).write(to: URL(fileURLWithPath: png))
        defer { for path in [pgm, png] { try? FileManager.default.removeItem(atPath: path) } }
        let predicted = try runKiln(["predict", "--checkpoint", save, "--json", "--top", "2", pgm, png])
        #expect(predicted.status == 0, "\(predicted.output)")
        struct Result: Decodable { struct Guess: Decodable { let `class`: Int; let probability: Double }; let file: String; let top: [Guess] }
        let results = try JSONDecoder().decode([Result].self, from: Data(predicted.output.utf8))
        #expect(results.map(\.file) == [pgm, png] && results.allSatisfy { $0.top.count == 2 && $0.top[0].probability >= $0.top[1].probability })
        let text = try runKiln(["predict", "--checkpoint", save, pgm])
        #expect(text.status == 0 && text.output.hasPrefix("\(pgm): "), "\(text.output)")
        for bad in [["predict", "--checkpoint", save], ["predict", "--checkpoint", save, "--top", "0", pgm],
                    ["predict", "--checkpoint", save, "/nonexistent.png"]] {
            let run = try runKiln(bad)
            #expect(run.status != 0 && !run.output.contains("Fatal"), "\(bad): \(run.output)")
        }
    }

    /// A sweep trains each setting, marks one that diverges instead of stopping, and writes each run's
    /// report, the summary table and the curves.
    @Test func sweepMarksDivergedRunsAndDrawsTheRest() throws {
        let out = temporary("sweep")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let run = try runKiln(["sweep", "--device", "cpu", "--train-limit", "256", "--epochs", "2", "--last", "2", "--lr", "0.05,1e9",
                               "--out", out])
        #expect(run.status == 0, "\(run.output)")
        let summary = try String(contentsOfFile: out + "/summary.md", encoding: .utf8)
        #expect(summary.contains("| lean8k-lr0.05-b128-s1 | 7416 | 0.05 | 128 | 1 |") && summary.contains("| lean8k-lr1e+09-b128-s1 | 7416 | 1e+09 | 128 | 1 | — | diverged |"),
                "\(summary)")
        let svg = try String(contentsOfFile: out + "/curves.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.components(separatedBy: "<polyline").count == 3 && svg.contains("(diverged or failed)"), "\(svg)")
        let log = try String(contentsOfFile: out + "/lean8k-lr0.05-b128-s1.jsonl", encoding: .utf8)
        #expect(log.split(separator: "\n").count == 2)
        let bad = try runKiln(["sweep", "--lr", "0.1,abc"])
        #expect(bad.status != 0 && bad.output.contains("--lr 0.1,abc: expected a comma-separated list"), "\(bad.output)")
        let seeds = try runKiln(["sweep", "--seeds=1,x"])
        #expect(seeds.status != 0 && seeds.output.contains("--seeds 1,x"), "\(seeds.output)")
    }

    /// The range test draws the loss against the rate and suggests a peak between the steepest fall and
    /// the lowest loss; bad ranges are refused before any work.
    @Test func lrFindSuggestsAPeakAndDrawsTheLoss() throws {
        let out = temporary("lr-find.svg")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let run = try runKiln(["lr-find", "--device", "cpu", "--train-limit", "512", "--batch-size", "32", "--steps", "30",
                               "--start", "1e-3", "--end", "5", "--out", out])
        #expect(run.status == 0, "\(run.output)")
        let numbers = try #require(run.output.firstMatch(of: /falls fastest at lr ([0-9.e+-]+) and is lowest at lr ([0-9.]+(?:e[+-]?[0-9]+)?)\./), "\(run.output)")
        let (steepest, lowest) = (try #require(Double(numbers.1)), try #require(Double(numbers.2)))
        #expect(1e-3 <= steepest && steepest <= lowest && lowest <= 5, "\(run.output)")
        #expect(run.output.contains("Suggested OneCycle peak") && run.output.contains("kiln train --model lean8k --lr "))
        let svg = try String(contentsOfFile: out, encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.components(separatedBy: "<polyline").count == 3 && svg.contains("stroke-dasharray"), "\(svg)")
        for (bad, message) in [(["--start", "0"], "--start and --end must be positive"), (["--start", "1", "--end", "0.5"], "--end above --start"),
                               (["--steps", "5"], "--steps must be between 10"), (["--batch-size", "0"], "--batch-size must be"),
                               (["--out", "/nonexistent/x.svg"], "--out")] {
            let refused = try runKiln(["lr-find"] + bad)
            #expect(refused.status != 0 && refused.output.contains(message) && !refused.output.contains("Fatal"), "\(bad): \(refused.output)")
        }
    }

    /// `kiln report` turns a run's log and checkpoint into one page, and refuses what it cannot read.
    @Test func reportWritesOnePageFromALogAndACheckpoint() throws {
        let folder = temporary("report")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let train = try runKiln(["train", "--device", "cpu", "--threads", "1", "--train-limit", "256", "--epochs", "2",
                                 "--log", "\(folder)/run.jsonl", "--save", "\(folder)/run.safetensors"])
        #expect(train.status == 0, "\(train.output)")
        let run = try runKiln(["report", folder, "--checkpoint", "\(folder)/run.safetensors", "--misclassified", "5", "--last", "2",
                               "--target", "50", "--out", "\(folder)/report.html"])
        #expect(run.status == 0 && run.output.contains("Wrote \(folder)/report.html: 1 run, 5 mistakes pictured"), "\(run.output)")
        let html = try String(contentsOfFile: "\(folder)/report.html", encoding: .utf8)
        #expect(html.contains("≥ 50% in each of the last 2 epochs") && html.contains("<h2>Model: lean8k</h2>") && html.contains("Confusion matrix"))
        #expect(html.components(separatedBy: "data:image/png;base64,").count == 6)

        try Data().write(to: URL(fileURLWithPath: "\(folder)/empty.jsonl"))
        try FileManager.default.createDirectory(atPath: "\(folder)/none", withIntermediateDirectories: true)
        for (arguments, message) in [([], "Missing expected argument"), (["/nonexistent.jsonl"], "no such run report or folder"),
                                     (["\(folder)/empty.jsonl"], "the run report is empty"), (["\(folder)/none"], "no run reports (.jsonl)"),
                                     (["\(folder)/run.safetensors"], "is not a run report"),
                                     (["\(folder)/run.jsonl", "--target", "0"], "--target must be a percentage"),
                                     (["\(folder)/run.jsonl", "--out", "/nonexistent/r.html"], "--out /nonexistent/r.html: the folder")] {
            let refused = try runKiln(["report"] + arguments)
            #expect(refused.status != 0 && refused.output.contains(message) && !refused.output.contains("Fatal"), "\(arguments): \(refused.output)")
        }
    }

    /// Issue 25: under Oclgrind, CLBlast's programs released at exit wrote into Oclgrind's freed call stack
    /// and glibc aborted ("corrupted double-linked list"). Without the tcache, the freed stack's first
    /// bytes are the bin links glibc checks, so the fault shows on every run, not only in some heap layouts.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: CLITests.oclgrind), "no Oclgrind: its exit-time abort not checked"))
    func parityUnderOclgrindExitsWithoutHeapCorruption() throws {
        let folder = temporary("oclgrind")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Dropouts, then a Linear layer: CLBlast caches a program, and the heap is laid out as in the issue.
        let spec = """
            {"name": "mix", "input": [1, 28, 28], "layers": [{"type": "conv2d", "out": 6, "kernel": 5, "stride": 2, "padding": 1},
             {"type": "relu"}, {"type": "batchnorm2d"}, {"type": "dropout2d", "p": 0.2}, {"type": "conv2d", "out": 5, "kernel": 1,
             "padding": 1, "bias": false}, {"type": "batchnorm2d"}, {"type": "relu"}, {"type": "avgpool2d", "kernel": 3, "stride": 2},
             {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"}, {"type": "dropout", "p": 0.3}, {"type": "linear", "out": 10},
             {"type": "logsoftmax"}]}
            """
        try spec.write(toFile: "\(folder)/mix.json", atomically: true, encoding: .utf8)
        let run = try runKiln(["parity", "--model", "\(folder)/mix.json", "--device", "opencl", "--batch-size", "1", "--steps", "1",
                               "--cache-dir", folder],
                              environment: ["KILN_OPENCL_LIBRARY": Self.oclgrind, "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"])
        #expect([0, 1].contains(run.status) && run.output.contains("Oclgrind Simulator") && run.output.contains("tensors")
                && !run.output.contains("corrupted") && !run.output.contains("crashed"), "\(run.output)")
    }

    static let oclgrind = "/usr/lib/oclgrind/liboclgrind-rt.so"
}
