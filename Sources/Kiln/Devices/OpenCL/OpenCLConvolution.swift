/// Convolution on OpenCL: the `im2col` kernel, then one CLBlast sgemm over the whole batch, whose
/// output is the activation itself (channel-major layout). Backward-data is sgemm then the `col2im`
/// gather; backward-weights is sgemm against the columns. A pointwise convolution (and so a Linear
/// layer) is the GEMM alone. Kernels: Kernels/convolution.cl.
extension OpenCLDevice {
    public func conv2dForward(input: Tensor, weight: Tensor, output: Tensor, geometry: WindowGeometry) throws {
        let depth = input.channels * geometry.kernel * geometry.kernel, columns = output.rowLength
        let source = geometry.isPointwise ? input : try im2col(input, output, geometry)
        try gemm(false, false, m: output.channels, n: columns, k: depth, weight, lda: depth, source, ldb: columns,
                 output, ldc: columns)
    }

    public func conv2dBackwardData(gradOutput: Tensor, weight: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws {
        let depth = gradInput.channels * geometry.kernel * geometry.kernel, columns = gradOutput.rowLength
        let target = geometry.isPointwise ? gradInput : try columnScratch(depth * columns)
        try gemm(true, false, m: depth, n: columns, k: gradOutput.channels, weight, lda: depth, gradOutput, ldb: columns,
                 target, ldc: columns)
        guard !geometry.isPointwise else { return }
        try run("col2im", items: gradInput.count, .buffer(target), .buffer(gradInput),
                .int(gradInput.channels), .int(gradInput.batch), .int(gradInput.height), .int(gradInput.width),
                .int(gradOutput.height), .int(gradOutput.width),
                .int(geometry.kernel), .int(geometry.stride), .int(geometry.padding))
    }

    /// The weight gradient sums over every pixel of the batch (K = N·OH·OW, up to ~10⁵), while its output is
    /// tiny (Co × Ci·k·k): one GEMM would run in a handful of work-groups. So K is split into equal chunks,
    /// one strided-batched GEMM computes every chunk's partial gradient, and `sum_parts` adds them in a
    /// fixed order.
    public func conv2dBackwardWeights(input: Tensor, gradOutput: Tensor, gradWeight: Tensor, geometry: WindowGeometry) throws {
        let depth = input.channels * geometry.kernel * geometry.kernel, columns = gradOutput.rowLength
        let source = geometry.isPointwise ? input : try im2col(input, gradOutput, geometry)
        let chunks = Self.splitK(columns)
        guard chunks > 1 else {
            try gemm(false, true, m: gradOutput.channels, n: depth, k: columns, gradOutput, lda: columns, source, ldb: columns,
                     gradWeight, ldc: depth)
            return
        }
        let chunk = columns / chunks, outputs = gradWeight.count
        let partials = try partialScratch(chunks * outputs)
        try gemmStridedBatched(false, true, m: gradOutput.channels, n: depth, k: chunk, gradOutput, lda: columns, strideA: chunk,
                               source, ldb: columns, strideB: chunk, partials, ldc: depth, strideC: outputs, count: chunks)
        try sumParts(partials, into: gradWeight, parts: chunks, outputStride: 1, partStride: outputs)
    }

    /// Chunks for a K-long weight-gradient sum: none below K = 2048 (one GEMM is fine there), else the
    /// largest divisor of K up to 512 that leaves chunks of at least 64 terms. Even a weight as small as
    /// 8×16 then makes hundreds of work-groups. It depends on the shape alone, so results repeat.
    static func splitK(_ k: Int) -> Int {
        guard k >= 2048 else { return 1 }
        var chunks = min(512, k / 64)
        while chunks > 1 && k % chunks != 0 { chunks -= 1 }
        return max(chunks, 1)
    }

    public func addChannelBias(_ x: Tensor, bias: Tensor) throws {
        try run("add_channel_bias", items: x.count, .buffer(x), .buffer(bias), .int(x.rowLength), .int(x.count))
    }

    public func channelSums(_ x: Tensor, into sums: Tensor) throws {
        let (slice, slices) = reductionSlices(channels: x.channels, row: x.rowLength)
        let partials = try partialScratch(x.channels * slices)
        try runGroups("slice_sums", groups: x.channels * slices, .buffer(x), .buffer(partials), .int(x.rowLength),
                      .int(slice), .int(slices))
        try sumParts(partials, into: sums, parts: slices, outputStride: slices, partStride: 1)
    }

    /// out[o] = Σₚ partials[o·outputStride + p·partStride], one work-group per output (Kernels/convolution.cl).
    private func sumParts(_ partials: Tensor, into out: Tensor, parts: Int, outputStride: Int, partStride: Int) throws {
        var size = 1
        while size < min(parts, elementGroup) { size *= 2 }
        try enqueue("sum_parts", global: out.count * size, local: size,
                    [.buffer(partials), .buffer(out), .int(parts), .int(outputStride), .int(partStride)])
    }

    /// Columns [Ci·k·k, N·OH·OW] of `input` for an output shaped like `output`, in the scratch buffer.
    private func im2col(_ input: Tensor, _ output: Tensor, _ g: WindowGeometry) throws -> Tensor {
        let col = try columnScratch(input.channels * g.kernel * g.kernel * output.rowLength)
        try run("im2col", items: col.count, .buffer(input), .buffer(col),
                .int(input.channels), .int(input.batch), .int(input.height), .int(input.width),
                .int(output.height), .int(output.width), .int(g.kernel), .int(g.stride), .int(g.padding))
        return col
    }
}
