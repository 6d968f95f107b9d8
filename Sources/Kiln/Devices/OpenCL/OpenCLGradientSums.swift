import COpenCL

/// The last stage of every split gradient sum, for all of a step's gradients in one launch.
///
/// A weight gradient sums over every pixel of the batch into few outputs, so its kernels write partial
/// sums (one per slice of the pixels) and a second stage adds them in a fixed order. Run per layer, that
/// stage is a launch of its own for every weight, bias and batch norm: instead, the partials go to
/// regions of one arena, each queued with the gradient view it completes (`sumLater`), and
/// `finishGradients` adds them all up with one `sum_gradients` launch (Kernels/channels.cl), writing the
/// views through the flat gradient buffer they belong to.
final class GradientSums {
    struct Entry {
        let arena: Tensor
        let out: Tensor
        /// Kernels/channels.cl's table row: output offset, outputs, partials offset, parts, strides.
        let row: [Int]
    }
    var arena: Tensor?
    /// Floats of the arena handed out since the last finish.
    var used = 0
    var entries: [Entry] = []
    /// Uploaded tables, by content: a step queues the same sums every time, so its table is sent once.
    var tables: [[Int32]: Tensor] = [:]
}

extension OpenCLDevice {
    /// `count` floats of the gradient arena, at `offset`, for partials that must live until the next
    /// `finishGradients`. When the arena is full a larger one is started (the full one lives on in the
    /// entries that use it); after the first step one arena holds a whole step.
    func reservePartials(_ count: Int) throws -> (arena: Tensor, offset: Int) {
        let sums = gradientSums
        let offset = (sums.used + 15) / 16 * 16  // 64-byte aligned regions
        if let arena = sums.arena, offset + count <= arena.count {
            sums.used = offset + count
            return (arena, offset)
        }
        let arena = try allocate([max(2 * (offset + count), 1 << 16)], .float32)
        guard arena.count <= Int(Int32.max) else { throw KilnError("the gradient arena would exceed the kernels' 32-bit offsets") }
        sums.arena = arena
        sums.used = count
        return (arena, 0)
    }

    /// Queues out[o] = Σₚ partials[offset + o·outputStride + p·partStride] for p < parts, o < out.count.
    func sumLater(_ out: Tensor, from partials: (arena: Tensor, offset: Int), parts: Int, outputStride: Int, partStride: Int) {
        let origin = (out.storage as! OpenCLStorage).origin / 4
        gradientSums.entries.append(GradientSums.Entry(arena: partials.arena, out: out,
                                                       row: [origin, out.count, partials.offset, parts, outputStride, partStride]))
    }

    public func finishGradients() throws {
        let sums = gradientSums
        guard !sums.entries.isEmpty else { return }
        let entries = sums.entries
        sums.entries = []
        sums.used = 0
        // One launch per arena and destination buffer: in the steady state, one per step.
        var groups: [(arena: Tensor, root: cl_mem, entries: [GradientSums.Entry])] = []
        for entry in entries {
            let root = (entry.out.storage as! OpenCLStorage).root
            if let i = groups.firstIndex(where: { $0.arena === entry.arena && $0.root == root }) {
                groups[i].entries.append(entry)
            } else {
                groups.append((entry.arena, root, [entry]))
            }
        }
        for group in groups {
            let values = try group.entries.flatMap(\.row).map {
                guard let v = Int32(exactly: $0) else { throw KilnError("a gradient sum's offset \($0) exceeds the kernels' 32-bit range") }
                return v
            }
            let table = try uploadedTable(values)
            let outputs = group.entries.reduce(0) { $0 + $1.out.count }
            try enqueue("sum_gradients", global: outputs * reduceGroup, local: reduceGroup,
                        [.arena(group.arena), .memory(group.root), .buffer(table), .int(group.entries.count)])
        }
    }

    private func uploadedTable(_ values: [Int32]) throws -> Tensor {
        if let table = gradientSums.tables[values] { return table }
        if gradientSums.tables.count >= 8 { gradientSums.tables = [:] }
        let table = try allocate([values.count], .int32)
        try upload(values, table)
        gradientSums.tables[values] = table
        return table
    }
}
