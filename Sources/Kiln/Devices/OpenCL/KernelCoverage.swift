import Foundation

/// Which of Kiln's kernels, in which `-D` variant, a process launched: with `KILN_KERNEL_LOG=FILE` set,
/// the first launch of each kernel and variant appends the line `kernel<TAB>variant` to FILE. The kernel
/// sanitizer (`make kernel-sanitize`) reads it to prove every kernel ran under Oclgrind, so a new kernel
/// cannot escape the check.
final class KernelCoverage: @unchecked Sendable {
    static let shared: KernelCoverage? = ProcessInfo.processInfo.environment["KILN_KERNEL_LOG"].map(KernelCoverage.init)

    private let path: String
    private var seen: Set<String> = []
    private let lock = NSLock()

    private init(path: String) { self.path = path }

    func ran(_ kernel: String, variant: String) throws {
        let line = "\(kernel)\t\(variant)\n"
        guard lock.withLock({ seen.insert(line).inserted }) else { return }
        // Appended, not rewritten: several processes (each parity run) add to one file.
        guard let file = fopen(path, "a") else { throw KilnError("KILN_KERNEL_LOG: cannot write \(path)") }
        defer { fclose(file) }
        guard fputs(line, file) >= 0 else { throw KilnError("KILN_KERNEL_LOG: cannot write \(path)") }
    }
}
