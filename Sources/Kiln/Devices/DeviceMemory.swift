/// A device's memory role: tensors, transfers between host and device, views, and the queue.
public protocol DeviceMemory: AnyObject {
    /// Uninitialised storage for `shape`.
    func allocate(_ shape: [Int], _ dtype: DType) throws -> Tensor
    /// Whether `tensor`'s storage is this device's: primitives refuse any other.
    func owns(_ tensor: Tensor) -> Bool
    /// Copies `values` (exactly `tensor.count` of them) into a float32 tensor.
    func write(_ values: [Float], to tensor: Tensor) throws
    /// Copies `values` (exactly `tensor.count` of them) into an int32 tensor.
    func write(_ values: [Int32], to tensor: Tensor) throws
    /// A float32 tensor's values on the host (waits for the queue).
    func readFloats(_ tensor: Tensor) throws -> [Float]
    /// An int32 tensor's values on the host (waits for the queue).
    func readInts(_ tensor: Tensor) throws -> [Int32]
    /// Sets every element of a float32 tensor to `value`.
    func fill(_ tensor: Tensor, with value: Float) throws
    /// Copies `source` into `destination`, of the same element count and type.
    func copy(_ source: Tensor, to destination: Tensor) throws
    /// Blocks until every queued primitive has run: call before reading a clock.
    func finish() throws
    /// Completes the gradients that backward primitives left as partial sums (OpenCL adds up all of a
    /// step's in one launch). Reads, copies, `finish` and the optimizer steps call it first, so a
    /// gradient is never seen incomplete; ``TrainingStep`` calls it after the last backward.
    func finishGradients() throws
    /// Device memory allocated so far in bytes, where the device keeps count (OpenCL); nil on the CPU.
    var allocatedBytes: Int? { get }
    /// A tensor of `shape` over `tensor`'s elements from `offset` on (no copy; writes show through).
    /// `offset` must be a multiple of `viewAlignment`.
    func view(_ tensor: Tensor, offset: Int, shape: [Int]) throws -> Tensor
    /// Elements a view's offset must be a multiple of (OpenCL sub-buffers start at aligned addresses).
    var viewAlignment: Int { get }
}
