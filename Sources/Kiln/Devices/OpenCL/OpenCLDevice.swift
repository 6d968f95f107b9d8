import CCLBlast
import COpenCL
import Foundation

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
public enum LaunchShape: String, Sendable { case gpu, cpu }

/// An OpenCL device: one context, one in-order queue, one program built from `Kernels/*.cl` (embedded
/// at build time) and one per convolution shape from `Kernels/convolution.cl`, CLBlast for the GEMMs
/// of pointwise convolutions and Linear layers. There is one instance per device, launch shape and cache
/// per process (`open`), so programs are built once and CLBlast's per-context kernel cache is reused.
///
/// Nothing is read back unless asked: primitives only enqueue work, and `readFloats`/`readInts` are the
/// only blocking calls. The primitives live in the files beside this one, one op family each.
public final class OpenCLDevice: Device {
    public let info: OpenCLDeviceInfo
    public let shape: LaunchShape
    /// Seconds spent building the kernel program when the device was opened.
    public let buildSeconds: Double
    /// Lines to show the user about the opening: the CLBlast parameters applied, cache entries ignored.
    public let notes: [String]
    /// The CLBlast parameters from `kiln tune` applied at the opening, if any.
    public let tuning: CLBlastTuning?
    let context: cl_context
    var queue: cl_command_queue?
    let pool = BufferPool()
    /// Work-group size of the reduction kernels (`REDUCE_GROUP` in the kernels) and of element-wise ones.
    let reduceGroup: Int, elementGroup: Int
    /// Sub-buffer origins must be multiples of this many floats (`CL_DEVICE_MEM_BASE_ADDR_ALIGN`).
    public let viewAlignment: Int
    let programs: ProgramBuilder
    private let kernels: [String: cl_kernel]
    /// Programs of `Kernels/convolution.cl`, by their `-D` options, built on first use.
    private var specialised: [String: [String: cl_kernel]] = [:]
    private let specialisedLock = NSLock()
    var partials: OpenCLStorage?
    /// Partial gradient sums waiting for `finishGradients`.
    let gradientSums = GradientSums()
    /// A fused batch norm's input gradient where a pointwise convolution's GEMMs then read it.
    let normalizedGradient = TensorSlot()
    /// The GEMMs enqueued while `recordingGEMMs` is set (`kiln tune` learns a model's shapes so).
    var recordedGEMMs: [GEMMShape]?

    nonisolated(unsafe) private static var opened: [String: OpenCLDevice] = [:]
    private static let openLock = NSLock()

    /// The process-wide instance for `info`, created (and its program built) on first use. `shape`
    /// defaults to the device's kind: `cpu` for a CPU device, `gpu` for anything else. With a `cache`,
    /// compiled programs are kept there and, when `tuned`, CLBlast parameters from `kiln tune` applied.
    public static func open(_ info: OpenCLDeviceInfo, shape: LaunchShape? = nil, cache: CacheFolder? = nil,
                            tuned: Bool = true) throws -> OpenCLDevice {
        let shape = shape ?? (info.isCPU ? .cpu : .gpu)
        return try openLock.withLock {
            let key = "\(info.address) \(shape) \(cache?.url.path ?? "-") \(tuned)"
            if let device = opened[key] { return device }
            let device = try OpenCLDevice(info, shape: shape, cache: cache, tuned: tuned)
            opened[key] = device
            return device
        }
    }

    /// A new instance, not shared: tests of the caches use it.
    init(_ info: OpenCLDeviceInfo, shape: LaunchShape, cache: CacheFolder?, tuned: Bool) throws {
        let started = Date()
        self.info = info
        self.shape = shape
        var status: cl_int = 0
        var id: cl_device_id? = info.id
        guard let context = clCreateContext(nil, 1, &id, nil, nil, &status) else {
            try checkCL(status, "clCreateContext")
            throw KilnError("clCreateContext returned no context")
        }
        self.context = context
        queue = clCreateCommandQueue(context, info.id, 0, &status)
        try checkCL(status, "clCreateCommandQueue")
        let alignmentBits: cl_uint = try OpenCLPlatforms.deviceValue(info.id, CL_DEVICE_MEM_BASE_ADDR_ALIGN)
        viewAlignment = max(Int(alignmentBits) / 32, 1)
        programs = ProgramBuilder(context: context, info: info, cache: cache)
        // The largest power of two up to 64 that the device allows in one work-group and every compiled
        // kernel allows too (registers or local memory can hold a kernel below the device's limit): when
        // one allows less, the program is built again for that size. No kernel fixes its size with
        // reqd_work_group_size, which a device may refuse. 64 items (a wavefront on AMD, two warps on
        // NVIDIA) keep a reduction's tree short; parallelism comes from the number of groups.
        var group = 64
        while group > info.maxWorkGroupSize { group /= 2 }
        let files = KernelSources.files.filter { $0.name != "convolution.cl" }
        var built = try programs.build(files, options: "-cl-std=CL1.2 -D REDUCE_GROUP=\(group)")
        var limit = try built.groupLimit(info.id)
        if limit < group {
            while group > limit { group /= 2 }
            built.release()
            built = try programs.build(files, options: "-cl-std=CL1.2 -D REDUCE_GROUP=\(group)")
            limit = try built.groupLimit(info.id)
        }
        guard limit >= group else {
            throw KilnError("\(info.name): a kernel allows \(limit) work-items per group, fewer than the \(group) it was built for")
        }
        reduceGroup = group
        elementGroup = group
        kernels = built.kernels
        (notes, tuning) = cache.map { tuned ? CLBlastTuning.apply(from: $0, to: info) : ([], nil) } ?? ([], nil)
        buildSeconds = Date().timeIntervalSince(started)
    }

    public var summary: String { "\(info.address) \(info.name) (\(info.platformName), \(info.typeName))" }

    /// Buffers in use and pooled, in bytes.
    public var allocatedBytes: Int? { pool.allocatedBytes }

    /// Kernel programs loaded from the cache and compiled from source so far (a convolution's program is
    /// built on its first use), and why the cache could not be written, if it could not.
    public var programsLoaded: Int { programs.loaded }
    public var programsCompiled: Int { programs.compiled }
    public var cacheProblem: String? { programs.cacheProblem }

    /// How many compiled programs `cache` holds for `info`.
    public static func cachedPrograms(in cache: CacheFolder, for info: OpenCLDeviceInfo) -> Int {
        ProgramBuilder.cachedCount(in: cache, for: info)
    }

    /// Kernel `name` of `Kernels/convolution.cl` built with the `-D` constants `defines` ("KS=3 ST=1 …"),
    /// building that program on first use.
    func specialisedKernel(_ name: String, _ defines: String) throws -> cl_kernel {
        try specialisedLock.withLock {
            if specialised[defines] == nil {
                let files = KernelSources.files.filter { $0.name == "convolution.cl" }
                let options = "-cl-std=CL1.2 -D REDUCE_GROUP=\(reduceGroup) " + defines.split(separator: " ").map { "-D \($0)" }.joined(separator: " ")
                let built = try programs.build(files, options: options)
                let limit = try built.groupLimit(info.id)
                guard limit >= elementGroup else {
                    throw KilnError("\(info.name): convolution kernels (\(defines)) allow \(limit) work-items per group, fewer than \(elementGroup)")
                }
                specialised[defines] = built.kernels
            }
            guard let kernel = specialised[defines]?[name] else { throw KilnError("OpenCL kernel \(name) is not in convolution.cl") }
            return kernel
        }
    }

    // MARK: Launching

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
        var globalSize = global, localSize = local
        try checkCL(clEnqueueNDRangeKernel(queue, kernel, 1, nil, &globalSize, &localSize, 0, nil, nil),
                    "clEnqueueNDRangeKernel(\(name))")
    }

    /// C = op(A) · op(B), row-major, through CLBlast.
    func gemm(_ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int,
              _ a: Tensor, lda: Int, _ b: Tensor, ldb: Int, _ c: Tensor, ldc: Int) throws {
        guard m > 0, n > 0, k > 0 else { return }
        recordedGEMMs?.append(GEMMShape(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k))
        if LaunchLog.isRecording { LaunchLog.note("CLBlastSgemm \(m)×\(n)×\(k)", elements: max(m * n, m * k, k * n)) }
        let status = CLBlastSgemm(CLBlastLayoutRowMajor, transposeA ? CLBlastTransposeYes : CLBlastTransposeNo,
                                  transposeB ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, 1, memory(a), 0, lda,
                                  memory(b), 0, ldb, 0, memory(c), 0, ldc, &queue, nil)
        try checkCLBlast(status, "CLBlastSgemm(m \(m), n \(n), k \(k))")
    }

    /// `count` products C_i = op(A_i) · op(B_i), row-major, where each operand steps by its stride (in
    /// elements) from one product to the next: one CLBlast call.
    func gemmStridedBatched(_ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int,
                            _ a: Tensor, lda: Int, strideA: Int, _ b: Tensor, ldb: Int, strideB: Int,
                            _ c: Tensor, offsetC: Int = 0, ldc: Int, strideC: Int, count: Int) throws {
        guard m > 0, n > 0, k > 0, count > 0 else { return }
        recordedGEMMs?.append(GEMMShape(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, batch: count))
        if LaunchLog.isRecording {
            LaunchLog.note("CLBlastSgemmStridedBatched \(count)×(\(m)×\(n)×\(k))", elements: max(a.count, b.count, count * m * n))
        }
        let status = CLBlastSgemmStridedBatched(
            CLBlastLayoutRowMajor, transposeA ? CLBlastTransposeYes : CLBlastTransposeNo,
            transposeB ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, 1, memory(a), 0, lda, strideA,
            memory(b), 0, ldb, strideB, 0, memory(c), offsetC, ldc, strideC, count, &queue, nil)
        try checkCLBlast(status, "CLBlastSgemmStridedBatched(\(count) × m \(m), n \(n), k \(k))")
    }

    public func finish() throws {
        try finishGradients()
        try checkCL(clFinish(queue), "clFinish")
    }
}
