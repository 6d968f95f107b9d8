import ArgumentParser
import Kiln

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a saved checkpoint on the test set.")

    @Option(help: "A safetensors checkpoint written by `kiln train --save`.")
    var checkpoint: String
    @OptionGroup var deviceOptions: DeviceOptions
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Images per evaluation step.")
    var batchSize = 1000

    func run() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        let device = try deviceOptions.makeDevice()
        let saved = try Checkpoint(path: checkpoint)
        let model = try Sequential(spec: saved.spec, device: device, seed: 0)
        try saved.load(into: model)
        // The test images are normalised as the training images were.
        let data = try dataOptions.load(normalization: saved.options?.normalization)
        let result = try evaluate(model, on: data, batchSize: batchSize)
        print(EpochReport.testLine(loss: result.loss, correct: result.correct, count: result.count))
    }
}
