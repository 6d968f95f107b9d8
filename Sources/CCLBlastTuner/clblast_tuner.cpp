#include "clblast_tuner.h"

#include <clblast.h>

#include <cstring>
#include <string>
#include <unordered_map>

#include "opencl_loader.h"

using Parameters = std::unordered_map<std::string, size_t>;

// CLBlast is opened at run time (see opencl_loader.h), so its C++ functions are looked up by their
// mangled names, which their signatures fix (the same in every CLBlast of this API).
using Tune3 = clblast::StatusCode (*)(cl_command_queue *, size_t, size_t, size_t, double, Parameters &);
using Tune2 = clblast::StatusCode (*)(cl_command_queue *, size_t, size_t, double, Parameters &);
using Retrieve = clblast::StatusCode (*)(cl_device_id, const std::string &, clblast::Precision, Parameters &);

#define KILN_MAP "RSt13unordered_mapINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEmSt4hashISB_ESt8equal_toISB_ESaISt4pairIKSB_mEEE"

template <typename F> static F function(const char *name) { return reinterpret_cast<F>(kiln_clblast_symbol(name)); }

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
        const auto up = [](size_t x) { return (x + 127) / 128 * 128; };
        const std::unordered_map<std::string, const char *> three = {
            {"Xgemm", "_ZN7clblast9TuneXgemmIfEENS_10StatusCodeEPP17_cl_command_queuemmmd" KILN_MAP},
            {"XgemmDirect", "_ZN7clblast15TuneXgemmDirectIfEENS_10StatusCodeEPP17_cl_command_queuemmmd" KILN_MAP},
        };
        const std::unordered_map<std::string, const char *> two = {
            {"Copy", "_ZN7clblast8TuneCopyIfEENS_10StatusCodeEPP17_cl_command_queuemmd" KILN_MAP},
            {"Pad", "_ZN7clblast7TunePadIfEENS_10StatusCodeEPP17_cl_command_queuemmd" KILN_MAP},
            {"Transpose", "_ZN7clblast13TuneTransposeIfEENS_10StatusCodeEPP17_cl_command_queuemmd" KILN_MAP},
            {"Padtranspose", "_ZN7clblast16TunePadtransposeIfEENS_10StatusCodeEPP17_cl_command_queuemmd" KILN_MAP},
        };
        if (three.count(name)) {
            const auto tune = function<Tune3>(three.at(name));
            if (!tune) return static_cast<int>(clblast::StatusCode::kNotImplemented);
            // Xgemm's tuner takes only multiples of 128 (the routine pads a product to its tile).
            const bool padded = name == "Xgemm";
            status = tune(&queue, padded ? up(m) : m, padded ? up(n) : n, padded ? up(k) : k, fraction, parameters);
        } else if (two.count(name)) {
            const auto tune = function<Tune2>(two.at(name));
            if (!tune) return static_cast<int>(clblast::StatusCode::kNotImplemented);
            status = tune(&queue, m, n, fraction, parameters);
        } else {
            return static_cast<int>(clblast::StatusCode::kInvalidOverrideKernel);
        }
        if (status != clblast::StatusCode::kSuccess) return static_cast<int>(status);
        return write_parameters(parameters, out, capacity);
    } catch (...) {
        return static_cast<int>(clblast::StatusCode::kUnknownError);
    }
}

extern "C" int kiln_clblast_parameters(cl_device_id device, const char *kernel, char *out, size_t capacity) {
    try {
        Parameters parameters;
        const auto retrieve = function<Retrieve>(
            "_ZN7clblast18RetrieveParametersEP13_cl_device_idRKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEENS_9PrecisionERSt13unordered_mapIS7_mSt4hashIS7_ESt8equal_toIS7_ESaISt4pairIS8_mEEE");
        if (!retrieve) return static_cast<int>(clblast::StatusCode::kNotImplemented);
        const auto status = retrieve(device, kernel, clblast::Precision::kSingle, parameters);
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
