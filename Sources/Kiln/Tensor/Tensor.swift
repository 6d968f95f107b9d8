/// Element types a tensor can hold: activations and weights are float32, labels and indices int32.
public enum DType: String, Sendable {
    case float32, int32
    public var byteSize: Int { 4 }
}

/// Device-owned memory. Each device defines its own (host memory on the CPU, a `cl_mem` on OpenCL);
/// only that device looks inside.
public protocol DeviceStorage: AnyObject {
    /// Bytes allocated; a tensor may view fewer.
    var byteCapacity: Int { get }
}

/// A shape, an element type and storage on one device.
///
/// Layout convention: activations are **channel-major**, shape `[C, N, H, W]`. A convolution is then
/// one GEMM over the whole batch (`W[Co, Ci·k·k] × col[Ci·k·k, N·H·W]` lands directly in `[Co, N, H, W]`)
/// and batch norm reduces contiguous rows. Flattened features are `[F, N, 1, 1]`. Weights use PyTorch's
/// layouts (`OIHW`, Linear `[out, in]`), so checkpoints need no conversion.
public final class Tensor {
    public let shape: [Int]
    public let dtype: DType
    public let storage: DeviceStorage
    public let count: Int

    /// Throws when a dimension is negative or the shape needs more bytes than `storage` has.
    public init(shape: [Int], dtype: DType, storage: DeviceStorage) throws {
        guard let bytes = byteCount(shape, elementSize: dtype.byteSize), bytes <= storage.byteCapacity else {
            throw KilnError("a \(dtype) tensor of shape \(shape) does not fit its \(storage.byteCapacity)-byte storage")
        }
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
        self.count = bytes / dtype.byteSize
    }

    /// Elements the storage can hold: a view of any shape up to this size needs no allocation.
    public var capacity: Int { storage.byteCapacity / dtype.byteSize }

    /// The same storage seen with another shape (no copy).
    public func view(_ newShape: [Int]) throws -> Tensor {
        try Tensor(shape: newShape, dtype: dtype, storage: storage)
    }

    // Activation dimensions ([C, N, H, W]).
    public var channels: Int { shape[0] }
    public var batch: Int { shape[1] }
    public var height: Int { shape[2] }
    public var width: Int { shape[3] }
    /// Elements in one channel's row: N·H·W.
    public var rowLength: Int { count / max(shape[0], 1) }
}

/// A reusable output buffer: grows when a larger batch arrives, never shrinks, and hands back the same
/// `Tensor` while the shape is unchanged, so a training epoch's steady state allocates nothing.
public final class TensorSlot {
    private var tensor: Tensor?
    public init() {}

    public func tensor(_ shape: [Int], on device: Device, dtype: DType = .float32) throws -> Tensor {
        if let t = tensor, t.shape == shape, t.dtype == dtype { return t }
        let needed = shape.reduce(1, *)
        if let t = tensor, t.dtype == dtype, t.capacity >= needed {
            tensor = try t.view(shape)
        } else {
            tensor = try device.allocate(shape, dtype)
        }
        return tensor!
    }
}
