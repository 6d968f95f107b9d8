import Foundation
import Testing
@testable import Kiln

/// Open MPI's launcher, where installed.
private let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// `mpirun -np 2 kiln train` on CPU ranks of one thread each (Open MPI from Debian: `make mpi-deps`).
@Suite(.enabled(if: mpirun != nil, "needs Open MPI's mpirun (make mpi-deps)"), .serialized)
struct DataParallelTests {
    /// Two ranks on one machine, also as root (CI) and on a machine with fewer cores than ranks.
    let launcher = [mpirun ?? "mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"]

    func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("kiln-mpi-\(UUID().uuidString)-\(name)").path
    }

    /// Trains `layers` for one epoch (`flags` to both runs) as one process with the global batch of 64 and
    /// as two ranks of 32 images, and expects the same weights and buffers within 1e-4 of each tensor's
    /// largest magnitude: float rounding, which ten steps amplify to some 1e-6.
    func expectTwoRanksTrainAsOne(_ layers: String, device: String, flags: [String] = []) throws {
        let spec = temporary("spec.json"), one = temporary("one.safetensors"), two = temporary("two.safetensors")
        defer { for f in [spec, one, two] { try? FileManager.default.removeItem(atPath: f) } }
        try Data(#"{"name": "small", "input": [1, 28, 28], "layers": [\#(layers)]}"#.utf8).write(to: URL(fileURLWithPath: spec))
        let common = ["train", "--model", spec, "--device", device, "--threads", "1", "--train-limit", "640", "--batch-size", "64",
                      "--epochs", "1", "--no-augment", "--seed", "3"]
        let single = try runKiln(common + flags + ["--save", one])
        #expect(single.status == 0, "\(single.output)")
        let parallel = try runKiln(common + flags + ["--save", two], launcher: launcher)
        #expect(parallel.status == 0 && parallel.output.contains("Data-parallel: 2 ranks, each 32 images"), "\(parallel.output)")
        let cpu = CPUDevice(threads: 1)
        let (a, b) = (try Checkpoint(path: one), try Checkpoint(path: two))
        let (modelA, modelB) = (try Model(spec: a.spec, device: cpu, seed: 0), try Model(spec: b.spec, device: cpu, seed: 0))
        try a.load(into: modelA)
        try b.load(into: modelB)
        let initial = try Model(spec: a.spec, device: cpu, seed: 3)
        let tolerance = 1e-4
        for (((name, x), (_, y)), (_, start)) in zip(zip(modelA.namedTensors, modelB.namedTensors), initial.namedTensors) {
            let (u, v, u0) = (try cpu.readFloats(x), try cpu.readFloats(y), try cpu.readFloats(start))
            let scale = u.map { abs(Double($0)) }.max() ?? 1
            let error = zip(u, v).map { abs(Double($0) - Double($1)) }.max() ?? 0
            #expect(error / scale <= tolerance && u != u0, "\(name): relative error \(error / scale) over \(tolerance), or not trained")
        }
    }

    /// Without batch norm, sharding changes nothing but rounding.
    @Test func twoRanksTrainAsOneProcessWithTheGlobalBatch() throws {
        try expectTwoRanksTrainAsOne("""
            {"type": "conv2d", "out": 6, "kernel": 3}, {"type": "relu"}, {"type": "maxpool2d", "kernel": 2},
            {"type": "conv2d", "out": 10, "kernel": 3}, {"type": "relu"}, {"type": "globalavgpool"},
            {"type": "conv2d", "out": 10, "kernel": 1}, {"type": "logsoftmax"}
            """, device: "cpu")
    }

    /// With --sync-bn, batch norm's statistics, gradients and running statistics are the global batch's,
    /// whatever the ranks: lean8k's pattern (convolutions without bias, each with ReLU and batch norm
    /// fused, a max pool between), whose gradients cancel so much that a batch norm's float sums, rounded
    /// differently in one process and in two ranks, made them differ by 3e-3; and ReLU + batch norm on its own.
    static let batchNormLayers = """
        {"type": "conv2d", "out": 8, "kernel": 3, "bias": false}, {"type": "relu"}, {"type": "batchnorm2d"},
        {"type": "conv2d", "out": 8, "kernel": 3, "bias": false}, {"type": "relu"}, {"type": "batchnorm2d"},
        {"type": "maxpool2d", "kernel": 2},
        {"type": "conv2d", "out": 8, "kernel": 3, "bias": false}, {"type": "relu"}, {"type": "batchnorm2d"},
        {"type": "conv2d", "out": 10, "kernel": 3}, {"type": "maxpool2d", "kernel": 2}, {"type": "relu"}, {"type": "batchnorm2d"},
        {"type": "globalavgpool"}, {"type": "conv2d", "out": 10, "kernel": 1}, {"type": "logsoftmax"}
        """

    @Test func synchronisedBatchNormTrainsAsOneProcess() throws {
        try expectTwoRanksTrainAsOne(Self.batchNormLayers, device: "cpu", flags: ["--sync-bn"])
    }

    @Test(.enabled(if: OpenCLSupport.available, "no OpenCL device"))
    func synchronisedBatchNormTrainsAsOneProcessOnOpenCL() throws {
        // Both ranks on one device, by its address (plain `opencl` gives each local rank its own).
        let address = try #require(try OpenCLPlatforms.devices().first).address
        for shape in LaunchShape.allCases {
            try expectTwoRanksTrainAsOne(Self.batchNormLayers, device: address, flags: ["--sync-bn", "--launch-shape", shape.rawValue])
        }
    }

    /// With batch norm (per-rank statistics), a run on two ranks ends with identical replicas (the
    /// trainer checks them after every epoch) and the report says how it ran.
    @Test func ranksStayIdenticalAndTheReportCountsThem() throws {
        let log = temporary("run.jsonl")
        defer { try? FileManager.default.removeItem(atPath: log) }
        let run = try runKiln(["train", "--device", "cpu", "--threads", "1", "--train-limit", "512", "--epochs", "2", "--log", log],
                              launcher: launcher)
        #expect(run.status == 0, "\(run.output)")
        let reports = try EpochReport.read(log)
        #expect(reports.count == 2 && reports.allSatisfy { $0.ranks == 2 && ($0.allReduceSeconds ?? -1) >= 0 && $0.testCount == 10_000 })
        let odd = try runKiln(["train", "--device", "cpu", "--threads", "1", "--batch-size", "63", "--train-limit", "256"], launcher: launcher)
        #expect(odd.status != 0 && odd.output.contains(" of 2: --batch-size 63 is the global batch and must divide by the 2 ranks"),
                "\(odd.output)")
    }

    /// Ranks started with different commands (`mpirun -np 1 kiln … : -np 1 kiln …`) stop before their first
    /// step with one line naming what differs; they used to free memory twice, crash, or report 275% accuracy.
    @Test func ranksThatDisagreeStopBeforeTheFirstStep() throws {
        let data = try numpyFolder(channels: 1, size: 28, train: 256, test: 64, classes: 10)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let common = ["train", "--device", "cpu", "--threads", "1", "--train-limit", "256", "--batch-size", "64", "--epochs", "1"]
        let cases: [(rank1: [String], words: String)] = [
            (["--model", "tiny5k"], "the model tiny5k"),
            (["--train-limit", "128"], "the option trainLimit 128"),
            (["--lr", "0.2"], "the option learningRate 0.2"),
            (["--seed", "2"], "the option seed 2"),
            (["--data", data], "the option normalization"),
        ]
        for (rank1, words) in cases {
            let first = [mpirun ?? "mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "1", try kilnBinary().path] + common
            let run = try runKiln(common + rank1, launcher: first + [":", "-np", "1"])
            #expect(run.status != 0 && run.output.contains("Error: rank 1 of 2: \(words)") && run.output.contains("differs from rank 0's")
                    && !run.output.contains("corruption") && !run.output.contains("Epoch 1/1"), "\(rank1): \(run.output)")
        }
    }

    /// A rank killed mid-epoch ends the whole job within seconds, and the last checkpoint still loads and resumes.
    @Test func aKilledRankEndsTheJobAndTheCheckpointResumes() throws {
        let save = temporary("killed.safetensors")
        defer { try? FileManager.default.removeItem(atPath: save) }
        let started = Date()
        let run = try runKiln(["train", "--device", "cpu", "--threads", "1", "--train-limit", "2048", "--epochs", "50", "--save", save],
                              launcher: launcher, signal: ("Epoch 3/50", SIGKILL)) {
            // Rank 1: the process whose environment says so, among those training into `save`.
            for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap(Int32.init) ?? [] {
                guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ"),
                      let command = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                      String(decoding: command, as: UTF8.self).contains(save),
                      environ.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == "OMPI_COMM_WORLD_RANK=1" }) else { continue }
                kill(pid, SIGKILL)
            }
        }
        #expect(run.status != 0 && Date().timeIntervalSince(started) < 60, "\(run.output)")
        #expect(run.output.contains("rank 1") || run.output.contains("Rank 1") || run.output.contains("signal 9"), "\(run.output)")
        let saved = try Checkpoint(path: save)
        #expect(saved.state.completedEpochs >= 1)
        let resumed = try runKiln(["train", "--resume", save, "--epochs", String(saved.state.completedEpochs + 1), "--device", "cpu"])
        #expect(resumed.status == 0, "\(resumed.output)")
    }
}
