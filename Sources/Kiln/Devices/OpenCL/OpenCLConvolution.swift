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

    public func conv2dBackwardWeights(input: Tensor, gradOutput: Tensor, gradWeight: Tensor, geometry: WindowGeometry) throws {
        let depth = input.channels * geometry.kernel * geometry.kernel, columns = gradOutput.rowLength
        let source = geometry.isPointwise ? input : try im2col(input, gradOutput, geometry)
        try gemm(false, true, m: gradOutput.channels, n: depth, k: columns, gradOutput, lda: columns, source, ldb: columns,
                 gradWeight, ldc: depth)
    }

    public func addChannelBias(_ x: Tensor, bias: Tensor) throws {
        try run("add_channel_bias", items: x.count, .buffer(x), .buffer(bias), .int(x.rowLength), .int(x.count))
    }

    public func channelSums(_ x: Tensor, into sums: Tensor) throws {
        try runGroups("channel_sums", groups: x.channels, .buffer(x), .buffer(sums), .int(x.rowLength))
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
