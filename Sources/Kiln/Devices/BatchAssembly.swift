/// A device's batch-assembly role: a training or test batch gathered from a split uploaded once.
public protocol BatchAssembly: AnyObject {
    /// Copies images `order[start ..< start+N]` of `images` [C, total, H, W] into `output` [C, N, H, W]
    /// and their labels into `outputLabels` [N]; with `augmentation`, each image is transformed by
    /// amounts drawn from `generator` at counters (slot, step) and (Augmentation.placementBlock(slot),
    /// step): rotated and shifted (bilinear) or cropped from the image padded, pixels from outside it
    /// taking `fill` [C] (a black pixel, normalised) or, reflect padding, the mirrored ones; then flipped
    /// and cut out (set to 0) as drawn.
    func gatherBatch(images: Tensor, labels: Tensor, order: Tensor, start: Int, output: Tensor, outputLabels: Tensor,
                     augmentation: Augmentation?, fill: Tensor, generator: Philox, step: UInt64) throws
}
