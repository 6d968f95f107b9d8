import COpenCL
import Foundation

/// A built program and its kernels by name.
struct OpenCLProgram {
    let program: cl_program
    let kernels: [String: cl_kernel]

    /// The smallest `CL_KERNEL_WORK_GROUP_SIZE` of the kernels on `device`: registers or local memory can
    /// hold a kernel below the device's own limit.
    func groupLimit(_ device: cl_device_id) throws -> Int {
        var limit = Int.max
        for (name, kernel) in kernels {
            var size = 0
            try checkCL(clGetKernelWorkGroupInfo(kernel, device, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE),
                                                 MemoryLayout<Int>.size, &size, nil), "clGetKernelWorkGroupInfo(\(name))")
            limit = min(limit, size)
        }
        return limit
    }

    func release() {
        for kernel in kernels.values { clReleaseKernel(kernel) }
        clReleaseProgram(program)
    }
}

/// Builds Kiln's programs for one device from `Kernels/*.cl`, through the program cache when there is
/// one: `<cache>/programs/<device>-<hash>.bin` holds the driver's binary (`CL_PROGRAM_BINARIES`), keyed by a hash
/// of the source, the build options, the platform, the device and the driver, so a changed kernel or
/// driver misses. A binary the driver refuses is rebuilt from source and replaced.
final class ProgramBuilder: @unchecked Sendable {
    let context: cl_context
    let info: OpenCLDeviceInfo
    let cache: CacheFolder?
    private let lock = NSLock()
    private var counts = (loaded: 0, compiled: 0)
    private var writeProblem: String?

    init(context: cl_context, info: OpenCLDeviceInfo, cache: CacheFolder?) {
        self.context = context
        self.info = info
        self.cache = cache
    }

    /// The compiled programs `cache` holds for `info`.
    static func cachedCount(in cache: CacheFolder, for info: OpenCLDeviceInfo) -> Int {
        let folder = cache.url.appendingPathComponent("programs").path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let prefix = info.cacheName + "-"
        return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".bin") && $0.count == prefix.count + 16 + 4 }.count
    }

    /// Programs loaded from the cache and compiled from source so far.
    var loaded: Int { lock.withLock { counts.loaded } }
    var compiled: Int { lock.withLock { counts.compiled } }
    /// Why the cache could not be written, if it could not (the run goes on, compiling next time too).
    var cacheProblem: String? { lock.withLock { writeProblem } }

    /// A program from `files`, built with `options`; common.cl (Philox, group_sum), which the others use, goes first.
    func build(_ files: [(name: String, source: String)], options: String) throws -> OpenCLProgram {
        // `#line` keeps build-log line numbers per file.
        let files = files.filter { $0.name == "common.cl" } + files.filter { $0.name != "common.cl" }
        let source = files.map { "#line 1 \"\($0.name)\"\n\($0.source)\n" }.joined()
        let key = Self.key([source, options, info.platformName, info.name, info.driverVersion])
        let file = cache?.file("programs", info.cacheName + "-" + key + ".bin")
        // A cached binary whose kernels cannot be created is treated as refused: rebuilt and replaced.
        if let file, let stored = try? Data(contentsOf: file), let binary = CachedBinary.unwrap(stored),
           let program = fromBinary(binary, options: options) {
            if let kernels = try? kernels(in: program) {
                lock.withLock { counts.loaded += 1 }
                return OpenCLProgram(program: program, kernels: kernels)
            }
            clReleaseProgram(program)
        }
        let program = try fromSource(source, options: options)
        lock.withLock { counts.compiled += 1 }
        if let cache, let file {
            do { try cache.write(CachedBinary.wrap(try binary(of: program)), to: file) } catch {
                lock.withLock { writeProblem = "\(error)" }
            }
        }
        do { return OpenCLProgram(program: program, kernels: try kernels(in: program)) } catch {
            clReleaseProgram(program)
            throw error
        }
    }

    /// FNV-1a over the parts (each followed by a NUL), as 16 hex digits: a cache key, not a security hash.
    static func key(_ parts: [String]) -> String {
        FNV1a.of(parts.flatMap { Array($0.utf8) + [0] }).hex
    }

    private func fromSource(_ source: String, options: String) throws -> cl_program {
        var status: cl_int = 0
        let program = source.withCString { text -> cl_program? in
            var pointer: UnsafePointer<CChar>? = text
            return clCreateProgramWithSource(context, 1, &pointer, nil, &status)
        }
        try checkCL(status, "clCreateProgramWithSource")
        var id: cl_device_id? = info.id
        status = clBuildProgram(program, 1, &id, options, nil, nil)
        if status != CL_SUCCESS {
            let log = buildLog(program)
            clReleaseProgram(program)
            throw KernelBuildError(message: "clBuildProgram failed: \(openCLStatusName(status)) (\(status))", log: log)
        }
        return program!
    }

    /// The program from a cached binary, or nil when the driver refuses it (it is then rebuilt from source).
    private func fromBinary(_ binary: Data, options: String) -> cl_program? {
        var status: cl_int = 0, binaryStatus: cl_int = 0
        var id: cl_device_id? = info.id
        var length = binary.count
        let program = binary.withUnsafeBytes { bytes -> cl_program? in
            var pointer: UnsafePointer<UInt8>? = bytes.bindMemory(to: UInt8.self).baseAddress
            return clCreateProgramWithBinary(context, 1, &id, &length, &pointer, &binaryStatus, &status)
        }
        guard let program, status == CL_SUCCESS, binaryStatus == CL_SUCCESS else {
            if let program { clReleaseProgram(program) }
            return nil
        }
        guard clBuildProgram(program, 1, &id, options, nil, nil) == CL_SUCCESS else {
            clReleaseProgram(program)
            return nil
        }
        return program
    }

    /// The device binary of a built program (one device, so one binary).
    private func binary(of program: cl_program) throws -> Data {
        var size = 0
        try checkCL(clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil),
                    "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)")
        guard size > 0 else { throw KilnError("the driver gives no program binary to cache") }
        var binary = Data(count: size)
        try binary.withUnsafeMutableBytes { bytes in
            var pointer: UnsafeMutableRawPointer? = bytes.baseAddress
            try checkCL(clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutableRawPointer?>.size,
                                         &pointer, nil), "clGetProgramInfo(CL_PROGRAM_BINARIES)")
        }
        return binary
    }

    private func buildLog(_ program: cl_program?) -> String {
        (try? queryString("clGetProgramBuildInfo") {
            clGetProgramBuildInfo(program, info.id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), $0, $1, $2)
        }) ?? "(no build log)"
    }

    private func kernels(in program: cl_program) throws -> [String: cl_kernel] {
        var count: cl_uint = 0
        try checkCL(clCreateKernelsInProgram(program, 0, nil, &count), "clCreateKernelsInProgram")
        var handles = [cl_kernel?](repeating: nil, count: Int(count))
        try checkCL(clCreateKernelsInProgram(program, count, &handles, nil), "clCreateKernelsInProgram")
        var result: [String: cl_kernel] = [:]
        for case let kernel? in handles {
            let name = try queryString("clGetKernelInfo") { clGetKernelInfo(kernel, cl_kernel_info(CL_KERNEL_FUNCTION_NAME), $0, $1, $2) }
            result[name] = kernel
        }
        return result
    }
}

/// A kernel program that did not build: the message for one line, the compiler's log for `--verbose`.
public struct KernelBuildError: Error, CustomStringConvertible {
    public let message: String
    public let log: String
    public var description: String { message }
}

/// A program binary as the cache stores it: a magic, the binary's length and its checksum, then the
/// binary. A file cut short or altered is then rebuilt from source, never handed to the driver, which
/// may crash on it (PoCL does, on a truncated binary).
enum CachedBinary {
    static let magic = Array("KILNBIN1".utf8)

    static func wrap(_ binary: Data) -> Data {
        var length = UInt64(binary.count).littleEndian, sum = FNV1a.of(binary).value.littleEndian
        return Data(magic) + Data(bytes: &length, count: 8) + Data(bytes: &sum, count: 8) + binary
    }

    /// The binary, or nil when the file is not one whole, unaltered entry.
    static func unwrap(_ file: Data) -> Data? {
        let header = magic.count + 16
        guard file.count >= header, Array(file.prefix(magic.count)) == magic else { return nil }
        func word(_ at: Int) -> UInt64 { file.dropFirst(at).prefix(8).reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        let binary = file.dropFirst(header)
        guard word(magic.count) == UInt64(binary.count), word(magic.count + 8) == FNV1a.of(binary).value else { return nil }
        return Data(binary)
    }
}
