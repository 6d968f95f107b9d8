import ArgumentParser
import Foundation
import Kiln

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Train small convolutional networks on MNIST-format data.",
        subcommands: [Train.self, Eval.self, Summary.self, Devices.self, Parity.self],
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

    /// Opens the requested device and prints the one line saying which one and why.
    func makeDevice() throws -> Device {
        if let threads {
            guard (1...1024).contains(threads) else { throw KilnError("--threads must be between 1 and 1024, got \(threads)") }
            Parallel.threads = threads
        }
        let selection = try select(DeviceRequest(parsing: device), verbose: verbose)
        print(selection.reason)
        fflush(nil)  // seen at once in a log file, before a long warm-up
        return selection.device
    }
}

/// Selects a device; with `verbose`, prints the kernel build log of a device whose kernels failed.
func select(_ request: DeviceRequest, verbose: Bool) throws -> DeviceSelection {
    do {
        let selection = try DeviceSelection.select(request)
        if verbose, let log = selection.buildLog { print(log) }
        return selection
    } catch let error as KernelBuildError {
        if verbose { print(error.log) }
        throw error
    }
}

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
