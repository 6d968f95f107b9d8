/// A device's optimizer role: in-place updates of a flat parameter buffer from its flat gradient.
public protocol OptimizerPrimitives: AnyObject {
    // PyTorch semantics, weight decay added to the gradient; `parameter`, `gradient` and the state tensors
    // are the same shape.
    /// SGD with momentum (`velocity`; with `momentum` 0 it is left alone), optionally Nesterov.
    func sgdStep(parameter: Tensor, gradient: Tensor, velocity: Tensor, learningRate: Float,
                 momentum: Float, nesterov: Bool, weightDecay: Float) throws
    /// Adam with bias correction for update number `step` (from 1).
    func adamStep(parameter: Tensor, gradient: Tensor, firstMoment: Tensor, secondMoment: Tensor,
                  learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float,
                  step: Int) throws
    /// An exponential moving average (`--ema`): `average += (1 − decay)·(value − average)`, element by
    /// element (PyTorch's `lerp_`, as timm's ModelEmaV2 writes it). The two are the same shape.
    func movingAverage(average: Tensor, value: Tensor, decay: Float) throws
}
