/// Max and average pooling on OpenCL: forward one work-item per output element, backward one per
/// (c, n) plane, scattering in the CPU's order. Kernels: Kernels/pooling.cl.
extension OpenCLDevice {
    public func maxPoolForward(input: Tensor, output: Tensor, argmax: Tensor, geometry: WindowGeometry) throws {
        try run("max_pool_forward", items: output.count, .buffer(input), .buffer(output), .buffer(argmax),
                .int(input.channels * input.batch), .int(input.height), .int(input.width),
                .int(output.height), .int(output.width),
                .int(geometry.kernel), .int(geometry.stride), .int(geometry.padding))
    }

    public func maxPoolBackward(gradOutput: Tensor, argmax: Tensor, gradInput: Tensor) throws {
        let planes = gradInput.channels * gradInput.batch
        try run("max_pool_backward", items: planes, .buffer(gradOutput), .buffer(argmax), .buffer(gradInput),
                .int(planes), .int(gradInput.height * gradInput.width), .int(gradOutput.height * gradOutput.width))
    }

    public func avgPoolForward(input: Tensor, output: Tensor, geometry: WindowGeometry) throws {
        try run("avg_pool_forward", items: output.count, .buffer(input), .buffer(output),
                .int(input.channels * input.batch), .int(input.height), .int(input.width),
                .int(output.height), .int(output.width),
                .int(geometry.kernel), .int(geometry.stride), .int(geometry.padding))
    }

    public func avgPoolBackward(gradOutput: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws {
        let planes = gradInput.channels * gradInput.batch
        try run("avg_pool_backward", items: planes, .buffer(gradOutput), .buffer(gradInput),
                .int(planes), .int(gradInput.height), .int(gradInput.width),
                .int(gradOutput.height), .int(gradOutput.width),
                .int(geometry.kernel), .int(geometry.stride), .int(geometry.padding))
    }
}
