import CCLBlast
import COpenCL

/// Every OpenCL and CLBlast status goes through these checks: a failure becomes a `KilnError` naming
/// the call and the code, e.g. "clCreateBuffer failed: CL_MEM_OBJECT_ALLOCATION_FAILURE (-4)".
func checkCL(_ status: cl_int, _ call: @autoclosure () -> String) throws {
    guard status != CL_SUCCESS else { return }
    throw KilnError("\(call()) failed: \(openCLStatusName(status)) (\(status))")
}

func checkCLBlast(_ status: CLBlastStatusCode, _ call: @autoclosure () -> String) throws {
    guard status != CLBlastSuccess else { return }
    throw KilnError(clblastFailure(status.rawValue, call()))
}

/// "CALL failed: NAME (CODE)" for a CLBlast status.
func clblastFailure(_ code: Int32, _ call: String) -> String {
    // CLBlast passes OpenCL's own codes through unchanged; its own start at -1024.
    let name = code > -1000 ? openCLStatusName(code) : clblastStatusNames[code] ?? "unknown CLBlast status"
    return "\(call) failed: \(name) (\(code))"
}

func openCLStatusName(_ status: cl_int) -> String {
    openCLStatusNames[status] ?? "unknown OpenCL status"
}

private let openCLStatusNames: [cl_int: String] = [
    -1: "CL_DEVICE_NOT_FOUND", -2: "CL_DEVICE_NOT_AVAILABLE", -3: "CL_COMPILER_NOT_AVAILABLE",
    -4: "CL_MEM_OBJECT_ALLOCATION_FAILURE", -5: "CL_OUT_OF_RESOURCES", -6: "CL_OUT_OF_HOST_MEMORY",
    -7: "CL_PROFILING_INFO_NOT_AVAILABLE", -8: "CL_MEM_COPY_OVERLAP", -9: "CL_IMAGE_FORMAT_MISMATCH",
    -10: "CL_IMAGE_FORMAT_NOT_SUPPORTED", -11: "CL_BUILD_PROGRAM_FAILURE", -12: "CL_MAP_FAILURE",
    -13: "CL_MISALIGNED_SUB_BUFFER_OFFSET", -14: "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST",
    -15: "CL_COMPILE_PROGRAM_FAILURE", -16: "CL_LINKER_NOT_AVAILABLE", -17: "CL_LINK_PROGRAM_FAILURE",
    -18: "CL_DEVICE_PARTITION_FAILED", -19: "CL_KERNEL_ARG_INFO_NOT_AVAILABLE",
    -30: "CL_INVALID_VALUE", -31: "CL_INVALID_DEVICE_TYPE", -32: "CL_INVALID_PLATFORM", -33: "CL_INVALID_DEVICE",
    -34: "CL_INVALID_CONTEXT", -35: "CL_INVALID_QUEUE_PROPERTIES", -36: "CL_INVALID_COMMAND_QUEUE",
    -37: "CL_INVALID_HOST_PTR", -38: "CL_INVALID_MEM_OBJECT", -39: "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR",
    -40: "CL_INVALID_IMAGE_SIZE", -41: "CL_INVALID_SAMPLER", -42: "CL_INVALID_BINARY",
    -43: "CL_INVALID_BUILD_OPTIONS", -44: "CL_INVALID_PROGRAM", -45: "CL_INVALID_PROGRAM_EXECUTABLE",
    -46: "CL_INVALID_KERNEL_NAME", -47: "CL_INVALID_KERNEL_DEFINITION", -48: "CL_INVALID_KERNEL",
    -49: "CL_INVALID_ARG_INDEX", -50: "CL_INVALID_ARG_VALUE", -51: "CL_INVALID_ARG_SIZE",
    -52: "CL_INVALID_KERNEL_ARGS", -53: "CL_INVALID_WORK_DIMENSION", -54: "CL_INVALID_WORK_GROUP_SIZE",
    -55: "CL_INVALID_WORK_ITEM_SIZE", -56: "CL_INVALID_GLOBAL_OFFSET", -57: "CL_INVALID_EVENT_WAIT_LIST",
    -58: "CL_INVALID_EVENT", -59: "CL_INVALID_OPERATION", -60: "CL_INVALID_GL_OBJECT",
    -61: "CL_INVALID_BUFFER_SIZE", -62: "CL_INVALID_MIP_LEVEL", -63: "CL_INVALID_GLOBAL_WORK_SIZE",
    -64: "CL_INVALID_PROPERTY", -65: "CL_INVALID_IMAGE_DESCRIPTOR", -66: "CL_INVALID_COMPILER_OPTIONS",
    -67: "CL_INVALID_LINKER_OPTIONS", -68: "CL_INVALID_DEVICE_PARTITION_COUNT",
    -1001: "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL platform: is an ICD installed?)",
]

private let clblastStatusNames: [Int32: String] = [
    -1024: "CLBlastNotImplemented", -1022: "CLBlastInvalidMatrixA", -1021: "CLBlastInvalidMatrixB",
    -1020: "CLBlastInvalidMatrixC", -1019: "CLBlastInvalidVectorX", -1018: "CLBlastInvalidVectorY",
    -1017: "CLBlastInvalidDimension", -1016: "CLBlastInvalidLeadDimA", -1015: "CLBlastInvalidLeadDimB",
    -1014: "CLBlastInvalidLeadDimC", -1013: "CLBlastInvalidIncrementX", -1012: "CLBlastInvalidIncrementY",
    -1011: "CLBlastInsufficientMemoryA", -1010: "CLBlastInsufficientMemoryB", -1009: "CLBlastInsufficientMemoryC",
    -1008: "CLBlastInsufficientMemoryX", -1007: "CLBlastInsufficientMemoryY",
    -2050: "CLBlastInsufficientMemoryTemp", -2049: "CLBlastInvalidBatchCount",
    -2048: "CLBlastInvalidOverrideKernel", -2047: "CLBlastMissingOverrideParameter",
    -2046: "CLBlastInvalidLocalMemUsage", -2045: "CLBlastNoHalfPrecision", -2044: "CLBlastNoDoublePrecision",
    -2043: "CLBlastInvalidVectorScalar", -2042: "CLBlastInsufficientMemoryScalar",
    -2041: "CLBlastDatabaseError", -2040: "CLBlastUnknownError", -2039: "CLBlastUnexpectedError",
]
