import Foundation

/// Where Kiln keeps what it learns about OpenCL devices between runs: CLBlast parameters from `kiln tune`
/// (`clblast/`) and compiled kernel programs (`programs/`). Deleting it loses nothing but time.
public struct CacheFolder: Sendable, Equatable {
    public let url: URL

    public init(_ path: String) { url = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL }

    /// `explicit` (`--cache-dir`), else `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`;
    /// nil when none of them names a folder (no home directory).
    public static func resolve(_ explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> CacheFolder? {
        if let explicit { return CacheFolder(explicit) }
        if let path = environment["KILN_CACHE_DIR"], !path.isEmpty { return CacheFolder(path) }
        if let path = environment["XDG_CACHE_HOME"], !path.isEmpty { return CacheFolder(path + "/kiln") }
        if let home = environment["HOME"], !home.isEmpty { return CacheFolder(home + "/.cache/kiln") }
        return nil
    }

    /// The file `name` in subfolder `folder`.
    func file(_ folder: String, _ name: String) -> URL {
        url.appendingPathComponent(folder, isDirectory: true).appendingPathComponent(name)
    }

    /// Throws unless a file can be written in subfolder `folder` (by writing and removing one): `kiln tune`
    /// asks before it spends its budget, not after.
    public func checkWritable(_ folder: String) throws {
        let probe = file(folder, ".kiln-probe-\(getpid())")
        try write(Data(), to: probe)
        try? FileManager.default.removeItem(at: probe)
    }

    /// Writes `data` to `file` atomically, creating its folder.
    func write(_ data: Data, to file: URL) throws {
        try createFolder(file.deletingLastPathComponent().path, what: "the cache folder")
        try writeAtomically(data, to: file.path, what: "a cache file")
    }
}
