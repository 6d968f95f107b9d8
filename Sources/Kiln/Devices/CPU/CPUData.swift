/// Batch assembly on the CPU: gather by shuffled index, optionally rotate and shift (bilinear) or crop,
/// then flip and cut out, as `Augmentation` draws them.
extension CPUDevice {
    public func gatherBatch(images: Tensor, labels: Tensor, order: Tensor, start: Int, output: Tensor,
                            outputLabels: Tensor, augmentation: Augmentation?, fill: Tensor, generator: Philox,
                            step: UInt64) throws {
        try checkGather(images: images, labels: labels, order: order, start: start, output: output, outputLabels: outputLabels,
                        augmentation: augmentation, fill: fill)
        let (c, total, h, w, n) = (images.channels, images.batch, images.height, images.width, output.batch)
        let (src, dst, idx, lab, outLab) = (floats(images), floats(output), ints(order), ints(labels), ints(outputLabels))
        let background = floats(fill)
        parallel.chunks(n) { slots in
            for slot in slots {
                let image = Int(idx[start + slot])
                outLab[slot] = lab[image]
                guard let augmentation else {
                    for ch in 0..<c { (dst + (ch * n + slot) * h * w).update(from: src + (ch * total + image) * h * w, count: h * w) }
                    continue
                }
                let first = generator.block(UInt32(slot), step: step)
                let transform = augmentation.rotates ? augmentation.transform(first) : nil
                let place = augmentation.placement(first: first, generator.block(Augmentation.placementBlock(slot), step: step),
                                                   height: h, width: w)
                for ch in 0..<c {
                    let from = src + (ch * total + image) * h * w, to = dst + (ch * n + slot) * h * w
                    if let transform {
                        Self.resample(from, to, h, w, transform, background[ch])
                    } else if augmentation.cropPadding > 0 {
                        Self.crop(from, to, h, w, dx: place.dx - augmentation.cropPadding, dy: place.dy - augmentation.cropPadding,
                                  reflect: augmentation.paddingMode == .reflect, background[ch])
                    } else {
                        to.update(from: from, count: h * w)
                    }
                    if place.flip {
                        for y in 0..<h {
                            var row = UnsafeMutableBufferPointer(start: to + y * w, count: w)
                            row.reverse()
                        }
                    }
                    if augmentation.cutout > 0 {
                        let (x0, x1) = (max(place.cutLeft, 0), min(place.cutLeft + augmentation.cutout, w))
                        for y in max(place.cutTop, 0)..<min(place.cutTop + augmentation.cutout, h) where x0 < x1 {
                            (to + y * w + x0).update(repeating: 0, count: x1 - x0)
                        }
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

    /// Output pixel (x, y) of one plane is input (x + dx, y + dy); outside the image, `background` or
    /// (`reflect`) the pixel mirrored about the edge, the edge itself not repeated (|dx|, |dy| < the side).
    @inline(__always)
    static func crop(_ from: UnsafePointer<Float>, _ to: UnsafeMutablePointer<Float>, _ h: Int, _ w: Int, dx: Int, dy: Int,
                     reflect: Bool, _ background: Float) {
        @inline(__always) func mirrored(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i }
        for y in 0..<h {
            var sy = y + dy
            if sy < 0 || sy >= h {
                guard reflect else { (to + y * w).update(repeating: background, count: w); continue }
                sy = mirrored(sy, h)
            }
            let row = from + sy * w
            for x in 0..<w {
                let sx = x + dx
                to[y * w + x] = sx >= 0 && sx < w ? row[sx] : reflect ? row[mirrored(sx, w)] : background
            }
        }
    }
}
