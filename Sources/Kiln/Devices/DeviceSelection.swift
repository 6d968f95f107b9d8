/// What `--device` asks for: `auto`, `cpu`, `opencl` (the first GPU, else the first OpenCL device) or
/// `opencl:P.D` (platform P, device D, as `kiln devices` numbers them).
public enum DeviceRequest: Equatable, Sendable {
    case auto, cpu
    case opencl(platform: Int, device: Int)
    case anyOpenCL

    public init(parsing text: String) throws {
        switch text {
        case "auto": self = .auto
        case "cpu": self = .cpu
        case "opencl": self = .anyOpenCL
        default:
            let parts = text.split(separator: ":")
            let numbers = parts.count == 2 && parts[0] == "opencl" ? parts[1].split(separator: ".").compactMap { Int($0) } : []
            guard numbers.count == 2 else {
                throw KilnError("device \(text): expected auto, cpu, opencl or opencl:P.D")
            }
            self = .opencl(platform: numbers[0], device: numbers[1])
        }
    }
}

/// The device a command runs on, and one line saying what was chosen and why.
public struct DeviceSelection {
    public let device: Device
    public let reason: String
    /// The kernel compiler's log when `auto` fell back because the program did not build.
    public let buildLog: String?
    /// What opening the device has to say (CLBlast parameters applied or ignored, see `OpenCLDevice.notes`).
    public var notes: [String] { (device as? OpenCLDevice)?.notes ?? [] }

    /// `auto` takes the first GPU, else the first OpenCL device that is not a CPU, else the CPU device.
    /// An OpenCL CPU device (PoCL) runs on the same cores as the CPU device, far slower, so `auto` leaves
    /// it to an explicit `--device opencl`. Asking for OpenCL where there is none is an error, never a
    /// silent CPU run. An OpenCL device keeps compiled programs in `cache` and, when `tuned`, applies the
    /// CLBlast parameters `kiln tune` stored there. A CPU device runs on `threads` threads.
    /// `opencl` takes the `index`-th OpenCL device, GPUs first (a data-parallel rank's local rank).
    /// An OpenCL device cuts its launches as `shape` says, or by its kind when nil (`LaunchShape.automatic`).
    public static func select(_ request: DeviceRequest, cache: CacheFolder? = nil, tuned: Bool = true,
                              threads: Int = System.coreCount, index: Int = 0, shape: LaunchShape? = nil) throws -> DeviceSelection {
        switch request {
        case .cpu:
            return DeviceSelection(device: CPUDevice(threads: threads), reason: "device: cpu (asked for)", buildLog: nil)
        case .anyOpenCL, .opencl:
            let devices: [OpenCLDeviceInfo]
            do { devices = try OpenCLPlatforms.devices() } catch {
                throw KilnError("device \(request.text): no OpenCL device (\(error))")
            }
            let chosen: OpenCLDeviceInfo?
            if case let .opencl(p, d) = request {
                chosen = devices.first { $0.platformIndex == p && $0.deviceIndex == d }
            } else {
                let ordered = devices.filter(\.isGPU) + devices.filter { !$0.isGPU }
                guard index < max(ordered.count, 1) else {
                    throw KilnError("device \(request.text): local rank \(index) takes the OpenCL device numbered \(index), but there are \(ordered.count) "
                                    + "(\(ordered.map(\.address).joined(separator: ", "))): start fewer ranks per machine")
                }
                chosen = ordered.isEmpty ? nil : ordered[index]
            }
            guard let chosen else {
                let known = devices.isEmpty ? "none found" : "found " + devices.map(\.address).joined(separator: ", ")
                throw KilnError("device \(request.text): no such OpenCL device (\(known))")
            }
            do {
                return DeviceSelection(device: try OpenCLDevice.open(chosen, shape: shape, cache: cache, tuned: tuned), reason: "device: \(chosen.address) \(chosen.name) (asked for)",
                                       buildLog: nil)
            } catch let error as KernelBuildError {
                throw KernelBuildError(message: "device \(request.text): \(chosen.address) \(chosen.name): kernels did not build, "
                                       + error.message, log: error.log)
            } catch {
                throw KilnError("device \(request.text): \(chosen.address) \(chosen.name) is unusable: \(error)")
            }
        case .auto:
            return autoSelect(cache: cache, tuned: tuned, threads: threads, shape: shape)
        }
    }

    private static func autoSelect(cache: CacheFolder?, tuned: Bool, threads: Int, shape: LaunchShape?) -> DeviceSelection {
        func cpu(_ why: String, log: String? = nil) -> DeviceSelection {
            DeviceSelection(device: CPUDevice(threads: threads), reason: "device: cpu (auto: \(why))", buildLog: log)
        }
        let devices: [OpenCLDeviceInfo]
        do { devices = try OpenCLPlatforms.devices() } catch { return cpu("no OpenCL platform, \(error)") }
        guard let chosen = devices.first(where: \.isGPU) ?? devices.first(where: { !$0.isCPU }) else {
            if devices.isEmpty { return cpu("OpenCL platforms report no devices") }
            let names = devices.map { "\($0.address) \($0.name)" }.joined(separator: ", ")
            return cpu("no OpenCL GPU; the OpenCL CPU device \(names) runs slower on the same cores; ask for it as device opencl")
        }
        do {
            let device = try OpenCLDevice.open(chosen, shape: shape, cache: cache, tuned: tuned)
            return DeviceSelection(device: device, reason: "device: \(chosen.address) \(chosen.name) (auto: first \(chosen.isGPU ? "GPU" : "OpenCL device"))",
                                   buildLog: nil)
        } catch let error as KernelBuildError {
            return cpu("\(chosen.address) \(chosen.name): kernels did not build, \(error.message)",
                       log: error.log)
        } catch {
            return cpu("\(chosen.address) \(chosen.name) is unusable, \(error)")
        }
    }
}

extension DeviceRequest {
    /// The spelling `--device` accepts.
    public var text: String {
        switch self {
        case .auto: "auto"
        case .cpu: "cpu"
        case .anyOpenCL: "opencl"
        case let .opencl(p, d): "opencl:\(p).\(d)"
        }
    }
}
