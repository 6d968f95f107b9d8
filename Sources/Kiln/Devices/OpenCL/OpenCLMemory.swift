import COpenCL
import Foundation

/// A `cl_mem` buffer. When its last tensor goes, the buffer returns to the device's pool. A sub-buffer
/// (a view) keeps its parent alive and is released on its own.
final class OpenCLStorage: DeviceStorage {
    let buffer: cl_mem
    let byteCapacity: Int
    /// The buffer a view is cut from, and where in it the view starts (bytes): a kernel can write the
    /// view through its root (sum_gradients writes every gradient view of the flat buffer so).
    let root: cl_mem
    let origin: Int
    /// The device's pool, for `OpenCLDevice.owns`.
    let pool: BufferPool
    private let owner: Owner
    private enum Owner { case pool(BufferPool), parent(OpenCLStorage) }

    init(buffer: cl_mem, bytes: Int, pool: BufferPool) {
        self.buffer = buffer
        byteCapacity = bytes
        root = buffer
        origin = 0
        self.pool = pool
        owner = .pool(pool)
    }

    init(subBuffer: cl_mem, bytes: Int, parent: OpenCLStorage, offset: Int) {
        buffer = subBuffer
        byteCapacity = bytes
        root = parent.root
        origin = parent.origin + offset
        pool = parent.pool
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
    private var bytesCreated = 0
    /// Bytes held in buffers, in use or pooled: what the device has allocated. Read under the lock that
    /// guards its changes, like the rest of the pool (a tensor's last release may come from any thread).
    var allocatedBytes: Int { lock.withLock { bytesCreated } }

    func take(bytes: Int) -> cl_mem? {
        lock.withLock { free[bytes]?.popLast() }
    }

    func created(bytes: Int) { lock.withLock { bytesCreated += bytes } }

    func give(_ buffer: cl_mem, bytes: Int) {
        lock.withLock { free[bytes, default: []].append(buffer) }
    }
}

/// Device memory: buffers from the pool, sub-buffer views, transfers. Only `readFloats`/`readInts` block.
extension OpenCLDevice {

    /// The buffer of a tensor the primitive has checked is this device's (`owns`).
    func memory(_ t: Tensor) -> cl_mem { (t.storage as! OpenCLStorage).buffer }

    public func owns(_ tensor: Tensor) -> Bool { (tensor.storage as? OpenCLStorage)?.pool === pool }

    /// A scratch tensor of `count` floats for a reduction's partial results, which live from one launch to the
    /// next; its buffer grows to the largest need, then stays.
    func partialScratch(_ count: Int) throws -> Tensor { try scratch(&partials, count) }

    private func scratch(_ slot: inout OpenCLStorage?, _ count: Int) throws -> Tensor {
        if slot == nil || slot!.byteCapacity < count * 4 { slot = try storage(bytes: count * 4) }
        return try Tensor(shape: [count], dtype: .float32, storage: slot!)
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
        guard let bytes = byteCount(shape, elementSize: dtype.byteSize) else { throw KilnError("a \(shape) tensor is too large to allocate") }
        return try Tensor(shape: shape, dtype: dtype, storage: storage(bytes: bytes))
    }

    public func view(_ tensor: Tensor, offset: Int, shape: [Int]) throws -> Tensor {
        try checkView(tensor, offset: offset, shape: shape)
        guard let parent = tensor.storage as? OpenCLStorage else { throw KilnError("view: the tensor is another device's") }
        let bytes = max(shape.reduce(1, *) * tensor.dtype.byteSize, 4)
        var region = cl_buffer_region(origin: offset * tensor.dtype.byteSize, size: bytes)
        var status: cl_int = 0
        let buffer = clCreateSubBuffer(parent.buffer, cl_mem_flags(CL_MEM_READ_WRITE),
                                       cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION), &region, &status)
        try checkCL(status, "clCreateSubBuffer(offset \(offset), \(bytes) bytes)")
        return try Tensor(shape: shape, dtype: tensor.dtype, storage: OpenCLStorage(subBuffer: buffer!, bytes: bytes, parent: parent,
                                                                                offset: offset * tensor.dtype.byteSize))
    }

    public func write(_ values: [Float], to tensor: Tensor) throws {
        try checkTransfer(values.count, tensor, .float32)
        try finishGradients()
        try upload(values, tensor)
    }

    public func write(_ values: [Int32], to tensor: Tensor) throws {
        try checkTransfer(values.count, tensor, .int32)
        try finishGradients()
        try upload(values, tensor)
    }

    /// Writes `values` at element `offset` of `tensor`. Unlike `write`, it leaves the queued gradient
    /// sums queued, so a primitive may put values into its own scratch or arena region mid-step.
    func upload<T>(_ values: [T], _ tensor: Tensor, offset: Int = 0) throws {
        guard offset >= 0 && offset + values.count <= tensor.count else {
            throw KilnError("write: \(values.count) elements at \(offset) overrun a \(tensor.count)-element tensor")
        }
        guard !values.isEmpty else { return }
        try values.withUnsafeBytes {
            try checkCL(clEnqueueWriteBuffer(queue, memory(tensor), cl_bool(CL_TRUE), offset * MemoryLayout<T>.stride, $0.count,
                                             $0.baseAddress, 0, nil, nil), "clEnqueueWriteBuffer")
        }
    }

    public func readFloats(_ tensor: Tensor) throws -> [Float] { try download(tensor, as: Float.self) }

    public func readInts(_ tensor: Tensor) throws -> [Int32] { try download(tensor, as: Int32.self) }

    private func download<T: Numeric>(_ tensor: Tensor, as: T.Type) throws -> [T] {
        try checkOwned("read", tensor)
        try finishGradients()
        return try readRegion(tensor, offset: 0, count: tensor.count)
    }

    /// Elements `offset ..< offset+count` of `tensor`. Unlike `readFloats`, it leaves the queued gradient
    /// sums queued, so a primitive may read its own scratch or arena region mid-step (`upload` writes it).
    func readRegion<T: Numeric>(_ tensor: Tensor, offset: Int, count: Int) throws -> [T] {
        guard offset >= 0 && offset + count <= tensor.count else {
            throw KilnError("read: \(count) elements at \(offset) overrun a \(tensor.count)-element tensor")
        }
        var values = [T](repeating: 0, count: count)
        guard !values.isEmpty else { return values }
        try values.withUnsafeMutableBytes {
            try checkCL(clEnqueueReadBuffer(queue, memory(tensor), cl_bool(CL_TRUE), offset * tensor.dtype.byteSize, $0.count,
                                            $0.baseAddress, 0, nil, nil), "clEnqueueReadBuffer")
        }
        return values
    }

    public func fill(_ tensor: Tensor, with value: Float) throws {
        try checkOwned("fill", tensor)
        guard tensor.count > 0 else { return }
        try finishGradients()
        var pattern = value
        try checkCL(clEnqueueFillBuffer(queue, memory(tensor), &pattern, 4, 0, tensor.count * 4, 0, nil, nil),
                    "clEnqueueFillBuffer")
    }

    public func copy(_ source: Tensor, to destination: Tensor) throws {
        try checkTransfer(source.count, destination, source.dtype)
        try checkOwned("copy", source)
        guard source.count > 0 else { return }
        try finishGradients()
        try checkCL(clEnqueueCopyBuffer(queue, memory(source), memory(destination), 0, 0, source.count * source.dtype.byteSize,
                                        0, nil, nil), "clEnqueueCopyBuffer")
    }
}
