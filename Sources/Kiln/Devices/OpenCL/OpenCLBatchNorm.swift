/// Batch norm on OpenCL in two stages per pass (see Kernels/batchnorm.cl): partial statistics of row
/// slices, one work-group each, then an element-wise pass whose work-groups fold their channel's
/// partials in a fixed order. No float atomics, so a run repeats bit for bit.
extension OpenCLDevice {
    public func batchNormTrainingForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                         runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                         output: Tensor, momentum: Float, epsilon: Float, rectify: Bool) throws {
        let row = input.rowLength, (slice, slices) = reductionSlices(channels: input.channels, row: row)
        let partials = try partialScratch(2 * input.channels * slices)
        try runGroups("batch_norm_statistics", groups: input.channels * slices, .buffer(input), .buffer(partials),
                      .int(row), .int(slice), .int(slices), .int(rectify ? 1 : 0))
        let perItem = elementsPerItem(channels: input.channels, row: row)
        try runRows("batch_norm_normalize", channels: input.channels, row: row, perItem: perItem, .buffer(input),
                    .buffer(partials), .buffer(gamma), .buffer(beta), .buffer(runningMean), .buffer(runningVar),
                    .buffer(savedMean), .buffer(savedInvStd), .buffer(output), .int(row), .int(perItem), .int(slice),
                    .int(slices), .float(momentum),
                    .float(epsilon), .int(rectify ? 1 : 0))
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
        let row = input.rowLength, (slice, slices) = reductionSlices(channels: input.channels, row: row)
        let partials = try partialScratch(2 * input.channels * slices)
        try runGroups("batch_norm_backward_sums", groups: input.channels * slices, .buffer(input), .buffer(gradOutput),
                      .buffer(savedMean), .buffer(partials), .int(row), .int(slice), .int(slices), .int(rectify ? 1 : 0))
        let perItem = elementsPerItem(channels: input.channels, row: row)
        try runRows("batch_norm_backward_data", channels: input.channels, row: row, perItem: perItem, .buffer(input),
                    .buffer(gradOutput), .buffer(partials), .buffer(gamma), .buffer(savedMean), .buffer(savedInvStd),
                    .buffer(gradInput), .buffer(gradGamma), .buffer(gradBeta), .int(row), .int(perItem), .int(slices),
                    .int(rectify ? 1 : 0))
    }
}
