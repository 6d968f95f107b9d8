import CBLAS

/// Convolution on the CPU: stride-1 windows through the direct kernels where the CPU has AVX2
/// (`CPUDirectConvolution.swift`); the rest, and all of them elsewhere, as im2col + sgemm. With the
/// channel-major layout a GEMM's output columns are the activation itself. The batch is processed in
/// chunks of images whose im2col columns fit in L2 (one chunk range per thread, each with its own
/// scratch), so the column matrix never travels through main memory. A pointwise convolution (and so
/// a Linear layer) needs no im2col at all. With channel groups, the im2col rows and the weight rows of
/// a group are contiguous blocks: one GEMM per group.
extension CPUDevice {
    /// Floats of scratch per chunk: about 512 KB, a share of L2.
    private static let chunkFloats = 128 * 1024

    public func conv2dForward(input: Tensor, weight: Tensor, bias: Tensor?, output: Tensor, geometry: WindowGeometry,
                              normalization: BatchNormForward?) throws {
        try checkConv2dForward(input: input, weight: weight, bias: bias, output: output, geometry: geometry, normalization: normalization)
        convolve(input, weight, output, geometry)
        if let bias { addChannelBias(output, bias: bias) }
        if let normalization { try composedForward(output, normalization) }
    }

    public func conv2dBackward(input: Tensor, gradOutput: Tensor, weight: Tensor, gradWeight: Tensor, gradBias: Tensor?,
                               gradInput: Tensor?, accumulate: Bool, geometry: WindowGeometry,
                               normalization: BatchNormBackward?) throws {
        try checkConv2dBackward(input: input, gradOutput: gradOutput, weight: weight, gradWeight: gradWeight, gradBias: gradBias,
                                gradInput: gradInput, geometry: geometry, normalization: normalization)
        let dy = try normalization.map { try composedBackward(gradOutput, $0, scratch: normalizedGradient) } ?? gradOutput
        weightGradient(input, dy, gradWeight, geometry)
        if let gradBias { channelSums(dy, into: gradBias) }
        if let gradInput { inputGradient(dy, weight, gradInput, geometry, accumulate: accumulate) }
    }

    private func convolve(_ input: Tensor, _ weight: Tensor, _ output: Tensor, _ geometry: WindowGeometry) {
        if runsDirect(geometry) { return directForward(input, weight, output, geometry) }
        let depth = input.channels * geometry.kernel * geometry.kernel
        let (m, columns, plane) = (output.channels, output.rowLength, output.height * output.width)
        let (groups, groupDepth, groupM) = (geometry.groups, depth / geometry.groups, m / geometry.groups)
        let (w, y) = (floats(weight), floats(output))
        if geometry.isPointwise {
            parallel.chunks(columns, grain: 256) { cols in
                Self.gemm(false, false, m, cols.count, depth, w, depth, floats(input) + cols.lowerBound, columns, 0,
                     y + cols.lowerBound, columns)
            }
            return
        }
        forEachChunk(input, floatsPerImage: depth * plane) { chunk in
            let (images, col) = (chunk.images, chunk.scratch)
            im2col(input, images: images, outputHeight: output.height, outputWidth: output.width, geometry: geometry, into: col)
            let n = images.count * plane
            for g in 0..<groups {
                Self.gemm(false, false, groupM, n, groupDepth, w + g * groupM * groupDepth, groupDepth, col + g * groupDepth * n, n, 0,
                     y + g * groupM * columns + images.lowerBound * plane, columns)
            }
        }
    }

    /// dx = Wᵀ ∗ dy, or dx += … when `accumulate`.
    private func inputGradient(_ gradOutput: Tensor, _ weight: Tensor, _ gradInput: Tensor, _ geometry: WindowGeometry,
                               accumulate: Bool) {
        if runsDirect(geometry) { return directInputGradient(gradOutput, weight, gradInput, geometry, accumulate: accumulate) }
        let depth = gradInput.channels * geometry.kernel * geometry.kernel
        let (m, columns, plane) = (gradOutput.channels, gradOutput.rowLength, gradOutput.height * gradOutput.width)
        let (groups, groupDepth, groupM) = (geometry.groups, depth / geometry.groups, m / geometry.groups)
        let (w, dy, dx) = (floats(weight), floats(gradOutput), floats(gradInput))
        if geometry.isPointwise {
            parallel.chunks(columns, grain: 256) { cols in
                Self.gemm(true, false, depth, cols.count, m, w, depth, dy + cols.lowerBound, columns, accumulate ? 1 : 0,
                          dx + cols.lowerBound, columns)
            }
            return
        }
        // dcol = Wᵀ · dY per chunk, then col2im onto that chunk's images (disjoint across threads).
        // col2im leaves dcol zeroed, so the GEMM accumulates (β = 1) into zeros and OpenBLAS skips its
        // separate zeroing pass over C: only the thread's first chunk needs a clear scratch.
        forEachChunk(gradInput, floatsPerImage: depth * plane) { chunk in
            let (images, dcol) = (chunk.images, chunk.scratch)
            if chunk.isFirst { dcol.update(repeating: 0, count: chunk.capacity) }
            let n = images.count * plane
            for g in 0..<groups {
                Self.gemm(true, false, groupDepth, n, groupM, w + g * groupM * groupDepth, groupDepth,
                     dy + g * groupM * columns + images.lowerBound * plane, columns, 1, dcol + g * groupDepth * n, n)
            }
            col2im(dcol, images: images, into: gradInput, outputHeight: gradOutput.height,
                   outputWidth: gradOutput.width, geometry: geometry, accumulate: accumulate)
        }
    }

    private func weightGradient(_ input: Tensor, _ gradOutput: Tensor, _ gradWeight: Tensor, _ geometry: WindowGeometry) {
        if runsDirect(geometry) { return directWeightGradient(input, gradOutput, gradWeight, geometry) }
        let depth = input.channels * geometry.kernel * geometry.kernel
        let (m, columns, plane) = (gradOutput.channels, gradOutput.rowLength, gradOutput.height * gradOutput.width)
        let (groups, groupDepth, groupM) = (geometry.groups, depth / geometry.groups, m / geometry.groups)
        let size = groupM * depth
        // dWᵀ = col · dYᵀ [depth, m] sums over every output pixel: each thread sums its chunks into
        // its own partial, and the partials are added in a fixed order. OpenBLAS runs this long-K
        // product about twice as fast with the wide `depth` side as M than with the narrow `m`.
        // With groups, group g's [groupDepth, groupM] block follows group g − 1's.
        withScratch(Self.partialScratch, size * parallel.threads) { partial in
            let dy = floats(gradOutput)
            let parts: Int
            if geometry.isPointwise {
                parts = parallel.parts(columns) { part, r in
                    Self.gemm(false, true, depth, m, r.count, floats(input) + r.lowerBound, columns, dy + r.lowerBound, columns, 0,
                         partial + part * size, m)
                }
            } else {
                parts = forEachChunk(input, floatsPerImage: depth * plane) { chunk in
                    let (images, col) = (chunk.images, chunk.scratch)
                    im2col(input, images: images, outputHeight: gradOutput.height, outputWidth: gradOutput.width,
                           geometry: geometry, into: col)
                    let n = images.count * plane
                    for g in 0..<groups {
                        Self.gemm(false, true, groupDepth, groupM, n, col + g * groupDepth * n, n,
                             dy + g * groupM * columns + images.lowerBound * plane, columns, chunk.isFirst ? 0 : 1,
                             partial + chunk.part * size + g * groupDepth * groupM, groupM)
                    }
                }
            }
            let dW = floats(gradWeight)
            for g in 0..<groups {
                let (block, weights) = (partial + g * groupDepth * groupM, dW + g * groupM * groupDepth)
                for o in 0..<groupM {
                    for d in 0..<groupDepth {
                        var sum = block[d * groupM + o]
                        for part in 1..<max(parts, 1) { sum += block[part * size + d * groupM + o] }
                        weights[o * groupDepth + d] = sum
                    }
                }
            }
        }
    }

    /// x[c, …] += bias[c] (in place).
    func addChannelBias(_ x: Tensor, bias: Tensor) {
        let row = x.rowLength, data = floats(x), b = floats(bias)
        parallel.chunks(x.channels) { channels in
            for c in channels {
                let v = b[c], p = data + c * row
                for i in 0..<row { p[i] += v }
            }
        }
    }

    /// sums[c] = Σ x[c, …]: the gradient of a bias.
    func channelSums(_ x: Tensor, into sums: Tensor) {
        let row = x.rowLength, data = floats(x), out = floats(sums)
        parallel.chunks(x.channels) { channels in
            for c in channels { out[c] = Reduce.sum(data + c * row, row) }
        }
    }

    /// One chunk of a batch as `forEachChunk` hands it out.
    struct ScratchChunk {
        /// The thread's index (0 ..< threads) and whether this is its first chunk.
        let part: Int, isFirst: Bool
        let images: Range<Int>
        /// The thread's own scratch (im2col columns, or the direct kernels' grids), `capacity` floats.
        let scratch: UnsafeMutablePointer<Float>, capacity: Int
    }

    /// Splits `image`'s batch into L2-sized chunks of `floatsPerImage` scratch floats per image and hands
    /// each thread a contiguous run of them with its own scratch. Returns the number of threads used.
    @discardableResult
    func forEachChunk(_ image: Tensor, floatsPerImage: Int, _ body: (ScratchChunk) -> Void) -> Int {
        let n = image.batch
        let perChunk = max(1, min(n, Self.chunkFloats / max(floatsPerImage, 1)))
        let chunkCount = (n + perChunk - 1) / perChunk
        let stride = perChunk * floatsPerImage
        return withScratch(Self.columnScratch, stride * min(parallel.threads, chunkCount)) { scratchBase in
            parallel.parts(chunkCount) { part, chunks in
                for chunk in chunks {
                    body(ScratchChunk(part: part, isFirst: chunk == chunks.lowerBound,
                                      images: chunk * perChunk ..< min(n, (chunk + 1) * perChunk),
                                      scratch: scratchBase + part * stride, capacity: stride))
                }
            }
        }
    }

    /// im2col for `images` of `input` into `col` [Ci·k·k, images·OH·OW].
    private func im2col(_ input: Tensor, images: Range<Int>, outputHeight oh: Int, outputWidth ow: Int,
                        geometry: WindowGeometry, into col: UnsafeMutablePointer<Float>) {
        let (k, d) = (geometry.kernel, geometry.dilation)
        let (n, h, w) = (input.batch, input.height, input.width)
        let s = geometry.stride
        let x = floats(input)
        var dst = col
        for r in 0..<input.channels * k * k {
            let (ci, kh, kw) = (r / (k * k), (r / k) % k * d, r % k * d)
            let (top, bottom) = Self.inside(kernelOffset: kh, size: h, outputSize: oh, geometry: geometry)
            let (lo, hi) = Self.inside(kernelOffset: kw, size: w, outputSize: ow, geometry: geometry)
            for image in images {
                // Output rows whose input row falls in the padding are zero; the rest copy [lo, hi).
                dst.update(repeating: 0, count: top * ow)
                var src = x + (ci * n + image) * h * w + Self.inputOffset(top, lo, kh, kw, w, geometry)
                for y in top..<bottom {
                    let row = dst + y &* ow
                    row.update(repeating: 0, count: lo)
                    Self.copyRow(from: src, to: row + lo, count: hi &- lo, stride: s)
                    (row + hi).update(repeating: 0, count: ow &- hi)
                    src += s &* w
                }
                (dst + bottom * ow).update(repeating: 0, count: (oh - bottom) * ow)
                dst += oh * ow
            }
        }
    }

    /// The adjoint of im2col: adds each column of `col` [Ci·k·k, images·OH·OW] back onto its pixel (onto
    /// zeros, or with `accumulate` onto what the images hold), and leaves `col` zeroed (each row is
    /// cleared while it is still in L1).
    private func col2im(_ col: UnsafeMutablePointer<Float>, images: Range<Int>, into gradInput: Tensor,
                        outputHeight oh: Int, outputWidth ow: Int, geometry: WindowGeometry, accumulate: Bool) {
        let (k, d) = (geometry.kernel, geometry.dilation)
        let (n, h, w) = (gradInput.batch, gradInput.height, gradInput.width)
        let s = geometry.stride
        let dx = floats(gradInput)
        for ci in 0..<gradInput.channels where !accumulate {
            for image in images { (dx + (ci * n + image) * h * w).update(repeating: 0, count: h * w) }
        }
        var src = col
        for r in 0..<gradInput.channels * k * k {
            let (ci, kh, kw) = (r / (k * k), (r / k) % k * d, r % k * d)
            let (top, bottom) = Self.inside(kernelOffset: kh, size: h, outputSize: oh, geometry: geometry)
            let (lo, hi) = Self.inside(kernelOffset: kw, size: w, outputSize: ow, geometry: geometry)
            for image in images {
                var dst = dx + (ci * n + image) * h * w + Self.inputOffset(top, lo, kh, kw, w, geometry)
                for y in top..<bottom {
                    Self.addRow(from: src + y &* ow + lo, to: dst, count: hi &- lo, stride: s)
                    dst += s &* w
                }
                src.update(repeating: 0, count: oh * ow)
                src += oh * ow
            }
        }
    }

    /// Output positions [lo, hi) along one axis whose input position (o·s − pad + kernelOffset) lies
    /// inside the image: the same ranges for im2col and its adjoint. `kernelOffset` is the tap's
    /// index times the dilation.
    @inline(__always)
    private static func inside(kernelOffset kk: Int, size: Int, outputSize: Int, geometry: WindowGeometry) -> (Int, Int) {
        let (s, pad) = (geometry.stride, geometry.padding)
        let lo = min(outputSize, max(0, (pad - kk + s - 1) / s))
        return (lo, max(lo, min(outputSize, (size + pad - kk + s - 1) / s)))
    }

    /// Offset within an input plane of output pixel (y, x)'s tap at offsets (kh, kw) (dilated).
    @inline(__always)
    private static func inputOffset(_ y: Int, _ x: Int, _ kh: Int, _ kw: Int, _ w: Int, _ geometry: WindowGeometry) -> Int {
        let (s, pad) = (geometry.stride, geometry.padding)
        let row: Int = y * s - pad + kh, column: Int = x * s - pad + kw
        return row * w + column
    }

    /// dst[i] = src[i·stride] for i < count. Stride 1 (most layers) moves SIMD8 blocks, the last one
    /// overlapping the one before instead of a scalar tail.
    @inline(__always)
    static func copyRow(from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int, stride: Int) {
        if stride == 1 && count >= 8 {
            var i = 0
            while i &+ 8 < count {
                move8(from: src + i, to: dst + i)
                i &+= 8
            }
            let last = count &- 8
            move8(from: src + last, to: dst + last)
        } else {
            for i in 0..<count { dst[i] = src[i &* stride] }
        }
    }

    @inline(__always)
    private static func move8(from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(dst).storeBytes(of: UnsafeRawPointer(src).loadUnaligned(as: SIMD8<Float>.self),
                                                as: SIMD8<Float>.self)
    }

    /// dst[i·stride] += src[i] for i < count, in SIMD8 blocks where stride is 1.
    @inline(__always)
    static func addRow(from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int, stride: Int) {
        var i = 0
        if stride == 1 {
            while i &+ 8 <= count {
                let sum = UnsafeRawPointer(dst + i).loadUnaligned(as: SIMD8<Float>.self)
                    + UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(dst + i).storeBytes(of: sum, as: SIMD8<Float>.self)
                i &+= 8
            }
        }
        while i < count { dst[i &* stride] += src[i]; i &+= 1 }
    }

    /// C = α·op(A)·op(B) + β·C, row-major.
    @inline(__always)
    private static func gemm(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int,
                      _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                      _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
