/// A device's batch-assembly role: a training or test batch gathered from a split uploaded once.
public protocol BatchAssembly: AnyObject {
    /// Copies images `order[start ..< start+N]` of `images` [C, total, H, W] into `output` [C, N, H, W]
    /// and their labels into `outputLabels` [N]; with `augmentation`, each image is rotated and shifted
    /// (bilinear) by amounts drawn from `generator` at counter (slot, step), pixels from outside the
    /// image taking `fill` [C] (a black pixel, normalised).
    func gatherBatch(images: Tensor, labels: Tensor, order: Tensor, start: Int, output: Tensor, outputLabels: Tensor,
                     augmentation: Augmentation?, fill: Tensor, generator: Philox, step: UInt64) throws
}
