/// Group norm on the CPU. An image's group is C/G runs of H·W values (activations are channel-major),
/// and each (image, group) pair is one task: its statistics in doubles, mean then squared deviations
/// (stable where E[x²]−E[x]² is not), then its outputs; backward the same per pair, then the weight's and
/// bias's gradients per channel.
extension CPUDevice {
    public func groupNormForward(input: Tensor, weight: Tensor, bias: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                 output: Tensor, groups: Int, epsilon: Float) throws {
        let l = try checkGroupNorm("groupNormForward", input: input, groups: groups, same: [("output", output)],
                                   affine: [("weight", weight), ("bias", bias)],
                                   statistics: [("savedMean", savedMean), ("savedInvStd", savedInvStd)])
        let (x, y, w, b, sm, si) = (floats(input), floats(output), floats(weight), floats(bias), floats(savedMean), floats(savedInvStd))
        let runs = Runs(l), plane = l.plane, count = Double(l.unitLength)
        parallel.chunks(l.units) {
            for u in $0 {
                var sum = 0.0, m2 = 0.0
                for c in runs.channels(u) { sum += Reduce.preciseSum(x + runs.offset(u, c), plane) }
                let mean = sum / count
                for c in runs.channels(u) { m2 += Reduce.preciseSquaredDeviations(x + runs.offset(u, c), plane, mean: mean) }
                let m = Float(mean), invStd = Float(1 / (m2 / count + Double(epsilon)).squareRoot())
                (sm[u], si[u]) = (m, invStd)
                for c in runs.channels(u) {
                    let (xc, yc, a) = (x + runs.offset(u, c), y + runs.offset(u, c), runs.affine(c))
                    for p in 0..<plane { yc[p] = (xc[p] - m) * invStd * w[a + p * l.weightStride] + b[a + p * l.weightStride] }
                }
            }
        }
    }

    public func groupNormBackward(input: Tensor, gradOutput: Tensor, weight: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                  gradInput: Tensor, gradWeight: Tensor, gradBias: Tensor, groups: Int) throws {
        let l = try checkGroupNorm("groupNormBackward", input: input, groups: groups,
                                   same: [("gradOutput", gradOutput), ("gradInput", gradInput)],
                                   affine: [("weight", weight), ("gradWeight", gradWeight), ("gradBias", gradBias)],
                                   statistics: [("savedMean", savedMean), ("savedInvStd", savedInvStd)])
        let (x, dy, dx, w) = (floats(input), floats(gradOutput), floats(gradInput), floats(weight))
        let (sm, si, dw, db) = (floats(savedMean), floats(savedInvStd), floats(gradWeight), floats(gradBias))
        let runs = Runs(l), plane = l.plane, count = Double(l.unitLength), stride = l.weightStride
        // dx = (d − mean(d) − x̂·mean(d·x̂)) / σ over the pair, where d = dy·weight.
        parallel.chunks(l.units) {
            for u in $0 {
                let (mean, invStd) = (sm[u], si[u])
                var sumD = 0.0, sumDXhat = 0.0
                for c in runs.channels(u) {
                    let (xc, dyc, a) = (x + runs.offset(u, c), dy + runs.offset(u, c), runs.affine(c))
                    if stride == 0 {
                        sumD += Reduce.preciseSum(dyc, plane) * Double(w[a])
                        sumDXhat += Reduce.preciseDotCentered(dyc, xc, plane, mean: mean) * Double(w[a]) * Double(invStd)
                    } else {
                        for p in 0..<plane {
                            let d = Double(dyc[p] * w[a + p])
                            sumD += d
                            sumDXhat += d * Double((xc[p] - mean) * invStd)
                        }
                    }
                }
                let meanD = Float(sumD / count), meanDXhat = Float(sumDXhat / count)
                for c in runs.channels(u) {
                    let (xc, dyc, dxc, a) = (x + runs.offset(u, c), dy + runs.offset(u, c), dx + runs.offset(u, c), runs.affine(c))
                    for p in 0..<plane {
                        let xhat = (xc[p] - mean) * invStd
                        dxc[p] = invStd * (dyc[p] * w[a + p * stride] - meanD - xhat * meanDXhat)
                    }
                }
            }
        }
        // The weight's gradient Σ dy·x̂ and the bias's Σ dy over the batch, per channel (and position).
        parallel.chunks(l.groups * l.channelsPerGroup) {
            for c in $0 {
                let a = runs.affine(c)
                if stride == 0 {
                    var sumDy = 0.0, sumDyXhat = 0.0
                    for n in 0..<l.batch {
                        let u = n * l.groups + c / l.channelsPerGroup, (xc, dyc) = (x + runs.offset(u, c), dy + runs.offset(u, c))
                        sumDy += Reduce.preciseSum(dyc, plane)
                        sumDyXhat += Reduce.preciseDotCentered(dyc, xc, plane, mean: sm[u]) * Double(si[u])
                    }
                    (db[c], dw[c]) = (Float(sumDy), Float(sumDyXhat))
                } else {
                    for p in 0..<plane { (db[a + p], dw[a + p]) = (0, 0) }
                    for n in 0..<l.batch {
                        let u = n * l.groups + c / l.channelsPerGroup, (xc, dyc) = (x + runs.offset(u, c), dy + runs.offset(u, c))
                        let (mean, invStd) = (sm[u], si[u])
                        for p in 0..<plane {
                            db[a + p] += dyc[p]
                            dw[a + p] += dyc[p] * ((xc[p] - mean) * invStd)
                        }
                    }
                }
            }
        }
    }

    /// Where the runs of a (image, group) pair u lie: channel c's H·W values of image u / G.
    private struct Runs {
        let l: GroupNormLayout
        init(_ l: GroupNormLayout) { self.l = l }
        func channels(_ u: Int) -> Range<Int> { (u % l.groups * l.channelsPerGroup)..<((u % l.groups + 1) * l.channelsPerGroup) }
        func offset(_ u: Int, _ c: Int) -> Int { (c * l.batch + u / l.groups) * l.plane }
        /// Channel c's first weight and bias.
        func affine(_ c: Int) -> Int { c * (l.weightStride == 1 ? l.plane : 1) }
    }
}
