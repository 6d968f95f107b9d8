/// Batch norm on OpenCL in two stages per pass (see Kernels/batchnorm.cl): partial statistics of row
/// slices, one work-group each (or of a fused convolution's work-groups), then an element-wise pass
/// whose work-groups fold their channel's partials in a fixed order. No float atomics, so a run repeats
/// bit for bit. γ's and β's gradients are slice sums that `finishGradients` completes. A synchronised
/// batch norm reads the first stage's partials back between the stages, and the second stage folds
/// the global batch's sums instead (one part per channel).
extension OpenCLDevice {
    public func batchNormTrainingForward(input: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                         runningVar: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                         output: Tensor, momentum: Float, epsilon: Float, activation: Activation,
                                         sync: BatchNormSync?) throws {
        try checkBatchNorm("batchNormTrainingForward", input: input, same: [("output", output)],
                           vectors: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar),
                                     ("savedMean", savedMean), ("savedInvStd", savedInvStd)])
        let row = input.rowLength, (slice, slices) = batchNormSlices(input, sync: sync)
        let partials = try partialScratch(3 * input.channels * slices)
        try runGroups("batch_norm_statistics", groups: input.channels * slices, .buffer(input), .buffer(partials),
                      .int(row), .int(slice), .int(slices), .float(activation.slope))
        try normalize(input, statistics: partials, parts: slices,
                      BatchNormForward(gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                                       savedMean: savedMean, savedInvStd: savedInvStd, output: output, momentum: momentum,
                                       epsilon: epsilon, activation: activation, sync: sync))
    }

    /// Stage 2 of the training forward, from `parts` partial statistics per channel (count, mean, m2).
    func normalize(_ input: Tensor, statistics partials: Tensor, parts localParts: Int, _ n: BatchNormForward) throws {
        let row = input.rowLength, perItem = elementsPerItem(channels: input.channels, row: row)
        var (statistics, parts) = (partials, localParts)
        if let sync = n.sync {
            let global = try sync.globalStatistics(readRegion(partials, offset: 0, count: 3 * input.channels * parts),
                                                   channels: input.channels, parts: parts)
            (statistics, parts) = (try partialScratch(global.count), 1)
            try upload(global, statistics)
        }
        try runRows("batch_norm_normalize", channels: input.channels, row: row, perItem: perItem, .buffer(input),
                    .buffer(statistics), .buffer(n.gamma), .buffer(n.beta), .buffer(n.runningMean), .buffer(n.runningVar),
                    .buffer(n.savedMean), .buffer(n.savedInvStd), .buffer(n.output), .int(row), .int(perItem), .int(parts),
                    .float(n.momentum), .float(n.epsilon), .float(n.activation.slope))
    }

    /// A batch norm's first-stage slices of each channel's row. Synchronised, one per image: every rank's
    /// partials are then bit for bit those of one process for the same images, and the host adds them up
    /// in doubles, so the global sums do not depend on how the batch is shared out over ranks.
    func batchNormSlices(_ x: Tensor, sync: BatchNormSync?) -> (length: Int, count: Int) {
        sync == nil ? reductionSlices(channels: x.channels, row: x.rowLength) : (x.height * x.width, x.batch)
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
                                  activation: Activation, sync: BatchNormSync?) throws {
        try checkBatchNorm("batchNormBackward", input: input, same: [("gradOutput", gradOutput), ("gradInput", gradInput)],
                           vectors: [("gamma", gamma), ("savedMean", savedMean), ("savedInvStd", savedInvStd), ("gradGamma", gradGamma), ("gradBeta", gradBeta)])
        let sums = try backwardSums(gradOutput, BatchNormBackward(input: input, gamma: gamma, savedMean: savedMean,
                                                                  savedInvStd: savedInvStd, gradGamma: gradGamma,
                                                                  gradBeta: gradBeta, activation: activation, sync: sync))
        let row = input.rowLength, perItem = elementsPerItem(channels: input.channels, row: row)
        try runRows("batch_norm_backward_data", channels: input.channels, row: row, perItem: perItem, .buffer(input),
                    .buffer(gradOutput), .arena(sums.arena), .int(sums.offset), .buffer(gamma), .buffer(savedMean),
                    .buffer(savedInvStd), .buffer(gradInput), .int(row), .int(perItem), .int(sums.slices),
                    .float(activation.slope))
    }

    /// Backward stage 1: per slice of each channel's row, Σ dy and Σ dy·x̂, into the gradient arena. Their
    /// sums over the slices are β's and γ's gradients (queued for `finishGradients`) and what the input
    /// gradient needs (batch_norm_backward_data, or a fused convolution's backward).
    func backwardSums(_ gradOutput: Tensor, _ n: BatchNormBackward) throws -> (arena: Tensor, offset: Int, slices: Int) {
        let channels = n.input.channels, row = n.input.rowLength, (slice, slices) = batchNormSlices(n.input, sync: n.sync)
        let sums = try reservePartials(2 * channels * slices)
        try runGroups("batch_norm_backward_sums", groups: channels * slices, .buffer(n.input), .buffer(gradOutput),
                      .buffer(n.savedMean), .buffer(n.savedInvStd), .arena(sums.arena), .int(sums.offset), .int(row),
                      .int(slice), .int(slices), .float(n.activation.slope))
        sumLater(n.gradBeta, from: sums, parts: slices, outputStride: 2 * slices, partStride: 2)
        sumLater(n.gradGamma, from: (sums.arena, sums.offset + 1), parts: slices, outputStride: 2 * slices, partStride: 2)
        guard let sync = n.sync else { return (sums.arena, sums.offset, slices) }
        // Synchronised: γ's and β's gradients stay this process's own (the data-parallel average adds
        // them up); the input gradient takes the global batch's sums.
        let global = try sync.globalGradientSums(readRegion(sums.arena, offset: sums.offset, count: 2 * channels * slices),
                                                 channels: channels, parts: slices)
        let region = try reservePartials(global.count)
        try upload(global, region.arena, offset: region.offset)
        return (region.arena, region.offset, 1)
    }
}
