import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes `data` to `path` so that neither a reader nor a crash ever sees half a file: into a temporary
/// file beside it (`.NAME.kiln-PID.tmp`), flushed to disk (fsync), renamed over `path`, and the folder
/// flushed so the rename itself survives a power cut. Temporary files that an earlier, killed writer left
/// for the same `path` are removed first. A symbolic link at `path` is followed: its target is replaced
/// and the link kept. A failure is one line naming the file, `what` it is and the system's reason.
public func writeAtomically(_ data: Data, to path: String, what: String) throws {
    let target = URL(fileURLWithPath: path).resolvingSymlinksInPath()
    let folder = target.deletingLastPathComponent().path, name = target.lastPathComponent
    func fail(_ reason: String) -> KilnError { KilnError("\(path): cannot write \(what) (\(reason))") }
    func systemError() -> KilnError { fail(String(cString: strerror(errno))) }
    removeStaleTemporaries(of: name, in: folder)
    let temporary = "\(folder)/.\(name).kiln-\(getpid()).tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw systemError() }
    var written = 0
    let wroteAll = data.withUnsafeBytes { raw -> Bool in
        while written < raw.count {
            let n = write(fd, raw.baseAddress! + written, raw.count - written)
            if n < 0 { if errno == EINTR { continue }; return false }
            written += n
        }
        return true
    }
    let problem = !wroteAll || fsync(fd) != 0 ? systemError() : nil
    close(fd)
    if let problem {
        unlink(temporary)
        throw problem
    }
    guard rename(temporary, target.path) == 0 else {
        let error = systemError()
        unlink(temporary)
        throw error
    }
    let folderFD = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if folderFD >= 0 { fsync(folderFD); close(folderFD) }
}

/// Removes `.NAME.kiln-PID.tmp` files whose writer (PID) is gone: what a kill during a write leaves.
private func removeStaleTemporaries(of name: String, in folder: String) {
    let prefix = ".\(name).kiln-"
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
    for entry in entries where entry.hasPrefix(prefix) && entry.hasSuffix(".tmp") {
        guard let pid = Int32(entry.dropFirst(prefix.count).dropLast(4)), pid == getpid() || (kill(pid, 0) != 0 && errno == ESRCH) else { continue }
        unlink("\(folder)/\(entry)")
    }
}

/// The system's reason behind a Foundation file error ("Permission denied", "No space left on device"),
/// not the wrapper's "The operation could not be completed".
public func fileProblem(_ error: Error) -> String {
    let error = error as NSError
    if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
    return error.localizedDescription
}
