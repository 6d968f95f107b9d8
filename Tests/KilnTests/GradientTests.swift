import Testing
@testable import Kiln

/// Every op's backward against central finite differences of L = Σ r·y, for the input and for
/// each parameter. Inputs are spaced away from ReLU's and max-pool's kinks. Layers the plan fuses
/// (`Stage`) are checked as one.
@Suite struct GradientTests {
    /// Every example of every op in the registry (`Op.examples`), then the stages the plan fuses.
    static let layers: [(String, [LayerSpec], ImageShape)] = OpRegistry.ops.flatMap { op in
        op.examples.map { ("\($0.layer)", [$0.layer], $0.input) }
    } + [
        ("relu folded into batchnorm", [.relu, .batchNorm2d], ImageShape(channels: 3, size: 3)),
        // Fused (the ReLU between them has a kink at every conv output near zero, so none here).
        ("conv, batchnorm", [.conv2d(out: 3, kernel: 3, stride: 1, padding: 1, bias: false), .batchNorm2d],
         ImageShape(channels: 3, size: 5)),
    ]

    @Test(arguments: 0..<layers.count)
    func finiteDifferences(_ index: Int) throws {
        let (name, specs, shape) = Self.layers[index]
        let device = CPUDevice()
        let model = try Model(spec: ModelSpec(name: name, input: shape, layers: specs), device: device, seed: testSeed)
        let n = 3
        let count = shape.channels * n * shape.size * shape.size
        // Distinct values at least 0.05 apart, none near 0: no kink lies within the step.
        var values = (0..<count).map { Float($0 - count / 2) * 0.05 + 0.025 }
        var random = HostRandom(seed: testSeed, stream: 9)
        let perm = random.permutation(count)
        values = perm.map { values[Int($0)] }
        let input = try tensor(device, [shape.channels, n, shape.size, shape.size], values)
        let context = StepContext(mode: .training, step: 5)
        let output = try model.forward(input, context: context)
        let r = randomFloats(output.count)
        func loss() throws -> Double {
            let y = try device.readFloats(try model.forward(input, context: context))
            return zip(y, r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        _ = try loss()
        var gradient = try tensor(device, output.shape, r)
        gradient = try #require(try model.backward(gradient, needInputGradient: true))
        var checks: [(String, Tensor, [Float])] = [("input", input, try device.readFloats(gradient))]
        for p in model.parameters { checks.append((p.name, p.value, try device.readFloats(p.gradient))) }

        // Central differences err by h²·L‴/6: a convolution's weight into a batch norm over few values
        // curves enough that h = 0.01 once gave 5% (residual example 2's projection), so h is smaller;
        // float32's rounding of L, divided by 2h, stays far below the tolerance.
        let h: Float = 0.004
        for (what, target, analytic) in checks {
            var numeric = [Double]()
            var base = try device.readFloats(target)
            for i in 0..<target.count {
                let original = base[i]
                base[i] = original + h
                try device.write(base, to: target)
                let up = try loss()
                base[i] = original - h
                try device.write(base, to: target)
                let down = try loss()
                base[i] = original
                try device.write(base, to: target)
                numeric.append((up - down) / Double(2 * h))
            }
            let worst = zip(analytic, numeric).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst < 2e-2, "\(name) d/d\(what): worst error \(worst)\nanalytic \(analytic.prefix(8))\nnumeric \(numeric.prefix(8))")
        }
    }

    /// On the CPU, the fused stages (conv → ReLU → BN, and ReLU → BN in the spec below) compute the same
    /// numbers bit for bit as the layers one by one: the same values summed in the same order, and
    /// y > 0 exactly where x > 0. One training step and one inference pass with and without fusing.
    @Test func fusedStagesAreBitForBitTheSame() throws {
        let device = CPUDevice()
        var spec = Presets.all["strided12k"]!
        spec.layers.insert(contentsOf: [.relu, .batchNorm2d], at: spec.layers.count - 3)  // after the last dropout
        let seed = testSeed
        let (folded, separate) = (try Model(spec: spec, device: device, seed: seed),
                                  try Model(spec: spec, device: device, seed: seed, fused: false))
        #expect(folded.stages.contains { $0.kind == .convolutionBatchNorm } && folded.stages.contains { $0.kind == .activatedBatchNorm })
        #expect(separate.stages.allSatisfy { $0.kind == .single })
        let (x, _) = try randomTensor(device, [1, 5, 28, 28], bound: 2)
        for mode in [Mode.training, .inference] {
            let context = StepContext(mode: mode, step: 3)
            let outputs = try [folded, separate].map { try device.readFloats(try $0.forward(x, context: context)) }
            #expect(outputs[0] == outputs[1], "\(mode) outputs differ")
        }
        let context = StepContext(mode: .training, step: 4)
        let (gradient, _) = try randomTensor(device, [10, 5, 1, 1])
        for model in [folded, separate] {
            _ = try model.forward(x, context: context)
            try model.backward(gradient)
        }
        for (a, b) in zip(folded.parameters, separate.parameters) {
            #expect(try device.readFloats(a.gradient) == device.readFloats(b.gradient), "gradient of \(a.name) differs")
        }
    }
}
