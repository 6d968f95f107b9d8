/// Log-softmax and NLL on OpenCL over [K, N] scores. Kernels: Kernels/loss.cl.
extension OpenCLDevice {
    public func logSoftmaxForward(input: Tensor, output: Tensor) throws {
        try run("log_softmax_forward", items: input.rowLength, .buffer(input), .buffer(output),
                .int(input.channels), .int(input.rowLength))
    }

    public func logSoftmaxBackward(output: Tensor, gradOutput: Tensor, gradInput: Tensor) throws {
        try run("log_softmax_backward", items: output.rowLength, .buffer(output), .buffer(gradOutput), .buffer(gradInput),
                .int(output.channels), .int(output.rowLength))
    }

    public func nllLoss(logProbs: Tensor, labels: Tensor, totals: Tensor, gradient: Tensor?) throws {
        try runGroups("nll_loss", groups: 1, .buffer(logProbs), .buffer(labels), .buffer(totals), .optional(gradient),
                      .int(logProbs.channels), .int(logProbs.rowLength))
    }
}
