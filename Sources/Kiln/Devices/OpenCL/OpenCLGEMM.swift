import CCLBlast
import COpenCL

/// Matrix products through CLBlast (pointwise convolutions, Linear layers), recorded for the launch log
/// and `kiln-bench`'s GEMM table.
extension OpenCLDevice {
    /// C = op(A) · op(B), row-major, through CLBlast.
    /// C = op(A)·op(B), or C += … with `beta` 1.
    func gemm(_ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int,
              _ a: Tensor, lda: Int, _ b: Tensor, ldb: Int, _ c: Tensor, ldc: Int, beta: Float = 0) throws {
        guard m > 0, n > 0, k > 0 else { return }
        recordedGEMMs?.append(GEMMShape(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k))
        if LaunchLog.isRecording { LaunchLog.note("CLBlastSgemm \(m)×\(n)×\(k)", elements: max(m * n, m * k, k * n)) }
        let status = CLBlastSgemm(CLBlastLayoutRowMajor, transposeA ? CLBlastTransposeYes : CLBlastTransposeNo,
                                  transposeB ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, 1, memory(a), 0, lda,
                                  memory(b), 0, ldb, beta, memory(c), 0, ldc, &queue, nil)
        try checkCLBlast(status, "CLBlastSgemm(m \(m), n \(n), k \(k))")
    }

    /// `count` products C_i = op(A_i) · op(B_i), row-major, where each operand steps by its stride (in
    /// elements) from one product to the next: one CLBlast call.
    func gemmStridedBatched(_ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int,
                            _ a: Tensor, lda: Int, strideA: Int, _ b: Tensor, ldb: Int, strideB: Int,
                            _ c: Tensor, offsetC: Int = 0, ldc: Int, strideC: Int, count: Int) throws {
        guard m > 0, n > 0, k > 0, count > 0 else { return }
        recordedGEMMs?.append(GEMMShape(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, batch: count))
        if LaunchLog.isRecording {
            LaunchLog.note("CLBlastSgemmStridedBatched \(count)×(\(m)×\(n)×\(k))", elements: max(a.count, b.count, count * m * n))
        }
        let status = CLBlastSgemmStridedBatched(
            CLBlastLayoutRowMajor, transposeA ? CLBlastTransposeYes : CLBlastTransposeNo,
            transposeB ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, 1, memory(a), 0, lda, strideA,
            memory(b), 0, ldb, strideB, 0, memory(c), offsetC, ldc, strideC, count, &queue, nil)
        try checkCLBlast(status, "CLBlastSgemmStridedBatched(\(count) × m \(m), n \(n), k \(k))")
    }

    /// One small product through each CLBlast routine Kiln calls, waited for. CLBlast compiles a routine
    /// on its first call, so parameters it cannot compile fail here rather than in a run's first step.
    static func probeGEMMs(context: cl_context, queue: cl_command_queue?) throws {
        var status: cl_int = 0, queue = queue
        let n = 8, bytes = n * n * 2 * MemoryLayout<Float>.size
        let buffers = try (0..<3).map { _ -> cl_mem in
            let buffer = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status)
            try checkCL(status, "clCreateBuffer(\(bytes) bytes)")
            return buffer!
        }
        defer { buffers.forEach { clReleaseMemObject($0) } }
        try checkCLBlast(CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, n, n, n, 1, buffers[0], 0, n,
                                      buffers[1], 0, n, 0, buffers[2], 0, n, &queue, nil), "CLBlastSgemm(m \(n), n \(n), k \(n))")
        try checkCLBlast(CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, n, n, n, 1,
                                                    buffers[0], 0, n, n * n, buffers[1], 0, n, n * n, 0, buffers[2], 0, n, n * n, 2, &queue, nil),
                         "CLBlastSgemmStridedBatched(2 × m \(n), n \(n), k \(n))")
        try checkCL(clFinish(queue), "clFinish")
    }
}
