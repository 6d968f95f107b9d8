import Foundation
import Testing
@testable import Kiln

/// `kiln eval --tta flip`: the mirror image, and outputs averaged over an image and its mirror.
@Suite struct TestTimeAugmentationTests {
    /// A mirror reverses each row of every channel and image; twice, it is the identity.
    @Test func mirrorReversesEveryRow() throws {
        let folder = try numpyFolder(channels: 3, size: 5, train: 3, test: 7, classes: 3)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let test = try Dataset.load(folder: folder).test, mirror = test.mirrored()
        for row in 0..<(3 * 7 * 5) {
            for x in 0..<5 { #expect(mirror.images[row * 5 + x] == test.images[row * 5 + 4 - x]) }
        }
        #expect(mirror.mirrored().images == test.images && mirror.labels == test.labels && mirror.images != test.images)
    }

    /// With flip each image's probabilities are the mean of its own and its mirror's; without, the host's
    /// test figures are the device's.
    @Test func flipAveragesTheImageAndItsMirror() throws {
        let folder = try numpyFolder(channels: 3, size: 8, train: 16, test: 31, classes: 5)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let data = try Dataset.load(folder: folder)
        let spec = try ModelSpec(json: Data(rgbSpec.utf8), source: "test")
        let model = try Model(spec: spec, device: CPUDevice(threads: 1), seed: testSeed)
        let plain = try testOutputs(model, on: data).outputs
        let mirrored = Dataset(train: data.train, test: data.test.mirrored(), classes: data.classes,
                               normalization: data.normalization, folder: data.folder)
        let mirror = try testOutputs(model, on: mirrored).outputs
        let tta = try testOutputs(model, on: data, tta: .flip)
        var changed = false
        for i in plain.indices {
            for k in plain[i].indices {
                let mean = (exp(Double(plain[i][k])) + exp(Double(mirror[i][k]))) / 2
                #expect(abs(exp(Double(tta.outputs[i][k])) - mean) < 1e-6, "image \(i) class \(k) (seed \(testSeed))")
                changed = changed || abs(tta.outputs[i][k] - plain[i][k]) > 1e-4
            }
        }
        #expect(changed, "the mirror changed no output: the test would not see a missing flip")
        let host = try testOutputs(model, on: data, tta: .none).scores, device = try evaluate(model, on: data)
        #expect(host.correct == device.correct && host.count == device.count && abs(host.loss - device.loss) < 1e-5 * max(1, device.loss))
    }
}
