import Foundation
import Testing
@testable import Kiln

@Suite struct CheckpointTests {
    @Test func roundTripKeepsWeightsStatisticsAndOptimizerState() throws {
        let device = CPUDevice()
        let spec = Presets.all["strided12k"]!
        let model = try Model(spec: spec, device: device, seed: testSeed)
        // Make every tensor distinctive: random weights and running statistics, momentum state.
        for (name, t) in model.namedTensors {
            try device.write(randomFloats(t.count).map { name.hasSuffix("running_var") ? abs($0) : $0 }, to: t)  // variances ≥ 0
        }
        for case let bn as BatchNorm2d in model.layers { bn.batchesTracked.value = 41 }
        let optimizer = Optimizer(config: OptimizerConfig(kind: .sgd), device: device)
        try optimizer.prepare(model.parameterBuffer)
        for p in model.parameters { try device.write(randomFloats(p.value.count), to: p.optimizerState[0]) }
        optimizer.step = 1234
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).safetensors").path
        var options = TrainingOptions()
        options.epochs = 9
        options.normalization = MNIST.normalization
        try Checkpoint.save(model: model, optimizer: optimizer, state: TrainingState(options: options, completedEpochs: 4), to: path)

        let (saved, copy, copyOptimizer) = try expectCheckpointReloads(path, model: model, optimizer: optimizer, on: device)
        #expect(saved.spec == spec && saved.state == TrainingState(options: options, completedEpochs: 4))
        #expect(copyOptimizer.step == 1234)
        for case let bn as BatchNorm2d in copy.layers { #expect(bn.batchesTracked.value == 41) }

        // PyTorch's names and layouts.
        let file = try Safetensors(data: Data(contentsOf: URL(fileURLWithPath: path)), source: path)
        #expect(file.tensors["0.weight"]?.shape == [16, 1, 3, 3] && file.tensors["0.bias"]?.shape == [16])
        #expect(file.tensors["2.running_var"]?.dtype == "F32" && file.tensors["2.num_batches_tracked"]?.int64Value == 41)
        #expect(file.tensors["optimizer.0.weight.momentum_buffer"] != nil && file.metadata["format"] == "pt")
        try? FileManager.default.removeItem(atPath: path)
    }

    @Test func rejectsForeignFiles() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).safetensors").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        #expect { try Checkpoint(path: path) } throws: { String(describing: $0).contains("not a valid safetensors file") }
        var file = Safetensors()
        file.tensors["x"] = .float32([1, 2], shape: [2])
        try file.encoded().write(to: URL(fileURLWithPath: path))
        #expect { try Checkpoint(path: path) } throws: { String(describing: $0).contains("no model spec") }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Sizes in a header that overflow are one-line errors, never a trap.
    @Test(arguments: [
        (#"{"x": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}}"#, "does not fit its shape"),
        (#"{"x": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 0]}}"#, "does not fit its shape"),
        (#"{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 9223372036854775807]}}"#, "does not fit its shape"),
    ])
    func rejectsCraftedHeaders(header: String, message: String) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var bytes = Data(withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) })
        bytes.append(Data(header.utf8))
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect { try Checkpoint(path: path) } throws: { error in
            let text = String(describing: error)
            return text.contains(message) && !text.contains("\n")
        }
    }

    /// A negative epoch is refused by name. The spec is a valid one, so that the loader gets as far as
    /// reading the epoch (an unreadable spec would be refused first).
    @Test func rejectsNegativeEpoch() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var file = Safetensors()
        file.metadata["kiln.spec"] = try Presets.all["tiny5k"]!.jsonString()
        file.metadata["kiln.epoch"] = "-3"
        try file.encoded().write(to: URL(fileURLWithPath: path))
        #expect { try Checkpoint(path: path) } throws: { String(describing: $0).hasSuffix("kiln.epoch is -3, not a count") }
    }

    /// An atomic write replaces the file whole, follows a symbolic link (the link stays), and removes
    /// the temporary file a killed writer left; a folder that cannot be written is one line.
    @Test func atomicWritesFollowLinksAndCleanUp() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-atomic-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let target = folder + "/run.safetensors", link = folder + "/latest.safetensors"
        let stale = folder + "/.run.safetensors.kiln-2147483646.tmp"  // a writer that no longer runs
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        try Data("half".utf8).write(to: URL(fileURLWithPath: stale))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        try writeAtomically(Data("new".utf8), to: link, what: "the checkpoint")
        #expect(FileManager.default.contents(atPath: target) == Data("new".utf8))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["latest.safetensors", "run.safetensors"])
        #expect { try writeAtomically(Data(), to: folder + "/missing/x", what: "the log") } throws: {
            String(describing: $0).contains("missing/x: cannot write the log (No such file or directory)")
        }
    }
}
