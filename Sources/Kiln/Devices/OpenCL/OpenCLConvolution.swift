/// Convolution on OpenCL. A window larger than 1×1 runs as Kiln's direct kernels (Kernels/convolution.cl,
/// built per window size, stride and tiling), with no column matrix written or read. Cut for a GPU: one
/// launch forward (which also computes a fused batch norm's statistics), one backward for the weight
/// gradient's partial sums and the input gradient together (reading a fused batch norm's gradient on
/// the fly). Cut for a CPU device: the batch norm on its own and the two gradients apart. The weight
/// gradient is completed by `finishGradients`. A pointwise convolution (and so a Linear
/// layer) is a plain CLBlast GEMM on the channel-major activation, with a fused batch norm composed.
/// Grouped and dilated convolutions run as the direct kernels (a grouped 1×1 too: `isPointwise` is
/// false for it), each tile of channels within one group.
extension OpenCLDevice {
    public func conv2dForward(input: Tensor, weight: Tensor, bias: Tensor?, output: Tensor, geometry g: WindowGeometry,
                              normalization: BatchNormForward?) throws {
        try checkConv2dForward(input: input, weight: weight, bias: bias, output: output, geometry: g, normalization: normalization)
        guard !g.isPointwise else {
            try gemm(false, false, m: output.channels, n: output.rowLength, k: input.channels, weight,
                     lda: input.channels, input, ldb: output.rowLength, output, ldc: output.rowLength)
            if let bias { try addChannelBias(output, bias: bias) }
            if let normalization { try composedForward(output, normalization) }
            return
        }
        let launch = rowLaunch(g, channels: output.channels, rows: output.batch * output.height, width: output.width)
        // On a GPU, with a batch norm after it, each work-group also writes its outputs' (count, mean, m2)
        // per channel. A CPU device runs the batch norm on its own (see Kernels/convolution.cl).
        let fused = shape == .gpu ? normalization : nil
        let groups = launch.padded / elementGroup
        let statistics = try fused.map { _ in try partialScratch(3 * output.channels * groups) }
        try enqueue("conv_forward", global: launch.items, local: elementGroup,
                    [.buffer(input), .buffer(weight), .optional(bias), .buffer(output)] + shapeArguments(input, output, g)
                        + [.int(launch.padded), .optional(statistics), .float(fused?.activation.slope ?? 1)],
                    defines: launch.tiling.defines(g) + (fused == nil ? "" : " STATS=1"))
        if let fused, let statistics {
            try normalize(output, statistics: statistics, parts: groups, fused)
        } else if let normalization {
            try composedForward(output, normalization)
        }
    }

    public func conv2dBackward(input: Tensor, gradOutput: Tensor, weight: Tensor, gradWeight: Tensor, gradBias: Tensor?,
                               gradInput: Tensor?, accumulate: Bool, geometry g: WindowGeometry,
                               normalization: BatchNormBackward?) throws {
        try checkConv2dBackward(input: input, gradOutput: gradOutput, weight: weight, gradWeight: gradWeight, gradBias: gradBias,
                                gradInput: gradInput, geometry: g, normalization: normalization)
        // On a GPU the direct kernels read a batch norm's gradient on the fly; CLBlast's GEMMs cannot, and a
        // CPU device runs it faster on its own (see Kernels/convolution.cl): then it runs first.
        let fused = !g.isPointwise && shape == .gpu ? normalization : nil
        let dy = fused != nil ? gradOutput
            : try normalization.map { try composedBackward(gradOutput, $0, scratch: normalizedGradient) } ?? gradOutput
        guard !g.isPointwise else {
            try pointwiseBackwardWeights(input, dy, gradWeight)
            if let gradBias { try channelSums(dy, into: gradBias) }
            if let gradInput {
                try gemm(true, false, m: gradInput.channels, n: dy.rowLength, k: dy.channels, weight, lda: gradInput.channels,
                         dy, ldb: dy.rowLength, gradInput, ldc: dy.rowLength, beta: accumulate ? 1 : 0)
            }
            return
        }
        // A fused batch norm's sums first: its gradient is then a per-channel formula of dy and its input.
        let sums = try fused.map { try backwardSums(dy, $0) }
        // One partial row per part: the weight gradient, then the bias gradient.
        let row = gradWeight.count + (gradBias?.count ?? 0)
        let weights = weightLaunch(g, input: input, gradOutput: dy, outputs: row, normalized: fused != nil)
        let partials = try reservePartials(weights.parts * row)
        // The input gradient: with stride 1 a convolution itself (row tiles); a larger stride leaves holes,
        // so it gathers per pixel (one pixel per item).
        let data = gradInput.map {
            rowLaunch(g, channels: $0.channels, rows: $0.batch * $0.height, width: $0.width, neighbours: g.stride == 1 ? nil : 1)
        }
        let defines = (data?.tiling ?? ConvTiling(neighbours: 1, channels: 1)).defines(g) + " " + weights.tiling.defines
            + " BNC=\(fused == nil ? 0 : dy.channels)" + (accumulate && gradInput != nil ? " ACC=1" : "")
        let shapes = shapeArguments(input, dy, g)
        if shape == .gpu {
            let none = KernelArgument.optional(nil)
            try enqueue("conv_backward", global: weights.items + (data?.items ?? 0), local: elementGroup,
                        [.buffer(input), .buffer(dy), .buffer(weight), .arena(partials.arena), .int(partials.offset),
                         .optional(gradInput)] + shapes
                            + [.int(gradBias == nil ? 0 : 1), .int(weights.parts), .int(weights.items), .int(data?.padded ?? 0),
                               fused.map { .buffer($0.input) } ?? none, sums.map { .arena($0.arena) } ?? none,
                               .int(sums?.offset ?? 0), .int(sums?.slices ?? 0), fused.map { .buffer($0.gamma) } ?? none,
                               fused.map { .buffer($0.savedMean) } ?? none, fused.map { .buffer($0.savedInvStd) } ?? none,
                               .float(fused?.activation.slope ?? 1)],
                        defines: defines)
        } else {
            try enqueue("conv_backward_weights", global: weights.items, local: elementGroup,
                        [.buffer(input), .buffer(dy), .arena(partials.arena), .int(partials.offset)] + shapes
                            + [.int(gradBias == nil ? 0 : 1), .int(weights.parts)], defines: defines)
            if let gradInput, let data {
                try enqueue("conv_backward_data", global: data.items, local: elementGroup,
                            [.buffer(dy), .buffer(weight), .buffer(gradInput)] + shapeArguments(gradInput, dy, g) + [.int(data.padded)],
                            defines: defines)
            }
        }
        sumLater(gradWeight, from: partials, parts: weights.parts, outputStride: 1, partStride: row)
        if let gradBias {
            sumLater(gradBias, from: (partials.arena, partials.offset + gradWeight.count), parts: weights.parts, outputStride: 1,
                     partStride: row)
        }
    }

    /// Elements below which a tensor may be handled by few work-groups (the launch profile's threshold).
    static let smallTensor = 65_536

    /// A row-tiled launch over `channels` × `rows` output rows of `width`: the largest tiling that still
    /// makes `launchGroups` work-groups (or the smallest one), `padded` items per channel tile (whole
    /// work-groups) and `items` in all. `neighbours` fixes OXT. With groups, a tile's channels divide a
    /// group's, so that no tile straddles two groups.
    private func rowLaunch(_ g: WindowGeometry, channels: Int, rows: Int, width: Int,
                           neighbours: Int? = nil) -> (tiling: ConvTiling, padded: Int, items: Int) {
        let candidates = ConvTiling.all(shape).filter {
            (neighbours == nil || $0.neighbours == neighbours) && (g.groups == 1 || channels / g.groups % $0.channels == 0)
        }
        func size(_ t: ConvTiling) -> (padded: Int, tiles: Int) {
            let items = rows * ((width + t.neighbours - 1) / t.neighbours)
            return ((items + elementGroup - 1) / elementGroup * elementGroup, (channels + t.channels - 1) / t.channels)
        }
        let tiling = candidates.first { let s = size($0); return s.padded / elementGroup * s.tiles >= launchGroups } ?? candidates.last!
        let (padded, tiles) = size(tiling)
        return (tiling, padded, tiles * padded)
    }

    /// The weight gradient sums over every pixel of the batch (N·OH·OW, up to ~10⁵) into only Co·Ci·k²
    /// outputs (and Co for the bias: `outputs` in all, a partials `row`), so the sum is split into `parts`
    /// interleaved shares over `items` work-items. Parts stay few enough that the partials are a small
    /// tensor, and no more than the pixels. With groups an item's output channels lie in one group, and
    /// it sums over that group's Ci/groups input channels.
    private func weightLaunch(_ g: WindowGeometry, input: Tensor, gradOutput: Tensor, outputs row: Int,
                              normalized: Bool) -> (tiling: WeightTiling, parts: Int, items: Int) {
        let partGroups = max(1, min(Self.smallTensor / row, gradOutput.rowLength) / elementGroup)
        func plan(_ t: WeightTiling) -> (jobs: Int, parts: Int) {
            let jobs = (gradOutput.channels + t.channels - 1) / t.channels * (input.channels / g.groups) * (g.kernel / t.rows)
            return (jobs, min((launchGroups + jobs - 1) / jobs, partGroups) * elementGroup)
        }
        let candidates = WeightTiling.all(g.kernel, shape, normalized: normalized).filter {
            g.groups == 1 || gradOutput.channels / g.groups % $0.channels == 0
        }
        let tiling = candidates.first { let p = plan($0); return p.jobs * p.parts / elementGroup >= launchGroups } ?? candidates.last!
        let (jobs, parts) = plan(tiling)
        return (tiling, parts, jobs * parts)
    }

    /// The shape arguments every direct kernel takes, from the input-side and output-side activations.
    private func shapeArguments(_ x: Tensor, _ y: Tensor, _ g: WindowGeometry) -> [KernelArgument] {
        [.int(x.channels), .int(x.batch), .int(x.height), .int(x.width), .int(y.channels), .int(y.height), .int(y.width),
         .int(g.padding)]
    }

    /// A pointwise weight gradient is one GEMM, dW = dY · Xᵀ with K = N·H·W: K is cut into chunks that one
    /// strided-batched GEMM computes side by side, and `finishGradients` adds them.
    private func pointwiseBackwardWeights(_ input: Tensor, _ gradOutput: Tensor, _ gradWeight: Tensor) throws {
        let depth = input.channels, columns = gradOutput.rowLength
        let chunks = Self.splitK(columns)
        guard chunks > 1 else {
            return try gemm(false, true, m: gradOutput.channels, n: depth, k: columns, gradOutput, lda: columns, input,
                            ldb: columns, gradWeight, ldc: depth)
        }
        let chunk = columns / chunks, outputs = gradWeight.count
        let partials = try reservePartials(chunks * outputs)
        try gemmStridedBatched(false, true, m: gradOutput.channels, n: depth, k: chunk, gradOutput, lda: columns, strideA: chunk,
                               input, ldb: columns, strideB: chunk, partials.arena, offsetC: partials.offset, ldc: depth,
                               strideC: outputs, count: chunks)
        sumLater(gradWeight, from: partials, parts: chunks, outputStride: 1, partStride: outputs)
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

    /// sums[c] = Σ x[c, …]: the pointwise convolution's bias gradient, slice sums completed by `finishGradients`.
    private func channelSums(_ x: Tensor, into sums: Tensor) throws {
        let (slice, slices) = reductionSlices(channels: x.channels, row: x.rowLength)
        let partials = try reservePartials(x.channels * slices)
        try runGroups("slice_sums", groups: x.channels * slices, .buffer(x), .arena(partials.arena), .int(partials.offset),
                      .int(x.rowLength), .int(slice), .int(slices))
        sumLater(sums, from: partials, parts: slices, outputStride: slices, partStride: 1)
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

    /// The `-D` constants of Kernels/convolution.cl for this tiling and window (DIL and GROUPS only where
    /// they are not 1, so an ungrouped, undilated program keeps its build options).
    func defines(_ g: WindowGeometry) -> String {
        "KS=\(g.kernel) ST=\(g.stride) OXT=\(neighbours) CT=\(channels)" + (g.dilation == 1 ? "" : " DIL=\(g.dilation)")
            + (g.groups == 1 ? "" : " GROUPS=\(g.groups)")
    }
}

/// A weight-gradient work-item's sums: `channels` output channels (WCT) times `rows` window rows
/// (WKY: all k, or one) times k.
struct WeightTiling {
    let channels: Int, rows: Int

    /// From the most work per item to the least, keeping the sums in registers: at most 72 on a GPU
    /// (8 channels of a 3×3 window), 36 through a fused batch norm, whose five values per output channel
    /// stay in registers too (72 spills on RDNA3). A CPU device (PoCL) runs a work-group's items as vector
    /// lanes, so each sum takes a vector register: there 32 at most (2 channels of a 3×3 window took
    /// 44 ms a step for lean8k's Conv2d-4 on PoCL with AVX-512, 8 channels 100 ms).
    static func all(_ kernel: Int, _ shape: LaunchShape, normalized: Bool) -> [WeightTiling] {
        let most = shape == .cpu ? 32 : normalized ? 36 : 72
        return [(8, kernel), (4, kernel), (2, kernel), (1, kernel), (8, 1), (4, 1), (2, 1), (1, 1)]
            .filter { $0 * $1 * kernel <= most }
            .map { WeightTiling(channels: $0, rows: $1) }
    }

    var defines: String { "WCT=\(channels) WKY=\(rows)" }
}
