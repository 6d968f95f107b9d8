import ArgumentParser
import Kiln

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the CPU and every OpenCL platform and device, what the cache holds for each, and what --device auto picks.")

    @Option(help: cacheDirHelp)
    var cacheDir: String?

    func run() throws {
        let cache = try cacheFolder(cacheDir)
        print("cpu          \(CPUDevice().summary)")
        do {
            for d in try OpenCLPlatforms.devices() {
                let memory = String(format: "%.1f GiB", Double(d.globalMemoryBytes) / 1_073_741_824)
                print("\(d.address.padding(toLength: 12, withPad: " ", startingAt: 0)) \(d.name) | platform \(d.platformName) | "
                      + "\(d.typeName), \(d.computeUnits) compute units, \(memory) | \(d.openCLCVersion) | driver \(d.driverVersion) | "
                      + "\(LaunchShape.automatic(for: d)) launches (auto)")
                if let cache { print("             cache: " + Self.cached(d, in: cache)) }
            }
        } catch {
            print("opencl       none: \(error)")
        }
        print("auto picks   " + (try DeviceSelection.select(.auto).reason))
    }

    /// What `cache` holds for device `d`: tuned CLBlast parameters, compiled programs.
    static func cached(_ d: OpenCLDeviceInfo, in cache: CacheFolder) -> String {
        let tuning = switch CLBlastTuning.lookup(in: cache, for: d) {
        case .none: "CLBlast not tuned (`kiln tune --device \(d.address)`)"
        case let .found(tuning, _):
            tuning.kernels.isEmpty ? "CLBlast tuned, its own parameters kept" : "CLBlast tuned (\(tuning.kernels.keys.sorted().joined(separator: ", ")))"
        case .unusable(let why): "CLBlast tuning ignored: \(why)"
        }
        let programs = OpenCLDevice.cachedPrograms(in: cache, for: d)
        return "\(tuning) | \(programs == 0 ? "no" : "\(programs)") compiled program\(programs == 1 ? "" : "s") in \(cache.url.path)"
    }
}
