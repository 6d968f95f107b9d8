import Foundation

/// Writes `data` to `path` through a temporary file in the same folder and a rename, so neither a reader
/// nor a crash ever sees half a file. A symbolic link at `path` is followed: its target is replaced and
/// the link kept. A failure is one line naming the file, `what` it is and the system's reason.
public func writeAtomically(_ data: Data, to path: String, what: String) throws {
    let url = URL(fileURLWithPath: path).resolvingSymlinksInPath()
    do { try data.write(to: url, options: .atomic) } catch {
        throw KilnError("\(path): cannot write \(what) (\(fileProblem(error)))")
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
