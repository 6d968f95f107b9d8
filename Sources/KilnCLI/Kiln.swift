import ArgumentParser
import Foundation
import Kiln
import KilnReports

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Train small convolutional networks on MNIST-format data.",
        subcommands: [Train.self, Sweep.self, LRFind.self, Eval.self, Predict.self, Export.self, Report.self, Summary.self, Devices.self, Parity.self, Tune.self, TuneCall.self],
        defaultSubcommand: Train.self)
}

/// Flags every command that runs a model shares.
struct DeviceOptions: ParsableArguments {
    @Option(help: "auto (a GPU, else the CPU), cpu, opencl or opencl:P.D (see `kiln devices`).")
    var device = "auto"

    @Option(help: "CPU threads (default: all cores).")
    var threads: Int?

    @Option(help: launchShapeHelp)
    var launchShape = "auto"

    @Flag(help: "Print the OpenCL kernel build log when a device's kernels do not build.")
    var verbose = false

    @Option(help: cacheDirHelp)
    var cacheDir: String?

    /// Opens the requested device and prints the lines saying which one and why, and what its opening noted.
    /// A data-parallel rank opens the device of its local rank, and by default shares the cores with the
    /// other ranks on its machine.
    func makeDevice(tuned: Bool = true, parallel: DataParallel? = nil) throws -> Device {
        if let threads {
            guard (1...1024).contains(threads) else { throw KilnError("--threads must be between 1 and 1024, got \(threads)") }
        }
        let localSize = parallel?.communicator.localSize ?? 1
        let selection = try select(DeviceRequest(flag: device), cache: cacheFolder(cacheDir), verbose: verbose, tuned: tuned,
                                   threads: threads ?? max(1, System.coreCount / localSize), index: parallel?.communicator.localRank ?? 0,
                                   shape: LaunchShape(flag: launchShape))
        print(selection.reason)
        selection.notes.forEach { print($0) }
        fflush(nil)  // seen at once in a log file, before a long warm-up
        return selection.device
    }
}

/// Selects a device; with `verbose`, prints the kernel build log of a device whose kernels failed.
func select(_ request: DeviceRequest, cache: CacheFolder?, verbose: Bool, tuned: Bool = true,
            threads: Int = System.coreCount, index: Int = 0, shape: LaunchShape? = nil) throws -> DeviceSelection {
    do {
        let selection = try DeviceSelection.select(request, cache: cache, tuned: tuned, threads: threads, index: index, shape: shape)
        if let log = selection.buildLog { print(verbose ? log : "(--verbose shows the kernel build log)") }
        return selection
    } catch let error as KernelBuildError {
        if verbose { print(error.log) }
        throw KilnError("--\(error.message)" + (verbose ? "" : " (--verbose shows the log)"))
    } catch let error as KilnError where error.message.hasPrefix("device ") {
        throw KilnError("--\(error.message)")
    }
}

extension DeviceRequest {
    /// `--device TEXT`, its error naming the flag.
    init(flag text: String) throws {
        do { try self.init(parsing: text) } catch let error as KilnError { throw KilnError("--\(error.message)") }
    }
}

extension LaunchShape {
    /// `--launch-shape TEXT` (nil for auto), its error naming the flag.
    init?(flag text: String) throws {
        do {
            guard let shape = try LaunchShape.request(text) else { return nil }
            self = shape
        } catch let error as KilnError { throw KilnError("--\(error.message)") }
    }
}

/// `--launch-shape`'s help, for every command that opens a device.
let launchShapeHelp = ArgumentHelp("How OpenCL launches are cut: auto (by the device's kind), gpu or cpu.",
                                   discussion: "gpu gives a CPU device such as PoCL the launches a GPU gets (hundreds of work-groups, the fused kernels), so the GPU path runs and is checked without a GPU.")

/// `--cache-dir PATH`, else the default, as the cache folder. A file where the folder must be is refused
/// now, naming the flag: the device would otherwise only warn after compiling, or not at all on the CPU.
func cacheFolder(_ cacheDir: String?) throws -> CacheFolder? {
    if let cacheDir, let problem = fileInTheWay(of: cacheDir) { throw KilnError("--cache-dir \(cacheDir): \(problem)") }
    return CacheFolder.resolve(cacheDir)
}

/// `--cache-dir`'s help, for every command that opens a device.
let cacheDirHelp = ArgumentHelp("Folder for compiled OpenCL programs and `kiln tune` results.",
                                discussion: "Default: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.")

struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Data folder: the four MNIST-format IDX files (.gz or plain), NumPy arrays x_train.npy, y_train.npy, x_test.npy, y_test.npy, or CIFAR-10's binary data_batch_1.bin … data_batch_5.bin and test_batch.bin (in DIR, or in DIR/cifar-10-batches-bin where the official tarball unpacks). Default: the bundled Data/mnist.",
                               discussion: "NumPy images are uint8 [N, H, W] or [N, H, W, C] (square), labels integers; NumPy and CIFAR-10 images have each channel normalised with the training split's mean and standard deviation, which checkpoints keep."))
    var data: String?

    @Option(help: "mnist or fashion-mnist (Debian's dataset-fashion-mnist package).")
    var dataset = "mnist"

    /// `normalization`: a checkpoint's, so that its data is normalised as in training.
    func load(trainLimit: Int? = nil, normalization: Normalization? = nil) throws -> Dataset {
        let folder = try data ?? Dataset.folder(forDataset: dataset, bundled: Dataset.bundledFolder())
        guard data != nil || FileManager.default.fileExists(atPath: folder) else {
            throw KilnError(dataset == "mnist"
                ? "no such data folder: the bundled MNIST is not beside this folder or the kiln binary (Data/mnist, or share/kiln/mnist after make install); pass --data DIR"
                : "--dataset \(dataset): no such data folder \(folder) (Debian's package dataset-\(dataset) installs it)")
        }
        return try Dataset.load(folder: folder, trainLimit: trainLimit, normalization: normalization)
    }
}

/// `--weights`: which of a checkpoint's weights a command uses.
struct WeightsOptions: ParsableArguments {
    @Option(help: "trained, or ema: the moving average of the weights saved by `kiln train --ema` (default ema where the checkpoint has one, else trained).")
    var weights: Checkpoint.Weights?
}

extension Checkpoint.Weights: ExpressibleByArgument {}

/// `--target` and `--last`: the accuracy criterion `kiln sweep` and `kiln report` judge runs by.
struct CriterionOptions: ParsableArguments {
    @Option(help: "The accuracy (%) the test set must reach in each of the last --last epochs.")
    var target = 99.4
    @Option(help: "Epochs the criterion looks at (default 3; in a sweep of fewer epochs, all of them).")
    var last: Int?

    func validate() throws {
        guard target > 0, target <= 100 else { throw ValidationError("--target must be a percentage in (0, 100]") }
        if let last, last < 1 { throw ValidationError("--last must be at least 1") }
    }

    /// The criterion; a --last not given is 3, or `epochs` (a sweep's) when fewer.
    func criterion(epochs: Int = .max) -> AccuracyCriterion { AccuracyCriterion(target: target, last: last ?? min(3, epochs)) }
}
