// See include/opencl_loader.h. Every function below has the prototype of its declaration in CL/cl.h
// or clblast_c.h (the compiler checks), and forwards to the pointer resolved by kiln_*_open. Before a
// successful open it fails as the API does: CL_INVALID_PLATFORM, or a NULL object with that error code.
#define _GNU_SOURCE
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <clblast_c.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include "opencl_loader.h"
#include "launch_log.h"

// X(return type, name, parameters, arguments): functions returning a status.
#define KILN_STATUS_FUNCTIONS(X) \
    X(cl_int, clGetPlatformIDs, (cl_uint a, cl_platform_id *b, cl_uint *c), (a, b, c)) \
    X(cl_int, clGetPlatformInfo, (cl_platform_id a, cl_platform_info b, size_t c, void *d, size_t *e), (a, b, c, d, e)) \
    X(cl_int, clGetDeviceIDs, (cl_platform_id a, cl_device_type b, cl_uint c, cl_device_id *d, cl_uint *e), (a, b, c, d, e)) \
    X(cl_int, clGetDeviceInfo, (cl_device_id a, cl_device_info b, size_t c, void *d, size_t *e), (a, b, c, d, e)) \
    X(cl_int, clReleaseMemObject, (cl_mem a), (a)) \
    X(cl_int, clBuildProgram, (cl_program a, cl_uint b, const cl_device_id *c, const char *d, \
                               void (CL_CALLBACK *e)(cl_program, void *), void *f), (a, b, c, d, e, f)) \
    X(cl_int, clGetProgramInfo, (cl_program a, cl_program_info b, size_t c, void *d, size_t *e), (a, b, c, d, e)) \
    X(cl_int, clGetProgramBuildInfo, (cl_program a, cl_device_id b, cl_program_build_info c, size_t d, void *e, size_t *f), \
      (a, b, c, d, e, f)) \
    X(cl_int, clReleaseProgram, (cl_program a), (a)) \
    X(cl_int, clCreateKernelsInProgram, (cl_program a, cl_uint b, cl_kernel *c, cl_uint *d), (a, b, c, d)) \
    X(cl_int, clGetKernelInfo, (cl_kernel a, cl_kernel_info b, size_t c, void *d, size_t *e), (a, b, c, d, e)) \
    X(cl_int, clGetKernelWorkGroupInfo, (cl_kernel a, cl_device_id b, cl_kernel_work_group_info c, size_t d, void *e, size_t *f), \
      (a, b, c, d, e, f)) \
    X(cl_int, clReleaseKernel, (cl_kernel a), (a)) \
    X(cl_int, clSetKernelArg, (cl_kernel a, cl_uint b, size_t c, const void *d), (a, b, c, d)) \
    X(cl_int, clEnqueueWriteBuffer, (cl_command_queue a, cl_mem b, cl_bool c, size_t d, size_t e, const void *f, cl_uint g, \
                                     const cl_event *h, cl_event *i), (a, b, c, d, e, f, g, h, i)) \
    X(cl_int, clEnqueueReadBuffer, (cl_command_queue a, cl_mem b, cl_bool c, size_t d, size_t e, void *f, cl_uint g, \
                                    const cl_event *h, cl_event *i), (a, b, c, d, e, f, g, h, i)) \
    X(cl_int, clEnqueueFillBuffer, (cl_command_queue a, cl_mem b, const void *c, size_t d, size_t e, size_t f, cl_uint g, \
                                    const cl_event *h, cl_event *i), (a, b, c, d, e, f, g, h, i)) \
    X(cl_int, clEnqueueCopyBuffer, (cl_command_queue a, cl_mem b, cl_mem c, size_t d, size_t e, size_t f, cl_uint g, \
                                    const cl_event *h, cl_event *i), (a, b, c, d, e, f, g, h, i)) \
    X(cl_int, clFinish, (cl_command_queue a), (a))

// Functions returning an object, whose last parameter is the error code.
#define KILN_OBJECT_FUNCTIONS(X) \
    X(cl_context, clCreateContext, (const cl_context_properties *a, cl_uint b, const cl_device_id *c, \
                                    void (CL_CALLBACK *d)(const char *, const void *, size_t, void *), void *e, cl_int *error), \
      (a, b, c, d, e, error)) \
    X(cl_command_queue, clCreateCommandQueue, (cl_context a, cl_device_id b, cl_command_queue_properties c, cl_int *error), \
      (a, b, c, error)) \
    X(cl_mem, clCreateBuffer, (cl_context a, cl_mem_flags b, size_t c, void *d, cl_int *error), (a, b, c, d, error)) \
    X(cl_mem, clCreateSubBuffer, (cl_mem a, cl_mem_flags b, cl_buffer_create_type c, const void *d, cl_int *error), \
      (a, b, c, d, error)) \
    X(cl_program, clCreateProgramWithSource, (cl_context a, cl_uint b, const char **c, const size_t *d, cl_int *error), \
      (a, b, c, d, error)) \
    X(cl_program, clCreateProgramWithBinary, (cl_context a, cl_uint b, const cl_device_id *c, const size_t *d, \
                                              const unsigned char **e, cl_int *f, cl_int *error), (a, b, c, d, e, f, error))

#define KILN_CLBLAST_FUNCTIONS(X) \
    X(CLBlastStatusCode, CLBlastSgemm, (const CLBlastLayout a, const CLBlastTranspose b, const CLBlastTranspose c, \
        const size_t d, const size_t e, const size_t f, const float g, const cl_mem h, const size_t i, const size_t j, \
        const cl_mem k, const size_t l, const size_t m, const float n, cl_mem o, const size_t p, const size_t q, \
        cl_command_queue *r, cl_event *s), (a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s)) \
    X(CLBlastStatusCode, CLBlastSgemmStridedBatched, (const CLBlastLayout a, const CLBlastTranspose b, const CLBlastTranspose c, \
        const size_t d, const size_t e, const size_t f, const float g, const cl_mem h, const size_t i, const size_t j, \
        const size_t k, const cl_mem l, const size_t m, const size_t n, const size_t o, const float p, cl_mem q, \
        const size_t r, const size_t s, const size_t t, const size_t u, cl_command_queue *v, cl_event *w), \
      (a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w)) \
    X(CLBlastStatusCode, CLBlastOverrideParameters, (const cl_device_id a, const char *b, const CLBlastPrecision c, \
        const size_t d, const char **e, const size_t *f), (a, b, c, d, e, f)) \
    X(CLBlastStatusCode, CLBlastClearCache, (void), ())

typedef cl_int (*clEnqueueNDRangeKernel_fn)(cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *,
                                            const size_t *, cl_uint, const cl_event *, cl_event *);
static clEnqueueNDRangeKernel_fn clEnqueueNDRangeKernel_ptr;

#define KILN_POINTER(type, name, parameters, arguments) \
    typedef type(*name##_fn) parameters; \
    static name##_fn name##_ptr;
KILN_STATUS_FUNCTIONS(KILN_POINTER)
KILN_OBJECT_FUNCTIONS(KILN_POINTER)
KILN_CLBLAST_FUNCTIONS(KILN_POINTER)

#define KILN_STATUS(type, name, parameters, arguments) \
    CL_API_ENTRY type CL_API_CALL name parameters { \
        return name##_ptr ? name##_ptr arguments : CL_INVALID_PLATFORM; \
    }
#define KILN_OBJECT(type, name, parameters, arguments) \
    CL_API_ENTRY type CL_API_CALL name parameters { \
        if (name##_ptr) return name##_ptr arguments; \
        if (error) *error = CL_INVALID_PLATFORM; \
        return NULL; \
    }
#define KILN_CLBLAST(type, name, parameters, arguments) \
    type name parameters { return name##_ptr ? name##_ptr arguments : CLBlastInvalidLocalMemUsage; }
KILN_STATUS_FUNCTIONS(KILN_STATUS)
KILN_OBJECT_FUNCTIONS(KILN_OBJECT)
KILN_CLBLAST_FUNCTIONS(KILN_CLBLAST)

// Every launch, Kiln's and CLBlast's (the executable exports this symbol, so the loaded CLBlast calls it
// too), passes the launch log on its way to the driver.
CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(
        cl_command_queue queue, cl_kernel kernel, cl_uint dims, const size_t *offset, const size_t *global,
        const size_t *local, cl_uint waits, const cl_event *wait_list, cl_event *event) {
    if (!clEnqueueNDRangeKernel_ptr) return CL_INVALID_PLATFORM;
    if (kiln_launch_log_recording()) kiln_launch_log_capture(kernel, dims, global, local);
    return clEnqueueNDRangeKernel_ptr(queue, kernel, dims, offset, global, local, waits, wait_list, event);
}

static void *opencl_library, *clblast_library;
static char problem[1024];

// Opens $variable (or `fallback`) and resolves the functions `resolve` lists into their pointers.
static void *open_library(const char *variable, const char *fallback) {
    const char *name = getenv(variable);
    if (!name || !*name) name = fallback;
    void *library = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (!library) snprintf(problem, sizeof problem, "%s", dlerror());
    return library;
}

#define KILN_RESOLVE(type, name, parameters, arguments) \
    if (!(name##_ptr = (name##_fn)dlsym(library, #name))) missing = #name;

const char *kiln_opencl_open(void) {
    if (opencl_library) return NULL;
    void *library = open_library("KILN_OPENCL_LIBRARY", "libOpenCL.so.1");
    if (!library) return problem;
    const char *missing = NULL;
    KILN_STATUS_FUNCTIONS(KILN_RESOLVE)
    KILN_OBJECT_FUNCTIONS(KILN_RESOLVE)
    if (!(clEnqueueNDRangeKernel_ptr = (clEnqueueNDRangeKernel_fn)dlsym(library, "clEnqueueNDRangeKernel"))) missing = "clEnqueueNDRangeKernel";
    if (missing) {
        snprintf(problem, sizeof problem, "the OpenCL library has no %s", missing);
        return problem;
    }
    opencl_library = library;
    return NULL;
}

// CLBlast releases its cached programs from a static destructor at exit. Oclgrind's API functions push
// onto a thread_local call stack, which exit() destroys before static destructors run, so those calls
// write into freed memory and glibc aborts ("corrupted double-linked list"; benchmarks/oclgrind/repro.c
// shows it without Kiln). Thread_local destructors run in reverse order of registration: one registered
// after Oclgrind's stack exists empties CLBlast's cache while the stack is still alive.
extern int __cxa_thread_atexit_impl(void (*destructor)(void *), void *object, void *dso);
extern void *__dso_handle;

static void clear_clblast_cache(void *unused) {
    (void)unused;
    CLBlastClearCache_ptr();  // at exit there is no one to report a failure to
}

static const char *clear_clblast_cache_at_exit(void) {
    cl_uint platforms;
    // Any call makes this thread's Oclgrind call stack, so that it is registered before our destructor.
    cl_int status = clGetPlatformIDs_ptr(0, NULL, &platforms);
    if (status != CL_SUCCESS) {
        snprintf(problem, sizeof problem, "clGetPlatformIDs failed (%d)", status);
        return problem;
    }
    if (__cxa_thread_atexit_impl(clear_clblast_cache, NULL, &__dso_handle) != 0) return "cannot register CLBlast's cache release at exit";
    return NULL;
}

const char *kiln_clblast_open(void) {
    if (clblast_library) return NULL;
    const char *opencl = kiln_opencl_open();
    if (opencl) return opencl;
    void *library = open_library("KILN_CLBLAST_LIBRARY", "libclblast.so.1");
    if (!library) return problem;
    const char *missing = NULL;
    KILN_CLBLAST_FUNCTIONS(KILN_RESOLVE)
    if (missing) {
        snprintf(problem, sizeof problem, "the CLBlast library has no %s", missing);
        return problem;
    }
    const char *registration = clear_clblast_cache_at_exit();
    if (registration) return registration;
    clblast_library = library;
    return NULL;
}

void *kiln_clblast_symbol(const char *name) { return clblast_library ? dlsym(clblast_library, name) : NULL; }
