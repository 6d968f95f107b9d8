/// Where tensors live and primitives run: the CPU or an OpenCL device. Everything above this protocol
/// (layers, training, checkpoints) is device-agnostic. A device plays four roles, one protocol each:
/// ``DeviceMemory`` (tensors and transfers), ``NeuralPrimitives`` (the layers' forward and backward),
/// ``OptimizerPrimitives`` (parameter updates) and ``BatchAssembly`` (batches gathered on the device).
///
/// Every primitive checks its arguments before touching memory (``PrimitiveChecks``): each tensor must
/// belong to the device and have the shape and element type the call implies, or the call throws one
/// line naming the primitive and the argument. Calls are queued in order; results are visible to the
/// next primitive and to a read. Errors name the failing call.
///
/// Call order of one training step (as ``TrainingStep`` issues it, stage by stage of the device's
/// ``plan(_:)``):
///   gatherBatch → forward primitives stage by stage (conv2dForward, with a fused batch norm where the
///   plan fuses one; batchNormTrainingForward; activationForward; dropoutForward; maxPoolForward; …) up to the
///   class scores → logSoftmaxNLL (log-probabilities, loss totals and the scores' gradient in one) →
///   backward primitives in reverse (conv2dBackward: weights and input together, through a fused batch
///   norm where there is one) → finishGradients → sgdStep / adamStep over the flat parameter buffer.
public protocol Device: DeviceMemory, NeuralPrimitives, OptimizerPrimitives, BatchAssembly {
    /// One line naming the device, e.g. "cpu (AVX2 direct convolution, OpenBLAS sgemm, 2 threads)".
    var summary: String { get }
    /// The CPU threads the primitives run on (the run report's `threads`); nil on a device with cores of
    /// its own (OpenCL).
    var threads: Int? { get }
    /// How this device runs a model's graph, seen as its nodes' kinds: which chains of nodes it fuses
    /// (see ``Stage``).
    func plan(_ nodes: [PlanNode]) -> [Stage]
}
