import Foundation

/// Model checkpoints as safetensors with PyTorch's `state_dict` names and layouts (`0.weight` OIHW,
/// `2.running_mean`, `2.num_batches_tracked`, `3.body.0.weight` in a residual block, …), so
/// `model.load_state_dict(...)` on the module `benchmarks/pytorch` builds from the spec works. Optimizer
/// state rides along as `optimizer.<param>.<slot>`, and a run with `--ema` adds its average as `ema.<name>`
/// (skip those keys, or load with `strict=False`, in PyTorch; strip `ema.` to load the average). The
/// spec, training options and progress are in `__metadata__`.
public struct Checkpoint {
    public let spec: ModelSpec
    public let state: TrainingState
    /// The optimizer's update count (`Optimizer.step`).
    public let optimizerStep: Int
    private let file: Safetensors
    private let source: String

    static let specKey = "kiln.spec", optionsKey = "kiln.options", epochKey = "kiln.epoch", stepKey = "kiln.step"
    static let averagePrefix = "ema."

    /// Which weights to load: the trained ones, or their exponential moving average (`kiln train --ema`).
    public enum Weights: String, CaseIterable, Sendable { case trained, ema }

    /// Whether the checkpoint holds a moving average of the weights.
    public var hasAverage: Bool { file.tensors.keys.contains { $0.hasPrefix(Self.averagePrefix) } }

    /// The weights `kiln eval`, `export`, `predict` and `report` use unless told: the average where there is one.
    public var defaultWeights: Weights { hasAverage ? .ema : .trained }

    /// Writes the trainer's model, optimizer and progress to `path` atomically (temporary file, then rename).
    public static func save(_ trainer: Trainer, to path: String) throws {
        try save(model: trainer.model, optimizer: trainer.optimizer, average: trainer.average, state: trainer.state, to: path)
    }

    /// Saves what the layers declare (parameters, buffers, counters), the optimizer's state, the moving
    /// average of the weights and `state`.
    public static func save(model: Model, optimizer: Optimizer?, average: ExponentialMovingAverage? = nil, state: TrainingState,
                            to path: String) throws {
        let device = model.device
        var file = Safetensors()
        for (name, tensor) in model.namedTensors {
            file.tensors[name] = .float32(try device.readFloats(tensor), shape: tensor.shape)
        }
        for (name, tensor) in average?.namedTensors ?? [] {
            file.tensors[averagePrefix + name] = .float32(try device.readFloats(tensor), shape: tensor.shape)
        }
        for (name, counter) in model.namedCounters { file.tensors[name] = .int64(counter.value) }
        if let optimizer {
            for (name, parameter) in parameterNames(model) {
                for (slot, tensor) in zip(optimizer.config.stateNames, parameter.optimizerState) {
                    file.tensors["optimizer.\(name).\(slot)"] = .float32(try device.readFloats(tensor), shape: tensor.shape)
                }
            }
            file.metadata[stepKey] = String(optimizer.step)
        }
        file.metadata["format"] = "pt"
        file.metadata[specKey] = try model.spec.jsonString()
        file.metadata[epochKey] = String(state.completedEpochs)
        if let options = state.options {
            // Sorted keys: the same run writes the same bytes.
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            file.metadata[optionsKey] = String(decoding: try encoder.encode(options), as: UTF8.self)
        }
        try writeAtomically(file.encoded(), to: path, what: "the checkpoint")
    }

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw KilnError("\(path): cannot read the checkpoint") }
        file = try Safetensors(data: data, source: path)
        source = path
        guard let specText = file.metadata[Self.specKey] else {
            throw KilnError("\(path): no model spec in the metadata (\(Self.specKey)); was it written by kiln?")
        }
        spec = try ModelSpec(json: Data(specText.utf8), source: "\(path) (\(Self.specKey))")
        let options: TrainingOptions?
        do {
            options = try file.metadata[Self.optionsKey].map { try JSONDecoder().decode(TrainingOptions.self, from: Data($0.utf8)) }
        } catch {
            throw KilnError("\(path): the training options (\(Self.optionsKey)) are unreadable: \(error.localizedDescription)")
        }
        state = TrainingState(options: options, completedEpochs: try Self.count(file.metadata[Self.epochKey], Self.epochKey, path))
        optimizerStep = try Self.count(file.metadata[Self.stepKey], Self.stepKey, path)
        // What training would have refused is refused here too, so that no command computes with it.
        guard spec.layers.last?.isLogSoftmax == true else {
            throw KilnError("\(path): the model \(spec.name) does not end in logsoftmax, which kiln train requires; was the spec edited?")
        }
        guard let normalization = options?.normalization else {
            throw KilnError("\(path): no input normalisation in \(Self.optionsKey): the inputs' scale is unknown")
        }
        guard normalization.mean.count == spec.input.channels, normalization.std.count == spec.input.channels,
              normalization.mean.allSatisfy(\.isFinite), normalization.std.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw KilnError("\(path): the input normalisation (mean \(normalization.mean), std \(normalization.std)) needs a finite mean "
                            + "and a positive std for each of the model's \(spec.input.channels) channels")
        }
        self.normalization = normalization
    }

    /// How the training images were normalised, which inputs must repeat.
    public let normalization: Normalization

    /// A non-negative count from the metadata (0 when absent).
    private static func count(_ text: String?, _ key: String, _ path: String) throws -> Int {
        guard let text else { return 0 }
        guard let value = Int(text), value >= 0 else { throw KilnError("\(path): \(key) is \(text), not a count") }
        return value
    }

    /// Copies the weights (the trained ones, or their average), buffers and counters into `model` (built
    /// from `spec`).
    public func load(into model: Model, weights: Weights = .trained) throws {
        if weights == .ema && !hasAverage {
            throw KilnError("\(source): holds no moving average of the weights (it was trained without --ema); use the trained weights")
        }
        let prefix = weights == .ema ? Self.averagePrefix : ""
        let device = model.device
        for (name, tensor) in model.namedTensors { try device.write(try floats(prefix + name, shape: tensor.shape), to: tensor) }
        for (name, counter) in model.namedCounters { counter.value = file.tensors[name]?.int64Value ?? 0 }
    }

    /// The model, built from `spec` on `device` and loaded with `weights` (the default: `defaultWeights`).
    public func model(on device: Device, weights: Weights? = nil) throws -> Model {
        let model = try Model(spec: spec, device: device, seed: 0)
        try load(into: model, weights: weights ?? defaultWeights)
        return model
    }

    /// Restores a resumed run's moving average.
    public func load(into average: ExponentialMovingAverage, of model: Model) throws {
        for (name, tensor) in average.namedTensors {
            try model.device.write(try floats(Self.averagePrefix + name, shape: tensor.shape), to: tensor)
        }
    }

    /// Restores the optimizer's state and step count.
    public func load(into optimizer: Optimizer, of model: Model) throws {
        try optimizer.prepare(model.parameterBuffer)
        for (name, parameter) in Self.parameterNames(model) {
            for (slot, tensor) in zip(optimizer.config.stateNames, parameter.optimizerState) {
                try model.device.write(try floats("optimizer.\(name).\(slot)", shape: tensor.shape), to: tensor)
            }
        }
        optimizer.step = optimizerStep
    }

    /// A tensor's values, which must be finite (a running variance also not negative).
    private func floats(_ name: String, shape: [Int]) throws -> [Float] {
        guard let entry = file.tensors[name] else { throw KilnError("\(source): tensor \(name) is missing") }
        guard entry.dtype == "F32", entry.shape == shape else {
            throw KilnError("\(source): tensor \(name) is \(entry.dtype) \(entry.shape), the model needs F32 \(shape)")
        }
        let values = entry.floats
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw KilnError("\(source): tensor \(name) holds \(values[bad]) at \(bad): a diverged or damaged run")
        }
        if name.hasSuffix(".running_var"), let bad = values.firstIndex(where: { $0 < 0 }) {
            throw KilnError("\(source): tensor \(name) holds a negative variance, \(values[bad]), at \(bad)")
        }
        return values
    }

    private static func parameterNames(_ model: Model) -> [(String, Parameter)] { model.namedParameters }
}
