import ArgumentParser
import Foundation
import Kiln

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's inference network as an ONNX model.",
        discussion: """
            The graph (opset \(ONNXExport.opset)) takes `image`, float32 [N, C, H, W] pixel values in [0, 1], normalises it as \
            the training data was, and returns `log_probabilities` [N, classes] for a model ending in logsoftmax (else \
            `outputs`). Batch norm uses the running statistics; dropout is left out.
            """)

    @Option(help: "A safetensors checkpoint written by `kiln train --save`.")
    var checkpoint: String
    @OptionGroup var weightsOptions: WeightsOptions
    @Option(help: ArgumentHelp("The ONNX file to write.", valueName: "FILE.onnx"))
    var onnx: String

    func run() throws {
        try checkWritable(onnx, flag: "--onnx")
        try checkNotAnInput(onnx, flag: "--onnx", inputs: [(checkpoint, "--checkpoint")])
        let saved = try Checkpoint(path: checkpoint)
        let model = try saved.model(on: CPUDevice(threads: 1), weights: weightsOptions.weights)
        let bytes = try ONNXExport.model(model, normalization: saved.normalization)
        try writeAtomically(bytes, to: onnx, what: "the ONNX model")
        let input = saved.spec.input
        print("Wrote \(onnx) (\(bytes.count) bytes, opset \(ONNXExport.opset)): \(saved.spec.name), input image float32 "
              + "[N, \(input.channels), \(input.size), \(input.size)] in [0, 1], normalised inside.")
    }
}
