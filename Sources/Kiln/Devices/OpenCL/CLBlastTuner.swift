import Foundation

/// `kiln tune`: runs CLBlast's tuners at the GEMM shapes given (a model's step, counted per call), within
/// a time budget, and keeps for each kernel the parameters that make those shapes fastest, CLBlast's own
/// included. CLBlast keeps one parameter set per kernel, so every shape a kernel runs is timed with every
/// candidate.
///
/// Budget: a tuner call compiles and times `fraction` of its configurations (the same ones first every
/// time) and cannot be stopped, so each kernel's first call is a small probe that gives its seconds per
/// fraction; the remaining share of the budget then sets the fraction of a second, larger call.
public struct CLBlastTuner {
    /// One tuner call: the parameters found for `kernel` at `shape` trying `fraction` of the search space,
    /// or nil when none ran correctly or the call ran out of its `seconds`.
    public typealias Call = @Sendable (_ kernel: String, _ shape: GEMMShape, _ fraction: Double, _ seconds: Double) throws -> [String: Int]?

    let device: OpenCLDevice
    let call: Call

    /// `device` should be opened with `tuned: false`, so "default" means CLBlast's own parameters. `call`
    /// runs the tuner calls; the default runs them in this process, where a call cannot be stopped, so
    /// `kiln tune` runs each in a child process it can stop at the budget (which also keeps a driver
    /// fault in a tried configuration out of this process).
    public init(device: OpenCLDevice, call: Call? = nil) {
        self.device = device
        nonisolated(unsafe) let queue = device.queue!
        self.call = call ?? { kernel, shape, fraction, _ in
            try CLBlastParameters.tune(queue, kernel, m: shape.m, n: shape.n, k: shape.k, fraction: fraction)
        }
    }

    /// One tuner call in this process, for a child process of `kiln tune`.
    public static func tune(on device: OpenCLDevice, kernel: String, shape: GEMMShape, fraction: Double) throws -> [String: Int]? {
        try CLBlastParameters.tune(device.queue!, kernel, m: shape.m, n: shape.n, k: shape.k, fraction: fraction)
    }

    /// Parameters as "NAME=VALUE …" text and back, for a child process's answer.
    public static func text(_ values: [String: Int]) -> String { CLBlastParameters.format(values) }
    public static func values(_ text: String, from source: String) throws -> [String: Int] { try CLBlastParameters.parse(text, source) }

    /// Tunes for `calls` (shape → calls per step; a shape with 0 calls counts once) within `budget`
    /// seconds and returns what to store. `progress` hears what runs, about once a second.
    public func run(_ calls: [GEMMShape: Int], budget: Double, tunedFor: String,
                    progress: @escaping @Sendable (String) -> Void) throws -> CLBlastTuning {
        let started = Date()
        let minIndirect = try CLBlastParameters.current(device.info.id, "GemmRoutine")["XGEMM_MIN_INDIRECT_SIZE"] ?? 0
        let weights = calls.mapValues { max($0, 1) }
        let direct = weights.filter { $0.key.isDirect(minIndirect: minIndirect) }
        let indirect = weights.filter { !$0.key.isDirect(minIndirect: minIndirect) }
        // The main kernels at their two heaviest sizes; the helper kernels of the indirect path (copies,
        // padding, transposes around Xgemm) at its heaviest, with a quarter of the share.
        var plan: [(kernel: String, shape: GEMMShape, share: Double)] = []
        for (kernel, group) in [("XgemmDirect", direct), ("Xgemm", indirect)] {
            for shape in heaviest(group, 2) { plan.append((kernel, shape, 4)) }
        }
        if let top = heaviest(indirect, 1).first {
            for helper in ["Copy", "Pad", "Transpose", "Padtranspose"] { plan.append((helper, top, 1)) }
        }
        guard !plan.isEmpty else { throw KilnError("no GEMM to tune: the models make no CLBlast call") }
        // A third of the budget is left for timing the candidates at every shape, which recompiles
        // CLBlast's kernels for each candidate.
        let tuningBudget = budget * 0.65
        var secondsPerFraction: [String: Double] = [:]
        var candidates: [String: [[String: Int]]] = [:]
        for (index, step) in plan.enumerated() {
            let remainingShare = plan[index...].reduce(0) { $0 + $1.share }
            let share = max(tuningBudget - Date().timeIntervalSince(started), 0) * step.share / remainingShare
            let label = "\(step.kernel) at \(step.shape.m)×\(step.shape.n)×\(step.shape.k) (tuning \(index + 1) of \(plan.count))"
            // Fractions growing 4x a call while each call's seconds say the next fits in this step's share;
            // a call still running at the end of the share is stopped (by `call`) and gives nothing. While
            // no configuration has run correctly, the first 16x of the probe are tried regardless.
            let probe = Self.probeFraction[step.kernel] ?? 0.01
            var fraction = probe
            let stepStart = Date()
            while true {
                let left = share - Date().timeIntervalSince(stepStart)
                let found = candidates[step.kernel] != nil
                if let rate = secondsPerFraction[step.kernel], rate * fraction > left, found || fraction > 16 * probe { break }
                let callStart = Date()
                let overall = max(tuningBudget - Date().timeIntervalSince(started), 1)
                let result = try tunerCall(step.kernel, step.shape, fraction: fraction,
                                           seconds: found ? left : min(max(left, 60), overall),
                                           label: label, progress: progress)
                if let result { candidates[step.kernel, default: []].append(result) }
                secondsPerFraction[step.kernel] = Date().timeIntervalSince(callStart) / fraction
                if fraction >= 1 || Date().timeIntervalSince(stepStart) >= share { break }
                fraction = min(1, fraction * 4)
            }
        }
        var tuning = try choose(candidates, weights: weights, direct: Set(direct.keys), tunedFor: tunedFor, budget: budget, progress: progress)
        let untuned = Set(plan.map(\.kernel)).subtracting(candidates.keys).sorted()
        tuning.untuned = untuned.isEmpty ? nil : untuned
        return tuning
    }

    /// Fractions of the search space a first call tries: a few configurations each.
    static let probeFraction: [String: Double] = ["XgemmDirect": 0.0005, "Xgemm": 0.0001, "Copy": 0.05, "Pad": 0.05,
                                                  "Transpose": 0.05, "Padtranspose": 0.05]

    private func heaviest(_ group: [GEMMShape: Int], _ count: Int) -> [GEMMShape] {
        let sizes = group.reduce(into: [GEMMShape: Double]()) { sizes, entry in
            let plain = GEMMShape(m: entry.key.m, n: entry.key.n, k: entry.key.k)
            sizes[plain, default: 0] += entry.key.flops * Double(entry.value)
        }
        return sizes.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key.description < $1.key.description) }
            .prefix(count).map(\.key)
    }

    /// One tuner call on a worker thread while `progress` hears how long it has run.
    private func tunerCall(_ kernel: String, _ shape: GEMMShape, fraction: Double, seconds: Double, label: String,
                           progress: @escaping @Sendable (String) -> Void) throws -> [String: Int]? {
        nonisolated(unsafe) var outcome: Result<[String: Int]?, Error>?
        let done = DispatchSemaphore(value: 0), call = self.call
        Thread.detachNewThread {
            outcome = Result { try call(kernel, shape, fraction, seconds) }
            done.signal()
        }
        let start = Date()
        let percent = fraction * 100 < 1 ? String(format: "%.2f", fraction * 100) : String(format: "%.0f", fraction * 100)
        repeat {
            progress("\(label): \(percent)% of its configurations, \(Int(Date().timeIntervalSince(start))) s")
        } while done.wait(timeout: .now() + 1) == .timedOut
        return try outcome!.get()
    }

    /// Times every candidate (CLBlast's own parameters first) at every shape its kernel runs and keeps the
    /// fastest by time per step, if it beats CLBlast's own by 5%; kernels whose best is CLBlast's own are
    /// left out.
    private func choose(_ candidates: [String: [[String: Int]]], weights: [GEMMShape: Int], direct: Set<GEMMShape>,
                        tunedFor: String, budget: Double, progress: @Sendable (String) -> Void) throws -> CLBlastTuning {
        let id = device.info.id
        var kept: [String: [String: Int]] = [:]
        var defaultSeconds: [GEMMShape: Double] = [:], bestSeconds: [GEMMShape: Double] = [:]
        for kernel in candidates.keys.sorted() {
            let own = try CLBlastParameters.own(id, kernel)
            let shapes = weights.keys.filter { direct.contains($0) == (kernel == "XgemmDirect") }
                .sorted { $0.description < $1.description }
            var options = [own]
            for values in candidates[kernel]! where !options.contains(values) { options.append(values) }
            progress("timing \(options.count) parameter sets of \(kernel) at \(shapes.count) shapes")
            var best: (seconds: Double, values: [String: Int], times: [GEMMShape: Double])?
            for values in options {
                try CLBlastParameters.override(id, kernel, values)
                var times: [GEMMShape: Double] = [:]
                for shape in shapes { times[shape] = try device.timeGEMM(shape, repeats: 5) }
                let total = shapes.reduce(0) { $0 + times[$1]! * Double(weights[$1]!) }
                // The first kernel's own-parameter pass is the baseline: later kernels run with the earlier
                // kernels' winners applied.
                if values == own { for (shape, t) in times where defaultSeconds[shape] == nil { defaultSeconds[shape] = t } }
                // A tuned set must beat CLBlast's own by 5%, more than the timing noise of a busy machine.
                if best == nil || total < best!.seconds * (best!.values == own ? 0.95 : 1) { best = (total, values, times) }
            }
            try CLBlastParameters.override(id, kernel, best!.values)
            if best!.values != own { kept[kernel] = best!.values }
            for (shape, t) in best!.times { bestSeconds[shape] = t }
        }
        let measurements = weights.keys.sorted { $0.description < $1.description }.compactMap { shape -> CLBlastTuning.Measurement? in
            guard let before = defaultSeconds[shape], let after = bestSeconds[shape] else { return nil }
            return CLBlastTuning.Measurement(shape: shape.description, calls: weights[shape]!,
                                             defaultGFLOPs: shape.flops / before / 1e9, tunedGFLOPs: shape.flops / after / 1e9)
        }
        return CLBlastTuning(identity: .init(device.info), kernels: kept, measurements: measurements, tunedFor: tunedFor,
                             budgetSeconds: budget)
    }
}
