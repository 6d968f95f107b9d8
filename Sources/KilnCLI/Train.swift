import ArgumentParser
import Foundation
import Kiln

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a model and evaluate it after every epoch.")

    // The options that shape a run are optional here, so that --resume can tell the ones given (which it
    // refuses: the checkpoint's own apply) from the defaults, which the help states.
    @Option(help: "A preset (\(Presets.names)) or a JSON spec file (default \(Presets.defaultName)).")
    var model: String?
    @OptionGroup var deviceOptions: DeviceOptions
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Passes over the training set (default 15); with --resume, the total to reach (default the resumed run's).")
    var epochs: Int?
    @Option(help: "Images per training step (default 128).")
    var batchSize: Int?
    @Option(help: "Learning rate, the peak for onecycle (default 0.3; tiny5k's recipe 0.2).")
    var lr: Float?
    @Option(help: "sgd or adam (default sgd).")
    var optimizer: OptimizerConfig.Kind?
    @Option(help: "SGD momentum (default 0.9).")
    var momentum: Float?
    @Flag(inversion: .prefixedNo, help: "Nesterov momentum, SGD (default off).")
    var nesterov: Bool?
    @Option(help: "L2 weight decay added to the gradient (default 0).")
    var weightDecay: Float?
    @Option(help: "onecycle, step or none (default onecycle).")
    var schedule: Schedule.Kind?
    @Option(help: "StepLR: epochs between decays (default 5).")
    var stepSize: Int?
    @Option(help: "StepLR: decay factor (default 0.1).")
    var gamma: Float?
    @Flag(inversion: .prefixedNo, help: "Random transforms of training images (default on; --no-augment turns every one off).")
    var augment: Bool?
    @Option(help: "Augmentation: largest rotation in degrees (default 7 on one-channel images, else 0).")
    var rotate: Float?
    @Option(help: "Augmentation: largest shift in pixels (default 1 on one-channel images, else 0).")
    var shift: Float?
    @Option(help: "Augmentation: a random crop of the original size from the image padded by P on each side (default on colour images an eighth of the side, 4 on CIFAR-10; 0 turns it off; replaces --rotate/--shift).")
    var cropPadding: Int?
    @Option(help: "Augmentation: the crop's padding, zero (a black pixel, before normalisation) or reflect (mirrored, edge not repeated) (default zero).")
    var paddingMode: Augmentation.Padding?
    @Flag(inversion: .prefixedNo, help: "Augmentation: horizontal flip with probability 1/2 (default on colour images, off on one channel: digits do not flip).")
    var flip: Bool?
    @Option(help: "Augmentation: an S×S square set to 0 after normalisation (the mean), centred at a random pixel, clipped at the borders (DeVries & Taylor 2017; default off).")
    var cutout: Int?
    @Option(help: "Seed for initialisation, shuffling, dropout and augmentation: the same seed repeats a run bit for bit (default 1).")
    var seed: UInt64?
    @Option(help: "Train on the first N training images only.")
    var trainLimit: Int?
    @Option(help: "Write a safetensors checkpoint here after every epoch (with --resume, default the resumed checkpoint).")
    var save: String?
    @Option(help: "Write one JSON object per epoch here.")
    var log: String?
    @Option(help: "Continue the run saved in this checkpoint, with its model, options and data (--epochs may extend it).")
    var resume: String?
    @Option(help: "Label smoothing ε of the training loss, 0 ≤ ε < 1 (default 0), as PyTorch's CrossEntropyLoss(label_smoothing=ε). The training loss printed and logged is the smoothed loss being minimised; the test loss stays the plain NLL.")
    var labelSmoothing: Float?
    @Option(help: "random (a new order every epoch, from the seed) or none (the data set's order every epoch) (default random).")
    var shuffle: TrainingOptions.Shuffle?
    @Option(help: "Write the weights before the first step here (a checkpoint, as --save writes).")
    var saveInitial: String?
    @Option(help: "Write each step's epoch, step, mean training loss, learning rate and one-cycle momentum here, one JSON object per line, after every epoch (reads the loss back every step).")
    var stepLog: String?
    @Option(help: "Keep an exponential moving average of the weights and batch-norm statistics with this decay, 0 < d < 1 (e.g. 0.999), updated after every step as timm's ModelEmaV2: each epoch's test line is the average's (the trained weights' figures follow), and --save keeps it beside the trained weights (ema.* keys), which `kiln eval`, `export`, `predict` and `report` use by default (default off).")
    var ema: Float?
    @Flag(help: "Under mpirun: batch norm statistics over the global batch, all-reduced in every batch norm (default per rank, as PyTorch DDP). One process computes batch norm the same way, so a run trains the same on any number of ranks.")
    var syncBn = false

    /// The run-shaping flags given, by name: --resume refuses them.
    private var givenRunOptions: [String] {
        let given: [(String, Bool)] = [
            ("--model", model != nil), ("--batch-size", batchSize != nil), ("--lr", lr != nil), ("--optimizer", optimizer != nil),
            ("--momentum", momentum != nil), ("--nesterov", nesterov != nil), ("--weight-decay", weightDecay != nil),
            ("--schedule", schedule != nil), ("--step-size", stepSize != nil), ("--gamma", gamma != nil), ("--augment", augment != nil),
            ("--seed", seed != nil), ("--label-smoothing", labelSmoothing != nil), ("--shuffle", shuffle != nil), ("--ema", ema != nil)]
            + givenAugmentationOptions
        return given.filter(\.1).map(\.0)
    }

    /// The augmentation flags given, by name, --augment aside: --no-augment refuses them.
    private var givenAugmentationOptions: [(String, Bool)] {
        [("--rotate", rotate != nil), ("--shift", shift != nil), ("--crop-padding", cropPadding != nil),
         ("--padding-mode", paddingMode != nil), ("--flip", flip != nil), ("--cutout", cutout != nil)]
    }

    func validate() throws {
        if let epochs, !(1...1_000_000).contains(epochs) { throw ValidationError("--epochs must be between 1 and 1,000,000") }
        if let batchSize, !(1...1 << 20).contains(batchSize) { throw ValidationError("--batch-size must be between 1 and 1,048,576") }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be positive") }
        if let momentum, !(momentum >= 0 && momentum < 1) { throw ValidationError("--momentum must be in [0, 1)") }
        if let weightDecay, !(weightDecay >= 0 && weightDecay.isFinite) { throw ValidationError("--weight-decay must be 0 or more") }
        if let gamma, !(gamma > 0 && gamma.isFinite) { throw ValidationError("--gamma must be positive") }
        if let rotate, !(rotate >= 0 && rotate <= 180) { throw ValidationError("--rotate must be between 0 and 180 degrees") }
        if let shift, !(shift >= 0 && shift <= 28) { throw ValidationError("--shift must be between 0 and 28 pixels") }
        if let cropPadding, cropPadding < 0 { throw ValidationError("--crop-padding must be 0 or more") }
        if let cutout, cutout < 1 { throw ValidationError("--cutout must be at least 1") }
        if augment == false, case let given = givenAugmentationOptions.filter(\.1).map(\.0), !given.isEmpty {
            throw ValidationError("--no-augment turns every augmentation off; drop \(given.joined(separator: ", "))")
        }
        if let trainLimit, trainLimit < 1 { throw ValidationError("--train-limit must be at least 1") }
        if let stepSize, stepSize < 1 { throw ValidationError("--step-size must be at least 1") }
        if let labelSmoothing, !(labelSmoothing >= 0 && labelSmoothing < 1) { throw ValidationError("--label-smoothing must be in [0, 1)") }
        if let ema, !(ema > 0 && ema < 1) { throw ValidationError("--ema must be a decay between 0 and 1, exclusive (e.g. 0.999)") }
        if let save, let log { try checkNotAnInput(log, flag: "--log", inputs: [(save, "--save")]) }
        let outputs = [(save ?? resume, "--save"), (log, "--log")].compactMap { path, name in path.map { ($0, name) } }
        if let saveInitial { try checkNotAnInput(saveInitial, flag: "--save-initial", inputs: outputs + (resume.map { [($0, "--resume")] } ?? [])) }
        if let stepLog { try checkNotAnInput(stepLog, flag: "--step-log", inputs: outputs + (saveInitial.map { [($0, "--save-initial")] } ?? [])) }
        if let resume, !givenRunOptions.isEmpty {
            throw ValidationError("--resume \(resume) continues with the options saved in it; drop \(givenRunOptions.joined(separator: ", ")) "
                                  + "(or start a new run)")
        }
    }

    /// Under `mpirun -np N` (N > 1) this process is one rank of a data-parallel run: rank 0 prints and
    /// writes --log and --save, the others print only their errors, and an error on any rank ends the job.
    func run() throws {
        guard let communicator = try Communicator.fromEnvironment() else { return try train(parallel: nil) }
        guard communicator.size > 1 else {
            defer { communicator.finalize() }
            return try train(parallel: nil)
        }
        let (rank, size) = (communicator.rank, communicator.size)
        if rank != 0 { dup2(open("/dev/null", O_WRONLY), STDOUT_FILENO) }
        do {
            try train(parallel: DataParallel(communicator, syncBatchNorm: syncBn))
            communicator.finalize()
        } catch let stop as ExitCode {
            // Stopped by a signal (mpirun passes Ctrl-C on as SIGTERM): rank 0 has said where the run stands.
            communicator.abort(code: stop.rawValue)
        } catch {
            // One line naming the rank; MPI_Abort then ends every rank, so none waits in a sum for this one.
            let message = (error as? KilnError)?.message ?? "\(error)"
            FileHandle.standardError.write(Data("Error: rank \(rank) of \(size): \(message)\n".utf8))
            communicator.abort(code: 1)
        }
    }

    func train(parallel: DataParallel?) throws {
        let isRoot = (parallel?.rank ?? 0) == 0
        // A resumed run goes on saving to the checkpoint it resumed, unless --save names another.
        let save = self.save ?? resume
        // A path that cannot be written fails now, not after the first epoch.
        if isRoot, let save { try checkWritable(save, flag: "--save") }
        if isRoot, let log { try checkWritable(log, flag: "--log") }
        if isRoot, let saveInitial { try checkWritable(saveInitial, flag: "--save-initial") }
        if isRoot, let stepLog { try checkWritable(stepLog, flag: "--step-log") }
        // Held until this function returns: no other run writes these files meanwhile.
        let locks = isRoot ? try [(save, "--save"), (log, "--log"), (saveInitial, "--save-initial"), (stepLog, "--step-log")].compactMap { path, flag in try path.map { try OutputLock($0, flag: flag) } } : []
        defer { withExtendedLifetime(locks) {} }
        let setupStart = Date()
        let device = try deviceOptions.makeDevice(parallel: parallel)
        let checkpoint = try resume.map(Checkpoint.init(path:))
        let spec = try checkpoint?.spec ?? ModelSpec.named(model ?? Presets.defaultName)
        var options = checkpoint?.state.options ?? TrainingOptions()
        if checkpoint == nil {
            let defaults = TrainingOptions()
            options.batchSize = batchSize ?? defaults.batchSize
            options.learningRate = lr ?? Presets.learningRates[model ?? Presets.defaultName] ?? defaults.learningRate
            options.optimizer = OptimizerConfig(kind: optimizer ?? defaults.optimizer.kind)
            options.optimizer.momentum = momentum ?? defaults.optimizer.momentum
            options.optimizer.nesterov = nesterov ?? defaults.optimizer.nesterov
            options.optimizer.weightDecay = weightDecay ?? defaults.optimizer.weightDecay
            options.schedule = schedule ?? defaults.schedule
            options.stepSize = stepSize ?? defaults.stepSize
            options.gamma = gamma ?? defaults.gamma
            options.seed = seed ?? defaults.seed
            options.labelSmoothing = labelSmoothing
            options.shuffle = shuffle
            options.ema = ema
        }
        let epochs = self.epochs ?? checkpoint?.state.options?.epochs ?? TrainingOptions().epochs
        options.epochs = epochs
        let data = try loadData(resuming: checkpoint)
        if checkpoint?.state.options?.dataFolder == nil { options.trainLimit = trainLimit }
        if checkpoint == nil { options.augmentation = try augmentation(for: data.train.shape) }
        options.dataFolder = URL(fileURLWithPath: data.folder).standardizedFileURL.path
        options.normalization = data.normalization
        let network = try Model(spec: spec, device: device, seed: options.seed)
        let trainer = try Trainer(model: network, data: data, options: options, setupStart: setupStart, parallel: parallel)
        if parallel == nil && syncBn { network.synchroniseBatchNorm(WholeBatchSync()) }
        if let checkpoint {
            guard checkpoint.state.completedEpochs < epochs else {
                throw KilnError("\(resume!): already trained \(checkpoint.state.completedEpochs) epochs; pass --epochs above that")
            }
            try checkpoint.load(into: network)
            try checkpoint.load(into: trainer.optimizer, of: network)
            if let average = trainer.average { try checkpoint.load(into: average, of: network) }
            trainer.completedEpochs = checkpoint.state.completedEpochs
            print("Resuming \(resume!) after epoch \(checkpoint.state.completedEpochs), with its saved options")
        }
        print("Model \(spec.name): \(grouped(try spec.parameterCount())) parameters | device \(device.summary) | "
              + "\(data.train.count) training images from \(data.folder)")
        if let parallel {
            print("Data-parallel: \(parallel.size) ranks, each \(options.batchSize / parallel.size) images of every batch of \(options.batchSize); "
                  + "gradients averaged with MPI_Allreduce every step; batch norm statistics "
                  + (parallel.syncBatchNorm ? "over the global batch (--sync-bn)" : "per rank"))
        }
        print("Optimizer \(options.optimizer.kind.rawValue), \(options.schedule.rawValue) schedule, lr \(options.learningRate), "
              + "batch \(options.batchSize), augmentation \(options.augmentation?.summary ?? "off"), seed \(options.seed)"
              + (options.labelSmoothing.map { $0 == 0 ? "" : ", label smoothing \($0)" } ?? "")
              + (options.shuffle == TrainingOptions.Shuffle.none ? ", batches in the data's order" : "")
              + (options.ema.map { ", EMA of the weights with decay \($0)" } ?? ""))
        if let warning = trainer.schedule.shortRunWarning { print("warning: \(warning)") }
        try trainer.warmUp()
        var programs = ""
        if let opencl = device as? OpenCLDevice {
            programs = "; Kiln's programs: \(opencl.programsLoaded) from the cache, \(opencl.programsCompiled) compiled"
            if let problem = opencl.cacheProblem { print("warning: compiled programs are not cached: \(problem)") }
        }
        print(String(format: "Warm-up %.2f s (device set-up, data upload, kernel compilation%@), not counted in epoch times",
                     trainer.warmupSeconds, programs))
        fflush(nil)
        if isRoot, let saveInitial { try Checkpoint.save(trainer, to: saveInitial) }
        trainer.recordsSteps = stepLog != nil
        var callbacks: [TrainingCallback] = isRoot ? [ConsoleReporter()] : []
        if isRoot, let stepLog { callbacks.append(try StepLogWriter(path: stepLog, keepEpochs: checkpoint?.state.completedEpochs ?? 0)) }
        if isRoot, let log { callbacks.append(try JSONLogWriter(path: log, keepEpochs: checkpoint?.state.completedEpochs ?? 0)) }
        if isRoot, let save { callbacks.append(CheckpointWriter(path: save)) }
        callbacks.append(StopOnSignal())
        do {
            try trainer.run(callbacks: callbacks)
        } catch let stop as StopOnSignal.Stopped {
            let done = trainer.completedEpochs, name = stop.signal == SIGINT ? "Ctrl-C" : "SIGTERM"
            var line = "\nStopped by \(name) during epoch \(done + 1) of \(epochs)"
            // The file that holds the last finished epoch: --save once it has written one, else the resumed checkpoint.
            let holder = save.flatMap { done > (checkpoint?.state.completedEpochs ?? 0) ? $0 : nil } ?? (checkpoint == nil ? nil : resume)
            if let holder, done > 0 {
                line += "; \(holder) holds epoch \(done): continue with `kiln train --resume \(holder) --epochs \(epochs)`"
            } else if save == nil {
                line += "; nothing was saved (--save FILE keeps every epoch)"
            }
            print(line)
            throw ExitCode(128 + stop.signal)
        }
    }
}

extension Train {
    /// The data: a resumed run's own (its folder and --train-limit), which a different --data or
    /// --train-limit may not replace; otherwise the flags'.
    func loadData(resuming checkpoint: Checkpoint?) throws -> Dataset {
        // Checkpoints from before the data was recorded take the flags.
        guard let checkpoint, let saved = checkpoint.state.options, let folder = saved.dataFolder else {
            return try dataOptions.load(trainLimit: trainLimit)
        }
        if let trainLimit, trainLimit != saved.trainLimit {
            throw KilnError("--resume: the run trained with --train-limit \(saved.trainLimit.map(String.init) ?? "(none)"), not \(trainLimit)")
        }
        if let given = dataOptions.data,
           URL(fileURLWithPath: given).standardizedFileURL.path != URL(fileURLWithPath: folder).standardizedFileURL.path {
            throw KilnError("--resume: the run trained on \(folder), not \(given)")
        }
        return try Dataset.load(folder: folder, trainLimit: saved.trainLimit, normalization: saved.normalization)
    }
}

extension Train {
    /// The augmentation flags over the data's default (`Augmentation.standard`): a crop replaces the
    /// default rotation and shift, and --rotate/--shift the default crop (both given are refused).
    func augmentation(for shape: ImageShape) throws -> Augmentation? {
        guard augment ?? true else { return nil }
        var a = Augmentation.standard(channels: shape.channels, size: shape.size)
        if rotate != nil || shift != nil {
            (a.maxDegrees, a.maxShift) = (rotate ?? a.maxDegrees, shift ?? a.maxShift)
            if cropPadding == nil { a.cropPadding = 0 }
        }
        if let cropPadding {
            a.cropPadding = cropPadding
            if rotate == nil && shift == nil { (a.maxDegrees, a.maxShift) = (0, 0) }
        }
        a.paddingMode = paddingMode ?? a.paddingMode
        a.flip = flip ?? a.flip
        a.cutout = cutout ?? a.cutout
        if paddingMode != nil && a.cropPadding == 0 {
            throw KilnError("--padding-mode pads a crop, and this run has none: pass --crop-padding")
        }
        try a.check(size: shape.size)
        return a
    }
}

/// Refuses an output a command would write over one of its own inputs (`inputs`: path and what names it),
/// comparing the files the paths resolve to, links followed: the command would destroy what it reads.
func checkNotAnInput(_ path: String, flag: String, inputs: [(path: String, name: String)]) throws {
    func resolved(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
    if let input = inputs.first(where: { resolved($0.path) == resolved(path) }) {
        throw KilnError("\(flag) \(path) is the same file as \(input.name): writing it would destroy that; name another file")
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
extension Augmentation.Padding: ExpressibleByArgument {}
extension TrainingOptions.Shuffle: ExpressibleByArgument {}
