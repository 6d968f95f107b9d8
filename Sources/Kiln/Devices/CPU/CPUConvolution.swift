import CBLAS

/// Convolution on the CPU: im2col + sgemm. With the channel-major layout a GEMM's output columns are
/// the activation itself. The batch is processed in chunks of images whose im2col columns fit in L2
/// (one chunk range per thread, each with its own scratch), so the column matrix never travels
/// through main memory. A pointwise convolution (and so a Linear layer) needs no im2col at all.
extension CPUDevice {
    /// Floats of im2col columns per chunk: about 512 KB, a share of L2.
    private static let chunkFloats = 128 * 1024

    public func conv2dForward(input: Tensor, weight: Tensor, output: Tensor, geometry: WindowGeometry) throws {
        let depth = input.channels * geometry.kernel * geometry.kernel
        let (m, columns, plane) = (output.channels, output.rowLength, output.height * output.width)
        let (w, y) = (floats(weight), floats(output))
        if geometry.isPointwise {
            Parallel.chunks(columns, grain: 256) { cols in
                Self.gemm(false, false, m, cols.count, depth, w, depth, floats(input) + cols.lowerBound, columns, 0,
                     y + cols.lowerBound, columns)
            }
            return
        }
        forEachChunk(input, depth: depth, plane: plane) { images, col in
            im2col(input, images: images, outputHeight: output.height, outputWidth: output.width, geometry: geometry, into: col)
            Self.gemm(false, false, m, images.count * plane, depth, w, depth, col, images.count * plane, 0,
                 y + images.lowerBound * plane, columns)
        }
    }

    public func conv2dBackwardData(gradOutput: Tensor, weight: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws {
        let depth = gradInput.channels * geometry.kernel * geometry.kernel
        let (m, columns, plane) = (gradOutput.channels, gradOutput.rowLength, gradOutput.height * gradOutput.width)
        let (w, dy, dx) = (floats(weight), floats(gradOutput), floats(gradInput))
        if geometry.isPointwise {
            Parallel.chunks(columns, grain: 256) { cols in
                Self.gemm(true, false, depth, cols.count, m, w, depth, dy + cols.lowerBound, columns, 0, dx + cols.lowerBound, columns)
            }
            return
        }
        // dcol = Wᵀ · dY per chunk, then col2im onto that chunk's images (disjoint across threads).
        forEachChunk(gradInput, depth: depth, plane: plane) { images, dcol in
            Self.gemm(true, false, depth, images.count * plane, m, w, depth, dy + images.lowerBound * plane, columns, 0,
                 dcol, images.count * plane)
            col2im(dcol, images: images, into: gradInput, outputHeight: gradOutput.height,
                   outputWidth: gradOutput.width, geometry: geometry)
        }
    }

    public func conv2dBackwardWeights(input: Tensor, gradOutput: Tensor, gradWeight: Tensor, geometry: WindowGeometry) throws {
        let depth = input.channels * geometry.kernel * geometry.kernel
        let (m, columns, plane) = (gradOutput.channels, gradOutput.rowLength, gradOutput.height * gradOutput.width)
        let size = m * depth
        // dW = dY · colᵀ sums over every output pixel: each thread sums its chunks into its own
        // partial, and the partials are added in a fixed order.
        let partial = scratch(Self.partialScratch, size * Parallel.threads)
        let dy = floats(gradOutput)
        let parts: Int
        if geometry.isPointwise {
            parts = Parallel.parts(columns) { part, r in
                Self.gemm(false, true, m, depth, r.count, dy + r.lowerBound, columns, floats(input) + r.lowerBound, columns, 0,
                     partial + part * size, depth)
            }
        } else {
            parts = forEachChunk(input, depth: depth, plane: plane) { images, col in
                im2col(input, images: images, outputHeight: gradOutput.height, outputWidth: gradOutput.width,
                       geometry: geometry, into: col)
            } accumulate: { part, first, images, col in
                Self.gemm(false, true, m, depth, images.count * plane, dy + images.lowerBound * plane, columns, col,
                     images.count * plane, first ? 0 : 1, partial + part * size, depth)
            }
        }
        let dW = floats(gradWeight)
        dW.update(from: partial, count: size)
        for part in 1..<max(parts, 1) {
            let p = partial + part * size
            for i in 0..<size { dW[i] += p[i] }
        }
    }

    public func addChannelBias(_ x: Tensor, bias: Tensor) throws {
        let row = x.rowLength, data = floats(x), b = floats(bias)
        Parallel.chunks(x.channels) { channels in
            for c in channels {
                let v = b[c], p = data + c * row
                for i in 0..<row { p[i] += v }
            }
        }
    }

    public func channelSums(_ x: Tensor, into sums: Tensor) throws {
        let row = x.rowLength, data = floats(x), out = floats(sums)
        Parallel.chunks(x.channels) { channels in
            for c in channels { out[c] = Reduce.sum(data + c * row, row) }
        }
    }

    /// Splits `image`'s batch into L2-sized chunks, hands each thread a contiguous run of them and
    /// its own column scratch. `accumulate` (optional) runs after `body` on each chunk with whether
    /// it is the thread's first. Returns the number of threads used.
    @discardableResult
    private func forEachChunk(_ image: Tensor, depth: Int, plane: Int,
                              _ body: (Range<Int>, UnsafeMutablePointer<Float>) -> Void,
                              accumulate: ((Int, Bool, Range<Int>, UnsafeMutablePointer<Float>) -> Void)? = nil) -> Int {
        let n = image.batch
        let perChunk = max(1, min(n, Self.chunkFloats / max(depth * plane, 1)))
        let chunkCount = (n + perChunk - 1) / perChunk
        let stride = perChunk * depth * plane
        let scratchBase = scratch(Self.columnScratch, stride * min(Parallel.threads, chunkCount))
        return Parallel.parts(chunkCount) { part, chunks in
            let col = scratchBase + part * stride
            for chunk in chunks {
                let images = chunk * perChunk ..< min(n, (chunk + 1) * perChunk)
                body(images, col)
                accumulate?(part, chunk == chunks.lowerBound, images, col)
            }
        }
    }

    /// im2col for `images` of `input` into `col` [Ci·k·k, images·OH·OW].
    private func im2col(_ input: Tensor, images: Range<Int>, outputHeight oh: Int, outputWidth ow: Int,
                        geometry: WindowGeometry, into col: UnsafeMutablePointer<Float>) {
        let k = geometry.kernel
        let (n, h, w) = (input.batch, input.height, input.width)
        let (s, pad) = (geometry.stride, geometry.padding)
        let x = floats(input)
        var dst = col
        for r in 0..<input.channels * k * k {
            let (ci, kh, kw) = (r / (k * k), (r / k) % k, r % k)
            let (lo, hi) = Self.insideColumns(kernelColumn: kw, width: w, outputWidth: ow, geometry: geometry)
            for image in images {
                let plane = x + (ci * n + image) * h * w
                for y in 0..<oh {
                    let iy = y * s - pad + kh
                    if iy < 0 || iy >= h {
                        for x in 0..<ow { dst[x] = 0 }
                    } else {
                        let src = plane + iy * w + kw - pad
                        for x in 0..<lo { dst[x] = 0 }
                        // Stride 1 (most layers) is a copy of a short row: SIMD8 moves, no call per row.
                        if s == 1 {
                            var x = lo
                            while x &+ 8 <= hi {
                                UnsafeMutableRawPointer(dst + x).storeBytes(
                                    of: UnsafeRawPointer(src + x).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
                                x &+= 8
                            }
                            while x < hi { dst[x] = src[x]; x &+= 1 }
                        } else {
                            for x in lo..<hi { dst[x] = src[x * s] }
                        }
                        for x in hi..<ow { dst[x] = 0 }
                    }
                    dst += ow
                }
            }
        }
    }

    /// The adjoint of im2col: adds each column of `col` [Ci·k·k, images·OH·OW] back onto its pixel.
    private func col2im(_ col: UnsafeMutablePointer<Float>, images: Range<Int>, into gradInput: Tensor,
                        outputHeight oh: Int, outputWidth ow: Int, geometry: WindowGeometry) {
        let k = geometry.kernel
        let (n, h, w) = (gradInput.batch, gradInput.height, gradInput.width)
        let (s, pad) = (geometry.stride, geometry.padding)
        let dx = floats(gradInput)
        for ci in 0..<gradInput.channels {
            for image in images { (dx + (ci * n + image) * h * w).update(repeating: 0, count: h * w) }
        }
        var src = col
        for r in 0..<gradInput.channels * k * k {
            let (ci, kh, kw) = (r / (k * k), (r / k) % k, r % k)
            let (lo, hi) = Self.insideColumns(kernelColumn: kw, width: w, outputWidth: ow, geometry: geometry)
            for image in images {
                let plane = dx + (ci * n + image) * h * w
                for y in 0..<oh {
                    let iy = y * s - pad + kh
                    if iy >= 0 && iy < h {
                        let dst = plane + iy * w + kw - pad
                        for x in lo..<hi { dst[x * s] += src[x] }
                    }
                    src += ow
                }
            }
        }
    }

    /// Output columns [lo, hi) whose input column (x·s − pad + kw) lies inside the image: the same
    /// range for im2col and its adjoint.
    @inline(__always)
    private static func insideColumns(kernelColumn kw: Int, width w: Int, outputWidth ow: Int,
                                      geometry: WindowGeometry) -> (Int, Int) {
        let (s, pad) = (geometry.stride, geometry.padding)
        let lo = min(ow, max(0, (pad - kw + s - 1) / s))
        return (lo, max(lo, min(ow, (w + pad - kw + s - 1) / s)))
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
