import CCLBlast
import CCLBlastTuner
import COpenCL
import Foundation

/// CLBlast's kernel parameters for one device, single precision: read, override, tune. CLBlast keeps
/// one parameter set per device and kernel ("XgemmDirect", "Xgemm", …) for the whole process; an
/// override makes its routines recompile with the new values on their next call.
enum CLBlastParameters {
    /// The CLBlast version Kiln was built against ("1.5.3").
    static let version = String(cString: kiln_clblast_version())

    /// The values CLBlast uses now: its database's entry for the device (or its default), or an override.
    static func current(_ device: cl_device_id, _ kernel: String) throws -> [String: Int] {
        try text("RetrieveParameters(\(kernel))") { kiln_clblast_parameters(device, kernel, $0, $1) }
    }

    /// CLBlast's own values (its database's), as they were before Kiln first overrode them in this
    /// process: CLBlast has no call that drops an override.
    static func own(_ device: cl_device_id, _ kernel: String) throws -> [String: Int] {
        try ownLock.withLock { try ownValues[Key(device, kernel)] ?? current(device, kernel) }
    }

    static func override(_ device: cl_device_id, _ kernel: String, _ values: [String: Int]) throws {
        guard values.values.allSatisfy({ $0 >= 0 }) else { throw KilnError("CLBlast parameters of \(kernel) cannot be negative") }
        try ownLock.withLock {
            if ownValues[Key(device, kernel)] == nil { ownValues[Key(device, kernel)] = try current(device, kernel) }
        }
        let names = values.keys.sorted(), numbers = names.map { values[$0]! }
        let status = withCStrings(names) { CLBlastOverrideParameters(device, kernel, CLBlastPrecisionSingle, names.count, $0, numbers) }
        try checkCLBlast(status, "CLBlastOverrideParameters(\(kernel))")
    }

    private struct Key: Hashable {
        let device: UInt, kernel: String
        init(_ device: cl_device_id, _ kernel: String) { (self.device, self.kernel) = (UInt(bitPattern: device), kernel) }
    }
    nonisolated(unsafe) private static var ownValues: [Key: [String: Int]] = [:]
    private static let ownLock = NSLock()

    /// CLBlast's tuner for `kernel` at m×n×k on `queue`'s device, trying `fraction` (0 < fraction ≤ 1) of its
    /// configurations, always the same ones first: the fastest configuration whose results were correct,
    /// or nil when none of those tried ran correctly (CLBlast then answers "unexpected error").
    static func tune(_ queue: cl_command_queue, _ kernel: String, m: Int, n: Int, k: Int, fraction: Double) throws -> [String: Int]? {
        guard fraction > 0, fraction <= 1 else { throw KilnError("the tuning fraction must be in (0, 1], got \(fraction)") }
        do {
            return try text("Tune\(kernel)(\(m)×\(n)×\(k), fraction \(fraction))") { kiln_clblast_tune(queue, kernel, m, n, k, fraction, $0, $1) }
        } catch let error as CLBlastStatusError where error.code == CLBlastUnexpectedError.rawValue {
            return nil
        }
    }

    /// Parameters from the shim's "NAME=VALUE …" text.
    private static func text(_ call: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws -> [String: Int] {
        var buffer = [CChar](repeating: 0, count: 4096)
        let status = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        guard status == CLBlastSuccess.rawValue else { throw CLBlastStatusError(code: status, call: call) }
        return try parse(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), call)
    }

    /// "NAME=VALUE NAME=VALUE …" (the shim's form, and `kiln tune-call`'s output) as parameters.
    static func parse(_ text: String, _ source: String) throws -> [String: Int] {
        var values: [String: Int] = [:]
        for pair in text.split(separator: " ") {
            let parts = pair.split(separator: "=")
            guard parts.count == 2, let value = Int(parts[1]) else { throw KilnError("\(source): unreadable parameter \(pair)") }
            values[String(parts[0])] = value
        }
        return values
    }

    static func format(_ values: [String: Int]) -> String {
        values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}

/// `body` with the strings as an array of C string pointers.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    var pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}

/// A CLBlast status from the tuner shim, kept as a code so a caller can tell "no configuration ran".
struct CLBlastStatusError: Error, CustomStringConvertible {
    let code: Int32, call: String
    var description: String { clblastFailure(code, call) }
}
