/// One split on the device: uploaded once, then batches are gathered there by shuffled index.
public struct DeviceSplit {
    let images: Tensor, labels: Tensor, order: Tensor, fill: Tensor
    public let count: Int

    public init(_ split: Split, on device: Device) throws {
        count = split.count
        images = try device.allocate([split.shape.channels, count, split.shape.size, split.shape.size], .float32)
        labels = try device.allocate([count], .int32)
        order = try device.allocate([count], .int32)
        fill = try device.allocate([split.shape.channels], .float32)
        try device.write(split.fill, to: fill)
        try device.write(split.images, to: images)
        try device.write(split.labels, to: labels)
        try device.write((0..<Int32(count)).map { $0 }, to: order)
    }

    /// Gathers images `order[start ..< start+count]` (and labels) into the slots' tensors.
    public func batch(start: Int, count: Int, into images: TensorSlot, _ labels: TensorSlot, on device: Device,
               augmentation: Augmentation? = nil, generator: Philox = Philox(seed: 0, stream: 0),
               step: UInt64 = 0) throws -> (Tensor, Tensor) {
        let x = try images.tensor([self.images.channels, count, self.images.height, self.images.width], on: device)
        let y = try labels.tensor([count], on: device, dtype: .int32)
        try device.gatherBatch(images: self.images, labels: self.labels, order: order, start: start, output: x,
                               outputLabels: y, augmentation: augmentation, fill: fill, generator: generator, step: step)
        return (x, y)
    }
}
