import ArgumentParser
import Foundation
import Kiln

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Train small convolutional networks on MNIST-format data.",
        subcommands: [Train.self, Eval.self, Summary.self, Devices.self, Parity.self, Tune.self, TuneCall.self],
        defaultSubcommand: Train.self)
}

/// Flags every command that runs a model shares.
struct DeviceOptions: ParsableArguments {
    @Option(help: "auto (a GPU, else the CPU), cpu, opencl or opencl:P.D (see `kiln devices`).")
    var device = "auto"

    @Option(help: "CPU threads (default: all cores).")
    var threads: Int?

    @Flag(help: "Print the OpenCL kernel build log when a device's kernels do not build.")
    var verbose = false

    @Option(help: cacheDirHelp)
    var cacheDir: String?

    var cache: CacheFolder? { CacheFolder.resolve(cacheDir) }

    /// Opens the requested device and prints the lines saying which one and why, and what its opening noted.
    func makeDevice(tuned: Bool = true) throws -> Device {
        if let threads {
            guard (1...1024).contains(threads) else { throw KilnError("--threads must be between 1 and 1024, got \(threads)") }
            Parallel.threads = threads
        }
        let selection = try select(DeviceRequest(parsing: device), cache: cache, verbose: verbose, tuned: tuned)
        print(selection.reason)
        selection.notes.forEach { print($0) }
        fflush(nil)  // seen at once in a log file, before a long warm-up
        return selection.device
    }
}

/// Selects a device; with `verbose`, prints the kernel build log of a device whose kernels failed.
func select(_ request: DeviceRequest, cache: CacheFolder?, verbose: Bool, tuned: Bool = true) throws -> DeviceSelection {
    do {
        let selection = try DeviceSelection.select(request, cache: cache, tuned: tuned)
        if verbose, let log = selection.buildLog { print(log) }
        return selection
    } catch let error as KernelBuildError {
        if verbose { print(error.log) }
        throw error
    }
}

/// `--cache-dir`'s help, for every command that opens a device.
let cacheDirHelp = ArgumentHelp("Folder for compiled OpenCL programs and `kiln tune` results.",
                                discussion: "Default: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.")

struct DataOptions: ParsableArguments {
    @Option(help: "Folder with the four MNIST-format IDX files (.gz or plain). Default: the bundled Data/mnist.")
    var data: String?

    @Option(help: "mnist or fashion-mnist (Debian's dataset-fashion-mnist package).")
    var dataset = "mnist"

    func load(trainLimit: Int? = nil) throws -> MNISTData {
        let folder = try data ?? MNISTData.folder(forDataset: dataset, bundled: MNISTData.bundledFolder())
        return try MNISTData(folder: folder, trainLimit: trainLimit)
    }
}
