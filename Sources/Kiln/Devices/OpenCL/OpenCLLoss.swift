/// Log-softmax and NLL on OpenCL over [K, N] scores. Kernels: Kernels/loss.cl.
extension OpenCLDevice {
    public func logSoftmaxForward(input: Tensor, output: Tensor) throws {
        try checkSameShape("logSoftmaxForward", [("input", input), ("output", output)])
        try run("log_softmax_forward", items: input.rowLength, .buffer(input), .buffer(output),
                .int(input.channels), .int(input.rowLength))
    }

    public func logSoftmaxBackward(output: Tensor, gradOutput: Tensor, gradInput: Tensor) throws {
        try checkSameShape("logSoftmaxBackward", [("output", output), ("gradOutput", gradOutput), ("gradInput", gradInput)])
        try run("log_softmax_backward", items: output.rowLength, .buffer(output), .buffer(gradOutput), .buffer(gradInput),
                .int(output.channels), .int(output.rowLength))
    }

    public func logSoftmaxNLL(scores: Tensor, labels: Tensor, logProbs: Tensor, totals: Tensor, gradient: Tensor?,
                              smoothing: Float) throws {
        try checkLoss(scores: scores, labels: labels, logProbs: logProbs, totals: totals, gradient: gradient, smoothing: smoothing)
        // Four samples per work-item: a training batch of up to 4·REDUCE_GROUP is one launch.
        let groups = (scores.rowLength + 4 * reduceGroup - 1) / (4 * reduceGroup)
        let partials = try partialScratch(2 * groups)
        try runGroups("log_softmax_nll", groups: groups, .buffer(scores), .buffer(labels), .buffer(logProbs), .buffer(totals),
                      .buffer(partials), .optional(gradient), .int(scores.channels), .int(scores.rowLength), .float(smoothing))
        // One group added its sums to the totals itself.
        guard groups > 1 else { return }
        try run("add_totals", items: 1, .buffer(partials), .buffer(totals), .int(groups))
    }
}
