import COpenCLLoader

/// One OpenCL kernel launch, as `LaunchLog` saw it.
public struct KernelLaunch: Codable, Sendable {
    public let kernel: String
    /// The CLBlast call that made the launch, with its shape ("CLBlastSgemm 16×72×73728"); nil for
    /// Kiln's own kernels.
    public let routine: String?
    /// Elements of the largest tensor the launch works on.
    public let elements: Int
    public let workItems: Int
    /// nil when the driver chose the work-group size.
    public let workGroups: Int?

    enum CodingKeys: String, CodingKey {
        case kernel, routine, elements
        case workItems = "work_items", workGroups = "work_groups"
    }
}

/// Records every kernel launch made while a closure runs: Kiln's kernels and the ones CLBlast
/// launches inside its routines (Sources/COpenCLLoader defines `clEnqueueNDRangeKernel` for the whole
/// process). One recording at a time.
public enum LaunchLog {
    public static func record(_ body: () throws -> Void) throws -> [KernelLaunch] {
        kiln_launch_log_record(1)
        defer { kiln_launch_log_record(0) }
        try body()
        guard kiln_launch_log_dropped() == 0 else {
            throw KilnError("the launch log holds \(kiln_launch_log_count()) launches; \(kiln_launch_log_dropped()) more were not recorded")
        }
        return (0..<kiln_launch_log_count()).map { i in
            var entry = kiln_launch_log_entry(i)
            let kernel = withUnsafeBytes(of: &entry.kernel) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let note = withUnsafeBytes(of: &entry.note) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let global = [entry.global.0, entry.global.1, entry.global.2].prefix(Int(entry.dimensions))
            let local = [entry.local.0, entry.local.1, entry.local.2].prefix(Int(entry.dimensions))
            let items = global.reduce(1) { $0 * Int($1) }
            let groups = local.contains(0) ? nil : zip(global, local).reduce(1) { $0 * Int(($1.0 + $1.1 - 1) / $1.1) }
            return KernelLaunch(kernel: kernel, routine: note.isEmpty ? nil : note, elements: entry.elements,
                                workItems: items, workGroups: groups)
        }
    }

    static var isRecording: Bool { kiln_launch_log_recording() != 0 }

    /// Labels the launches that follow (see `KernelLaunch`); `routine` nil for Kiln's own kernels.
    static func note(_ routine: String?, elements: Int) {
        kiln_launch_log_note(routine, elements)
    }
}
