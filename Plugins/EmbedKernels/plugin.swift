import Foundation
import PackagePlugin

/// Turns the package's `Kernels/*.cl` into one generated Swift file (`KernelSources.swift`) for the
/// target that uses this plugin, rebuilt whenever a kernel changes.
@main
struct EmbedKernels: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let folder = context.package.directoryURL.appending(path: "Kernels")
        let kernels = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "cl" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "KernelSources.swift")
        return [.buildCommand(displayName: "Embedding \(kernels.count) OpenCL kernel files",
                              executable: try context.tool(named: "embed-kernels").url,
                              arguments: [output.path] + kernels.map(\.path),
                              inputFiles: kernels, outputFiles: [output])]
    }
}
