import COpenCL
import COpenCLLoader
import Foundation

/// One OpenCL device as the ICD loader reports it, addressed as `opencl:P.D` (platform P, device D).
public struct OpenCLDeviceInfo: Sendable {
    public let platformIndex: Int, deviceIndex: Int
    public let platformName: String
    public let name: String
    public let isGPU: Bool, isCPU: Bool
    public let typeName: String
    public let computeUnits: Int
    public let globalMemoryBytes: UInt64
    public let openCLCVersion: String
    public let driverVersion: String
    public let maxWorkGroupSize: Int
    nonisolated(unsafe) let id: cl_device_id

    public var address: String { "opencl:\(platformIndex).\(deviceIndex)" }

    /// Platform and device as a file name ("Portable-Computing-Language-pthread-haswell-AMD-EPYC"): the
    /// cache's files for this device start with it.
    public var cacheName: String {
        (platformName + " " + name).split { !$0.isLetter && !$0.isNumber }.joined(separator: "-")
    }
}

/// Enumerates platforms and devices. Throws (with the failing call) when the OpenCL library cannot be
/// loaded, or there is no ICD loader configuration or no platform; a platform whose device query fails
/// is listed as having none.
public enum OpenCLPlatforms {
    /// Opens libOpenCL.so.1 ($KILN_OPENCL_LIBRARY overrides the name) on first use: Kiln does not link it.
    static func loadLibrary() throws {
        if let problem = kiln_opencl_open() { throw KilnError("cannot load the OpenCL library: \(String(cString: problem))") }
    }

    /// Opens libclblast.so.1 ($KILN_CLBLAST_LIBRARY overrides the name) on first use.
    static func loadCLBlast() throws {
        if let problem = kiln_clblast_open() { throw KilnError("cannot load CLBlast: \(String(cString: problem))") }
    }

    public static func devices() throws -> [OpenCLDeviceInfo] {
        try loadLibrary()
        var count: cl_uint = 0
        try checkCL(clGetPlatformIDs(0, nil, &count), "clGetPlatformIDs")
        var platforms = [cl_platform_id?](repeating: nil, count: Int(count))
        try checkCL(clGetPlatformIDs(count, &platforms, nil), "clGetPlatformIDs")
        var result: [OpenCLDeviceInfo] = []
        for (p, platform) in platforms.enumerated() {
            var deviceCount: cl_uint = 0
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &deviceCount) == CL_SUCCESS,
                  deviceCount > 0 else { continue }
            var ids = [cl_device_id?](repeating: nil, count: Int(deviceCount))
            try checkCL(clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), deviceCount, &ids, nil), "clGetDeviceIDs")
            let platformName = try platformString(platform, CL_PLATFORM_NAME)
            for (d, id) in ids.enumerated() {
                guard let id else { continue }
                let type: cl_device_type = try deviceValue(id, CL_DEVICE_TYPE)
                let units: cl_uint = try deviceValue(id, CL_DEVICE_MAX_COMPUTE_UNITS)
                let group: Int = try deviceValue(id, CL_DEVICE_MAX_WORK_GROUP_SIZE)
                result.append(OpenCLDeviceInfo(
                    platformIndex: p, deviceIndex: d, platformName: platformName,
                    name: try deviceString(id, CL_DEVICE_NAME),
                    isGPU: type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0,
                    isCPU: type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0,
                    typeName: typeName(type), computeUnits: Int(units),
                    globalMemoryBytes: try deviceValue(id, CL_DEVICE_GLOBAL_MEM_SIZE),
                    openCLCVersion: try deviceString(id, CL_DEVICE_OPENCL_C_VERSION),
                    driverVersion: try deviceString(id, CL_DRIVER_VERSION), maxWorkGroupSize: group, id: id))
            }
        }
        return result
    }

    private static func typeName(_ type: cl_device_type) -> String {
        if type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 { return "GPU" }
        if type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 { return "CPU" }
        if type & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 { return "accelerator" }
        return "other"
    }

    private static func platformString(_ platform: cl_platform_id?, _ parameter: Int32) throws -> String {
        try queryString("clGetPlatformInfo") { clGetPlatformInfo(platform, cl_platform_info(parameter), $0, $1, $2) }
    }

    static func deviceString(_ id: cl_device_id, _ parameter: Int32) throws -> String {
        try queryString("clGetDeviceInfo") { clGetDeviceInfo(id, cl_device_info(parameter), $0, $1, $2) }
    }

    static func deviceValue<T: BinaryInteger>(_ id: cl_device_id, _ parameter: Int32) throws -> T {
        var value: T = 0
        try withUnsafeMutableBytes(of: &value) {
            try checkCL(clGetDeviceInfo(id, cl_device_info(parameter), $0.count, $0.baseAddress, nil), "clGetDeviceInfo")
        }
        return value
    }
}

/// A string through a `clGet*Info` query: the size first, then the bytes (NUL-terminated).
func queryString(_ call: String, _ query: (Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> cl_int) throws -> String {
    var size = 0
    try checkCL(query(0, nil, &size), call)
    var bytes = [UInt8](repeating: 0, count: size + 1)
    try checkCL(bytes.withUnsafeMutableBytes { query(size, $0.baseAddress, nil) }, call)
    return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
}
