/// Batch norm on OpenCL: one work-group per channel for the statistics, reduced in a fixed order
/// (no float atomics). Kernels: Kernels/batchnorm.cl.
extension OpenCLDevice {
    public func batchNormTrainingForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                         runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                         output: Tensor, momentum: Float, epsilon: Float, rectify: Bool) throws {
        try runGroups("batch_norm_training_forward", groups: input.channels, .buffer(input), .buffer(gamma), .buffer(beta),
                      .buffer(runningMean), .buffer(runningVar), .buffer(savedMean), .buffer(savedInvStd),
                      .buffer(output), .int(input.rowLength), .float(momentum), .float(epsilon), .int(rectify ? 1 : 0))
    }

    public func batchNormInferenceForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                          runningVar: Tensor, output: Tensor, epsilon: Float, rectify: Bool) throws {
        try run("batch_norm_inference_forward", items: input.count, .buffer(input), .buffer(gamma), .buffer(beta),
                .buffer(runningMean), .buffer(runningVar), .buffer(output), .int(input.rowLength), .int(input.count),
                .float(epsilon), .int(rectify ? 1 : 0))
    }

    public func batchNormBackward(input: Tensor, gradOutput: Tensor, gamma: Tensor, savedMean: Tensor,
                                  savedInvStd: Tensor, gradInput: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                  rectify: Bool) throws {
        try runGroups("batch_norm_backward", groups: input.channels, .buffer(input), .buffer(gradOutput), .buffer(gamma),
                      .buffer(savedMean), .buffer(savedInvStd), .buffer(gradInput), .buffer(gradGamma),
                      .buffer(gradBeta), .int(input.rowLength), .int(rectify ? 1 : 0))
    }
}
