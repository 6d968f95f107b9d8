/// Convolution on OpenCL. A window larger than 1×1 runs as Kiln's direct kernels (Kernels/convolution.cl,
/// built per window size, stride and tiling): one launch each for forward and backward-data, and a
/// split sum for the weights, with no column matrix written or read. A pointwise convolution (and so a
/// Linear layer) is a plain CLBlast GEMM on the channel-major activation.
extension OpenCLDevice {
    public func conv2dForward(input: Tensor, weight: Tensor, bias: Tensor?, output: Tensor, geometry g: WindowGeometry) throws {
        guard !g.isPointwise else {
            try gemm(false, false, m: output.channels, n: output.rowLength, k: input.channels, weight,
                     lda: input.channels, input, ldb: output.rowLength, output, ldc: output.rowLength)
            if let bias { try addChannelBias(output, bias: bias) }
            return
        }
        try runRows("conv_forward", geometry: g, channels: output.channels, rows: output.batch * output.height,
                    width: output.width,
                    [.buffer(input), .buffer(weight), .optional(bias), .buffer(output)] + shapeArguments(input, output, g))
    }

    public func conv2dBackwardData(gradOutput: Tensor, weight: Tensor, gradInput: Tensor, geometry g: WindowGeometry) throws {
        guard !g.isPointwise else {
            return try gemm(true, false, m: gradInput.channels, n: gradOutput.rowLength, k: gradOutput.channels, weight,
                            lda: gradInput.channels, gradOutput, ldb: gradOutput.rowLength, gradInput, ldc: gradOutput.rowLength)
        }
        let arguments = [.buffer(gradOutput), .buffer(weight), .buffer(gradInput)] + shapeArguments(gradInput, gradOutput, g)
        // With stride 1 it is a convolution itself (row tiles); a larger stride leaves holes, so it gathers per pixel.
        try runRows(g.stride == 1 ? "conv_backward_data" : "conv_backward_data_strided", geometry: g,
                    channels: gradInput.channels, rows: gradInput.batch * gradInput.height, width: gradInput.width,
                    neighbours: g.stride == 1 ? nil : 1, arguments)
    }

    /// The weight gradient sums over every pixel of the batch (N·OH·OW, up to ~10⁵) into only Co·Ci·k²
    /// outputs, so the sum is split into `parts` interleaved shares, summed in a fixed order by `sum_parts`.
    /// The bias gradient rides along in the same two launches.
    public func conv2dBackwardWeights(input: Tensor, gradOutput: Tensor, gradWeight: Tensor, gradBias: Tensor?,
                                      geometry g: WindowGeometry) throws {
        guard !g.isPointwise else {
            try pointwiseBackwardWeights(input, gradOutput, gradWeight)
            if let gradBias { try channelSums(gradOutput, into: gradBias) }
            return
        }
        let row = gradWeight.count + (gradBias?.count ?? 0)
        // Parts stay few enough that the partials are a small tensor (sum_parts has one work-group per
        // weight), and no more than the pixels.
        let pixels = gradOutput.rowLength
        let partGroups = max(1, min(Self.smallTensor / row, pixels) / elementGroup)
        func plan(_ t: WeightTiling) -> (items: Int, parts: Int) {
            let items = (gradOutput.channels + t.channels - 1) / t.channels * input.channels * (g.kernel / t.rows)
            return (items, min((launchGroups + items - 1) / items, partGroups) * elementGroup)
        }
        let candidates = WeightTiling.all(g.kernel, shape)
        let tiling = candidates.first { let p = plan($0); return p.items * p.parts / elementGroup >= launchGroups } ?? candidates.last!
        let (items, parts) = plan(tiling)
        let partials = try partialScratch(parts * row)
        try enqueue("conv_backward_weights", global: items * parts, local: elementGroup,
                    [.buffer(input), .buffer(gradOutput), .buffer(partials)] + shapeArguments(input, gradOutput, g)
                        + [.int(gradBias == nil ? 0 : 1), .int(parts)],
                    defines: tiling.defines(g))
        try sumParts(partials, into: gradWeight, then: gradBias, parts: parts, outputStride: 1, partStride: row)
    }

    /// Elements below which a tensor may be handled by few work-groups (the launch profile's threshold).
    static let smallTensor = 65_536

    /// Runs a direct kernel over `channels` × `rows` output rows of `width`, with the largest tiling that
    /// still makes `launchGroups` work-groups (or the smallest one). `neighbours` fixes OXT.
    private func runRows(_ name: String, geometry g: WindowGeometry, channels: Int, rows: Int, width: Int,
                         neighbours: Int? = nil, _ arguments: [KernelArgument]) throws {
        let candidates = ConvTiling.all(shape).filter { neighbours == nil || $0.neighbours == neighbours }
        func size(_ t: ConvTiling) -> (padded: Int, tiles: Int) {
            let items = rows * ((width + t.neighbours - 1) / t.neighbours)
            return ((items + elementGroup - 1) / elementGroup * elementGroup, (channels + t.channels - 1) / t.channels)
        }
        let tiling = candidates.first { let s = size($0); return s.padded / elementGroup * s.tiles >= launchGroups } ?? candidates.last!
        let (padded, tiles) = size(tiling)
        try enqueue(name, global: tiles * padded, local: elementGroup, arguments + [.int(padded)], defines: tiling.defines(g))
    }

    /// The shape arguments every direct kernel takes, from the input-side and output-side activations.
    private func shapeArguments(_ x: Tensor, _ y: Tensor, _ g: WindowGeometry) -> [KernelArgument] {
        [.int(x.channels), .int(x.batch), .int(x.height), .int(x.width), .int(y.channels), .int(y.height), .int(y.width),
         .int(g.padding)]
    }

    /// A pointwise weight gradient is one GEMM, dW = dY · Xᵀ with K = N·H·W: K is cut into chunks that one
    /// strided-batched GEMM computes side by side, and `sum_parts` adds them.
    private func pointwiseBackwardWeights(_ input: Tensor, _ gradOutput: Tensor, _ gradWeight: Tensor) throws {
        let depth = input.channels, columns = gradOutput.rowLength
        let chunks = Self.splitK(columns)
        guard chunks > 1 else {
            return try gemm(false, true, m: gradOutput.channels, n: depth, k: columns, gradOutput, lda: columns, input,
                            ldb: columns, gradWeight, ldc: depth)
        }
        let chunk = columns / chunks, outputs = gradWeight.count
        let partials = try partialScratch(chunks * outputs)
        try gemmStridedBatched(false, true, m: gradOutput.channels, n: depth, k: chunk, gradOutput, lda: columns, strideA: chunk,
                               input, ldb: columns, strideB: chunk, partials, ldc: depth, strideC: outputs, count: chunks)
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

    /// x[c, …] += bias[c] (in place): the pointwise convolution's bias.
    private func addChannelBias(_ x: Tensor, bias: Tensor) throws {
        try run("add_channel_bias", items: x.count, .buffer(x), .buffer(bias), .int(x.rowLength), .int(x.count))
    }

    /// sums[c] = Σ x[c, …]: the pointwise convolution's bias gradient.
    private func channelSums(_ x: Tensor, into sums: Tensor) throws {
        let (slice, slices) = reductionSlices(channels: x.channels, row: x.rowLength)
        let partials = try partialScratch(x.channels * slices)
        try runGroups("slice_sums", groups: x.channels * slices, .buffer(x), .buffer(partials), .int(x.rowLength),
                      .int(slice), .int(slices))
        try sumParts(partials, into: sums, parts: slices, outputStride: slices, partStride: 1)
    }

    /// out[o] = Σₚ partials[o·outputStride + p·partStride], one work-group per output (Kernels/channels.cl);
    /// outputs past `out` go on into `then`.
    private func sumParts(_ partials: Tensor, into out: Tensor, then: Tensor? = nil, parts: Int, outputStride: Int,
                          partStride: Int) throws {
        var size = 1
        while size < min(parts, elementGroup) { size *= 2 }
        try enqueue("sum_parts", global: (out.count + (then?.count ?? 0)) * size, local: size,
                    [.buffer(partials), .buffer(out), .optional(then), .int(out.count), .int(parts), .int(outputStride),
                     .int(partStride)])
    }
}

/// A direct convolution work-item's outputs: `neighbours` along a row (OXT) times `channels` (CT).
struct ConvTiling {
    let neighbours: Int, channels: Int

    /// From the most work per item to the least: a launch takes the first that fills the device. A GPU
    /// item keeps at most 32 sums: more would spill registers (see benchmarks/results/kernel-resources.md).
    static func all(_ shape: LaunchShape) -> [ConvTiling] {
        let sizes = (shape == .cpu ? [(8, 8)] : []) + [(4, 8), (2, 8), (1, 8), (1, 4), (1, 2), (1, 1)]
        return sizes.map { ConvTiling(neighbours: $0, channels: $1) }
    }

    /// The `-D` constants of Kernels/convolution.cl for this tiling and window.
    func defines(_ g: WindowGeometry) -> String { "KS=\(g.kernel) ST=\(g.stride) OXT=\(neighbours) CT=\(channels)" }
}

/// A `conv_backward_weights` work-item's sums: `channels` output channels (CT) times `rows` window rows
/// (KY: all k, or one) times k.
struct WeightTiling {
    let channels: Int, rows: Int

    /// From the most work per item to the least, keeping the sums in registers: at most 72 on a GPU
    /// (8 channels of a 3×3 window). A CPU device (PoCL) runs a work-group's items as vector lanes, so each
    /// sum takes a vector register: there 32 at most (2 channels of a 3×3 window took 44 ms a step for
    /// lean8k's Conv2d-4 on PoCL with AVX-512, 8 channels 100 ms).
    static func all(_ kernel: Int, _ shape: LaunchShape) -> [WeightTiling] {
        let most = shape == .cpu ? 32 : 72
        return [(8, kernel), (4, kernel), (2, kernel), (1, kernel), (8, 1), (4, 1), (2, 1), (1, 1)]
            .filter { $0 * $1 * kernel <= most }
            .map { WeightTiling(channels: $0, rows: $1) }
    }

    func defines(_ g: WindowGeometry) -> String { "KS=\(g.kernel) ST=\(g.stride) OXT=1 CT=\(channels) KY=\(rows)" }
}
