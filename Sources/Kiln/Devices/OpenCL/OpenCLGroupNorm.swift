/// Group norm on OpenCL (Kernels/groupnorm.cl): batch norm's two stages per pass, with each image's group
/// of channels (a unit: C/G strided runs of H·W values) in place of a channel's row. Stage 1 reduces
/// slices of every unit, one work-group each; stage 2 runs element-wise, each work-group folding its
/// unit's partials in a fixed order. The weight's and bias's gradients are per-element sums over the
/// batch, which `finishGradients` adds up per channel (GroupNorm) or takes as they are (LayerNorm). No
/// float atomics, so a run repeats bit for bit.
extension OpenCLDevice {
    public func groupNormForward(input: Tensor, weight: Tensor, bias: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                 output: Tensor, groups: Int, epsilon: Float) throws {
        let l = try checkGroupNorm("groupNormForward", input: input, groups: groups, same: [("output", output)],
                                   affine: [("weight", weight), ("bias", bias)],
                                   statistics: [("savedMean", savedMean), ("savedInvStd", savedInvStd)])
        let (slice, slices) = reductionSlices(channels: l.units, row: l.unitLength)
        let partials = try partialScratch(3 * l.units * slices)
        try runGroups("group_norm_statistics", groups: l.units * slices, .buffer(input), .buffer(partials), .int(l.batch),
                      .int(l.groups), .int(l.channelsPerGroup), .int(l.plane), .int(slice), .int(slices))
        let perItem = elementsPerItem(channels: l.units, row: l.unitLength)
        try runRows("group_norm_forward", channels: l.units, row: l.unitLength, perItem: perItem, .buffer(input),
                    .buffer(partials), .buffer(weight), .buffer(bias), .buffer(savedMean), .buffer(savedInvStd), .buffer(output),
                    .int(l.batch), .int(l.groups), .int(l.channelsPerGroup), .int(l.plane), .int(perItem), .int(slices),
                    .float(epsilon), .int(l.weightStride))
    }

    public func groupNormBackward(input: Tensor, gradOutput: Tensor, weight: Tensor, savedMean: Tensor, savedInvStd: Tensor,
                                  gradInput: Tensor, gradWeight: Tensor, gradBias: Tensor, groups: Int) throws {
        let l = try checkGroupNorm("groupNormBackward", input: input, groups: groups,
                                   same: [("gradOutput", gradOutput), ("gradInput", gradInput)],
                                   affine: [("weight", weight), ("gradWeight", gradWeight), ("gradBias", gradBias)],
                                   statistics: [("savedMean", savedMean), ("savedInvStd", savedInvStd)])
        let (slice, slices) = reductionSlices(channels: l.units, row: l.unitLength)
        let sums = try partialScratch(2 * l.units * slices)
        try runGroups("group_norm_backward_sums", groups: l.units * slices, .buffer(input), .buffer(gradOutput), .buffer(weight),
                      .buffer(savedMean), .buffer(savedInvStd), .buffer(sums), .int(l.batch), .int(l.groups),
                      .int(l.channelsPerGroup), .int(l.plane), .int(slice), .int(slices), .int(l.weightStride))
        let perItem = elementsPerItem(channels: l.units, row: l.unitLength)
        try runRows("group_norm_backward_data", channels: l.units, row: l.unitLength, perItem: perItem, .buffer(input),
                    .buffer(gradOutput), .buffer(weight), .buffer(savedMean), .buffer(savedInvStd), .buffer(sums),
                    .buffer(gradInput), .int(l.batch), .int(l.groups), .int(l.channelsPerGroup), .int(l.plane), .int(perItem),
                    .int(slices), .int(l.weightStride))
        // Per (channel, position): Σₙ dy and Σₙ dy·x̂; per parameter, their sum over its positions (the
        // plane for a per-channel weight, one for a per-element one).
        let elements = input.channels * l.plane
        let partials = try reservePartials(2 * elements)
        try run("group_norm_parameter_sums", items: elements, .buffer(input), .buffer(gradOutput), .buffer(savedMean),
                .buffer(savedInvStd), .arena(partials.arena), .int(partials.offset), .int(input.channels), .int(l.batch),
                .int(l.groups), .int(l.channelsPerGroup), .int(l.plane))
        let parts = l.weightStride == 1 ? 1 : l.plane
        sumLater(gradBias, from: partials, parts: parts, outputStride: 2 * parts, partStride: 2)
        sumLater(gradWeight, from: (partials.arena, partials.offset + 1), parts: parts, outputStride: 2 * parts, partStride: 2)
    }
}
