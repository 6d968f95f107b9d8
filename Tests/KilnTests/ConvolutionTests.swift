import Testing
@testable import Kiln

/// Convolution primitives against a float64 reference, on odd shapes with stride and padding.
/// The input and weight gradients are checked through the adjoint identity against the reference
/// forward: ⟨conv(x), dy⟩ = ⟨x, dx⟩ = ⟨w, dw⟩, and element-wise by explicit reference sums.
@Suite struct ConvolutionTests {
    static let cases: [(ci: Int, co: Int, n: Int, h: Int, g: WindowGeometry)] = [
        (1, 3, 5, 7, WindowGeometry(kernel: 3, stride: 1, padding: 0)),
        (3, 5, 3, 9, WindowGeometry(kernel: 3, stride: 1, padding: 1)),
        (5, 3, 1, 11, WindowGeometry(kernel: 3, stride: 2, padding: 1)),
        (3, 1, 33, 5, WindowGeometry(kernel: 3, stride: 2, padding: 0)),
        (31, 3, 3, 5, WindowGeometry(kernel: 1, stride: 1, padding: 0)),
        (5, 33, 3, 3, WindowGeometry(kernel: 1, stride: 1, padding: 1)),
        (3, 5, 200, 13, WindowGeometry(kernel: 3, stride: 1, padding: 1)),  // several im2col chunks
        (3, 5, 3, 26, WindowGeometry(kernel: 3, stride: 1, padding: 0)),    // rows of exactly 3 SIMD8 blocks
        (3, 5, 5, 17, WindowGeometry(kernel: 5, stride: 1, padding: 2)),    // 17 = 2 blocks + an overlapping one
        (6, 9, 3, 7, WindowGeometry(kernel: 3, stride: 1, padding: 1, groups: 3)),
        (5, 5, 3, 9, WindowGeometry(kernel: 3, stride: 1, padding: 1, groups: 5)),               // depthwise
        (3, 5, 3, 9, WindowGeometry(kernel: 3, stride: 1, padding: 2, dilation: 2)),
        (5, 5, 3, 11, WindowGeometry(kernel: 3, stride: 2, padding: 1, dilation: 3, groups: 5)), // depthwise, dilated, strided
        (6, 4, 3, 5, WindowGeometry(kernel: 1, stride: 1, padding: 0, groups: 2)),               // grouped pointwise
        (3, 3, 200, 13, WindowGeometry(kernel: 3, stride: 1, padding: 2, dilation: 2, groups: 3)), // several im2col chunks
        // The direct kernels' edges: outputs not a multiple of their 4, a 1-pixel image, 16+ channels
        // over several chunks (of 3 images here), 25 taps (not a multiple of their 3), padding of a whole span.
        (17, 6, 9, 31, WindowGeometry(kernel: 3, stride: 1, padding: 1)),
        (4, 33, 2, 1, WindowGeometry(kernel: 3, stride: 1, padding: 1)),
        (16, 16, 7, 33, WindowGeometry(kernel: 3, stride: 1, padding: 1)),
        (5, 7, 3, 9, WindowGeometry(kernel: 5, stride: 1, padding: 1, dilation: 2)),
        (3, 2, 3, 5, WindowGeometry(kernel: 3, stride: 1, padding: 2)),
    ]

    /// Each case on both CPU paths: the direct AVX2 kernels (which take the stride-1 ungrouped cases
    /// where the CPU has AVX2) and im2col + sgemm (which take all of them elsewhere).
    @Test(arguments: 0..<cases.count, [true, false])
    func forwardAndBackward(_ index: Int, direct: Bool) throws {
        let (ci, co, n, h, g) = Self.cases[index]
        let device = CPUDevice(threads: System.coreCount, directConvolution: direct)
        let oh = g.outputSize(h)
        let (x, xv) = try randomTensor(device, [ci, n, h, h])
        let cg = ci / g.groups
        let (w, wv) = try randomTensor(device, [co, cg, g.kernel, g.kernel])
        let (dy, dyv) = try randomTensor(device, [co, n, oh, oh])
        let y = try device.allocate([co, n, oh, oh], .float32)
        try device.conv2dForward(input: x, weight: w, bias: nil, output: y, geometry: g, normalization: nil)
        let terms = cg * g.kernel * g.kernel
        expectClose(try device.readFloats(y), referenceConv(xv, wv, ci: ci, co: co, n: n, h: h, g: g), terms: terms, "forward \(index)")

        // dx[c, b, iy, ix] = Σ dy[o, b, oy, ox] w[o, c, ky, kx] over windows covering the pixel.
        let dx = try device.allocate([ci, n, h, h], .float32), dw = try device.allocate([co, cg, g.kernel, g.kernel], .float32)
        try device.conv2dBackward(input: x, gradOutput: dy, weight: w, gradWeight: dw, gradBias: nil, gradInput: dx, accumulate: false, geometry: g,
                                  normalization: nil)
        var dxRef = [Double](repeating: 0, count: ci * n * h * h)
        var dwRef = [Double](repeating: 0, count: co * cg * g.kernel * g.kernel)
        let k = g.kernel
        for o in 0..<co { for b in 0..<n { for oy in 0..<oh { for ox in 0..<oh {
            let d = Double(dyv[((o * n + b) * oh + oy) * oh + ox])
            for c in 0..<cg { for ky in 0..<k { for kx in 0..<k {
                let iy = oy * g.stride - g.padding + ky * g.dilation, ix = ox * g.stride - g.padding + kx * g.dilation
                guard iy >= 0, iy < h, ix >= 0, ix < h else { continue }
                let channel = o / (co / g.groups) * cg + c
                let xi = ((channel * n + b) * h + iy) * h + ix, wi = ((o * cg + c) * k + ky) * k + kx
                dxRef[xi] += d * Double(wv[wi])
                dwRef[wi] += d * Double(xv[xi])
            } } }
        } } } }
        expectClose(try device.readFloats(dx), dxRef, terms: co / g.groups * k * k, "backward data \(index)")
        expectClose(try device.readFloats(dw), dwRef, terms: n * oh * oh, magnitude: Double(n * oh * oh).squareRoot(),
                    "backward weights \(index)")

        // Accumulating: dx += the same gradient, onto what dx held (another reader's gradient).
        let (sum, before) = try randomTensor(device, [ci, n, h, h])
        try device.conv2dBackward(input: x, gradOutput: dy, weight: w, gradWeight: dw, gradBias: nil, gradInput: sum, accumulate: true,
                                  geometry: g, normalization: nil)
        expectClose(try device.readFloats(sum), zip(before, dxRef).map { Double($0) + $1 }, terms: co / g.groups * k * k + 1,
                    "backward data accumulated \(index)")
    }

    @Test func biasAndChannelSums() throws {
        let device = CPUDevice()
        let (x, xv) = try randomTensor(device, [5, 3, 7, 7])
        let (b, bv) = try randomTensor(device, [5])
        device.addChannelBias(x, bias: b)
        let row = 3 * 49
        expectClose(try device.readFloats(x), xv.enumerated().map { Double($1) + Double(bv[$0 / row]) }, terms: 1, "bias")
        let sums = try device.allocate([5], .float32)
        device.channelSums(x, into: sums)
        let after = try device.readFloats(x)
        expectClose(try device.readFloats(sums), (0..<5).map { c in after[c * row..<(c + 1) * row].reduce(0.0) { $0 + Double($1) } },
                    terms: row, magnitude: Double(row).squareRoot(), "channel sums")
    }
}
