/// Max and average pooling on the CPU, one (c, n) plane at a time, planes split across threads.
extension CPUDevice {
    public func maxPoolForward(input: Tensor, output: Tensor, argmax: Tensor, geometry: WindowGeometry) throws {
        try checkPooling("maxPoolForward", input: input, output: output, argmax: argmax, geometry: geometry)
        let (h, w, oh, ow) = (input.height, input.width, output.height, output.width)
        let (k, s, pad) = (geometry.kernel, geometry.stride, geometry.padding)
        let (x, y, idx) = (floats(input), floats(output), ints(argmax))
        let halving = geometry == WindowGeometry(kernel: 2, stride: 2, padding: 0)
        parallel.chunks(input.channels * input.batch) { planes in
            for plane in planes {
                let xp = x + plane * h * w, yp = y + plane * oh * ow, ip = idx + plane * oh * ow
                if halving {
                    Self.maxPool2x2(xp, yp, ip, w, oh, ow)
                    continue
                }
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var best = -Float.infinity, at = -1
                        for ky in max(0, pad - oy * s)..<min(k, h + pad - oy * s) {
                            let iy = oy * s - pad + ky
                            for kx in max(0, pad - ox * s)..<min(k, w + pad - ox * s) {
                                let ix = ox * s - pad + kx
                                let v = xp[iy * w + ix]
                                // `!(v <= best)` lets a NaN win, as PyTorch propagates NaN.
                                if at < 0 || !(v <= best) { best = v; at = iy * w + ix }
                            }
                        }
                        yp[oy * ow + ox] = best
                        ip[oy * ow + ox] = Int32(at)
                    }
                }
            }
        }
    }

    /// The common 2x2/stride-2 window without bounds checks: it is most of a small CNN's pooling time.
    /// Four outputs at a time from two SIMD8 row loads, split into even and odd columns.
    @inline(__always)
    private static func maxPool2x2(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                   _ idx: UnsafeMutablePointer<Int32>, _ w: Int, _ oh: Int, _ ow: Int) {
        let lanes = SIMD4<Int32>(0, 2, 4, 6), below = Int32(w)
        for oy in 0..<oh {
            let top = 2 * oy * w, out = oy * ow
            var ox = 0
            while ox &+ 4 <= ow {
                let i0 = top &+ 2 &* ox
                let upper = UnsafeRawPointer(x + i0).loadUnaligned(as: SIMD8<Float>.self)
                let lower = UnsafeRawPointer(x + (i0 &+ w)).loadUnaligned(as: SIMD8<Float>.self)
                let first = SIMD4<Int32>(repeating: Int32(i0)) &+ lanes
                var best = upper.evenHalf, at = first
                // Same tie and NaN rule as the general loop, lane by lane.
                func challenge(_ value: SIMD4<Float>, _ index: SIMD4<Int32>) {
                    let wins = .!(value .<= best)
                    best.replace(with: value, where: wins)
                    at.replace(with: index, where: wins)
                }
                challenge(upper.oddHalf, first &+ 1)
                challenge(lower.evenHalf, first &+ below)
                challenge(lower.oddHalf, first &+ below &+ 1)
                UnsafeMutableRawPointer(y + (out &+ ox)).storeBytes(of: best, as: SIMD4<Float>.self)
                UnsafeMutableRawPointer(idx + (out &+ ox)).storeBytes(of: at, as: SIMD4<Int32>.self)
                ox &+= 4
            }
            for ox in ox..<ow {
                let i0 = top + 2 * ox, i1 = i0 + 1, i2 = i0 + w, i3 = i2 + 1
                var at = i0, best = x[i0]
                if !(x[i1] <= best) { best = x[i1]; at = i1 }
                if !(x[i2] <= best) { best = x[i2]; at = i2 }
                if !(x[i3] <= best) { best = x[i3]; at = i3 }
                y[out + ox] = best
                idx[out + ox] = Int32(at)
            }
        }
    }

    public func maxPoolBackward(gradOutput: Tensor, argmax: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws {
        try checkPooling("maxPoolBackward", input: gradInput, output: gradOutput, argmax: argmax, geometry: geometry)
        let planeIn = gradInput.height * gradInput.width, planeOut = gradOutput.height * gradOutput.width
        let (dy, idx, dx) = (floats(gradOutput), ints(argmax), floats(gradInput))
        parallel.chunks(gradInput.channels * gradInput.batch) { planes in
            for plane in planes {
                let dxp = dx + plane * planeIn, dyp = dy + plane * planeOut, ip = idx + plane * planeOut
                dxp.update(repeating: 0, count: planeIn)
                for o in 0..<planeOut { dxp[Int(ip[o])] += dyp[o] }
            }
        }
    }

    public func avgPoolForward(input: Tensor, output: Tensor, geometry: WindowGeometry) throws {
        try checkPooling("avgPoolForward", input: input, output: output, argmax: nil, geometry: geometry)
        let (h, w, oh, ow) = (input.height, input.width, output.height, output.width)
        let (k, s, pad) = (geometry.kernel, geometry.stride, geometry.padding)
        let (x, y) = (floats(input), floats(output))
        let inverseArea = 1 / Float(k * k)
        parallel.chunks(input.channels * input.batch) { planes in
            for plane in planes {
                let xp = x + plane * h * w, yp = y + plane * oh * ow
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var total: Float = 0
                        for iy in max(0, oy * s - pad)..<min(h, oy * s - pad + k) {
                            for ix in max(0, ox * s - pad)..<min(w, ox * s - pad + k) { total += xp[iy * w + ix] }
                        }
                        yp[oy * ow + ox] = total * inverseArea
                    }
                }
            }
        }
    }

    public func avgPoolBackward(gradOutput: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws {
        try checkPooling("avgPoolBackward", input: gradInput, output: gradOutput, argmax: nil, geometry: geometry)
        let (h, w, oh, ow) = (gradInput.height, gradInput.width, gradOutput.height, gradOutput.width)
        let (k, s, pad) = (geometry.kernel, geometry.stride, geometry.padding)
        let (dy, dx) = (floats(gradOutput), floats(gradInput))
        let inverseArea = 1 / Float(k * k)
        parallel.chunks(gradInput.channels * gradInput.batch) { planes in
            for plane in planes {
                let dxp = dx + plane * h * w, dyp = dy + plane * oh * ow
                dxp.update(repeating: 0, count: h * w)
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let g = dyp[oy * ow + ox] * inverseArea
                        for iy in max(0, oy * s - pad)..<min(h, oy * s - pad + k) {
                            for ix in max(0, ox * s - pad)..<min(w, ox * s - pad + k) { dxp[iy * w + ix] += g }
                        }
                    }
                }
            }
        }
    }
}
