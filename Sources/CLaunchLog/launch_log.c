// See include/launch_log.h. The log is for one thread at a time (kiln-bench records one training
// step); a launch from another thread while recording is still forwarded, but its record may be lost.
#define _GNU_SOURCE
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <string.h>
#include "launch_log.h"

enum { capacity = 4096 };
static kiln_launch entries[capacity];
static size_t count, dropped;
static int recording;
static char current_note[sizeof(entries[0].note)];
static size_t current_elements;

void kiln_launch_log_record(int on) {
    if (on) { count = 0; dropped = 0; current_note[0] = 0; current_elements = 0; }
    recording = on;
}

int kiln_launch_log_recording(void) { return recording; }

void kiln_launch_log_note(const char *note, size_t elements) {
    strncpy(current_note, note ? note : "", sizeof current_note - 1);
    current_elements = elements;
}

size_t kiln_launch_log_count(void) { return count; }
size_t kiln_launch_log_dropped(void) { return dropped; }
kiln_launch kiln_launch_log_entry(size_t i) { return entries[i]; }

typedef cl_int (*enqueue_fn)(cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *,
                             const size_t *, cl_uint, const cl_event *, cl_event *);

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(
        cl_command_queue queue, cl_kernel kernel, cl_uint dims, const size_t *offset, const size_t *global,
        const size_t *local, cl_uint waits, const cl_event *wait_list, cl_event *event) {
    // The next definition after this executable's: the ICD loader's.
    static enqueue_fn forward;
    if (!forward) forward = (enqueue_fn)dlsym(RTLD_NEXT, "clEnqueueNDRangeKernel");
    if (!forward) return CL_INVALID_OPERATION;
    if (recording) {
        if (count == capacity) {
            dropped++;
        } else {
            kiln_launch *e = &entries[count++];
            memset(e, 0, sizeof *e);
            if (clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, sizeof e->kernel - 1, e->kernel, NULL) != CL_SUCCESS)
                strcpy(e->kernel, "?");
            memcpy(e->note, current_note, sizeof e->note);
            e->elements = current_elements;
            e->dimensions = dims < 3 ? dims : 3;
            for (cl_uint d = 0; d < e->dimensions; d++) {
                e->global[d] = global[d];
                e->local[d] = local ? local[d] : 0;
            }
        }
    }
    return forward(queue, kernel, dims, offset, global, local, waits, wait_list, event);
}
