/// An exponential moving average of a model's weights (`kiln train --ema DECAY`), kept as timm's
/// ModelEmaV2 keeps it: it starts as the model's weights, and after every update each parameter and
/// batch-norm running statistic `a` of the average moves toward the model's `v` by
/// `a += (1 − decay)·(v − a)` (`OptimizerPrimitives.movingAverage`). A run with one evaluates, saves
/// (`ema.*` keys) and exports the average, beside the trained weights it goes on training.
///
/// The average stays on the model's device: a flat copy of the `ParameterBuffer` (one launch per
/// update) and a copy of each buffer. It is evaluated in the model's place (`evaluating`), so the
/// model's activation buffers serve both and no second set is allocated.
public final class ExponentialMovingAverage {
    public let decay: Float
    private let model: Model
    private let parameters: Tensor
    /// Each buffer's average and the model's own, with its `state_dict` name.
    private let buffers: [(name: String, average: Tensor, live: Tensor)]
    /// Every average under the model's `state_dict` names (a parameter's is a view into `parameters`).
    public let namedTensors: [(name: String, tensor: Tensor)]
    /// The model's own weights while the average stands in (allocated at the first evaluation).
    private var saved: [Tensor]?

    public init(of model: Model, decay: Float) throws {
        guard decay > 0 && decay < 1 else { throw KilnError("the EMA decay must be between 0 and 1, exclusive, not \(decay)") }
        let device = model.device
        let state = try model.parameterBuffer.state()
        try device.copy(model.parameterBuffer.values, to: state.flat)
        buffers = try model.namedBuffers.map { name, live in
            let average = try device.allocate(live.shape, .float32)
            try device.copy(live, to: average)
            return (name, average, live)
        }
        (self.decay, self.model, parameters) = (decay, model, state.flat)
        namedTensors = zip(model.namedParameters, state.views).map { ($0.name, $1) } + buffers.map { ($0.name, $0.average) }
    }

    /// Moves the average toward the model's current weights: after every update.
    public func update() throws {
        try model.device.movingAverage(average: parameters, value: model.parameterBuffer.values, decay: decay)
        for b in buffers { try model.device.movingAverage(average: b.average, value: b.live, decay: decay) }
    }

    /// The averages of the buffers, which data-parallel ranks average at the end of an epoch as they do
    /// the model's.
    public var bufferAverages: [Tensor] { buffers.map(\.average) }

    /// Runs `body` with the average in the model's place (evaluation); the model's own weights are back
    /// afterwards, whether `body` throws or not.
    public func evaluating<T>(_ body: () throws -> T) throws -> T {
        let device = model.device
        let pairs: [(average: Tensor, live: Tensor)] = [(parameters, model.parameterBuffer.values)] + buffers.map { ($0.average, $0.live) }
        let saved = try self.saved ?? pairs.map { try device.allocate($0.live.shape, .float32) }
        self.saved = saved
        for (copy, pair) in zip(saved, pairs) { try device.copy(pair.live, to: copy) }
        for pair in pairs { try device.copy(pair.average, to: pair.live) }
        let result = Result { try body() }
        for (copy, pair) in zip(saved, pairs) { try device.copy(copy, to: pair.live) }
        return try result.get()
    }
}
