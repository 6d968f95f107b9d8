/// Batch statistics over more than this process's images: a synchronised batch norm (`--sync-bn`,
/// `DataParallel.SyncBatchNorm`), whose batch is the global one, shared out over ranks. The batch norm
/// layer calls the primitives' two stages apart (moments, then normalise; gradient sums, then input
/// gradient) and between them hands it the per-channel sums, which it replaces with the whole batch's.
public protocol BatchNormSync: AnyObject {
    /// Replaces each channel's raw moments `[count, Σx, Σx²]` (three per channel) of this process's
    /// share of the batch with the global batch's.
    func reduceMoments(_ moments: inout [Double]) throws
    /// Replaces each channel's `[Σdy, Σdy·x̂]` with the global batch's sums of the global loss's `dy`,
    /// expressed in this process's scale: each process's `dy` is the gradient of the mean loss over its
    /// own images, so its sums are weighted by its share of the batch, then added. Divided by this
    /// process's own element count they are then the global means its input gradient needs.
    func reduceGradientSums(_ sums: inout [Double]) throws
}

/// `--sync-bn` in one process: no other ranks to add, but the arithmetic of a synchronised batch norm
/// (sums in doubles, OpenCL's partials per image), whose rounding, unlike the plain batch norm's, does
/// not depend on how the batch is shared out; so a run trains the same on one rank as on several.
public final class WholeBatchSync: BatchNormSync {
    public init() {}
    public func reduceMoments(_ moments: inout [Double]) {}
    public func reduceGradientSums(_ sums: inout [Double]) {}
}
