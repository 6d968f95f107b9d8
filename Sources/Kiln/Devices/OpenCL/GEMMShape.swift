import Foundation

/// One CLBlast GEMM call as Kiln makes it: `batch` products C = op(A)·op(B), row-major, op(A) m×k,
/// op(B) k×n. `kiln tune` tunes at the shapes a model's step calls and times them before and after.
public struct GEMMShape: Hashable, Codable, Sendable, CustomStringConvertible {
    public var transposeA: Bool, transposeB: Bool
    public var m: Int, n: Int, k: Int
    public var batch: Int

    public init(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, batch: Int = 1) {
        (self.transposeA, self.transposeB, self.m, self.n, self.k, self.batch) = (transposeA, transposeB, m, n, k, batch)
    }

    /// "MxNxK" (as `--shape` takes it), plain products only.
    public init(parsing text: String) throws {
        let sizes = text.split(separator: "x").compactMap { Int($0) }
        guard sizes.count == 3, sizes.allSatisfy({ (1...65_536).contains($0) }) else {
            throw KilnError("shape \(text): expected MxNxK with sizes from 1 to 65536, e.g. 1024x1024x1024")
        }
        self.init(m: sizes[0], n: sizes[1], k: sizes[2])
    }

    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) * Double(batch) }

    /// "NT 16×18432×8", or "TT 288×(8×16×64)" for a batched call.
    public var description: String {
        let ops = (transposeA ? "T" : "N") + (transposeB ? "T" : "N"), size = "\(m)×\(n)×\(k)"
        return "\(ops) " + (batch == 1 ? size : "\(batch)×(\(size))")
    }

    /// CLBlast's rule: a product below `minIndirect`³ multiply-adds runs in the one direct kernel
    /// (XgemmDirect), a larger one in Xgemm with its helper kernels (XGEMM_MIN_INDIRECT_SIZE).
    func isDirect(minIndirect: Int) -> Bool { m * n * k < minIndirect * minIndirect * minIndirect }
}

extension OpenCLDevice {
    /// The GEMMs `body` enqueues, in order.
    public func recordGEMMs(_ body: () throws -> Void) throws -> [GEMMShape] {
        recordedGEMMs = []
        defer { recordedGEMMs = nil }
        try body()
        return recordedGEMMs ?? []
    }

    /// The GEMMs `step` enqueues (one training step of a model on this device: `Trainer.oneStep`), by
    /// shape, with their calls.
    public func gemmShapes(of step: () throws -> Void) throws -> [GEMMShape: Int] {
        try recordGEMMs(step).reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    /// Seconds per call of `shape` through CLBlast with its current parameters: the median of `repeats`
    /// timings, each of enough calls to take about 20 ms, after one untimed call (which compiles CLBlast's
    /// kernel for the parameters).
    public func timeGEMM(_ shape: GEMMShape, repeats: Int) throws -> Double {
        let s = shape
        let a = try allocate([s.batch * s.m * s.k], .float32), b = try allocate([s.batch * s.k * s.n], .float32)
        let c = try allocate([s.batch * s.m * s.n], .float32)
        try fill(a, with: 0.01)
        try fill(b, with: 0.02)
        let lda = s.transposeA ? s.m : s.k, ldb = s.transposeB ? s.k : s.n
        let call = {
            if s.batch == 1 {
                try self.gemm(s.transposeA, s.transposeB, m: s.m, n: s.n, k: s.k, a, lda: lda, b, ldb: ldb, c, ldc: s.n)
            } else {
                try self.gemmStridedBatched(s.transposeA, s.transposeB, m: s.m, n: s.n, k: s.k, a, lda: lda, strideA: s.m * s.k,
                                            b, ldb: ldb, strideB: s.k * s.n, c, ldc: s.n, strideC: s.m * s.n, count: s.batch)
            }
        }
        func timed(_ calls: Int) throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<calls { try call() }
            try finish()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(calls)
        }
        _ = try timed(1)
        let calls = max(1, min(1000, Int(0.02 / max(try timed(1), 1e-7))))
        return try (0..<max(repeats, 1)).map { _ in try timed(calls) }.sorted()[max(repeats, 1) / 2]
    }

    /// Seconds per call of each shape with CLBlast's own parameters, and with the tuning applied at the
    /// opening (nil without one), which stays applied.
    public func timeGEMMs(_ shapes: [GEMMShape], repeats: Int) throws -> [(shape: GEMMShape, own: Double, tuned: Double?)] {
        let kernels = tuning?.kernels ?? [:]
        for kernel in kernels.keys { try CLBlastParameters.override(info.id, kernel, try CLBlastParameters.own(info.id, kernel)) }
        let own = try shapes.map { try timeGEMM($0, repeats: repeats) }
        for (kernel, values) in kernels { try CLBlastParameters.override(info.id, kernel, values) }
        let tuned = try shapes.map { kernels.isEmpty ? nil : try timeGEMM($0, repeats: repeats) }
        return shapes.indices.map { (shapes[$0], own[$0], tuned[$0]) }
    }
}
