// Kiln loads the OpenCL ICD loader (libOpenCL.so.1) and CLBlast (libclblast.so.1) with dlopen at first
// use instead of linking them, so that the CPU path, `kiln summary` and `kiln eval --device cpu` run on
// a machine without them. This target defines the OpenCL and CLBlast C functions Kiln calls; each
// forwards to the library's own, resolved when the library is opened.
#ifndef KILN_OPENCL_LOADER_H
#define KILN_OPENCL_LOADER_H

#ifdef __cplusplus
extern "C" {
#endif

// Opens libOpenCL.so.1 (or $KILN_OPENCL_LIBRARY) and resolves every function Kiln uses. Returns NULL
// on success (also when already open), or why it failed, e.g. the loader's dlerror().
const char *kiln_opencl_open(void);

// Opens libclblast.so.1 (or $KILN_CLBLAST_LIBRARY) the same way, after kiln_opencl_open. CLBlast's program
// cache is emptied when the calling thread exits, before exit() would release it too late for Oclgrind.
const char *kiln_clblast_open(void);

// A symbol of the opened CLBlast, for its C++ API (the tuner shim); NULL when absent or not open.
void *kiln_clblast_symbol(const char *name);

#ifdef __cplusplus
}
#endif

#endif
