/// Max and average pooling on OpenCL: forward one work-item per output element (one work-group per
/// output for wide windows such as global average pooling), backward one work-item per input element,
/// gathering over the windows that hold it (per window where windows tile the plane). Kernels:
/// Kernels/pooling.cl.
extension OpenCLDevice {
    public func maxPoolForward(input: Tensor, output: Tensor, argmax: Tensor, geometry: WindowGeometry) throws {
        try checkPooling("maxPoolForward", input: input, output: output, argmax: argmax, geometry: geometry)
        try run("max_pool_forward", items: output.count, .buffer(input), .buffer(output), .buffer(argmax),
                .int(input.channels * input.batch), .int(input.height), .int(input.width),
                .int(output.height), .int(output.width),
                .int(geometry.kernel), .int(geometry.stride), .int(geometry.padding))
    }

    public func maxPoolBackward(gradOutput: Tensor, argmax: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws {
        try checkPooling("maxPoolBackward", input: gradInput, output: gradOutput, argmax: argmax, geometry: geometry)
        if geometry.stride == geometry.kernel && geometry.padding == 0 {
            try run("max_pool_backward_tiled", items: gradOutput.count, .buffer(gradOutput), .buffer(argmax), .buffer(gradInput),
                    .int(gradInput.channels * gradInput.batch), .int(gradInput.height), .int(gradInput.width),
                    .int(gradOutput.height), .int(gradOutput.width), .int(geometry.kernel))
            return
        }
        try run("max_pool_backward", items: gradInput.count, .buffer(gradOutput), .buffer(argmax), .buffer(gradInput),
                .int(gradInput.channels * gradInput.batch), .int(gradInput.height), .int(gradInput.width),
                .int(gradOutput.height), .int(gradOutput.width),
                .int(geometry.kernel), .int(geometry.stride), .int(geometry.padding))
    }

    public func avgPoolForward(input: Tensor, output: Tensor, geometry: WindowGeometry) throws {
        try checkPooling("avgPoolForward", input: input, output: output, argmax: nil, geometry: geometry)
        let area = geometry.kernel * geometry.kernel
        guard area >= Self.wideWindow else {
            try run("avg_pool_forward", items: output.count, .buffer(input), .buffer(output),
                    .int(input.channels * input.batch), .int(input.height), .int(input.width),
                    .int(output.height), .int(output.width),
                    .int(geometry.kernel), .int(geometry.stride), .int(geometry.padding))
            return
        }
        // The largest power of two up to the window and the element-wise group size.
        var size = 1
        while size * 2 <= min(area, elementGroup) { size *= 2 }
        try enqueue("avg_pool_forward_wide", global: output.count * size, local: size,
                    [.buffer(input), .buffer(output), .int(input.height), .int(input.width), .int(output.height),
                     .int(output.width), .int(geometry.kernel), .int(geometry.stride), .int(geometry.padding)])
    }

    /// Windows of at least this many elements are averaged by a work-group each.
    static let wideWindow = 16

    public func avgPoolBackward(gradOutput: Tensor, gradInput: Tensor, geometry: WindowGeometry) throws {
        try checkPooling("avgPoolBackward", input: gradInput, output: gradOutput, argmax: nil, geometry: geometry)
        try run("avg_pool_backward", items: gradInput.count, .buffer(gradOutput), .buffer(gradInput),
                .int(gradInput.channels * gradInput.batch), .int(gradInput.height), .int(gradInput.width),
                .int(gradOutput.height), .int(gradOutput.width),
                .int(geometry.kernel), .int(geometry.stride), .int(geometry.padding))
    }
}
