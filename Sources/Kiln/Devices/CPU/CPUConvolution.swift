import CBLAS

/// Convolution on the CPU: im2col + sgemm over the whole batch (channel-major layout makes the GEMM
/// output the activation itself). A pointwise convolution (and so a Linear layer) skips im2col.
extension CPUDevice {
    public func conv2dForward(input: Tensor, weight: Tensor, output: Tensor, geometry: WindowGeometry) throws {
        let columns = output.rowLength
        let depth = input.channels * geometry.kernel * geometry.kernel
        let col = columnsOf(input, output: output, geometry: geometry)
        gemmByColumns(transposeA: false, m: output.channels, n: columns, k: depth,
                      a: floats(weight), lda: depth, b: col, c: floats(output))
    }

    public func conv2dBackwardData(gradOutput: Tensor, weight: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws {
        let columns = gradOutput.rowLength
        let depth = gradInput.channels * geometry.kernel * geometry.kernel
        // dcol = Wᵀ · dY, then scatter the columns back onto the image (col2im).
        let dcol = geometry.isPointwise ? floats(gradInput) : scratch(Self.columnScratch, depth * columns)
        gemmByColumns(transposeA: true, m: depth, n: columns, k: gradOutput.channels,
                      a: floats(weight), lda: depth, b: floats(gradOutput), c: dcol)
        if !geometry.isPointwise { col2im(dcol, into: gradInput, outputShape: gradOutput.shape, geometry: geometry) }
    }

    public func conv2dBackwardWeights(input: Tensor, gradOutput: Tensor, gradWeight: Tensor, geometry: WindowGeometry) throws {
        let columns = gradOutput.rowLength
        let depth = input.channels * geometry.kernel * geometry.kernel
        let col = columnsOf(input, output: gradOutput, geometry: geometry)
        // dW = dY · colᵀ: a reduction over N·OH·OW columns, split by thread into partial sums
        // that are added in a fixed order.
        let m = gradOutput.channels, size = m * depth
        let parts = min(Parallel.threads, max(1, columns / 512))
        let partial = scratch(Self.partialScratch, size * parts)
        let dY = floats(gradOutput)
        Parallel.chunks(parts) { range in
            for part in range {
                let r0 = columns * part / parts, r1 = columns * (part + 1) / parts
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(depth), Int32(r1 - r0), 1,
                            dY + r0, Int32(columns), col + r0, Int32(columns), 0, partial + part * size, Int32(depth))
            }
        }
        let dW = floats(gradWeight)
        dW.update(from: partial, count: size)
        for part in 1..<parts {
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

    /// The im2col matrix [Ci·k·k, N·OH·OW] of `input` (the input itself when pointwise).
    private func columnsOf(_ input: Tensor, output: Tensor, geometry: WindowGeometry) -> UnsafeMutablePointer<Float> {
        if geometry.isPointwise { return floats(input) }
        let k = geometry.kernel, rows = input.channels * k * k
        let col = scratch(Self.columnScratch, rows * output.rowLength)
        let (n, h, w) = (input.batch, input.height, input.width)
        let (oh, ow) = (output.height, output.width)
        let (s, pad) = (geometry.stride, geometry.padding)
        let x = floats(input)
        Parallel.chunks(rows) { rowRange in
            for r in rowRange {
                let (ci, kh, kw) = (r / (k * k), (r / k) % k, r % k)
                var dst = col + r * n * oh * ow
                // Output columns whose input column is inside the image: [lo, hi).
                let lo = min(ow, max(0, (pad - kw + s - 1) / s)), hi = max(lo, min(ow, (w + pad - kw + s - 1) / s))
                for image in 0..<n {
                    let plane = x + (ci * n + image) * h * w
                    for y in 0..<oh {
                        let iy = y * s - pad + kh
                        if iy < 0 || iy >= h {
                            dst.update(repeating: 0, count: ow)
                        } else {
                            let src = plane + iy * w + kw - pad
                            dst.update(repeating: 0, count: lo)
                            if s == 1 {
                                (dst + lo).update(from: src + lo, count: hi - lo)
                            } else {
                                for x in lo..<hi { dst[x] = src[x * s] }
                            }
                            (dst + hi).update(repeating: 0, count: ow - hi)
                        }
                        dst += ow
                    }
                }
            }
        }
        return col
    }

    /// Adds each column back to the pixel it came from: the adjoint of im2col.
    private func col2im(_ col: UnsafeMutablePointer<Float>, into gradInput: Tensor, outputShape: [Int],
                        geometry: WindowGeometry) {
        let k = geometry.kernel
        let (n, h, w) = (gradInput.batch, gradInput.height, gradInput.width)
        let (oh, ow) = (outputShape[2], outputShape[3])
        let (s, pad) = (geometry.stride, geometry.padding)
        let dx = floats(gradInput)
        // Each thread owns whole input channels, so no two threads write the same pixel.
        Parallel.chunks(gradInput.channels) { channels in
            for ci in channels {
                let base = dx + ci * n * h * w
                base.update(repeating: 0, count: n * h * w)
                for kh in 0..<k {
                    for kw in 0..<k {
                        var src = col + ((ci * k + kh) * k + kw) * n * oh * ow
                        let lo = min(ow, max(0, (pad - kw + s - 1) / s)), hi = max(lo, min(ow, (w + pad - kw + s - 1) / s))
                        for image in 0..<n {
                            let plane = base + image * h * w
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
            }
        }
    }

    /// C[m, n] = op(A) · B[k, n], row-major, split by column blocks across threads.
    private func gemmByColumns(transposeA: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                               b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        Parallel.chunks(n, grain: 256) { cols in
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, CblasNoTrans,
                        Int32(m), Int32(cols.count), Int32(k), 1, a, Int32(lda),
                        b + cols.lowerBound, Int32(n), 0, c + cols.lowerBound, Int32(n))
        }
    }
}
