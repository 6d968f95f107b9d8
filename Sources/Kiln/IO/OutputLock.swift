import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A run's claim on a file it writes as it goes (a checkpoint, a log): a second run naming the same
/// file would otherwise replace the first's epochs with its own while both exit 0. The claim is `flock`
/// on a hidden file beside it (`.NAME.lock`, removed on release); the kernel drops the lock when the
/// process dies, so a killed run leaves at most an unlocked file, which the next run takes over.
public final class OutputLock {
    private let path: String, fd: Int32

    /// Claims `target` (links followed) or throws one line naming `flag` and the process that holds it.
    public init(_ target: String, flag: String) throws {
        let file = URL(fileURLWithPath: target).resolvingSymlinksInPath()
        path = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).lock").path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw KilnError("\(flag) \(target): cannot create its lock file \(path) (\(String(cString: strerror(errno))))") }
        // A run that is ending (a rank that mpirun is still taking down after its job failed) lets go
        // within moments: try for five seconds before refusing.
        var locked = flock(fd, LOCK_EX | LOCK_NB) == 0, tries = 0
        while !locked, errno == EWOULDBLOCK || errno == EINTR, tries < 50 {
            usleep(100_000)
            tries += 1
            locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        }
        guard locked else {
            let reason = errno == EWOULDBLOCK ? nil : String(cString: strerror(errno))
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            if let reason { throw KilnError("\(flag) \(target): cannot lock \(path) (\(reason))") }
            throw KilnError("\(flag) \(target) is being written by another kiln run\(holder.isEmpty ? "" : " (process \(holder))"): "
                            + "wait for it to end or name another file")
        }
        let pid = Array("\(getpid())\n".utf8)
        // The holder's pid, for the message above; the lock works without it.
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit {
        unlink(path)
        close(fd)
    }
}
