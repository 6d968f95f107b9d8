import Foundation

/// Creates the folder `path` and any missing folders above it. A failure is one line naming the folder,
/// `what` it is for and the reason; a file standing where a folder must be is named, since Foundation's
/// own error for it ("NSCocoaErrorDomain Code=516 … already exists") says neither which nor why.
public func createFolder(_ path: String, what: String) throws {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        throw KilnError("\(path): cannot create \(what) (\(fileInTheWay(of: path) ?? fileProblem(error)))")
    }
}

/// Why `path` cannot be a folder, when a file (not a folder) stands at it or at a folder above it:
/// "it is a file, not a folder" or "/a/b is a file, not a folder"; nil otherwise. Links are followed.
public func fileInTheWay(of path: String) -> String? {
    let target = URL(fileURLWithPath: path).standardizedFileURL
    var url = target, chain: [URL] = []
    while url.path != "/" { chain.append(url); url = url.deletingLastPathComponent() }
    for step in chain.reversed() {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: step.path, isDirectory: &isFolder) else { return nil }
        if !isFolder.boolValue { return (step == target ? "it" : step.path) + " is a file, not a folder" }
    }
    return nil
}
