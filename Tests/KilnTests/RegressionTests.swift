import Foundation
import Testing
@testable import Kiln

/// Restructuring must not change what training computes: a short CPU run's final weights and optimizer
/// state, hashed, against the hash the same run gave before. The hash changes only with a change of the
/// CPU's arithmetic made on purpose, said in its commit: last (issue 28), the direct convolution kernels,
/// whose sums run in another order than im2col + sgemm's, and batch norm's sums in runs of floats added in doubles.
@Suite struct RegressionTests {
    /// FNV-1a over every tensor of the checkpoint, in name order, with its name and bytes.
    static func hash(_ file: Safetensors) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for name in file.tensors.keys.sorted() {
            for byte in Array(name.utf8) + file.tensors[name]!.bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        }
        return h
    }

    /// Two epochs of lean8k on 512 images (augmentation, batch norm, OneCycle, momentum): 16 steps.
    /// OpenBLAS picks its kernels by CPU, and a Haswell kernel runs on every x86-64 CPU with AVX2, so the
    /// run pins it (OPENBLAS_CORETYPE) and the thread count; other arithmetic is Kiln's own Swift, and its
    /// direct convolution kernels, compiled for AVX2 alone.
    @Test func shortRunGivesTheStoredWeights() throws {
        let save = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-regression-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: save) }
        let run = try runKiln(["train", "--model", "lean8k", "--device", "cpu", "--threads", "2", "--train-limit", "512",
                               "--batch-size", "64", "--epochs", "2", "--seed", "5", "--save", save],
                              environment: ["OPENBLAS_CORETYPE": "Haswell"])
        try #require(run.status == 0, "\(run.output)")
        let file = try Safetensors(data: try #require(FileManager.default.contents(atPath: save)), source: save)
        let hash = String(Self.hash(file), radix: 16)
        #expect(hash == "d2365e00a9c8e65b", "the weights after a short run changed: hash \(hash)")
    }
}
