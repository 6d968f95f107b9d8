/// Batch assembly on OpenCL: the split was uploaded once; each batch is gathered on the device by
/// shuffled index, augmented there with the CPU's Philox draws. Kernel: Kernels/data.cl.
extension OpenCLDevice {
    public func gatherBatch(images: Tensor, labels: Tensor, order: Tensor, start: Int, output: Tensor,
                            outputLabels: Tensor, augmentation: Augmentation?, fill: Tensor, generator: Philox,
                            step: UInt64) throws {
        try checkGather(images: images, labels: labels, order: order, start: start, output: output, outputLabels: outputLabels,
                        augmentation: augmentation, fill: fill)
        let n = output.batch, a = augmentation
        try run("gather_batch", items: output.count, .buffer(images), .buffer(labels), .buffer(order), .buffer(output),
                .buffer(outputLabels), .int(images.channels), .int(images.batch), .int(n), .int(images.height),
                .int(images.width), .int(start), .int(a == nil ? 0 : 1), .float(a?.maxDegrees ?? 0), .float(a?.maxShift ?? 0),
                .int(a?.cropPadding ?? 0), .int(a?.paddingMode == .reflect ? 1 : 0), .int(a?.flip == true ? 1 : 0),
                .int(a?.cutout ?? 0), .buffer(fill), .uint(generator.key.0), .uint(generator.key.1), .ulong(step))
    }
}
