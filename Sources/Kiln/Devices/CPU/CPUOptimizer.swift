#if canImport(Glibc)
import Glibc
#endif

/// Parameter updates on the CPU, following torch.optim.SGD and torch.optim.Adam step for step.
extension CPUDevice {
    public func sgdStep(parameter: Tensor, gradient: Tensor, velocity: Tensor, learningRate: Float,
                        momentum: Float, nesterov: Bool, weightDecay: Float) throws {
        try checkSameShape("sgdStep", [("parameter", parameter), ("gradient", gradient), ("velocity", velocity)])
        let (p, g, v) = (floats(parameter), floats(gradient), floats(velocity))
        for i in 0..<parameter.count {
            var d = g[i] + weightDecay * p[i]
            if momentum != 0 {
                // Velocity starts at zero, so the first step stores d, as PyTorch's buffer does.
                v[i] = momentum * v[i] + d
                d = nesterov ? d + momentum * v[i] : v[i]
            }
            p[i] -= learningRate * d
        }
    }

    public func adamStep(parameter: Tensor, gradient: Tensor, firstMoment: Tensor, secondMoment: Tensor,
                         learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float,
                         step: Int) throws {
        try checkSameShape("adamStep", [("parameter", parameter), ("gradient", gradient), ("firstMoment", firstMoment), ("secondMoment", secondMoment)])
        let (p, g, m, v) = (floats(parameter), floats(gradient), floats(firstMoment), floats(secondMoment))
        let correction1 = 1 - powf(beta1, Float(step)), correction2 = 1 - powf(beta2, Float(step))
        let stepSize = learningRate / correction1, rootCorrection2 = correction2.squareRoot()
        for i in 0..<parameter.count {
            let d = g[i] + weightDecay * p[i]
            m[i] = beta1 * m[i] + (1 - beta1) * d
            v[i] = beta2 * v[i] + (1 - beta2) * d * d
            p[i] -= stepSize * m[i] / (v[i].squareRoot() / rootCorrection2 + epsilon)
        }
    }

    public func movingAverage(average: Tensor, value: Tensor, decay: Float) throws {
        try checkSameShape("movingAverage", [("average", average), ("value", value)])
        let (a, v) = (floats(average), floats(value))
        let weight = 1 - decay
        for i in 0..<average.count { a[i] += weight * (v[i] - a[i]) }
    }
}
