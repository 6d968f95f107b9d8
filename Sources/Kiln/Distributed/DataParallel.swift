import Foundation

/// Data-parallel training over a `Communicator`, as PyTorch's DDP: every rank holds a replica of the
/// model and the whole data set, takes its shard of each global batch (the same shuffled order on
/// every rank, from the same seed), and before each update the ranks' gradients are averaged with one
/// all-reduce of the flat gradient buffer, so every rank applies the same update. Batch norm keeps
/// per-rank batch statistics, and its running statistics are averaged over the ranks after each
/// epoch, before evaluation, which is sharded too; with `syncBatchNorm` every batch norm instead
/// all-reduces its sums, forward and backward (`SyncBatchNorm`), so its statistics are the global
/// batch's. A checksum of the weights after each epoch proves the replicas identical.
public final class DataParallel {
    public let communicator: Communicator
    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }
    /// Batch norm statistics over the global batch (`--sync-bn`), not this rank's shard.
    public let syncBatchNorm: Bool
    /// This rank's share of the current step's global batch (its images over the batch's): each rank's
    /// loss is its own shard's mean, so its gradients count by this weight in the global mean.
    var share: Float = 1

    public init(_ communicator: Communicator, syncBatchNorm: Bool = false) {
        (self.communicator, self.syncBatchNorm) = (communicator, syncBatchNorm)
    }

    /// Rank `rank`'s part of images `start ..< start+count`: an even split, the first ranks taking one
    /// more image when `count` does not divide.
    public func shard(start: Int, count: Int, rank: Int? = nil) -> (start: Int, count: Int) {
        let r = rank ?? self.rank
        let low = r * count / size, high = (r + 1) * count / size
        return (start + low, high - low)
    }

    /// Refuses a run whose batches cannot all be shared out: the global batch must divide by the ranks,
    /// and the epoch's last, smaller batch must give every rank an image.
    func check(batchSize: Int, trainCount: Int) throws {
        guard batchSize % size == 0 else {
            throw KilnError("--batch-size \(batchSize) is the global batch and must divide by the \(size) ranks")
        }
        let last = trainCount % batchSize
        guard last == 0 || last >= size else {
            throw KilnError("the epoch's last batch has \(last) image\(last == 1 ? "" : "s"), fewer than the \(size) ranks: change --batch-size or --train-limit")
        }
    }

    /// A random-number counter for rank `rank`'s part of global step `step`: distinct on every rank,
    /// so that shards are augmented (and dropped out) independently; `step` itself on one rank.
    func counter(_ step: UInt64) -> UInt64 { step &* UInt64(size) &+ UInt64(rank) }

    /// Averages a step's gradients over the ranks, each weighted by its `share`.
    final class GradientAverage: StepObserver {
        let parallel: DataParallel, model: Model
        init(_ parallel: DataParallel, model: Model) { (self.parallel, self.model) = (parallel, model) }

        func gradientsFinished() throws {
            let device = model.device, gradients = model.parameterBuffer.gradients
            var values = try device.readFloats(gradients)
            let share = parallel.share
            for i in values.indices { values[i] *= share }
            try parallel.communicator.sum(&values)
            try device.write(values, to: gradients)
        }
    }

    /// A synchronised batch norm's all-reduces (see `BatchNormSync`): one of `3·channels` doubles in
    /// each batch norm's forward, one of `2·channels` in its backward.
    final class SyncBatchNorm: BatchNormSync {
        unowned let parallel: DataParallel
        init(_ parallel: DataParallel) { self.parallel = parallel }

        func reduceMoments(_ moments: inout [Double]) throws { try parallel.communicator.sum(&moments) }

        func reduceGradientSums(_ sums: inout [Double]) throws {
            let share = Double(parallel.share)
            for i in sums.indices { sums[i] *= share }
            try parallel.communicator.sum(&sums)
        }
    }

    /// Installs a `SyncBatchNorm` in every batch norm of `model` when `syncBatchNorm` is set.
    func synchronise(_ model: Model) {
        if syncBatchNorm { model.synchroniseBatchNorm(SyncBatchNorm(self)) }
    }

    /// Replaces each tensor (batch norm's running statistics, or their EMA) with its mean over the ranks.
    func averageBuffers(_ tensors: [Tensor], on device: Device) throws {
        for tensor in tensors {
            var values = try device.readFloats(tensor)
            try communicator.sum(&values)
            let scale = 1 / Float(size)
            try device.write(values.map { $0 * scale }, to: tensor)
        }
    }

    /// Throws unless every rank holds the same weights and buffers (bit for bit), after `epoch`.
    func checkReplicas(of model: Model, after epoch: Int) throws {
        let hash = try Self.checksum(of: model).value
        // Both halves exactly, as doubles: the largest and the negated smallest over the ranks agree
        // only when every rank's are equal.
        var halves = [Double(hash >> 32), Double(hash & 0xffff_ffff)]
        var negated = halves.map { -$0 }
        try communicator.max(&halves)
        try communicator.max(&negated)
        guard halves == negated.map({ -$0 }) else {
            throw KilnError("after epoch \(epoch) the ranks' weights differ (rank \(rank)'s checksum \(String(hash, radix: 16))): the replicas diverged, stopping")
        }
    }

    /// Sums a per-rank count or total over the ranks.
    func sum(_ values: [Double]) throws -> [Double] {
        var values = values
        try communicator.sum(&values)
        return values
    }
}

extension Model {
    /// Gives every batch norm `sync` (`--sync-bn`).
    public func synchroniseBatchNorm(_ sync: BatchNormSync) {
        for case let norm as BatchNorm2d in layers { norm.sync = sync }
    }
}
