// Oclgrind 21.10 corrupts the heap when an OpenCL object is released during exit(), as CLBlast's
// static program cache does (its ~Cache() calls clReleaseProgram). Oclgrind's API functions push
// their name onto a thread_local std::stack; glibc's exit() destroys thread_locals (__call_tls_dtors)
// before it runs atexit handlers and static destructors, so a later API call writes into the freed
// deque node. No Kiln, no CLBlast: a context and a program, released by an atexit handler.
// Build and run: see README.md.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static cl_int (*getPlatformIDs)(cl_uint, cl_platform_id *, cl_uint *);
static cl_int (*getDeviceIDs)(cl_platform_id, cl_device_type, cl_uint, cl_device_id *, cl_uint *);
static cl_context (*createContext)(const cl_context_properties *, cl_uint, const cl_device_id *,
                                   void (CL_CALLBACK *)(const char *, const void *, size_t, void *), void *, cl_int *);
static cl_program (*createProgramWithSource)(cl_context, cl_uint, const char **, const size_t *, cl_int *);
static cl_int (*releaseProgram)(cl_program);
static cl_int (*releaseContext)(cl_context);

static cl_context context;
static cl_program program;

static void check(cl_int status, const char *what) {
    if (status != CL_SUCCESS) {
        fprintf(stderr, "%s failed: %d\n", what, status);
        exit(1);
    }
}

static void *symbol(void *library, const char *name) {
    void *f = dlsym(library, name);
    if (!f) {
        fprintf(stderr, "no %s\n", name);
        exit(1);
    }
    return f;
}

// What CLBlast's static program cache does at exit: release a program, and with it the context.
static void release_at_exit(void) {
    fprintf(stderr, "atexit: clReleaseProgram\n");
    check(releaseProgram(program), "clReleaseProgram");
    check(releaseContext(context), "clReleaseContext");
    // Sorting the unsorted bin meets the chunk whose links the calls above overwrote.
    free(malloc(4096));
    fprintf(stderr, "atexit: done, no abort\n");
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/usr/lib/oclgrind/liboclgrind-rt.so";
    void *library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);  // as Kiln opens KILN_OPENCL_LIBRARY
    if (!library) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    getPlatformIDs = symbol(library, "clGetPlatformIDs");
    getDeviceIDs = symbol(library, "clGetDeviceIDs");
    createContext = symbol(library, "clCreateContext");
    createProgramWithSource = symbol(library, "clCreateProgramWithSource");
    releaseProgram = symbol(library, "clReleaseProgram");
    releaseContext = symbol(library, "clReleaseContext");

    cl_platform_id platform;
    cl_device_id device;
    cl_int status;
    check(getPlatformIDs(1, &platform, NULL), "clGetPlatformIDs");  // creates Oclgrind's thread_local call stack
    check(getDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL), "clGetDeviceIDs");
    context = createContext(NULL, 1, &device, NULL, NULL, &status);
    check(status, "clCreateContext");
    const char *source = "__kernel void k(__global float *x) { x[get_global_id(0)] = 1.0f; }";
    program = createProgramWithSource(context, 1, &source, NULL, &status);
    check(status, "clCreateProgramWithSource");
    atexit(release_at_exit);

    // Fill glibc's tcache for the call stack's 512-byte deque node, so that exit() frees the node into
    // the unsorted bin, whose list links are the node's first 16 bytes: where the calls above write.
    void *blocks[7];
    for (int i = 0; i < 7; i++) blocks[i] = malloc(512);
    for (int i = 0; i < 7; i++) free(blocks[i]);
    fprintf(stderr, "main: returning\n");
    return 0;
}
