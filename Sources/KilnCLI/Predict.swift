import ArgumentParser
import Foundation
import Kiln

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify PNG or PGM pictures with a saved checkpoint (on the CPU).",
        discussion: "Each picture is resized to the model's input, turned grey or kept RGB as the model needs, and normalised as the training data was.")

    @Option(help: "A safetensors checkpoint written by `kiln train --save`.")
    var checkpoint: String
    @OptionGroup var weightsOptions: WeightsOptions
    @Argument(help: "PNG or PGM files.")
    var images: [String]
    @Option(help: "Classes to show per picture, most likely first.")
    var top = 3
    @Flag(help: "Invert the pictures first: dark strokes on a light ground (MNIST digits are light on dark).")
    var invert = false
    @Flag(help: "Print JSON: one object per picture with its file and top classes.")
    var json = false

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image file") }
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    struct Result: Encodable {
        struct Guess: Encodable { let `class`: Int; let probability: Double }
        let file: String
        let top: [Guess]
    }

    func run() throws {
        let saved = try Checkpoint(path: checkpoint)
        let device = CPUDevice()
        let model = try saved.model(on: device, weights: weightsOptions.weights)
        let normalization = saved.normalization
        let shape = saved.spec.input
        let inputs = try images.map { try ImageFile(path: $0).input(for: shape, normalization: normalization, invert: invert) }
        // [N][C][H][W] to the channel-major [C, N, H, W].
        let plane = shape.size * shape.size, n = inputs.count
        var batch = [Float](repeating: 0, count: shape.channels * n * plane)
        for (i, input) in inputs.enumerated() {
            for c in 0..<shape.channels { batch.replaceSubrange((c * n + i) * plane..<(c * n + i + 1) * plane, with: input[c * plane..<(c + 1) * plane]) }
        }
        let x = try device.allocate([shape.channels, n, shape.size, shape.size], .float32)
        try device.write(batch, to: x)
        let results = try zip(images, model.probabilities(x)).map { file, p in
            Result(file: file, top: p.indices.sorted { p[$0] > p[$1] }.prefix(top).map { Result.Guess(class: $0, probability: p[$0]) })
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            for r in results {
                print("\(r.file): " + r.top.map { String(format: "%d (%.1f%%)", $0.class, 100 * $0.probability) }.joined(separator: ", "))
            }
        }
    }
}
