import CCLBlast
import COpenCL
import Foundation
import KilnKernels
import Synchronization

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
    /// The OpenCL C files the programs are built from: `KernelSources.files`, or a test's mutant of them.
    let sources: [(name: String, source: String)]
    let kernels: [String: cl_kernel]
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

    /// The process-wide instances, by what `open` was asked for; only reachable under the mutex.
    private static let opened = Mutex<[String: OpenCLDevice]>([:])

    /// The process-wide instance for `info`, created (and its program built) on first use. `shape`
    /// defaults to the device's kind: `cpu` for a CPU device, `gpu` for anything else. With a `cache`,
    /// compiled programs are kept there and, when `tuned`, CLBlast parameters from `kiln tune` applied.
    public static func open(_ info: OpenCLDeviceInfo, shape: LaunchShape? = nil, cache: CacheFolder? = nil,
                            tuned: Bool = true) throws -> OpenCLDevice {
        let shape = shape ?? LaunchShape.automatic(for: info)
        let key = "\(info.address) \(shape) \(cache?.url.path ?? "-") \(tuned)"
        return try opened.withLock { opened in
            if let device = opened[key] { return device }
            let device = try OpenCLDevice(info, shape: shape, cache: cache, tuned: tuned)
            opened[key] = device
            return device
        }
    }

    /// A new instance, not shared: tests of the caches use it, and tests that show a wrong kernel is caught
    /// pass altered `sources`.
    init(_ info: OpenCLDeviceInfo, shape: LaunchShape, cache: CacheFolder?, tuned: Bool,
         sources: [(name: String, source: String)] = KernelSources.files) throws {
        try OpenCLPlatforms.loadCLBlast()
        let started = Date()
        self.info = info
        self.shape = shape
        self.sources = sources
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
        let files = sources.filter { $0.name != "convolution.cl" }
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
        let probeQueue = queue
        (notes, tuning) = cache.map {
            tuned ? CLBlastTuning.apply(from: $0, to: info) { try OpenCLDevice.probeGEMMs(context: context, queue: probeQueue) } : ([], nil)
        } ?? ([], nil)
        buildSeconds = Date().timeIntervalSince(started)
    }

    /// Names the launch cut too, so a report says which one ran.
    /// Fused kernels run what `Stage.standard` fuses: a convolution computes its batch norm's statistics
    /// as it writes, and a batch norm applies the activation before it as it reads.
    public func plan(_ nodes: [PlanNode]) -> [Stage] { Stage.standard(nodes) }

    public var threads: Int? { nil }
    public var summary: String { "\(info.address) \(info.name) (\(info.platformName), \(info.typeName), \(shape) launches)" }

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
                let files = sources.filter { $0.name == "convolution.cl" || $0.name == "common.cl" }
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

    public func finish() throws {
        try finishGradients()
        try checkCL(clFinish(queue), "clFinish")
    }
}
