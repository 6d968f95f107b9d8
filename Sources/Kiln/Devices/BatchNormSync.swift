/// Batch statistics over more than this process's images: a synchronised batch norm (`--sync-bn`,
/// `DataParallel.SyncBatchNorm`), whose batch is the global one, shared out over ranks. The batch norm
/// primitives hand it their per-channel sums between their two stages (statistics, then normalise;
/// gradient sums, then input gradient), and it replaces them with those of the whole batch.
public protocol BatchNormSync: AnyObject {
    /// Replaces each channel's raw moments `[count, Σx, Σx²]` (three per channel) of this process's
    /// share of the batch with the global batch's.
    func reduceMoments(_ moments: inout [Double]) throws
    /// Replaces each channel's `[Σdy, Σdy·x̂]` with the global batch's sums of the global loss's `dy`,
    /// expressed in this process's scale: each process's `dy` is the gradient of the mean loss over its
    /// own images, so its sums are weighted by its share of the batch, then added. Divided by this
    /// process's own element count they are then the global means its input gradient needs.
    func reduceGradientSums(_ sums: inout [Double]) throws
}

/// `--sync-bn` in one process: no other ranks to add, but the arithmetic of a synchronised batch norm
/// (sums in doubles, OpenCL's partials per image), whose rounding, unlike the plain batch norm's, does
/// not depend on how the batch is shared out; so a run trains the same on one rank as on several.
public final class WholeBatchSync: BatchNormSync {
    public init() {}
    public func reduceMoments(_ moments: inout [Double]) {}
    public func reduceGradientSums(_ sums: inout [Double]) {}
}

extension BatchNormSync {
    /// Global `(count, mean, m2)` per channel, from `parts` local partials `(count, mean, m2)` per channel
    /// (`[channel][part][3]`, as the primitives' first stage writes them).
    func globalStatistics(_ partials: [Float], channels: Int, parts: Int) throws -> [Float] {
        // Raw moments in doubles: m2 = Σx² − n·mean² loses only what a double cannot hold, so a
        // channel's mean may exceed its standard deviation some 10⁴-fold before float32 notices.
        var moments = [Double](repeating: 0, count: 3 * channels)
        for c in 0..<channels {
            for k in 0..<parts {
                let p = 3 * (c * parts + k), n = Double(partials[p]), mean = Double(partials[p + 1])
                moments[3 * c] += n
                moments[3 * c + 1] += n * mean
                moments[3 * c + 2] += Double(partials[p + 2]) + n * mean * mean
            }
        }
        try reduceMoments(&moments)
        var statistics = [Float](repeating: 0, count: 3 * channels)
        for c in 0..<channels {
            let n = moments[3 * c], mean = n > 0 ? moments[3 * c + 1] / n : 0
            statistics[3 * c] = Float(n)
            statistics[3 * c + 1] = Float(mean)
            statistics[3 * c + 2] = Float(max(0, moments[3 * c + 2] - n * mean * mean))
        }
        return statistics
    }

    /// Global `[Σdy, Σdy·x̂]` per channel, from `parts` local partial sums per channel (`[channel][part][2]`).
    func globalGradientSums(_ partials: [Float], channels: Int, parts: Int) throws -> [Float] {
        var sums = [Double](repeating: 0, count: 2 * channels)
        for c in 0..<channels {
            for k in 0..<parts {
                sums[2 * c] += Double(partials[2 * (c * parts + k)])
                sums[2 * c + 1] += Double(partials[2 * (c * parts + k) + 1])
            }
        }
        try reduceGradientSums(&sums)
        return sums.map { Float($0) }
    }
}
