extension Trainer {
    /// One plain training step of `model` on `data` (a batch of `batchSize`, no augmentation, the default
    /// options otherwise): the trainer is built now, the step runs when called. What `kiln tune` and
    /// kiln-bench record the GEMMs of (`OpenCLDevice.gemmShapes(of:)`).
    public static func oneStep(of model: Model, data: Dataset, batchSize: Int) throws -> () throws -> Void {
        var options = TrainingOptions()
        options.batchSize = batchSize
        options.augmentation = nil
        let trainer = try Trainer(model: model, data: data, options: options)
        return { try trainer.trainStep(start: 0, count: min(batchSize, trainer.trainCount)) }
    }
}
