import ArgumentParser
import Kiln

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the CPU and every OpenCL platform and device, and what --device auto picks.")

    func run() throws {
        print("cpu          \(CPUDevice().summary)")
        do {
            for d in try OpenCLPlatforms.devices() {
                let memory = String(format: "%.1f GiB", Double(d.globalMemoryBytes) / 1_073_741_824)
                print("\(d.address.padding(toLength: 12, withPad: " ", startingAt: 0)) \(d.name) | platform \(d.platformName) | "
                      + "\(d.typeName), \(d.computeUnits) compute units, \(memory) | \(d.openCLCVersion) | driver \(d.driverVersion)")
            }
        } catch {
            print("opencl       none: \(error)")
        }
        print("auto picks   " + (try DeviceSelection.select(.auto).reason))
    }
}
