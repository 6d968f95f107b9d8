/// A batch norm's per-channel raw moments [count, Σx, Σx²] in doubles, as the synchronised primitives
/// pass them (`batchNormMoments`, `batchNormNormalize`). Raw moments add over processes; in doubles,
/// m2 = Σx² − n·mean² loses only what a double cannot hold, so a channel's mean may exceed its
/// standard deviation some 10⁴-fold before float32 notices.
enum BatchNormMoments {
    /// Channel c's count, mean and m2 (sum of squared deviations).
    static func statistics(_ moments: [Double], _ c: Int) -> (count: Double, mean: Double, m2: Double) {
        let n = moments[3 * c], mean = n > 0 ? moments[3 * c + 1] / n : 0
        return (n, mean, max(0, moments[3 * c + 2] - n * mean * mean))
    }

    /// The raw moments of `parts` partials (count, mean, m2) per channel (`[channel][part][3]`).
    static func moments(_ partials: [Float], channels: Int, parts: Int) -> [Double] {
        var moments = [Double](repeating: 0, count: 3 * channels)
        for c in 0..<channels {
            for k in 0..<parts {
                let p = 3 * (c * parts + k), n = Double(partials[p]), mean = Double(partials[p + 1])
                moments[3 * c] += n
                moments[3 * c + 1] += n * mean
                moments[3 * c + 2] += Double(partials[p + 2]) + n * mean * mean
            }
        }
        return moments
    }
}
