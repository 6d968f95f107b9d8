// See include/launch_log.h. The log is for one thread at a time (kiln-bench records one training
// step); a launch from another thread while recording is still forwarded, but its record may be lost.
#define _GNU_SOURCE
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
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

void kiln_launch_log_capture(void *kernel, unsigned dims, const size_t *global, const size_t *local) {
    if (count == capacity) {
        dropped++;
        return;
    }
    kiln_launch *e = &entries[count++];
    memset(e, 0, sizeof *e);
    if (clGetKernelInfo((cl_kernel)kernel, CL_KERNEL_FUNCTION_NAME, sizeof e->kernel - 1, e->kernel, NULL) != CL_SUCCESS)
        strcpy(e->kernel, "?");
    memcpy(e->note, current_note, sizeof e->note);
    e->elements = current_elements;
    e->dimensions = dims < 3 ? dims : 3;
    for (unsigned d = 0; d < e->dimensions; d++) {
        e->global[d] = global[d];
        e->local[d] = local ? local[d] : 0;
    }
}
