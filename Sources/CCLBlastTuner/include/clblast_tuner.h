// CLBlast's tuners and parameter queries exist only in its C++ API (clblast.h); this is the C face
// Swift calls. Parameters travel as text, "NAME=VALUE NAME=VALUE …", so no C++ type crosses over.
#ifndef KILN_CLBLAST_TUNER_H
#define KILN_CLBLAST_TUNER_H
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Tunes CLBlast's single-precision kernel `kernel` ("Xgemm", "XgemmDirect", "Copy", "Pad", "Transpose",
// "Padtranspose") on `queue`'s device at size m×n×k (k unused by the helper kernels), trying `fraction`
// of its search space (the same configurations first on every call). Writes the best parameters into
// `out`. Returns CLBlast's status code (0 on success).
int kiln_clblast_tune(cl_command_queue queue, const char *kernel, size_t m, size_t n, size_t k, double fraction,
                      char *out, size_t capacity);

// The parameters CLBlast uses for single-precision `kernel` on `device` now: its database entry, or
// what an override set. Returns CLBlast's status code.
int kiln_clblast_parameters(cl_device_id device, const char *kernel, char *out, size_t capacity);

// The CLBlast version these headers describe, "1.5.3".
const char *kiln_clblast_version(void);

#ifdef __cplusplus
}
#endif
#endif
