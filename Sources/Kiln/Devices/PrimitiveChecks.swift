/// The argument checks every device makes at the top of each primitive, before it touches memory, so a
/// wrong call throws one line ("conv2dForward: weight is float32 [8, 3, 3, 3], expected float32 [8, 1, 3, 3]")
/// instead of reading or writing out of bounds. Each check derives the expected shapes from the
/// activation inputs, as the primitive's documentation gives them.
public enum PrimitiveChecks {}

/// One tensor argument and what the call needs it to be (nil: an optional argument not given).
struct Argument {
    let name: String
    let tensor: Tensor?
    let shape: [Int]
    var dtype: DType = .float32
}

extension DeviceMemory {
    /// Each given tensor must be this device's, of its shape and type.
    func check(_ call: String, _ arguments: [Argument]) throws {
        for a in arguments {
            guard let t = a.tensor else { continue }
            guard owns(t) else { throw KilnError("\(call): \(a.name) is a tensor of another device") }
            guard t.dtype == a.dtype, t.shape == a.shape else {
                throw KilnError("\(call): \(a.name) is \(t.dtype) \(t.shape), expected \(a.dtype) \(a.shape)")
            }
        }
    }

    /// An activation: this device's, float32, four dimensions [C, N, H, W]. Returns the shape.
    func activation(_ call: String, _ name: String, _ t: Tensor) throws -> [Int] {
        guard owns(t) else { throw KilnError("\(call): \(name) is a tensor of another device") }
        guard t.shape.count == 4, t.dtype == .float32 else {
            throw KilnError("\(call): \(name) is \(t.dtype) \(t.shape), expected a float32 [C, N, H, W] activation")
        }
        return t.shape
    }

    /// `count` values of `dtype` must fill `tensor` exactly (write, copy).
    func checkTransfer(_ count: Int, _ tensor: Tensor, _ dtype: DType) throws {
        guard owns(tensor) else { throw KilnError("cannot copy into a tensor of another device") }
        guard count == tensor.count, dtype == tensor.dtype else {
            throw KilnError("cannot copy \(count) \(dtype) values into a \(tensor.dtype) tensor of shape \(tensor.shape)")
        }
    }

    /// A tensor read, filled or copied from must be this device's.
    func checkOwned(_ call: String, _ tensors: Tensor...) throws {
        for t in tensors where !owns(t) { throw KilnError("\(call): the tensor is another device's") }
    }

    /// A view must lie within its tensor, at an aligned offset.
    func checkView(_ tensor: Tensor, offset: Int, shape: [Int]) throws {
        try checkOwned("view", tensor)
        guard offset >= 0, offset % viewAlignment == 0, shape.allSatisfy({ $0 >= 0 }),
              let count = elementCount(shape), offset <= tensor.count - count else {
            throw KilnError("cannot view \(shape) at offset \(offset) of a tensor of \(tensor.count) elements (alignment \(viewAlignment))")
        }
    }
}

/// The elements of `shape`, nil when the product overflows.
func elementCount(_ shape: [Int]) -> Int? {
    var count = 1
    for d in shape {
        let (product, overflow) = count.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        count = product
    }
    return count
}

extension Device {
    func checkConvolution(_ call: String, input: Tensor, weight: Tensor, output: Tensor?, bias: Tensor?,
                          geometry g: WindowGeometry) throws -> [Int] {
        let x = try activation(call, "input", input)
        // A Linear layer's weight is [Co, Ci]: the pointwise case.
        let linear = weight.shape.count == 2 && g.kernel == 1
        guard weight.shape.count == 4 || linear else { throw KilnError("\(call): weight is \(weight.shape), expected [Co, Ci, k, k]") }
        let co = weight.shape[0]
        guard g.dilation >= 1 else { throw KilnError("\(call): dilation must be at least 1, got \(g.dilation)") }
        guard g.groups >= 1, x[0] % g.groups == 0, co % g.groups == 0 else {
            throw KilnError("\(call): groups \(g.groups) must divide the \(x[0]) input and \(co) output channels")
        }
        let y = [co, x[1], g.outputSize(x[2]), g.outputSize(x[3])]
        try check(call, [Argument(name: "weight", tensor: weight, shape: linear ? [co, x[0]] : [co, x[0] / g.groups, g.kernel, g.kernel]),
                         Argument(name: "output", tensor: output, shape: y), Argument(name: "bias", tensor: bias, shape: [co])])
        return y
    }

    func checkConv2dForward(input: Tensor, weight: Tensor, bias: Tensor?, output: Tensor, geometry: WindowGeometry,
                            normalization n: BatchNormForward?) throws {
        let y = try checkConvolution("conv2dForward", input: input, weight: weight, output: output, bias: bias, geometry: geometry)
        guard let n else { return }
        try check("conv2dForward (batch norm)", [Argument(name: "output", tensor: n.output, shape: y)]
                  + [n.gamma, n.beta, n.runningMean, n.runningVar, n.savedMean, n.savedInvStd].map { Argument(name: "statistics", tensor: $0, shape: [y[0]]) })
    }

    func checkConv2dBackward(input: Tensor, gradOutput: Tensor, weight: Tensor, gradWeight: Tensor, gradBias: Tensor?,
                             gradInput: Tensor?, geometry: WindowGeometry, normalization n: BatchNormBackward?) throws {
        let call = "conv2dBackward"
        let y = try checkConvolution(call, input: input, weight: weight, output: gradOutput, bias: gradBias, geometry: geometry)
        try check(call, [Argument(name: "gradWeight", tensor: gradWeight, shape: weight.shape),
                         Argument(name: "gradInput", tensor: gradInput, shape: input.shape)])
        guard let n else { return }
        try check("conv2dBackward (batch norm)", [Argument(name: "input", tensor: n.input, shape: y)]
                  + [n.gamma, n.savedMean, n.savedInvStd, n.gradGamma, n.gradBeta].map { Argument(name: "statistics", tensor: $0, shape: [y[0]]) })
    }

    /// Batch norm: `same` shaped like the input, `vectors` [C]; `moments`, host sums of `per` values per channel.
    func checkBatchNorm(_ call: String, input: Tensor, same: [(String, Tensor)], vectors: [(String, Tensor)],
                        moments: (count: Int, per: Int)? = nil) throws {
        let x = try activation(call, "input", input)
        try check(call, same.map { Argument(name: $0.0, tensor: $0.1, shape: x) } + vectors.map { Argument(name: $0.0, tensor: $0.1, shape: [x[0]]) })
        if let moments, moments.count != moments.per * x[0] {
            throw KilnError("\(call): \(moments.count) sums, expected \(moments.per) for each of \(x[0]) channels")
        }
    }

    /// Pooling: `input` and `output` (or their gradients) through the window, `argmax` shaped like the output.
    func checkPooling(_ call: String, input: Tensor, output: Tensor, argmax: Tensor?, geometry g: WindowGeometry) throws {
        let x = try activation(call, "input", input)
        let y = [x[0], x[1], g.outputSize(x[2]), g.outputSize(x[3])]
        try check(call, [Argument(name: "output", tensor: output, shape: y), Argument(name: "argmax", tensor: argmax, shape: y, dtype: .int32)])
    }

    /// Element-wise: every tensor shaped like the first.
    func checkSameShape(_ call: String, _ tensors: [(String, Tensor)]) throws {
        guard let first = tensors.first?.1 else { return }
        try check(call, tensors.map { Argument(name: $0.0, tensor: $0.1, shape: first.shape) })
    }

    /// Flatten: `activation` [C, N, H, W] and `features` [C·H·W, N, 1, 1].
    func checkFlatten(_ call: String, activation a: Tensor, features: Tensor) throws {
        let x = try activation(call, "activation", a)
        try check(call, [Argument(name: "features", tensor: features, shape: [x[0] * x[2] * x[3], x[1], 1, 1])])
    }

    /// The loss: scores [K, N, …], labels int32 [N], totals [2], label smoothing in [0, 1).
    func checkLoss(scores: Tensor, labels: Tensor, logProbs: Tensor, totals: Tensor, gradient: Tensor?, smoothing: Float) throws {
        let call = "logSoftmaxNLL"
        guard smoothing >= 0, smoothing < 1 else { throw KilnError("\(call): label smoothing \(smoothing) is outside [0, 1)") }
        try checkSameShape(call, [("scores", scores), ("logProbs", logProbs)] + (gradient.map { [("gradient", $0)] } ?? []))
        try check(call, [Argument(name: "labels", tensor: labels, shape: [scores.rowLength], dtype: .int32),
                         Argument(name: "totals", tensor: totals, shape: [2])])
    }

    func checkGather(images: Tensor, labels: Tensor, order: Tensor, start: Int, output: Tensor, outputLabels: Tensor,
                     augmentation: Augmentation?, fill: Tensor) throws {
        let call = "gatherBatch"
        let x = try activation(call, "images", images), y = try activation(call, "output", output)
        try check(call, [Argument(name: "labels", tensor: labels, shape: [x[1]], dtype: .int32),
                         Argument(name: "order", tensor: order, shape: [x[1]], dtype: .int32),
                         Argument(name: "output", tensor: output, shape: [x[0], y[1], x[2], x[3]]),
                         Argument(name: "outputLabels", tensor: outputLabels, shape: [y[1]], dtype: .int32),
                         Argument(name: "fill", tensor: fill, shape: [x[0]])])
        guard start >= 0, start <= order.count - y[1] else {
            throw KilnError("\(call): batch \(start)..<\(start + y[1]) is outside the \(order.count) shuffled indices")
        }
        try augmentation?.check(size: min(x[2], x[3]))
    }
}

/// A group norm call's shape, as `checkGroupNorm` reads it from the arguments.
struct GroupNormLayout {
    let batch: Int, groups: Int, channelsPerGroup: Int, plane: Int
    /// 1 where weight and bias hold a value per element ([C, H, W], LayerNorm's), 0 where one per channel.
    let weightStride: Int
    /// Sets of values normalised together: (image, group) pairs, unit n·G + g.
    var units: Int { batch * groups }
    var unitLength: Int { channelsPerGroup * plane }
}

extension Device {
    /// Group norm: `same` shaped like the input, `affine` all [C] or all [C, H, W] (the first tells which),
    /// `statistics` [N, G]; `groups` at least 1 and dividing C.
    func checkGroupNorm(_ call: String, input: Tensor, groups: Int, same: [(String, Tensor)], affine: [(String, Tensor)],
                        statistics: [(String, Tensor)]) throws -> GroupNormLayout {
        let x = try activation(call, "input", input)
        guard groups >= 1, x[0] % groups == 0 else { throw KilnError("\(call): \(groups) groups do not divide the input's \(x[0]) channels") }
        let perElement = affine.first.map { $0.1.shape != [x[0]] } ?? false
        try check(call, same.map { Argument(name: $0.0, tensor: $0.1, shape: x) }
                  + affine.map { Argument(name: $0.0, tensor: $0.1, shape: perElement ? [x[0], x[2], x[3]] : [x[0]]) }
                  + statistics.map { Argument(name: $0.0, tensor: $0.1, shape: [x[1], groups]) })
        return GroupNormLayout(batch: x[1], groups: groups, channelsPerGroup: x[0] / groups, plane: x[2] * x[3],
                               weightStride: perElement ? 1 : 0)
    }
}
