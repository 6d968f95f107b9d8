import Foundation
import Testing
@testable import Kiln

/// Three steps of each update rule against PyTorch's formulas written out in float64.
@Suite struct OptimizerTests {
    /// Without momentum there is no velocity buffer, and `Optimizer` passes the gradient in its place:
    /// the step must then leave it alone (with weight decay, storing d = g + λp there would show).
    @Test(arguments: [(Float(0.9), false, Float(0)), (0.9, true, 0.01), (0, false, 0.01)])
    func sgd(momentum: Float, nesterov: Bool, weightDecay: Float) throws {
        let device = CPUDevice()
        let count = 33
        var p = randomFloats(count).map(Double.init), v = [Double](repeating: 0, count: count)
        let param = try tensor(device, [count], p.map(Float.init)), velocity = try tensor(device, [count], [Float](repeating: 0, count: count))
        for _ in 0..<3 {
            let g = randomFloats(count), gradient = try tensor(device, [count], g)
            try device.sgdStep(parameter: param, gradient: gradient, velocity: momentum == 0 ? gradient : velocity, learningRate: 0.1,
                               momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
            #expect(try device.readFloats(gradient) == g, "the gradient is left as it was")
            for i in 0..<count {
                var d = Double(g[i]) + Double(weightDecay) * p[i]
                if momentum != 0 {
                    v[i] = Double(momentum) * v[i] + d
                    d = nesterov ? d + Double(momentum) * v[i] : v[i]
                }
                p[i] -= 0.1 * d
            }
        }
        expectClose(try device.readFloats(param), p, terms: 12, "sgd")
    }

    @Test func adam() throws {
        let device = CPUDevice()
        let count = 31
        var p = randomFloats(count).map(Double.init), m = [Double](repeating: 0, count: count), v = m
        let param = try tensor(device, [count], p.map(Float.init))
        let (mt, vt) = (try tensor(device, [count], [Float](repeating: 0, count: count)), try tensor(device, [count], [Float](repeating: 0, count: count)))
        for step in 1...3 {
            let g = randomFloats(count)
            try device.adamStep(parameter: param, gradient: tensor(device, [count], g), firstMoment: mt, secondMoment: vt,
                                learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.001, step: step)
            for i in 0..<count {
                let d = Double(g[i]) + 0.001 * p[i]
                m[i] = 0.9 * m[i] + 0.1 * d
                v[i] = 0.999 * v[i] + 0.001 * d * d
                let mhat = m[i] / (1 - pow(0.9, Double(step))), vhat = v[i] / (1 - pow(0.999, Double(step)))
                p[i] -= 0.01 * mhat / (vhat.squareRoot() + 1e-8)
            }
        }
        expectClose(try device.readFloats(param), p, terms: 30, "adam")
    }

    /// Five updates of an average toward changing values, against `a += (1 − d)(v − a)` in float64.
    @Test(arguments: [Float(0.9), 0.999])
    func movingAverage(decay: Float) throws {
        let device = CPUDevice()
        let count = 31
        var a = randomFloats(count).map(Double.init)
        let average = try tensor(device, [count], a.map(Float.init))
        for _ in 0..<5 {
            let v = randomFloats(count, bound: 3), value = try tensor(device, [count], v)
            try device.movingAverage(average: average, value: value, decay: decay)
            #expect(try device.readFloats(value) == v, "the value is left as it was")
            for i in 0..<count { a[i] += (1 - Double(decay)) * (Double(v[i]) - a[i]) }
        }
        expectClose(try device.readFloats(average), a, terms: 10, magnitude: 3, "movingAverage")
    }

    @Test func oneCycleFollowsPyTorch() {
        let s = Schedule(kind: .onecycle, learningRate: 0.1, epochs: 2, stepsPerEpoch: 50)
        // torch.optim.lr_scheduler.OneCycleLR(max_lr=0.1, total_steps=100): starts at 0.004,
        // peaks at step 29, ends at 4e-7.
        #expect(abs(s.at(0).learningRate - 0.004) < 1e-7)
        #expect(abs(s.at(29).learningRate - 0.1) < 1e-7)
        #expect(abs(s.at(99).learningRate - 4e-7) < 1e-9)
        #expect(s.at(0).momentum == 0.95 && abs(s.at(29).momentum! - 0.85) < 1e-6)
        var step = Schedule(kind: .step, learningRate: 0.1, epochs: 20, stepsPerEpoch: 10)
        step.stepSize = 5
        #expect(step.at(49).learningRate == 0.1 && abs(step.at(50).learningRate - 0.01) < 1e-8)
    }
}
