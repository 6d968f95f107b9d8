import Foundation
import Testing
@testable import Kiln

/// The device cache: compiled programs written, reloaded, rebuilt when refused or stale; CLBlast tunings
/// applied, or ignored with one line when corrupt, stale or invalid; `kiln tune` and `kiln parity` end to
/// end in their own processes (a CLBlast override holds for the whole process).
@Suite(.serialized, .enabled(if: OpenCLSupport.available, "no OpenCL device: cache tests skipped"))
struct DeviceCacheTests {
    let info = OpenCLSupport.device!.info

    func temporaryCache() throws -> CacheFolder {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-cache-\(UUID().uuidString)").path
        return CacheFolder(path)
    }

    /// A 3x3 convolution (a convolution.cl program) and a log-softmax (the main program) on `device`,
    /// checked against the CPU.
    func expectKernelsWork(_ device: OpenCLDevice) throws {
        let x = randomFloats(2 * 3 * 7 * 7), w = randomFloats(5 * 3 * 3 * 3, stream: 5)
        let g = WindowGeometry(kernel: 3, stride: 1, padding: 1)
        var results: [[Float]] = []
        for d in [device as Device, CPUDevice()] {
            // Activations are [C, N, H, W]; log-softmax runs over the first axis.
            let y = try d.allocate([5, 2, 7, 7], .float32), p = try d.allocate([5, 98], .float32)
            try d.conv2dForward(input: try tensor(d, [3, 2, 7, 7], x), weight: try tensor(d, [5, 3, 3, 3], w), bias: nil, output: y, geometry: g, normalization: nil)
            try d.logSoftmaxForward(input: try d.view(y, offset: 0, shape: [5, 98]), output: p)
            results.append(try d.readFloats(y) + d.readFloats(p))
        }
        let scale = results[1].map { Double(abs($0)) }.max()!
        #expect(zip(results[0], results[1]).allSatisfy { abs(Double($0 - $1)) <= 1e-5 * max(scale, 1) })
    }

    @Test func programsAreCachedReloadedAndRebuiltWhenRefused() throws {
        let cache = try temporaryCache()
        defer { try? FileManager.default.removeItem(at: cache.url) }
        let first = try OpenCLDevice(info, shape: .cpu, cache: cache, tuned: false)
        try expectKernelsWork(first)
        #expect(first.programsLoaded == 0 && first.programsCompiled == 2 && first.cacheProblem == nil)
        #expect(OpenCLDevice.cachedPrograms(in: cache, for: info) == 2)

        let second = try OpenCLDevice(info, shape: .cpu, cache: cache, tuned: false)
        try expectKernelsWork(second)
        #expect(second.programsLoaded == 2 && second.programsCompiled == 0)

        // Garbage where the binaries were: refused, rebuilt from source, replaced.
        let folder = cache.url.appendingPathComponent("programs")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).map { folder.appendingPathComponent($0) }
        for file in files { try Data("not a program".utf8).write(to: file) }
        let third = try OpenCLDevice(info, shape: .cpu, cache: cache, tuned: false)
        try expectKernelsWork(third)
        #expect(third.programsLoaded == 0 && third.programsCompiled == 2)
        #expect(try files.allSatisfy { try Data(contentsOf: $0).count > 100 })

        // Binaries cut short (what a full disk or a killed copy leaves): rebuilt, never handed to the driver,
        // which crashes on them.
        for file in files { try Data(contentsOf: file).prefix(1000).write(to: file) }
        let cutShort = try OpenCLDevice(info, shape: .cpu, cache: cache, tuned: false)
        try expectKernelsWork(cutShort)
        #expect(cutShort.programsLoaded == 0 && cutShort.programsCompiled == 2)
        #expect(try files.allSatisfy { try CachedBinary.unwrap(Data(contentsOf: $0)) != nil })

        // Another driver version is another key: compiled again, the old entries left alone.
        let updated = OpenCLDeviceInfo(
            platformIndex: info.platformIndex, deviceIndex: info.deviceIndex, platformName: info.platformName, name: info.name,
            isGPU: info.isGPU, isCPU: info.isCPU, typeName: info.typeName, computeUnits: info.computeUnits,
            globalMemoryBytes: info.globalMemoryBytes, openCLCVersion: info.openCLCVersion, driverVersion: info.driverVersion + "-next",
            maxWorkGroupSize: info.maxWorkGroupSize, id: info.id)
        let fourth = try OpenCLDevice(updated, shape: .cpu, cache: cache, tuned: false)
        try expectKernelsWork(fourth)
        #expect(fourth.programsLoaded == 0 && fourth.programsCompiled == 2)
        #expect(OpenCLDevice.cachedPrograms(in: cache, for: info) == 4)
    }

    @Test func anUnwritableCacheCostsOnlyTime() throws {
        let cache = CacheFolder("/proc/kiln-cannot-write-here")
        let device = try OpenCLDevice(info, shape: .cpu, cache: cache, tuned: false)
        try expectKernelsWork(device)
        #expect(device.programsCompiled == 2)
        #expect(device.cacheProblem?.contains("/proc/kiln-cannot-write-here") == true && device.cacheProblem?.contains("\n") == false)
    }

    @Test func tuningsAreAppliedOrIgnoredWithOneLine() throws {
        let cache = try temporaryCache()
        defer { try? FileManager.default.removeItem(at: cache.url) }
        #expect(CLBlastTuning.lookup(in: cache, for: info) == .none)
        #expect(CLBlastTuning.apply(from: cache, to: info).lines.isEmpty)
        // The values CLBlast uses now, so that the other tests in this process see the same numbers.
        let own = try CLBlastParameters.current(info.id, "XgemmDirect")
        #expect(own["WGD"] != nil)
        var tuning = CLBlastTuning(identity: .init(info), kernels: ["XgemmDirect": own], measurements: [], tunedFor: "test",
                                   budgetSeconds: 10)
        let file = try tuning.save(in: cache, for: info)
        #expect(CLBlastTuning.lookup(in: cache, for: info) == .found(tuning, file))
        let applied = CLBlastTuning.apply(from: cache, to: info)
        #expect(applied.lines == ["clblast: tuned parameters from \(file.path) (XgemmDirect)"] && applied.applied == tuning)

        // A parameter set CLBlast refuses: nothing applied, one warning.
        tuning.kernels = ["XgemmDirect": ["WGD": 16]]
        _ = try tuning.save(in: cache, for: info)
        let refused = CLBlastTuning.apply(from: cache, to: info).lines
        #expect(refused.count == 1 && refused[0].hasPrefix("warning: ignoring tuned CLBlast parameters in \(file.path)"))
        #expect(try CLBlastParameters.current(info.id, "XgemmDirect") == own)

        // Another driver: stale.
        tuning.kernels = ["XgemmDirect": own]
        tuning.identity.driver += "-old"
        _ = try tuning.save(in: cache, for: info)
        guard case .unusable(let stale) = CLBlastTuning.lookup(in: cache, for: info) else { Issue.record("stale file used"); return }
        #expect(stale.contains("was tuned for driver \(info.driverVersion)-old, this is \(info.driverVersion)"))

        // Corrupt: not JSON, or JSON of something else.
        for text in ["{\"identity\": ", "[1, 2, 3]", ""] {
            try Data(text.utf8).write(to: file)
            let lines = CLBlastTuning.apply(from: cache, to: info).lines
            #expect(lines.count == 1 && lines[0].contains("is not a tuning file"), "\(text): \(lines)")
        }
    }

    /// Parameters CLBlast accepts but cannot compile (a vector width its kernels have no case for): the
    /// run warns once, naming the file, and trains with CLBlast's own. In a process of its own, since CLBlast's
    /// parameters are shared by every test in this one.
    @Test func aTuningThatDoesNotCompileIsIgnored() throws {
        let cache = try temporaryCache()
        defer { try? FileManager.default.removeItem(at: cache.url) }
        var broken = try CLBlastParameters.current(info.id, "XgemmDirect")
        broken["VWMD"] = 3
        let tuning = CLBlastTuning(identity: .init(info), kernels: ["XgemmDirect": broken], measurements: [], tunedFor: "test", budgetSeconds: 10)
        let file = try tuning.save(in: cache, for: info)
        let run = try runKiln(["train", "--device", info.address, "--cache-dir", cache.url.path, "--epochs", "1", "--train-limit", "128",
                               "--batch-size", "64"])
        #expect(run.status == 0 && run.output.contains("warning: ignoring tuned CLBlast parameters in \(file.path)"), "\(run.output)")
    }

    @Test func tuneStoresWhatParityAndDevicesThenUse() throws {
        let cache = try temporaryCache()
        defer { try? FileManager.default.removeItem(at: cache.url) }
        let tuned = try runKiln(["tune", "--device", info.address, "--shape", "32x32x32", "--budget", "10", "--cache-dir", cache.url.path])
        #expect(tuned.status == 0, "\(tuned.output)")
        #expect(tuned.output.contains("Saved \(CLBlastTuning.file(in: cache, for: info).path)"), "\(tuned.output)")
        guard case .found = CLBlastTuning.lookup(in: cache, for: info) else { Issue.record("kiln tune stored nothing usable"); return }

        // Parameters other than CLBlast's own (valid for any device with 64-item work-groups): parity holds.
        let other = ["WGD": 16, "MDIMCD": 8, "NDIMCD": 8, "MDIMAD": 8, "NDIMBD": 8, "KWID": 2, "VWMD": 2, "VWND": 2, "PADA": 1, "PADB": 1]
        let tuning = CLBlastTuning(identity: .init(info), kernels: ["XgemmDirect": other], measurements: [], tunedFor: "test", budgetSeconds: 10)
        let file = try tuning.save(in: cache, for: info)
        let parity = try runKiln(["parity", "--device", info.address, "--steps", "1", "--quiet", "--cache-dir", cache.url.path])
        #expect(parity.status == 0, "\(parity.output)")
        #expect(parity.output.contains("clblast: tuned parameters from \(file.path) (XgemmDirect)"), "\(parity.output)")
        #expect(parity.output.contains("parity passed"), "\(parity.output)")

        let devices = try runKiln(["devices", "--cache-dir", cache.url.path])
        #expect(devices.output.contains("CLBlast tuned (XgemmDirect)"), "\(devices.output)")
    }
}
