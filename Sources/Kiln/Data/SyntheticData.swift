extension Dataset {
    /// Random 8-bit images of `shape` with random labels from a seed: for timing a model on data of a
    /// shape whose files are not at hand (CIFAR-10 cannot be fetched on every machine). Each step does
    /// the same work as on the real data; the accuracy means nothing. Normalised with its own statistics.
    public static func synthetic(shape: ImageShape, trainCount: Int, testCount: Int, classes: Int = 10,
                                 seed: UInt64 = 1) throws -> Dataset {
        var random = HostRandom(seed: seed, stream: RandomStream.syntheticData)
        func split(_ count: Int, _ name: String) -> RawSplit {
            let bytes = (0..<shape.channels * count * shape.size * shape.size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let labels = (0..<count).map { _ in Int32((UInt64(random.next()) * UInt64(classes)) >> 32) }
            return (bytes, labels, shape, "synthetic \(name) images", "synthetic \(name) labels")
        }
        let train = split(trainCount, "training"), test = split(testCount, "test")
        return try make(folder: "synthetic \(shape)", train: train, test: test, classes: classes,
                        normalization: .measured(train.bytes, channels: shape.channels))
    }
}
