import ArgumentParser
import Kiln

@main
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Train small convolutional networks on MNIST-format data.",
        subcommands: [Train.self, Eval.self, Summary.self],
        defaultSubcommand: Train.self)
}

/// Flags every command that runs a model shares.
struct DeviceOptions: ParsableArguments {
    @Option(help: "Where to run: cpu.")
    var device = "cpu"

    @Option(help: "CPU threads (default: all cores).")
    var threads: Int?

    func makeDevice() throws -> Device {
        if let threads {
            guard threads >= 1 else { throw KilnError("--threads must be at least 1, got \(threads)") }
            Parallel.threads = threads
        }
        guard device == "cpu" else { throw KilnError("--device \(device): this build has only the cpu device") }
        return CPUDevice()
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
