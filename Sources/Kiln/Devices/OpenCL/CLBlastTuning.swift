import Foundation

/// CLBlast parameters `kiln tune` found for one device, stored as `<cache>/clblast/<cacheName>.json`
/// and applied whenever the device is opened with that cache. They hold only for the driver and the
/// CLBlast they were measured with: after an update the file is stale, ignored with a warning.
public struct CLBlastTuning: Codable, Equatable, Sendable {
    /// What the parameters were measured on.
    public struct Identity: Codable, Equatable, Sendable {
        public var platform: String, device: String, driver: String, clblast: String

        public init(_ info: OpenCLDeviceInfo) {
            (platform, device, driver, clblast) = (info.platformName, info.name, info.driverVersion, CLBlastParameters.version)
        }
    }

    /// One GEMM shape's speed with CLBlast's own parameters and with the ones kept.
    public struct Measurement: Codable, Equatable, Sendable {
        public var shape: String
        /// Calls per training step of the models tuned for (0 for a `--shape` added by hand).
        public var calls: Int
        public var defaultGFLOPs: Double, tunedGFLOPs: Double

        enum CodingKeys: String, CodingKey {
            case shape, calls
            case defaultGFLOPs = "default_gflops", tunedGFLOPs = "tuned_gflops"
        }
    }

    public var identity: Identity
    /// Per CLBlast kernel ("XgemmDirect", "Xgemm", …), the parameters kept: only kernels whose tuned
    /// values beat CLBlast's own at the shapes measured.
    public var kernels: [String: [String: Int]]
    public var measurements: [Measurement]
    /// Kernels no tuner call found parameters for within the budget (nil: none).
    public var untuned: [String]?
    /// What was tuned for: models and batch size, or shapes.
    public var tunedFor: String
    public var budgetSeconds: Double

    enum CodingKeys: String, CodingKey {
        case identity, kernels, measurements, untuned
        case tunedFor = "tuned_for", budgetSeconds = "budget_seconds"
    }

    /// The file for `info` in `cache`.
    public static func file(in cache: CacheFolder, for info: OpenCLDeviceInfo) -> URL {
        cache.file(folder, info.cacheName + ".json")
    }

    /// The cache's subfolder for tunings.
    public static let folder = "clblast"

    /// Writes the tuning for `info` into `cache` (atomically) and returns the file.
    public func save(in cache: CacheFolder, for info: OpenCLDeviceInfo) throws -> URL {
        let file = Self.file(in: cache, for: info)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try cache.write(try encoder.encode(self), to: file)
        return file
    }

    /// What the cache holds for a device.
    public enum Lookup: Equatable {
        case none
        case found(CLBlastTuning, URL)
        /// A file that cannot be used, and why (one line).
        case unusable(String)
    }

    public static func lookup(in cache: CacheFolder, for info: OpenCLDeviceInfo) -> Lookup {
        let file = file(in: cache, for: info)
        guard FileManager.default.fileExists(atPath: file.path) else { return .none }
        let tuning: CLBlastTuning
        do { tuning = try JSONDecoder().decode(CLBlastTuning.self, from: try Data(contentsOf: file)) } catch {
            return .unusable("\(file.path) is not a tuning file (\(describe(error))); run `kiln tune` again")
        }
        let here = Identity(info)
        guard tuning.identity == here else {
            let then = tuning.identity
            let what = then.driver != here.driver ? "driver \(then.driver), this is \(here.driver)"
                : then.clblast != here.clblast ? "CLBlast \(then.clblast), this is \(here.clblast)" : "\(then.platform) \(then.device)"
            return .unusable("\(file.path) was tuned for \(what); run `kiln tune` again")
        }
        return .found(tuning, file)
    }

    /// Applies the cache's tuning for `info` to CLBlast and returns the lines to show (where the parameters
    /// came from, or a warning that they were ignored) and the tuning applied. `probe` then runs CLBlast
    /// with them: parameters it accepts but cannot compile would otherwise fail every GEMM of every run.
    /// Never throws: without a usable file CLBlast keeps its own parameters.
    static func apply(from cache: CacheFolder, to info: OpenCLDeviceInfo,
                      probe: () throws -> Void = {}) -> (lines: [String], applied: CLBlastTuning?) {
        switch lookup(in: cache, for: info) {
        case .none: return ([], nil)
        case .unusable(let why): return (["warning: ignoring tuned CLBlast parameters: \(why)"], nil)
        case let .found(tuning, file):
            guard !tuning.kernels.isEmpty else { return (["clblast: CLBlast's own parameters (kiln tune found nothing faster, \(file.path))"], nil) }
            var applied: [(String, [String: Int])] = []
            do {
                for (kernel, values) in tuning.kernels.sorted(by: { $0.key < $1.key }) {
                    let before = try CLBlastParameters.current(info.id, kernel)
                    try CLBlastParameters.override(info.id, kernel, values)
                    applied.append((kernel, before))
                }
                try probe()
            } catch {
                // All or nothing: a half-applied tuning was never measured.
                for (kernel, before) in applied { try? CLBlastParameters.override(info.id, kernel, before) }
                return (["warning: ignoring tuned CLBlast parameters in \(file.path): \(error)"], nil)
            }
            return (["clblast: tuned parameters from \(file.path) (\(tuning.kernels.keys.sorted().joined(separator: ", ")))"], tuning)
        }
    }
}

/// A decoding error as one line.
private func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.dataCorrupted(let context): return context.debugDescription
    case DecodingError.keyNotFound(let key, _): return "no \(key.stringValue)"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
        return "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
    default: return error.localizedDescription
    }
}
