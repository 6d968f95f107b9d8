import CCLBlast
import COpenCL
import Foundation

/// A `cl_mem` buffer. When its last tensor goes, the buffer returns to the device's pool. A sub-buffer
/// (a view) keeps its parent alive and is released on its own.
final class OpenCLStorage: DeviceStorage {
    let buffer: cl_mem
    let byteCapacity: Int
    private let owner: Owner
    private enum Owner { case pool(BufferPool), parent(OpenCLStorage) }

    init(buffer: cl_mem, bytes: Int, pool: BufferPool) {
        self.buffer = buffer
        byteCapacity = bytes
        owner = .pool(pool)
    }

    init(subBuffer: cl_mem, bytes: Int, parent: OpenCLStorage) {
        buffer = subBuffer
        byteCapacity = bytes
        owner = .parent(parent)
    }

    deinit {
        switch owner {
        case .pool(let pool): pool.give(buffer, bytes: byteCapacity)
        case .parent: clReleaseMemObject(buffer)
        }
    }
}

/// Freed buffers, by size, for the next allocation of that size: steps that allocate the same
/// shapes again (evaluation, parity runs) reuse device memory instead of asking the driver.
final class BufferPool: @unchecked Sendable {
    private var free: [Int: [cl_mem]] = [:]
    private let lock = NSLock()
    /// Bytes held in buffers, in use or pooled: what the device has allocated.
    private(set) var allocatedBytes = 0

    func take(bytes: Int) -> cl_mem? {
        lock.withLock { free[bytes]?.popLast() }
    }

    func created(bytes: Int) { lock.withLock { allocatedBytes += bytes } }

    func give(_ buffer: cl_mem, bytes: Int) {
        lock.withLock { free[bytes, default: []].append(buffer) }
    }
}

/// A kernel launch argument, in the order the kernel declares them.
enum KernelArgument {
    case buffer(Tensor)
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
/// of pointwise convolutions and Linear layers. There is one instance per device and launch shape per
/// process (`open`), so programs are built once and CLBlast's per-context kernel cache is reused.
///
/// Nothing is read back unless asked: primitives only enqueue work, and `readFloats`/`readInts` are the
/// only blocking calls. The primitives live in the files beside this one, one op family each.
public final class OpenCLDevice: Device {
    public let info: OpenCLDeviceInfo
    public let shape: LaunchShape
    /// Seconds spent building the kernel program when the device was opened.
    public let buildSeconds: Double
    let context: cl_context
    var queue: cl_command_queue?
    let pool = BufferPool()
    /// Work-group size of the reduction kernels (`REDUCE_GROUP` in the kernels) and of element-wise ones.
    let reduceGroup: Int, elementGroup: Int
    /// Sub-buffer origins must be multiples of this many floats (`CL_DEVICE_MEM_BASE_ADDR_ALIGN`).
    public let viewAlignment: Int
    private let program: cl_program
    private let kernels: [String: cl_kernel]
    /// Programs of `Kernels/convolution.cl`, by their `-D` options, built on first use.
    private var specialised: [String: [String: cl_kernel]] = [:]
    private let specialisedLock = NSLock()
    private var partials: OpenCLStorage?

    nonisolated(unsafe) private static var opened: [String: OpenCLDevice] = [:]
    private static let openLock = NSLock()

    /// The process-wide instance for `info`, created (and its program built) on first use. `shape`
    /// defaults to the device's kind: `cpu` for a CPU device, `gpu` for anything else.
    public static func open(_ info: OpenCLDeviceInfo, shape: LaunchShape? = nil) throws -> OpenCLDevice {
        let shape = shape ?? (info.isCPU ? .cpu : .gpu)
        return try openLock.withLock {
            let key = "\(info.address) \(shape)"
            if let device = opened[key] { return device }
            let device = try OpenCLDevice(info, shape: shape)
            opened[key] = device
            return device
        }
    }

    private init(_ info: OpenCLDeviceInfo, shape: LaunchShape) throws {
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
        // The largest power of two up to 64 that the device allows in one work-group and every compiled
        // kernel allows too (registers or local memory can hold a kernel below the device's limit): when
        // one allows less, the program is built again for that size. No kernel fixes its size with
        // reqd_work_group_size, which a device may refuse. 64 items (a wavefront on AMD, two warps on
        // NVIDIA) keep a reduction's tree short; parallelism comes from the number of groups.
        var group = 64
        while group > info.maxWorkGroupSize { group /= 2 }
        var built = try Self.program(context: context, device: info.id, group: group)
        if built.limit < group {
            while group > built.limit { group /= 2 }
            Self.release(built)
            built = try Self.program(context: context, device: info.id, group: group)
        }
        guard built.limit >= group else {
            throw KilnError("\(info.name): a kernel allows \(built.limit) work-items per group, fewer than the \(group) it was built for")
        }
        reduceGroup = group
        elementGroup = group
        (program, kernels) = (built.program, built.kernels)
        buildSeconds = Date().timeIntervalSince(started)
    }

    public var summary: String { "\(info.address) \(info.name) (\(info.platformName), \(info.typeName))" }

    /// Buffers in use and pooled, in bytes.
    public var allocatedBytes: Int? { pool.allocatedBytes }

    // MARK: Program

    /// The program built with `REDUCE_GROUP` = `group`, its kernels, and the smallest work-group size
    /// any of them allows on the device (`CL_KERNEL_WORK_GROUP_SIZE`).
    private static func program(context: cl_context, device: cl_device_id, group: Int)
        throws -> (program: cl_program, kernels: [String: cl_kernel], limit: Int) {
        let files = KernelSources.files.filter { $0.name != "convolution.cl" }
        let program = try build(files, context: context, device: device, options: "-cl-std=CL1.2 -D REDUCE_GROUP=\(group)")
        let kernels = try kernels(in: program)
        return (program, kernels, try smallestGroupLimit(kernels, device))
    }

    /// The smallest `CL_KERNEL_WORK_GROUP_SIZE` of `kernels` on `device`.
    private static func smallestGroupLimit(_ kernels: [String: cl_kernel], _ device: cl_device_id) throws -> Int {
        var limit = Int.max
        for (name, kernel) in kernels {
            var size = 0
            try checkCL(clGetKernelWorkGroupInfo(kernel, device, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE),
                                                 MemoryLayout<Int>.size, &size, nil), "clGetKernelWorkGroupInfo(\(name))")
            limit = min(limit, size)
        }
        return limit
    }

    /// Kernel `name` of `Kernels/convolution.cl` built with the `-D` constants `defines` ("KS=3 ST=1 …"),
    /// building that program on first use.
    func specialisedKernel(_ name: String, _ defines: String) throws -> cl_kernel {
        try specialisedLock.withLock {
            if specialised[defines] == nil {
                let files = KernelSources.files.filter { $0.name == "convolution.cl" }
                let options = "-cl-std=CL1.2 -D REDUCE_GROUP=\(reduceGroup) " + defines.split(separator: " ").map { "-D \($0)" }.joined(separator: " ")
                let program = try Self.build(files, context: context, device: info.id, options: options)
                let kernels = try Self.kernels(in: program)
                let limit = try Self.smallestGroupLimit(kernels, info.id)
                guard limit >= elementGroup else {
                    throw KilnError("\(info.name): convolution kernels (\(defines)) allow \(limit) work-items per group, fewer than \(elementGroup)")
                }
                specialised[defines] = kernels
            }
            guard let kernel = specialised[defines]?[name] else { throw KilnError("OpenCL kernel \(name) is not in convolution.cl") }
            return kernel
        }
    }

    private static func release(_ built: (program: cl_program, kernels: [String: cl_kernel], limit: Int)) {
        for kernel in built.kernels.values { clReleaseKernel(kernel) }
        clReleaseProgram(built.program)
    }

    /// A program from common.cl (Philox, group_sum, shared by all) and `files`.
    private static func build(_ files: [(name: String, source: String)], context: cl_context, device: cl_device_id,
                              options: String) throws -> cl_program {
        // `#line` keeps build-log line numbers per file.
        let files = KernelSources.files.filter { $0.name == "common.cl" } + files.filter { $0.name != "common.cl" }
        let source = files.map { "#line 1 \"\($0.name)\"\n\($0.source)\n" }.joined()
        var status: cl_int = 0
        let program = source.withCString { text -> cl_program? in
            var pointer: UnsafePointer<CChar>? = text
            return clCreateProgramWithSource(context, 1, &pointer, nil, &status)
        }
        try checkCL(status, "clCreateProgramWithSource")
        var id: cl_device_id? = device
        status = clBuildProgram(program, 1, &id, options, nil, nil)
        if status != CL_SUCCESS {
            throw KernelBuildError(message: "clBuildProgram failed: \(openCLStatusName(status)) (\(status))",
                                   log: buildLog(program, device))
        }
        return program!
    }

    private static func buildLog(_ program: cl_program?, _ device: cl_device_id) -> String {
        (try? queryString("clGetProgramBuildInfo") {
            clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), $0, $1, $2)
        }) ?? "(no build log)"
    }

    private static func kernels(in program: cl_program) throws -> [String: cl_kernel] {
        var count: cl_uint = 0
        try checkCL(clCreateKernelsInProgram(program, 0, nil, &count), "clCreateKernelsInProgram")
        var handles = [cl_kernel?](repeating: nil, count: Int(count))
        try checkCL(clCreateKernelsInProgram(program, count, &handles, nil), "clCreateKernelsInProgram")
        var result: [String: cl_kernel] = [:]
        for case let kernel? in handles {
            let name = try queryString("clGetKernelInfo") { clGetKernelInfo(kernel, cl_kernel_info(CL_KERNEL_FUNCTION_NAME), $0, $1, $2) }
            result[name] = kernel
        }
        return result
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
                            _ c: Tensor, ldc: Int, strideC: Int, count: Int) throws {
        guard m > 0, n > 0, k > 0, count > 0 else { return }
        if LaunchLog.isRecording {
            LaunchLog.note("CLBlastSgemmStridedBatched \(count)×(\(m)×\(n)×\(k))", elements: max(a.count, b.count, count * m * n))
        }
        let status = CLBlastSgemmStridedBatched(
            CLBlastLayoutRowMajor, transposeA ? CLBlastTransposeYes : CLBlastTransposeNo,
            transposeB ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, 1, memory(a), 0, lda, strideA,
            memory(b), 0, ldb, strideB, 0, memory(c), 0, ldc, strideC, count, &queue, nil)
        try checkCLBlast(status, "CLBlastSgemmStridedBatched(\(count) × m \(m), n \(n), k \(k))")
    }

    public func finish() throws {
        try checkCL(clFinish(queue), "clFinish")
    }

    // MARK: Memory

    func memory(_ t: Tensor) -> cl_mem { (t.storage as! OpenCLStorage).buffer }

    /// A scratch tensor of `count` floats for a reduction's partial results, which live from one launch to the
    /// next; its buffer grows to the largest need, then stays.
    func partialScratch(_ count: Int) throws -> Tensor { try scratch(&partials, count) }

    private func scratch(_ slot: inout OpenCLStorage?, _ count: Int) throws -> Tensor {
        if slot == nil || slot!.byteCapacity < count * 4 { slot = try storage(bytes: count * 4) }
        return Tensor(shape: [count], dtype: .float32, storage: slot!)
    }

    private func storage(bytes: Int) throws -> OpenCLStorage {
        let size = max(bytes, 4)  // OpenCL has no empty buffers
        if let buffer = pool.take(bytes: size) { return OpenCLStorage(buffer: buffer, bytes: size, pool: pool) }
        var status: cl_int = 0
        let buffer = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), size, nil, &status)
        try checkCL(status, "clCreateBuffer(\(size) bytes, \(pool.allocatedBytes) already allocated)")
        pool.created(bytes: size)
        return OpenCLStorage(buffer: buffer!, bytes: size, pool: pool)
    }

    public func allocate(_ shape: [Int], _ dtype: DType) throws -> Tensor {
        Tensor(shape: shape, dtype: dtype, storage: try storage(bytes: shape.reduce(1, *) * dtype.byteSize))
    }

    public func view(_ tensor: Tensor, offset: Int, shape: [Int]) throws -> Tensor {
        try checkView(tensor, offset: offset, shape: shape)
        let parent = tensor.storage as! OpenCLStorage
        let bytes = max(shape.reduce(1, *) * tensor.dtype.byteSize, 4)
        var region = cl_buffer_region(origin: offset * tensor.dtype.byteSize, size: bytes)
        var status: cl_int = 0
        let buffer = clCreateSubBuffer(parent.buffer, cl_mem_flags(CL_MEM_READ_WRITE),
                                       cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION), &region, &status)
        try checkCL(status, "clCreateSubBuffer(offset \(offset), \(bytes) bytes)")
        return Tensor(shape: shape, dtype: tensor.dtype, storage: OpenCLStorage(subBuffer: buffer!, bytes: bytes, parent: parent))
    }

    public func write(_ values: [Float], to tensor: Tensor) throws {
        try checkTransfer(values.count, tensor, .float32)
        try upload(values, tensor)
    }

    public func write(_ values: [Int32], to tensor: Tensor) throws {
        try checkTransfer(values.count, tensor, .int32)
        try upload(values, tensor)
    }

    private func upload<T>(_ values: [T], _ tensor: Tensor) throws {
        guard !values.isEmpty else { return }
        try values.withUnsafeBytes {
            try checkCL(clEnqueueWriteBuffer(queue, memory(tensor), cl_bool(CL_TRUE), 0, $0.count, $0.baseAddress, 0, nil, nil),
                        "clEnqueueWriteBuffer")
        }
    }

    public func readFloats(_ tensor: Tensor) throws -> [Float] { try download(tensor, as: Float.self) }

    public func readInts(_ tensor: Tensor) throws -> [Int32] { try download(tensor, as: Int32.self) }

    private func download<T: Numeric>(_ tensor: Tensor, as: T.Type) throws -> [T] {
        var values = [T](repeating: 0, count: tensor.count)
        guard !values.isEmpty else { return values }
        try values.withUnsafeMutableBytes {
            try checkCL(clEnqueueReadBuffer(queue, memory(tensor), cl_bool(CL_TRUE), 0, $0.count, $0.baseAddress, 0, nil, nil),
                        "clEnqueueReadBuffer")
        }
        return values
    }

    public func fill(_ tensor: Tensor, with value: Float) throws {
        guard tensor.count > 0 else { return }
        var pattern = value
        try checkCL(clEnqueueFillBuffer(queue, memory(tensor), &pattern, 4, 0, tensor.count * 4, 0, nil, nil),
                    "clEnqueueFillBuffer")
    }

    public func copy(_ source: Tensor, to destination: Tensor) throws {
        try checkTransfer(source.count, destination, source.dtype)
        guard source.count > 0 else { return }
        try checkCL(clEnqueueCopyBuffer(queue, memory(source), memory(destination), 0, 0, source.count * source.dtype.byteSize,
                                        0, nil, nil), "clEnqueueCopyBuffer")
    }
}

/// A kernel program that did not build: the message for one line, the compiler's log for `--verbose`.
public struct KernelBuildError: Error, CustomStringConvertible {
    public let message: String
    public let log: String
    public var description: String { message }
}
