import COpenCL

/// A kernel launch argument, in the order the kernel declares them.
enum KernelArgument {
    case buffer(Tensor)
    /// A buffer itself, not a tensor's (a view's root).
    case memory(cl_mem)
    /// The gradient arena (`reservePartials`): a launch uses a region of it, so the launch profile
    /// does not count its size as the launch's tensor.
    case arena(Tensor)
    /// A null `__global` pointer when nil.
    case optional(Tensor?)
    case int(Int)
    case float(Float)
    case uint(UInt32)
    case ulong(UInt64)
}

/// How launches are cut. A GPU needs hundreds of work-groups per launch to fill its compute units; a
/// CPU device (PoCL) runs best with a few large ones. `gpu` on a CPU device shows a GPU's launches there.
public enum LaunchShape: String, Sendable, CaseIterable {
    case gpu, cpu

    /// The cut `auto` takes for a device: `cpu` on a CPU device, `gpu` on anything else.
    public static func automatic(for info: OpenCLDeviceInfo) -> LaunchShape { info.isCPU ? .cpu : .gpu }

    /// `auto` (nil: the device's kind decides), `gpu` or `cpu`, as `--launch-shape` spells it.
    public static func request(_ text: String) throws -> LaunchShape? {
        if text == "auto" { return nil }
        guard let shape = LaunchShape(rawValue: text) else { throw KilnError("launch-shape \(text): expected auto, gpu or cpu") }
        return shape
    }
}

/// Kernel launches: how work is cut into work-items and groups, and the enqueue that checks each argument.
extension OpenCLDevice {
    /// Runs kernel `name` over `items` work-items (one per element, usually), in groups of `elementGroup`.
    func run(_ name: String, items: Int, _ arguments: KernelArgument...) throws {
        try enqueue(name, global: (items + elementGroup - 1) / elementGroup * elementGroup, local: elementGroup, arguments)
    }

    /// Runs a reduction kernel as `groups` work-groups of `reduceGroup` items (one group per row slice, …).
    func runGroups(_ name: String, groups: Int, _ arguments: KernelArgument...) throws {
        try enqueue(name, global: groups * reduceGroup, local: reduceGroup, arguments)
    }

    /// Runs a kernel over `channels` rows of `row` elements with no work-group straddling two rows, each
    /// work-item taking `perItem` elements a local size apart (the kernel gets `perItem` too).
    func runRows(_ name: String, channels: Int, row: Int, perItem: Int, _ arguments: KernelArgument...) throws {
        let span = elementGroup * perItem, groupsPerRow = (row + span - 1) / span
        try enqueue(name, global: channels * groupsPerRow * elementGroup, local: elementGroup, arguments)
    }

    /// Elements per work-item for `runRows`: up to 8 while the tensor still makes `parallelGroups` groups,
    /// so that work done once per group (folding a reduction's partials) is done fewer times.
    func elementsPerItem(channels: Int, row: Int) -> Int {
        max(1, min(8, channels * row / (elementGroup * Self.parallelGroups)))
    }

    /// How stage 1 of a per-channel reduction cuts each row: into slices of at least 128 elements (two per
    /// work-item), as many as make about `parallelGroups` work-groups over all channels. It depends on
    /// the shape alone, so results repeat on every device with the same `REDUCE_GROUP`.
    func reductionSlices(channels: Int, row: Int) -> (length: Int, count: Int) {
        let wanted = max(1, min((Self.parallelGroups + channels - 1) / max(channels, 1), (row + 127) / 128))
        let length = max((row + wanted - 1) / wanted, 1)
        return (length, (row + length - 1) / length)
    }

    /// Work-groups a reduction aims for: enough to fill a large GPU (an H100 has 132 SMs).
    static let parallelGroups = 512

    /// Work-groups a launch that can trade work per item for more items (direct convolutions, dropout)
    /// aims for: two per SM of a 132-SM GPU, or a few per core of a CPU device.
    var launchGroups: Int { shape == .gpu ? 264 : 4 * max(info.computeUnits, 1) }

    /// Launches kernel `name`: from the main program, or with `defines` from convolution.cl built with them.
    func enqueue(_ name: String, global: Int, local: Int, _ arguments: [KernelArgument], defines: String? = nil) throws {
        guard global > 0 else { return }
        guard global <= Int(Int32.max) else {
            throw KilnError("\(name): \(global) work-items exceed the kernels' 32-bit indices; use a smaller batch")
        }
        let kernel: cl_kernel
        if let defines {
            kernel = try specialisedKernel(name, defines)
        } else {
            guard let k = kernels[name] else { throw KilnError("OpenCL kernel \(name) is not in the program") }
            kernel = k
        }
        for (index, argument) in arguments.enumerated() {
            let i = cl_uint(index)
            let status: cl_int
            switch argument {
            case .buffer(let t):
                var m: cl_mem? = memory(t)
                status = clSetKernelArg(kernel, i, MemoryLayout<cl_mem?>.size, &m)
            case .arena(let t):
                var m: cl_mem? = memory(t)
                status = clSetKernelArg(kernel, i, MemoryLayout<cl_mem?>.size, &m)
            case .memory(var m):
                status = clSetKernelArg(kernel, i, MemoryLayout<cl_mem>.size, &m)
            case .optional(let t):
                var m: cl_mem? = t.map(memory)
                status = clSetKernelArg(kernel, i, MemoryLayout<cl_mem?>.size, &m)
            case .int(let v):
                guard var x = Int32(exactly: v) else { throw KilnError("\(name): argument \(index) = \(v) exceeds the 32-bit range of the OpenCL kernels") }
                status = clSetKernelArg(kernel, i, 4, &x)
            case .float(var v): status = clSetKernelArg(kernel, i, 4, &v)
            case .uint(var v): status = clSetKernelArg(kernel, i, 4, &v)
            case .ulong(var v): status = clSetKernelArg(kernel, i, 8, &v)
            }
            try checkCL(status, "clSetKernelArg(\(name), \(index))")
        }
        if LaunchLog.isRecording {
            LaunchLog.note(nil, elements: arguments.map { if case .buffer(let t) = $0 { t.count } else { 0 } }.max() ?? 0)
        }
        if let coverage = KernelCoverage.shared {
            try coverage.ran(name, variant: "REDUCE_GROUP=\(reduceGroup)" + (defines.map { " " + $0 } ?? ""))
        }
        var globalSize = global, localSize = local
        try checkCL(clEnqueueNDRangeKernel(queue, kernel, 1, nil, &globalSize, &localSize, 0, nil, nil),
                    "clEnqueueNDRangeKernel(\(name))")
    }
}
