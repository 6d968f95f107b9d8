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

/// An OpenCL device: one context, one in-order queue, one program built from `Kernels/*.cl` (embedded
/// at build time), CLBlast for every GEMM. There is one instance per device per process (`open`), so
/// programs are built once and CLBlast's per-context kernel cache is reused.
///
/// Nothing is read back unless asked: primitives only enqueue work, and `readFloats`/`readInts` are the
/// only blocking calls. The primitives live in the files beside this one, one op family each.
public final class OpenCLDevice: Device {
    public let info: OpenCLDeviceInfo
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
    private var kernels: [String: cl_kernel] = [:]
    private var columns: OpenCLStorage?

    nonisolated(unsafe) private static var opened: [String: OpenCLDevice] = [:]
    private static let openLock = NSLock()

    /// The process-wide instance for `info`, created (and its program built) on first use.
    public static func open(_ info: OpenCLDeviceInfo) throws -> OpenCLDevice {
        try openLock.withLock {
            if let device = opened[info.address] { return device }
            let device = try OpenCLDevice(info)
            opened[info.address] = device
            return device
        }
    }

    private init(_ info: OpenCLDeviceInfo) throws {
        let started = Date()
        self.info = info
        var status: cl_int = 0
        var id: cl_device_id? = info.id
        guard let context = clCreateContext(nil, 1, &id, nil, nil, &status) else {
            try checkCL(status, "clCreateContext")
            throw KilnError("clCreateContext returned no context")
        }
        self.context = context
        queue = clCreateCommandQueue(context, info.id, 0, &status)
        try checkCL(status, "clCreateCommandQueue")
        // The largest power of two up to 256 that the device allows in one work-group.
        var group = 256
        while group > info.maxWorkGroupSize { group /= 2 }
        reduceGroup = group
        elementGroup = min(64, group)
        let alignmentBits: cl_uint = try OpenCLPlatforms.deviceValue(info.id, CL_DEVICE_MEM_BASE_ADDR_ALIGN)
        viewAlignment = max(Int(alignmentBits) / 32, 1)
        program = try Self.build(context: context, device: info.id, options: "-cl-std=CL1.2 -D REDUCE_GROUP=\(group)")
        kernels = try Self.kernels(in: program)
        buildSeconds = Date().timeIntervalSince(started)
    }

    public var summary: String { "\(info.address) \(info.name) (\(info.platformName), \(info.typeName))" }

    /// Buffers in use and pooled, in bytes.
    public var allocatedBytes: Int? { pool.allocatedBytes }

    // MARK: Program

    private static func build(context: cl_context, device: cl_device_id, options: String) throws -> cl_program {
        // common.cl (Philox, group_sum) first; `#line` keeps build-log line numbers per file.
        let files = KernelSources.files.filter { $0.name == "common.cl" } + KernelSources.files.filter { $0.name != "common.cl" }
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

    /// Runs a reduction kernel as `groups` work-groups of `reduceGroup` items (one group per channel, …).
    func runGroups(_ name: String, groups: Int, _ arguments: KernelArgument...) throws {
        try enqueue(name, global: groups * reduceGroup, local: reduceGroup, arguments)
    }

    private func enqueue(_ name: String, global: Int, local: Int, _ arguments: [KernelArgument]) throws {
        guard global > 0 else { return }
        guard global <= Int(Int32.max) else {
            throw KilnError("\(name): \(global) work-items exceed the kernels' 32-bit indices; use a smaller batch")
        }
        guard let kernel = kernels[name] else { throw KilnError("OpenCL kernel \(name) is not in the program") }
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

    public func finish() throws {
        try checkCL(clFinish(queue), "clFinish")
    }

    // MARK: Memory

    func memory(_ t: Tensor) -> cl_mem { (t.storage as! OpenCLStorage).buffer }

    /// A scratch tensor of `count` floats (im2col columns); its buffer grows to the largest layer, then stays.
    func columnScratch(_ count: Int) throws -> Tensor {
        if columns == nil || columns!.byteCapacity < count * 4 { columns = try storage(bytes: count * 4) }
        return Tensor(shape: [count], dtype: .float32, storage: columns!)
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
