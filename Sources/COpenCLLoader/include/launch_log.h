// A log of OpenCL kernel launches, for `kiln-bench --profile`. The loader's clEnqueueNDRangeKernel
// (opencl_loader.c) sees every launch, Kiln's own and those inside libclblast, and hands it to
// `kiln_launch_log_capture` while the log records.
#ifndef KILN_LAUNCH_LOG_H
#define KILN_LAUNCH_LOG_H
#include <stddef.h>

/// One launch: the kernel's name, the note in force (which CLBlast call and shape Kiln made; empty
/// for Kiln's own kernels), the element count of the largest tensor the launch works on, and the
/// NDRange. `local` is 0 in every dimension when the driver chose it.
typedef struct {
    char kernel[64];
    char note[96];
    size_t elements;
    unsigned dimensions;
    size_t global[3];
    size_t local[3];
} kiln_launch;

/// Clears the log and starts recording (or stops, keeping what was recorded).
void kiln_launch_log_record(int on);
/// Whether launches are being recorded (callers skip building notes when not).
int kiln_launch_log_recording(void);
/// Labels the launches that follow until the next note: `note` (copied; NULL for none) and the
/// element count of the largest tensor they work on.
void kiln_launch_log_note(const char *note, size_t elements);
/// Launches recorded since the log was cleared (at most the log's capacity; see `dropped`).
size_t kiln_launch_log_count(void);
/// Launches that did not fit.
size_t kiln_launch_log_dropped(void);
/// The i-th launch, i < count.
kiln_launch kiln_launch_log_entry(size_t i);
/// Records one launch of `kernel` (a cl_kernel) with its NDRange (called by the loader while recording).
void kiln_launch_log_capture(void *kernel, unsigned dims, const size_t *global, const size_t *local);

#endif
