#if canImport(Glibc)
import Glibc
#endif

/// Parameter updates on OpenCL, element-wise. Kernels: Kernels/optimizer.cl.
extension OpenCLDevice {
    public func sgdStep(parameter: Tensor, gradient: Tensor, velocity: Tensor, learningRate: Float,
                        momentum: Float, nesterov: Bool, weightDecay: Float) throws {
        try checkSameShape("sgdStep", [("parameter", parameter), ("gradient", gradient), ("velocity", velocity)])
        try finishGradients()
        try run("sgd_step", items: parameter.count, .buffer(parameter), .buffer(gradient), .buffer(velocity),
                .int(parameter.count), .float(learningRate), .float(momentum), .int(nesterov ? 1 : 0), .float(weightDecay))
    }

    public func adamStep(parameter: Tensor, gradient: Tensor, firstMoment: Tensor, secondMoment: Tensor,
                         learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float,
                         step: Int) throws {
        try checkSameShape("adamStep", [("parameter", parameter), ("gradient", gradient), ("firstMoment", firstMoment), ("secondMoment", secondMoment)])
        try finishGradients()
        // The bias corrections are per step, not per element: the host computes them as the CPU does.
        let correction1 = 1 - powf(beta1, Float(step)), correction2 = 1 - powf(beta2, Float(step))
        try run("adam_step", items: parameter.count, .buffer(parameter), .buffer(gradient), .buffer(firstMoment),
                .buffer(secondMoment), .int(parameter.count), .float(learningRate / correction1), .float(beta1),
                .float(beta2), .float(epsilon), .float(weightDecay), .float(correction2.squareRoot()))
    }

    public func movingAverage(average: Tensor, value: Tensor, decay: Float) throws {
        try checkSameShape("movingAverage", [("average", average), ("value", value)])
        try run("moving_average", items: average.count, .buffer(average), .buffer(value), .int(average.count), .float(1 - decay))
    }
}
