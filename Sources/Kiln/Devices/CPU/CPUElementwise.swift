/// Activations, dropout, sums, products and the flatten permutation on the CPU.
extension CPUDevice {
    public func activationForward(input: Tensor, output: Tensor, activation: Activation) throws {
        try checkSameShape("activationForward", [("input", input), ("output", output)])
        let (x, y) = (floats(input), floats(output))
        parallel.chunks(input.count, grain: 1 << 15) { r in
            var i = r.lowerBound
            // The same function that batch norm applies to a folded activation.
            while i + 16 <= r.upperBound {
                UnsafeMutableRawPointer(y + i).storeBytes(of: Reduce.load16(x + i, activation), as: SIMD16<Float>.self)
                i += 16
            }
            while i < r.upperBound { y[i] = activation.apply(x[i]); i += 1 }
        }
    }

    public func activationBackward(output: Tensor, gradOutput: Tensor, gradInput: Tensor, activation: Activation) throws {
        try checkSameShape("activationBackward", [("output", output), ("gradOutput", gradOutput), ("gradInput", gradInput)])
        let (y, dy, dx) = (floats(output), floats(gradOutput), floats(gradInput))
        parallel.chunks(output.count, grain: 1 << 15) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound {
                let v = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
                let g = UnsafeRawPointer(dy + i).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(dx + i).storeBytes(of: activation.gradient(g, at: v), as: SIMD16<Float>.self)
                i += 16
            }
            while i < r.upperBound { dx[i] = activation.gradient(dy[i], at: y[i]); i += 1 }
        }
    }

    public func dropoutForward(input: Tensor, output: Tensor, mask: Tensor, probability: Float,
                               channelwise: Bool, generator: Philox, step: UInt64) throws {
        try checkSameShape("dropoutForward", [("input", input), ("output", output), ("mask", mask)])
        let (x, y, m) = (floats(input), floats(output), floats(mask))
        let keepScale = probability < 1 ? 1 / (1 - probability) : 0
        // One decision per element, or per (c, n) plane for Dropout2d.
        let decisions = channelwise ? input.channels * input.batch : input.count
        let spread = channelwise ? input.height * input.width : 1
        parallel.chunks((decisions + 3) / 4, grain: 256) { blocks in
            for block in blocks {
                let words = generator.block(UInt32(block), step: step)
                for lane in 0..<4 where block * 4 + lane < decisions {
                    let value: Float = Philox.unit(words[lane]) >= probability ? keepScale : 0
                    let start = (block * 4 + lane) * spread
                    for i in start..<start + spread {
                        m[i] = value
                        y[i] = x[i] * value
                    }
                }
            }
        }
    }

    public func multiply(_ a: Tensor, _ b: Tensor, into c: Tensor) throws {
        try checkSameShape("multiply", [("x", a), ("y", b), ("z", c)])
        let (x, y, z) = (floats(a), floats(b), floats(c))
        parallel.chunks(a.count, grain: 1 << 15) { r in
            for i in r { z[i] = x[i] * y[i] }
        }
    }

    public func add(_ a: Tensor, _ b: Tensor, into c: Tensor) throws {
        try checkSameShape("add", [("x", a), ("y", b), ("z", c)])
        let (x, y, z) = (floats(a), floats(b), floats(c))
        parallel.chunks(a.count, grain: 1 << 15) { r in
            for i in r { z[i] = x[i] + y[i] }
        }
    }

    public func flattenForward(input: Tensor, output: Tensor) throws {
        try checkFlatten("flattenForward", activation: input, features: output)
        permuteFeatures(floats(input), floats(output), input.shape, toFeatures: true)
    }

    public func flattenBackward(gradOutput: Tensor, gradInput: Tensor) throws {
        try checkFlatten("flattenBackward", activation: gradInput, features: gradOutput)
        permuteFeatures(floats(gradOutput), floats(gradInput), gradInput.shape, toFeatures: false)
    }

    /// Between [C, N, H·W] and [C·H·W, N]: element (c, n, p) ↔ feature (c·H·W + p, n).
    private func permuteFeatures(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                                 _ shape: [Int], toFeatures: Bool) {
        let (c, n, plane) = (shape[0], shape[1], shape[2] * shape[3])
        parallel.chunks(c) { channels in
            for ch in channels {
                for image in 0..<n {
                    for p in 0..<plane {
                        let spatial = (ch * n + image) * plane + p, feature = (ch * plane + p) * n + image
                        if toFeatures { dst[feature] = src[spatial] } else { dst[spatial] = src[feature] }
                    }
                }
            }
        }
    }
}
