/// Batch assembly on the CPU: gather by shuffled index, optionally rotate and shift (bilinear).
extension CPUDevice {
    public func gatherBatch(images: Tensor, labels: Tensor, order: Tensor, start: Int, output: Tensor,
                            outputLabels: Tensor, augmentation: Augmentation?, fill: Tensor, generator: Philox,
                            step: UInt64) throws {
        try checkGather(images: images, labels: labels, order: order, start: start, output: output, outputLabels: outputLabels, fill: fill)
        let (c, total, h, w, n) = (images.channels, images.batch, images.height, images.width, output.batch)
        let (src, dst, idx, lab, outLab) = (floats(images), floats(output), ints(order), ints(labels), ints(outputLabels))
        let background = floats(fill)
        parallel.chunks(n) { slots in
            for slot in slots {
                let image = Int(idx[start + slot])
                outLab[slot] = lab[image]
                let transform = augmentation.map { $0.transform(generator.block(UInt32(slot), step: step)) }
                for ch in 0..<c {
                    let from = src + (ch * total + image) * h * w, to = dst + (ch * n + slot) * h * w
                    if let transform {
                        Self.resample(from, to, h, w, transform, background[ch])
                    } else {
                        to.update(from: from, count: h * w)
                    }
                }
            }
        }
    }

    /// Bilinear sampling of one plane through the inverse map of `Augmentation.transform`.
    @inline(__always)
    static func resample(_ from: UnsafePointer<Float>, _ to: UnsafeMutablePointer<Float>, _ h: Int, _ w: Int,
                         _ t: (a: Float, b: Float, tx: Float, ty: Float), _ background: Float) {
        let cx = Float(w - 1) / 2, cy = Float(h - 1) / 2
        @inline(__always) func pixel(_ y: Int, _ x: Int) -> Float {
            (y >= 0 && y < h && x >= 0 && x < w) ? from[y * w + x] : background
        }
        for y in 0..<h {
            for x in 0..<w {
                let xp = Float(x) - cx, yp = Float(y) - cy
                let sx = t.a * xp + t.b * yp + cx + t.tx, sy = -t.b * xp + t.a * yp + cy + t.ty
                let x0 = sx.rounded(.down), y0 = sy.rounded(.down)
                let fx = sx - x0, fy = sy - y0
                let (ix, iy) = (Int(x0), Int(y0))
                let top = pixel(iy, ix) * (1 - fx) + pixel(iy, ix + 1) * fx
                let bottom = pixel(iy + 1, ix) * (1 - fx) + pixel(iy + 1, ix + 1) * fx
                to[y * w + x] = top * (1 - fy) + bottom * fy
            }
        }
    }
}
