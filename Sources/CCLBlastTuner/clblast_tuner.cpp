#include "clblast_tuner.h"

#include <clblast.h>

#include <cstring>
#include <string>
#include <unordered_map>

using Parameters = std::unordered_map<std::string, size_t>;

// "NAME=VALUE …" into `out` (NUL-terminated); kInsufficientMemoryTemp when it does not fit.
static int write_parameters(const Parameters &parameters, char *out, size_t capacity) {
    std::string text;
    for (const auto &entry : parameters) {
        if (!text.empty()) text += ' ';
        text += entry.first + '=' + std::to_string(entry.second);
    }
    if (text.size() + 1 > capacity) return static_cast<int>(clblast::StatusCode::kInsufficientMemoryTemp);
    std::memcpy(out, text.c_str(), text.size() + 1);
    return 0;
}

extern "C" int kiln_clblast_tune(cl_command_queue queue, const char *kernel, size_t m, size_t n, size_t k,
                                 double fraction, char *out, size_t capacity) {
    // CLBlast reports through status codes, but a C++ exception must never unwind into Swift.
    try {
        Parameters parameters;
        const std::string name = kernel;
        clblast::StatusCode status;
        // Xgemm's tuner takes only multiples of 128 (the routine pads a product to its tile), so the
        // size is rounded up to them.
        const auto up = [](size_t x) { return (x + 127) / 128 * 128; };
        if (name == "Xgemm") status = clblast::TuneXgemm<float>(&queue, up(m), up(n), up(k), fraction, parameters);
        else if (name == "XgemmDirect") status = clblast::TuneXgemmDirect<float>(&queue, m, n, k, fraction, parameters);
        else if (name == "Copy") status = clblast::TuneCopy<float>(&queue, m, n, fraction, parameters);
        else if (name == "Pad") status = clblast::TunePad<float>(&queue, m, n, fraction, parameters);
        else if (name == "Transpose") status = clblast::TuneTranspose<float>(&queue, m, n, fraction, parameters);
        else if (name == "Padtranspose") status = clblast::TunePadtranspose<float>(&queue, m, n, fraction, parameters);
        else return static_cast<int>(clblast::StatusCode::kInvalidOverrideKernel);
        if (status != clblast::StatusCode::kSuccess) return static_cast<int>(status);
        return write_parameters(parameters, out, capacity);
    } catch (...) {
        return static_cast<int>(clblast::StatusCode::kUnknownError);
    }
}

extern "C" int kiln_clblast_parameters(cl_device_id device, const char *kernel, char *out, size_t capacity) {
    try {
        Parameters parameters;
        const auto status = clblast::RetrieveParameters(device, kernel, clblast::Precision::kSingle, parameters);
        if (status != clblast::StatusCode::kSuccess) return static_cast<int>(status);
        return write_parameters(parameters, out, capacity);
    } catch (...) {
        return static_cast<int>(clblast::StatusCode::kUnknownError);
    }
}

#define KILN_TEXT(x) #x
#define KILN_VERSION(a, b, c) KILN_TEXT(a) "." KILN_TEXT(b) "." KILN_TEXT(c)

extern "C" const char *kiln_clblast_version(void) {
    return KILN_VERSION(CLBLAST_VERSION_MAJOR, CLBLAST_VERSION_MINOR, CLBLAST_VERSION_PATCH);
}
