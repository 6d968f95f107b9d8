import CBLAS
import Foundation

/// Host memory, 64-byte aligned for SIMD loads; or a view into another storage, which it keeps alive.
final class CPUStorage: DeviceStorage {
    let raw: UnsafeMutableRawPointer
    let byteCapacity: Int
    private let parent: CPUStorage?

    init(bytes: Int) {
        byteCapacity = bytes
        raw = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        parent = nil
    }

    init(viewing parent: CPUStorage, fromByte offset: Int, bytes: Int) {
        byteCapacity = bytes
        raw = parent.raw + offset
        self.parent = parent
    }

    deinit { if parent == nil { raw.deallocate() } }
}

/// The CPU device: stride-1 convolutions as direct AVX2 kernels where the CPU has them, the other
/// convolutions as im2col + OpenBLAS sgemm, everything else as loops over raw buffers, split over
/// `parallel.threads` cores. OpenBLAS runs single-threaded: Kiln splits each GEMM itself, so BLAS
/// threads never spin against Kiln's own.
///
/// The primitives live in the files beside this one, one op family each (`CPUConvolution.swift`, …).
public final class CPUDevice: Device {
    /// Scratch areas (im2col columns or direct grids, per-thread partial sums, packed weights); each grows
    /// to the largest layer, then stays.
    private var workspaces = [CPUStorage(bytes: 0), CPUStorage(bytes: 0)]
    static let columnScratch = 0, partialScratch = 1
    /// A fused batch norm's input gradient, which its convolution's backward then reads.
    let normalizedGradient = TensorSlot()

    /// How loops are split over the device's threads.
    public let parallel: Parallel
    public var threads: Int? { parallel.threads }

    /// Whether stride-1 convolutions run the direct AVX2 kernels (`CPUDirectConvolution.swift`) rather than im2col.
    let directConvolution: Bool

    /// A CPU device running its primitives on `threads` threads (all cores by default).
    public convenience init(threads: Int = System.coreCount) {
        self.init(threads: threads, directConvolution: CPUDevice.hasDirectKernels)
    }

    /// `directConvolution: false` keeps every convolution on im2col + sgemm, as on a CPU without AVX2:
    /// the tests check both paths on one machine.
    init(threads: Int, directConvolution: Bool) {
        openblas_set_num_threads(1)
        parallel = Parallel(threads: threads)
        self.directConvolution = directConvolution && CPUDevice.hasDirectKernels
    }

    /// The CPU fuses what `Stage.standard` fuses by composing its primitives (`composedForward`), so that
    /// parity meets the same stages on both devices.
    public func plan(_ nodes: [PlanNode]) -> [Stage] { Stage.standard(nodes) }

    public var summary: String {
        "cpu (\(directConvolution ? "AVX2 direct convolution, " : "")OpenBLAS sgemm, \(parallel.threads) thread\(parallel.threads == 1 ? "" : "s"))"
    }

    // The storage is raw memory, never bound to a type: typed access is defined only once it is bound
    // (`bindMemory`, free at run time), so each accessor binds it to the element type it hands out.
    func floats(_ t: Tensor) -> UnsafeMutablePointer<Float> {
        (t.storage as! CPUStorage).raw.bindMemory(to: Float.self, capacity: t.count)
    }

    func ints(_ t: Tensor) -> UnsafeMutablePointer<Int32> {
        (t.storage as! CPUStorage).raw.bindMemory(to: Int32.self, capacity: t.count)
    }

    /// `body` with scratch area `index` of at least `count` floats (contents undefined). The area lives
    /// until `body` returns, even if a call inside it grows the area (which replaces its storage).
    func withScratch<Result>(_ index: Int, _ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Result) -> Result {
        if workspaces[index].byteCapacity < count * 4 { workspaces[index] = CPUStorage(bytes: count * 4) }
        let storage = workspaces[index]
        return withExtendedLifetime(storage) { body(storage.raw.bindMemory(to: Float.self, capacity: count)) }
    }

    public func allocate(_ shape: [Int], _ dtype: DType) throws -> Tensor {
        // A model too large for the machine is an error, not a trap in the allocator.
        guard let bytes = byteCount(shape, elementSize: dtype.byteSize), UInt64(bytes) <= ProcessInfo.processInfo.physicalMemory else {
            let gib = shape.reduce(Double(dtype.byteSize)) { $0 * Double($1) } / 1_073_741_824
            throw KilnError("a \(shape) tensor needs \(String(format: "%.1f", gib)) GiB, more than this machine's memory; use a smaller model or batch")
        }
        return try Tensor(shape: shape, dtype: dtype, storage: CPUStorage(bytes: bytes))
    }

    public func write(_ values: [Float], to tensor: Tensor) throws {
        try checkTransfer(values.count, tensor, .float32)
        // Not through `baseAddress!`: an empty array may have none, and then nothing is copied.
        _ = UnsafeMutableBufferPointer(start: floats(tensor), count: values.count).update(fromContentsOf: values)
    }

    public func write(_ values: [Int32], to tensor: Tensor) throws {
        try checkTransfer(values.count, tensor, .int32)
        _ = UnsafeMutableBufferPointer(start: ints(tensor), count: values.count).update(fromContentsOf: values)
    }

    public func readFloats(_ tensor: Tensor) throws -> [Float] {
        try checkOwned("read", tensor)
        return Array(UnsafeBufferPointer(start: floats(tensor), count: tensor.count))
    }

    public func readInts(_ tensor: Tensor) throws -> [Int32] {
        try checkOwned("read", tensor)
        return Array(UnsafeBufferPointer(start: ints(tensor), count: tensor.count))
    }

    /// Primitives run synchronously on the CPU: nothing is ever pending.
    public func finish() throws {}

    /// Every CPU primitive writes its gradients whole.
    public func finishGradients() throws {}

    public var allocatedBytes: Int? { nil }

    /// 16 floats: views start on a 64-byte boundary, as allocations do.
    public var viewAlignment: Int { 16 }

    public func view(_ tensor: Tensor, offset: Int, shape: [Int]) throws -> Tensor {
        try checkView(tensor, offset: offset, shape: shape)
        guard let parent = tensor.storage as? CPUStorage else { throw KilnError("view: the tensor is another device's") }
        let bytes = shape.reduce(1, *) * tensor.dtype.byteSize
        return try Tensor(shape: shape, dtype: tensor.dtype,
                      storage: CPUStorage(viewing: parent, fromByte: offset * tensor.dtype.byteSize, bytes: bytes))
    }

    /// Any host memory: CPU devices share their tensors.
    public func owns(_ tensor: Tensor) -> Bool { tensor.storage is CPUStorage }

    public func fill(_ tensor: Tensor, with value: Float) throws {
        try checkOwned("fill", tensor)
        floats(tensor).update(repeating: value, count: tensor.count)
    }

    public func copy(_ source: Tensor, to destination: Tensor) throws {
        try checkTransfer(source.count, destination, source.dtype)
        try checkOwned("copy", source)
        (destination.storage as! CPUStorage).raw.copyMemory(
            from: (source.storage as! CPUStorage).raw, byteCount: source.count * source.dtype.byteSize)
    }
}
