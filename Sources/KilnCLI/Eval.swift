import ArgumentParser
import Foundation
import Kiln

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a saved checkpoint on the test set.")

    @Option(help: "A safetensors checkpoint written by `kiln train --save`.")
    var checkpoint: String
    @OptionGroup var weightsOptions: WeightsOptions
    @OptionGroup var deviceOptions: DeviceOptions
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Images per evaluation step.")
    var batchSize = 1000
    @Flag(help: "Also print the confusion matrix: test images per true class (rows) and predicted class (columns).")
    var confusion = false
    @Option(help: "Also print the N most confident mistakes: test index, label, prediction, confidence.")
    var misclassified: Int?
    @Option(help: ArgumentHelp("Also write the model's outputs for every test image (log-probabilities for a LogSoftmax model) to FILE.npy: float32 [images, classes].", valueName: "FILE.npy"))
    var outputs: String?
    @Option(help: "Test-time augmentation: none, or flip (each test image's probabilities averaged with its mirror image's, for classes a mirror keeps, such as CIFAR-10's; not digits). Applies to the test line, --outputs, --confusion and --misclassified.")
    var tta: TestTimeAugmentation = .none

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        if let misclassified, misclassified < 0 { throw ValidationError("--misclassified must be 0 or more") }
    }

    func run() throws {
        if let outputs {
            try checkWritable(outputs, flag: "--outputs")
            try checkNotAnInput(outputs, flag: "--outputs", inputs: [(checkpoint, "--checkpoint")])
        }
        let device = try deviceOptions.makeDevice()
        let saved = try Checkpoint(path: checkpoint)
        let model = try saved.model(on: device, weights: weightsOptions.weights)
        // The test images are normalised as the training images were.
        let data = try dataOptions.load(normalization: saved.state.options?.normalization)
        // With TTA the test line comes from the averaged outputs, which --outputs then writes as they are.
        let augmented = tta == .none ? nil : try testOutputs(model, on: data, batchSize: batchSize, tta: tta)
        let result = try augmented?.scores ?? evaluate(model, on: data, batchSize: batchSize)
        print(EpochReport.testLine(loss: result.loss, correct: result.correct, count: result.count))
        if let outputs {
            let all = try (augmented ?? testOutputs(model, on: data, batchSize: batchSize, tta: .none)).outputs
            try writeAtomically(npyFloat32(all.flatMap { $0 }, shape: [all.count, all.first?.count ?? 0]), to: outputs, what: "the outputs")
        }
        guard confusion || misclassified != nil else { return }
        let all = try predictions(model, on: data, batchSize: batchSize, tta: tta)
        if confusion { print(ConfusionMatrix(all, classes: try saved.spec.classCount()).table) }
        if let misclassified {
            let wrong = all.filter { $0.predicted != $0.label }.sorted { $0.confidence > $1.confidence }
            print("\(wrong.count) misclassified; the \(min(misclassified, wrong.count)) most confident:")
            for p in wrong.prefix(misclassified) {
                print(String(format: "test image %5d: label %d, predicted %d (%.1f%%)", p.index, p.label, p.predicted, 100 * p.confidence))
            }
        }
    }
}

extension TestTimeAugmentation: ExpressibleByArgument {}
