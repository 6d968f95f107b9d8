import ArgumentParser
import Foundation
import Kiln

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a model and evaluate it after every epoch.")

    @Option(help: "A preset (lean8k, ref18k, strided12k) or a JSON spec file.")
    var model = Presets.defaultName
    @OptionGroup var deviceOptions: DeviceOptions
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Passes over the training set.")
    var epochs = 15
    @Option(help: "Images per training step.")
    var batchSize = 128
    @Option(help: "Learning rate (the peak for onecycle).")
    var lr: Float = 0.3
    @Option(help: "sgd or adam.")
    var optimizer: OptimizerConfig.Kind = .sgd
    @Option(help: "SGD momentum.")
    var momentum: Float = 0.9
    @Flag(help: "Nesterov momentum (SGD).")
    var nesterov = false
    @Option(help: "L2 weight decay added to the gradient.")
    var weightDecay: Float = 0
    @Option(help: "onecycle, step or none.")
    var schedule: Schedule.Kind = .onecycle
    @Option(help: "StepLR: epochs between decays.")
    var stepSize = 5
    @Option(help: "StepLR: decay factor.")
    var gamma: Float = 0.1
    @Flag(inversion: .prefixedNo, help: "Random rotation and shift of training images.")
    var augment = true
    @Option(help: "Augmentation: largest rotation in degrees.")
    var rotate: Float = 7
    @Option(help: "Augmentation: largest shift in pixels.")
    var shift: Float = 1
    @Option(help: "Seed for initialisation, shuffling, dropout and augmentation: the same seed repeats a run bit for bit.")
    var seed: UInt64 = 1
    @Option(help: "Train on the first N training images only.")
    var trainLimit: Int?
    @Option(help: "Write a safetensors checkpoint here after every epoch.")
    var save: String?
    @Option(help: "Write one JSON object per epoch here.")
    var log: String?
    @Option(help: "Continue the run saved in this checkpoint (its model and options; --epochs may extend it).")
    var resume: String?

    func validate() throws {
        guard (1...1_000_000).contains(epochs) else { throw ValidationError("--epochs must be between 1 and 1,000,000") }
        guard (1...1 << 20).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 1,048,576") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be positive") }
        guard momentum >= 0, momentum < 1 else { throw ValidationError("--momentum must be in [0, 1)") }
        guard rotate >= 0, rotate <= 180 else { throw ValidationError("--rotate must be between 0 and 180 degrees") }
        guard shift >= 0, shift <= 28 else { throw ValidationError("--shift must be between 0 and 28 pixels") }
        if let trainLimit, trainLimit < 1 { throw ValidationError("--train-limit must be at least 1") }
        guard stepSize >= 1 else { throw ValidationError("--step-size must be at least 1") }
        if let save, let log, URL(fileURLWithPath: save).standardizedFileURL == URL(fileURLWithPath: log).standardizedFileURL {
            throw ValidationError("--save and --log name the same file")
        }
    }

    func run() throws {
        // A path that cannot be written fails now, not after the first epoch.
        if let save { try checkWritable(save, flag: "--save") }
        if let log { try checkWritable(log, flag: "--log") }
        let setupStart = Date()
        let device = try deviceOptions.makeDevice()
        let checkpoint = try resume.map(Checkpoint.init(path:))
        var options = checkpoint?.options ?? TrainingOptions()
        if checkpoint == nil {
            options.batchSize = batchSize
            options.learningRate = lr
            options.optimizer = OptimizerConfig(kind: optimizer)
            options.optimizer.momentum = momentum
            options.optimizer.nesterov = nesterov
            options.optimizer.weightDecay = weightDecay
            options.schedule = schedule
            options.stepSize = stepSize
            options.gamma = gamma
            options.augmentation = augment ? Augmentation(maxDegrees: rotate, maxShift: shift, background: MNISTData.background) : nil
            options.seed = seed
        }
        options.epochs = epochs
        let spec = try checkpoint?.spec ?? ModelSpec.named(model)
        let data = try dataOptions.load(trainLimit: trainLimit)
        let network = try Sequential(spec: spec, device: device, seed: options.seed)
        let trainer = try Trainer(model: network, data: data, options: options, setupStart: setupStart)
        if let checkpoint {
            guard checkpoint.completedEpochs < epochs else {
                throw KilnError("\(resume!): already trained \(checkpoint.completedEpochs) epochs; pass --epochs above that")
            }
            try checkpoint.load(into: network)
            try checkpoint.load(into: trainer.optimizer, of: network)
            trainer.completedEpochs = checkpoint.completedEpochs
            print("Resuming \(resume!) after epoch \(checkpoint.completedEpochs), with its saved options")
        }
        print("Model \(spec.name): \(grouped(try spec.parameterCount())) parameters | device \(device.summary) | "
              + "\(data.train.count) training images from \(data.folder)")
        print("Optimizer \(options.optimizer.kind.rawValue), \(options.schedule.rawValue) schedule, lr \(options.learningRate), "
              + "batch \(options.batchSize), augmentation \(options.augmentation.map { "±\($0.maxDegrees)° ±\($0.maxShift)px" } ?? "off"), seed \(options.seed)")
        print(String(format: "Warm-up %.2f s (device set-up, data upload, kernel compilation), not counted in epoch times",
                     trainer.warmupSeconds))
        fflush(nil)
        var callbacks: [TrainingCallback] = [ConsoleReporter()]
        if let log { callbacks.append(try JSONLogWriter(path: log, keepEpochs: checkpoint?.completedEpochs ?? 0)) }
        if let save { callbacks.append(CheckpointWriter(path: save)) }
        try trainer.run(callbacks: callbacks)
    }
}

/// `path` can be written as a file: its folder exists and is writable, and it is not a folder itself.
func checkWritable(_ path: String, flag: String) throws {
    let url = URL(fileURLWithPath: path), folder = url.deletingLastPathComponent().path
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
        throw KilnError("\(flag) \(path): is a folder, not a file")
    }
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
        throw KilnError("\(flag) \(path): the folder \(folder) does not exist")
    }
    guard FileManager.default.isWritableFile(atPath: folder) else {
        throw KilnError("\(flag) \(path): the folder \(folder) is not writable")
    }
}

extension OptimizerConfig.Kind: ExpressibleByArgument {}
extension Schedule.Kind: ExpressibleByArgument {}
