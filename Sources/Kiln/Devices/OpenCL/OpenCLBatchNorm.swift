/// Batch norm on OpenCL in two stages per pass (see Kernels/batchnorm.cl): partial statistics of row
/// slices, one work-group each (or of a fused convolution's work-groups), then an element-wise pass
/// whose work-groups fold their channel's partials in a fixed order. No float atomics, so a run repeats
/// bit for bit. γ's and β's gradients are slice sums that `finishGradients` completes. A synchronised
/// batch norm's first stages take one slice per image, read back and added on the host in doubles, and
/// its second stages fold the whole batch's sums (one part per channel).
extension OpenCLDevice {
    public func batchNormTrainingForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                         runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                         output: Tensor, momentum: Float, epsilon: Float, activation: Activation) throws {
        try checkBatchNorm("batchNormTrainingForward", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar),
                                     ("savedMean", savedMean), ("savedInvStd", savedInvStd)])
        let (slice, slices) = reductionSlices(channels: input.channels, row: input.rowLength)
        try normalize(input, statistics: statistics(input, slice: slice, slices: slices, activation), parts: slices,
                      BatchNormForward(gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                                       savedMean: savedMean, savedInvStd: savedInvStd, output: output, momentum: momentum,
                                       epsilon: epsilon, activation: activation))
    }

    public func batchNormMoments(input: Tensor, activation: Activation) throws -> [Double] {
        try checkBatchNorm("batchNormMoments", input: input, same: [], vectors: [])
        // One slice per image: every process's partials are then bit for bit those of one process for
        // the same images, so the sums do not depend on how the batch is shared out.
        let (slice, slices) = (input.height * input.width, input.batch)
        let partials = try statistics(input, slice: slice, slices: slices, activation)
        return BatchNormMoments.moments(try readRegion(partials, offset: 0, count: 3 * input.channels * slices),
                                        channels: input.channels, parts: slices)
    }

    public func batchNormNormalize(input: Tensor, moments: [Double], gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                   runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor, output: Tensor,
                                   momentum: Float, epsilon: Float, activation: Activation) throws {
        try checkBatchNorm("batchNormNormalize", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar),
                                     ("savedMean", savedMean), ("savedInvStd", savedInvStd)], moments: (moments.count, 3))
        let statistics = (0..<input.channels).flatMap { c in
            let s = BatchNormMoments.statistics(moments, c)
            return [Float(s.count), Float(s.mean), Float(s.m2)]
        }
        let uploaded = try partialScratch(statistics.count)
        try upload(statistics, uploaded)
        try normalize(input, statistics: uploaded, parts: 1,
                      BatchNormForward(gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                                       savedMean: savedMean, savedInvStd: savedInvStd, output: output, momentum: momentum,
                                       epsilon: epsilon, activation: activation))
    }

    /// Stage 1 of the training forward: (count, mean, m2) of each of `slices` slices of each channel's row.
    private func statistics(_ input: Tensor, slice: Int, slices: Int, _ activation: Activation) throws -> Tensor {
        let partials = try partialScratch(3 * input.channels * slices)
        try runGroups("batch_norm_statistics", groups: input.channels * slices, .buffer(input), .buffer(partials),
                      .int(input.rowLength), .int(slice), .int(slices), .float(activation.slope))
        return partials
    }

    /// Stage 2 of the training forward, from `parts` partial statistics per channel (count, mean, m2).
    func normalize(_ input: Tensor, statistics: Tensor, parts: Int, _ n: BatchNormForward) throws {
        let row = input.rowLength, perItem = elementsPerItem(channels: input.channels, row: row)
        try runRows("batch_norm_normalize", channels: input.channels, row: row, perItem: perItem, .buffer(input),
                    .buffer(statistics), .buffer(n.gamma), .buffer(n.beta), .buffer(n.runningMean), .buffer(n.runningVar),
                    .buffer(n.savedMean), .buffer(n.savedInvStd), .buffer(n.output), .int(row), .int(perItem), .int(parts),
                    .float(n.momentum), .float(n.epsilon), .float(n.activation.slope))
    }

    public func batchNormInferenceForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                          runningVar: Tensor, output: Tensor, epsilon: Float, activation: Activation) throws {
        try checkBatchNorm("batchNormInferenceForward", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar)])
        try run("batch_norm_inference_forward", items: input.count, .buffer(input), .buffer(gamma), .buffer(beta),
                .buffer(runningMean), .buffer(runningVar), .buffer(output), .int(input.rowLength), .int(input.count),
                .float(epsilon), .float(activation.slope))
    }

    public func batchNormBackward(input: Tensor, gradOutput: Tensor, gamma: Tensor, savedMean: Tensor,
                                  savedInvStd: Tensor, gradInput: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                  activation: Activation) throws {
        try checkBatchNorm("batchNormBackward", input: input, same: [("gradOutput", gradOutput), ("gradInput", gradInput)],
                           vectors: [("gamma", gamma), ("savedMean", savedMean), ("savedInvStd", savedInvStd), ("gradGamma", gradGamma), ("gradBeta", gradBeta)])
        let sums = try backwardSums(gradOutput, BatchNormBackward(input: input, gamma: gamma, savedMean: savedMean,
                                                                  savedInvStd: savedInvStd, gradGamma: gradGamma,
                                                                  gradBeta: gradBeta, activation: activation))
        try backwardData(input, gradOutput, sums: sums, gamma, savedMean, savedInvStd, gradInput, activation)
    }

    public func batchNormGradientSums(input: Tensor, gradOutput: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                      gradGamma: Tensor, gradBeta: Tensor, activation: Activation) throws -> [Double] {
        try checkBatchNorm("batchNormGradientSums", input: input, same: [("gradOutput", gradOutput)],
                           vectors: [("savedMean", savedMean), ("savedInvStd", savedInvStd), ("gradGamma", gradGamma), ("gradBeta", gradBeta)])
        // Per image, as the moments. γ's and β's gradients stay this process's own (the data-parallel
        // average adds them up).
        let sums = try backwardSums(input, gradOutput, savedMean, savedInvStd, gradGamma, gradBeta, activation,
                                    slices: (input.height * input.width, input.batch))
        let partials: [Float] = try readRegion(sums.arena, offset: sums.offset, count: 2 * input.channels * sums.slices)
        var total = [Double](repeating: 0, count: 2 * input.channels)
        for c in 0..<input.channels {
            for k in 0..<sums.slices {
                total[2 * c] += Double(partials[2 * (c * sums.slices + k)])
                total[2 * c + 1] += Double(partials[2 * (c * sums.slices + k) + 1])
            }
        }
        return total
    }

    public func batchNormBackwardData(input: Tensor, gradOutput: Tensor, sums: [Double], gamma: Tensor, savedMean: Tensor,
                                      savedInvStd: Tensor, gradInput: Tensor, activation: Activation) throws {
        try checkBatchNorm("batchNormBackwardData", input: input, same: [("gradOutput", gradOutput), ("gradInput", gradInput)],
                           vectors: [("gamma", gamma), ("savedMean", savedMean), ("savedInvStd", savedInvStd)], moments: (sums.count, 2))
        let region = try reservePartials(sums.count)
        try upload(sums.map { Float($0) }, region.arena, offset: region.offset)
        try backwardData(input, gradOutput, sums: (region.arena, region.offset, 1), gamma, savedMean, savedInvStd, gradInput,
                         activation)
    }

    /// Backward stage 2: the input gradient from `sums.slices` partial [Σ dy, Σ dy·x̂] per channel.
    private func backwardData(_ input: Tensor, _ gradOutput: Tensor, sums: (arena: Tensor, offset: Int, slices: Int), _ gamma: Tensor,
                              _ savedMean: Tensor, _ savedInvStd: Tensor, _ gradInput: Tensor, _ activation: Activation) throws {
        let row = input.rowLength, perItem = elementsPerItem(channels: input.channels, row: row)
        try runRows("batch_norm_backward_data", channels: input.channels, row: row, perItem: perItem, .buffer(input),
                    .buffer(gradOutput), .arena(sums.arena), .int(sums.offset), .buffer(gamma), .buffer(savedMean),
                    .buffer(savedInvStd), .buffer(gradInput), .int(row), .int(perItem), .int(sums.slices),
                    .float(activation.slope))
    }

    /// Backward stage 1 of the batch norm `n` (see below).
    func backwardSums(_ gradOutput: Tensor, _ n: BatchNormBackward) throws -> (arena: Tensor, offset: Int, slices: Int) {
        try backwardSums(n.input, gradOutput, n.savedMean, n.savedInvStd, n.gradGamma, n.gradBeta, n.activation)
    }

    /// Backward stage 1: per slice of each channel's row (`slices`, else the usual cut), Σ dy and Σ dy·x̂,
    /// into the gradient arena. Their sums over the slices are β's and γ's gradients (queued for
    /// `finishGradients`) and what the input gradient needs (batch_norm_backward_data, or a fused
    /// convolution's backward).
    private func backwardSums(_ input: Tensor, _ gradOutput: Tensor, _ savedMean: Tensor, _ savedInvStd: Tensor,
                              _ gradGamma: Tensor, _ gradBeta: Tensor, _ activation: Activation,
                              slices cut: (length: Int, count: Int)? = nil) throws -> (arena: Tensor, offset: Int, slices: Int) {
        let channels = input.channels, row = input.rowLength
        let (slice, slices) = cut ?? reductionSlices(channels: channels, row: row)
        let sums = try reservePartials(2 * channels * slices)
        try runGroups("batch_norm_backward_sums", groups: channels * slices, .buffer(input), .buffer(gradOutput),
                      .buffer(savedMean), .buffer(savedInvStd), .arena(sums.arena), .int(sums.offset), .int(row),
                      .int(slice), .int(slices), .float(activation.slope))
        sumLater(gradBeta, from: sums, parts: slices, outputStride: 2 * slices, partStride: 2)
        sumLater(gradGamma, from: (sums.arena, sums.offset + 1), parts: slices, outputStride: 2 * slices, partStride: 2)
        return (sums.arena, sums.offset, slices)
    }
}
