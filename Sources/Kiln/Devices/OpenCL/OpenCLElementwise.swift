/// Activations, dropout, sums, products and the flatten permutation on OpenCL, one work-item per element (per run of up
/// to 16 for dropout, which shares its random numbers along the run). Kernels: Kernels/activation.cl, Kernels/dropout.cl.
extension OpenCLDevice {
    public func activationForward(input: Tensor, output: Tensor, activation: Activation) throws {
        try checkSameShape("activationForward", [("input", input), ("output", output)])
        try run("activation_forward", items: input.count, .buffer(input), .buffer(output), .float(activation.slope), .int(input.count))
    }

    public func activationBackward(output: Tensor, gradOutput: Tensor, gradInput: Tensor, activation: Activation) throws {
        try checkSameShape("activationBackward", [("output", output), ("gradOutput", gradOutput), ("gradInput", gradInput)])
        try run("activation_backward", items: output.count, .buffer(output), .buffer(gradOutput), .buffer(gradInput),
                .float(activation.slope), .int(output.count))
    }

    public func dropoutForward(input: Tensor, output: Tensor, mask: Tensor, probability: Float,
                               channelwise: Bool, generator: Philox, step: UInt64) throws {
        try checkSameShape("dropoutForward", [("input", input), ("output", output), ("mask", mask)])
        let spread = channelwise ? input.height * input.width : 1
        // Runs of 16, shorter where a GPU would otherwise get too few work-groups.
        var run = 16
        while run > 1 && (input.count + run * elementGroup - 1) / (run * elementGroup) < launchGroups { run /= 2 }
        try self.run("dropout_forward", items: (input.count + run - 1) / run, .buffer(input), .buffer(output), .buffer(mask), .int(input.count),
                .int(spread), .float(probability), .float(probability < 1 ? 1 / (1 - probability) : 0),
                .uint(generator.key.0), .uint(generator.key.1), .ulong(step), .int(run))
    }

    public func multiply(_ a: Tensor, _ b: Tensor, into c: Tensor) throws {
        try checkSameShape("multiply", [("x", a), ("y", b), ("z", c)])
        try run("multiply", items: a.count, .buffer(a), .buffer(b), .buffer(c), .int(a.count))
    }

    public func add(_ a: Tensor, _ b: Tensor, into c: Tensor) throws {
        try checkSameShape("add", [("x", a), ("y", b), ("z", c)])
        try run("add", items: a.count, .buffer(a), .buffer(b), .buffer(c), .int(a.count))
    }

    public func flattenForward(input: Tensor, output: Tensor) throws {
        try checkFlatten("flattenForward", activation: input, features: output)
        try run("flatten", items: input.count, .buffer(input), .buffer(output), .int(input.channels), .int(input.batch),
                .int(input.height * input.width), .int(1))
    }

    public func flattenBackward(gradOutput: Tensor, gradInput: Tensor) throws {
        try checkFlatten("flattenBackward", activation: gradInput, features: gradOutput)
        try run("flatten", items: gradInput.count, .buffer(gradOutput), .buffer(gradInput), .int(gradInput.channels),
                .int(gradInput.batch), .int(gradInput.height * gradInput.width), .int(0))
    }
}
