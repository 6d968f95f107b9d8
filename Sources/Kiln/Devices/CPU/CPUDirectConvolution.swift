import CDirectConvolution

/// Stride-1 convolutions through the direct AVX2 kernels of `CDirectConvolution` (see its header): no
/// im2col, and no GEMM shaped by a narrow layer. A chunk of images is laid out on padded grids in a
/// thread's scratch, then each kernel runs over whole planes. On resnet20's 16-channel layers this is
/// about twice im2col + sgemm's speed. The input gradient is the forward kernel again, over the output
/// gradient padded by (span − 1 − padding), with the weights turned 180° and inputs and outputs swapped.
extension CPUDevice {
    /// Output channels per block of packed weights (the kernels' tile height).
    private static let blockOutputs = Int(KILN_DIRECT_OUTPUTS)

    /// Whether this CPU has AVX2 and FMA, which the direct kernels need.
    static let hasDirectKernels = kiln_direct_available() != 0

    /// Stride-1, ungrouped windows wider than 1 run direct where the CPU allows; the rest run im2col.
    func runsDirect(_ g: WindowGeometry) -> Bool {
        directConvolution && g.stride == 1 && g.groups == 1 && g.kernel > 1 && g.padding <= g.span - 1
    }

    func directForward(_ input: Tensor, _ weight: Tensor, _ output: Tensor, _ g: WindowGeometry) {
        let grid = DirectGrid(input.height, input.width, padding: g.padding, g)
        directCorrelate(input, grid: grid, inputs: input.channels, into: output, accumulate: false) { packed, blocks in
            let w = floats(weight)
            Self.pack(blocks: blocks, inputs: input.channels, taps: grid.taps, into: packed) { o, i, t in
                o < output.channels ? w[(o * input.channels + i) * grid.taps + t] : 0
            }
        }
    }

    /// dx = the full correlation of dy with the turned weights, or dx += … when `accumulate`.
    func directInputGradient(_ gradOutput: Tensor, _ weight: Tensor, _ gradInput: Tensor, _ g: WindowGeometry,
                             accumulate: Bool) {
        let grid = DirectGrid(gradOutput.height, gradOutput.width, padding: g.span - 1 - g.padding, g)
        let (inputs, outputs) = (gradOutput.channels, gradInput.channels)
        directCorrelate(gradOutput, grid: grid, inputs: inputs, into: gradInput, accumulate: accumulate) { packed, blocks in
            let w = floats(weight)
            Self.pack(blocks: blocks, inputs: inputs, taps: grid.taps, into: packed) { o, i, t in
                o < outputs ? w[(i * outputs + o) * grid.taps + grid.taps - 1 - t] : 0
            }
        }
    }

    /// dW[o, i, t] = Σ over images and output pixels of dy[o] · x[i] at tap t. Each thread sums its
    /// chunks into its own partial; the partials are added in a fixed order, as im2col's are.
    func directWeightGradient(_ input: Tensor, _ gradOutput: Tensor, _ gradWeight: Tensor, _ g: WindowGeometry) {
        let grid = DirectGrid(input.height, input.width, padding: g.padding, g)
        let (inputs, blocks) = (input.channels, (gradOutput.channels + Self.blockOutputs - 1) / Self.blockOutputs)
        let tile = Int(KILN_DIRECT_TAPS), taps = (grid.taps + tile - 1) / tile * tile
        let offsets = grid.offsets + Array(repeating: 0, count: taps - grid.taps)
        let size = blocks * Self.blockOutputs * inputs * taps
        withScratch(Self.partialScratch, size * parallel.threads) { partial in
            let parts = forEachChunk(input, floatsPerImage: inputs * grid.plane + blocks * Self.blockOutputs * grid.positions) { chunk in
                let count = chunk.images.count
                let (x, dy) = (chunk.scratch, chunk.scratch + inputs * count * grid.plane)
                let sums = partial + chunk.part * size
                if chunk.isFirst { sums.update(repeating: 0, count: size) }
                layOut(input, images: chunk.images, rows: inputs, width: grid.width, plane: grid.plane, margin: g.padding, into: x)
                layOut(gradOutput, images: chunk.images, rows: blocks * Self.blockOutputs, width: grid.width, plane: grid.positions, margin: 0,
                       into: dy)
                kiln_direct_weight_gradient(dy, Int32(blocks), count * grid.positions, grid.positions, x, Int32(inputs),
                                            count * grid.plane, grid.plane, Int32(count), offsets, Int32(taps), Int32(taps),
                                            sums, Int32(grid.positions))
            }
            let dW = floats(gradWeight)
            for o in 0..<gradOutput.channels {
                for i in 0..<inputs {
                    for t in 0..<grid.taps {
                        let index = (o * inputs + i) * taps + t
                        var sum = partial[index]
                        for part in 1..<max(parts, 1) { sum += partial[part * size + index] }
                        dW[(o * inputs + i) * grid.taps + t] = sum
                    }
                }
            }
        }
    }

    /// out = the correlation of `source`'s images on `grid` with the weights `packWeights` writes (four
    /// outputs to a block), copied (or added) into `output`.
    private func directCorrelate(_ source: Tensor, grid: DirectGrid, inputs: Int, into output: Tensor, accumulate: Bool,
                                 packWeights: (UnsafeMutablePointer<Float>, Int) -> Void) {
        let blocks = (output.channels + Self.blockOutputs - 1) / Self.blockOutputs
        withScratch(Self.partialScratch, blocks * Self.blockOutputs * inputs * grid.taps) { packed in
            packWeights(packed, blocks)
            forEachChunk(source, floatsPerImage: inputs * grid.plane + blocks * Self.blockOutputs * grid.positions) { chunk in
                let count = chunk.images.count
                let (x, out) = (chunk.scratch, chunk.scratch + inputs * count * grid.plane)
                layOut(source, images: chunk.images, rows: inputs, width: grid.width, plane: grid.plane, margin: grid.padding,
                       into: x)
                for (k, image) in chunk.images.enumerated() {
                    kiln_direct_correlate(x + k * grid.plane, Int32(inputs), count * grid.plane, grid.offsets, Int32(grid.taps),
                                          packed, Int32(blocks), out, grid.positions, Int32(grid.positions))
                    extract(out, rowLength: grid.width, plane: grid.positions, into: output, image: image, accumulate: accumulate)
                }
            }
        }
    }

    /// packed[b][i][t][j] = weight(4b + j, i, t): a block's four outputs' weights side by side.
    private static func pack(blocks: Int, inputs: Int, taps: Int, into packed: UnsafeMutablePointer<Float>,
                             _ weight: (_ output: Int, _ input: Int, _ tap: Int) -> Float) {
        var p = packed
        for b in 0..<blocks {
            for i in 0..<inputs {
                for t in 0..<taps {
                    for j in 0..<blockOutputs { p[j] = weight(blockOutputs * b + j, i, t) }
                    p += blockOutputs
                }
            }
        }
    }

    /// Lays `images` of `t` [C, N, H, W] onto grids: channel c's k-th image at (c·images.count + k)·plane,
    /// `margin` zeros above and to the left of the pixels, zeros everywhere else, and all-zero planes for
    /// channels from t.channels up to `rows`.
    private func layOut(_ t: Tensor, images: Range<Int>, rows: Int, width: Int, plane: Int, margin: Int,
                        into grids: UnsafeMutablePointer<Float>) {
        let (n, h, w) = (t.batch, t.height, t.width)
        let source = floats(t)
        for c in 0..<rows {
            for (k, image) in images.enumerated() {
                let dst = grids + (c * images.count + k) * plane
                guard c < t.channels else {
                    dst.update(repeating: 0, count: plane)
                    continue
                }
                // Each float written once: the zeros before a row's pixels, then the pixels.
                let src = source + (c * n + image) * h * w
                var written = 0
                for y in 0..<h {
                    let start = (margin + y) * width + margin
                    for i in written..<start { dst[i] = 0 }
                    Self.copyRow(from: src + y * w, to: dst + start, count: w, stride: 1)
                    written = start + w
                }
                (dst + written).update(repeating: 0, count: plane - written)
            }
        }
    }

    /// Copies one image's output pixels from its grid rows `out` [C][plane] into `t` [C, N, H, W], or adds them.
    private func extract(_ out: UnsafePointer<Float>, rowLength: Int, plane: Int, into t: Tensor, image: Int, accumulate: Bool) {
        let (n, h, w) = (t.batch, t.height, t.width)
        let destination = floats(t)
        for c in 0..<t.channels {
            for y in 0..<h {
                let (src, dst) = (out + c * plane + y * rowLength, destination + ((c * n + image) * h + y) * w)
                if accumulate {
                    Self.addRow(from: src, to: dst, count: w, stride: 1)
                } else {
                    Self.copyRow(from: src, to: dst, count: w, stride: 1)
                }
            }
        }
    }
}

/// An image's flat padded grid for the direct kernels: `padding` zeros on every side, rows `width`
/// floats apart, and each plane `plane` floats, long enough for the reads of the last tile.
private struct DirectGrid {
    let width: Int, padding: Int
    let taps: Int
    /// Each tap's offset from an output position.
    let offsets: [Int32]
    /// Output positions computed per image: the output's rows at the grid's width, rounded up to the kernels' tile.
    let positions: Int
    let plane: Int

    init(_ height: Int, _ width: Int, padding: Int, _ g: WindowGeometry) {
        self.width = width + 2 * padding
        self.padding = padding
        taps = g.kernel * g.kernel
        let reach = g.span - 1, gridWidth = self.width
        offsets = (0..<taps).map { t in Int32((t / g.kernel * gridWidth + t % g.kernel) * g.dilation) }
        let tile = Int(KILN_DIRECT_POSITIONS)
        positions = ((height + 2 * padding - reach) * gridWidth + tile - 1) / tile * tile
        plane = (positions + reach * gridWidth + reach + 7) / 8 * 8
    }
}
