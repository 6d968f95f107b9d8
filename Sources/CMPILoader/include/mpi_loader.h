// Kiln opens Open MPI (libmpi.so.40) with dlopen when a run starts under mpirun, instead of linking it,
// so that Kiln builds and runs without Open MPI. MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …)
// are macros over Open MPI's global structs, which Swift cannot import: these functions take plain
// numbers and pointers and pass the handles themselves. Every function returns an MPI error code
// (0 for success) unless said otherwise.
#ifndef KILN_MPI_LOADER_H
#define KILN_MPI_LOADER_H
#include <stddef.h>

/// Opens `path` (NULL: libmpi.so.40) and resolves the functions and handles below. Returns 0, or -1
/// with the reason in `error`.
int kiln_mpi_open(const char *path, char *error, size_t length);
/// MPI_Init, with errors returned instead of aborting (MPI_ERRORS_RETURN on MPI_COMM_WORLD); the
/// process's rank and the number of processes.
int kiln_mpi_init(int *rank, int *size);
/// In-place sums over every rank of MPI_COMM_WORLD.
int kiln_mpi_sum_floats(float *values, int count);
int kiln_mpi_sum_doubles(double *values, int count);
/// The largest value over every rank, in place.
int kiln_mpi_max_doubles(double *values, int count);
/// `count` bytes from rank `root` to every rank.
int kiln_mpi_broadcast(void *bytes, int count, int root);
/// Ends every process of the job with `code` (MPI_Abort); does not return.
void kiln_mpi_abort(int code);
int kiln_mpi_finalize(void);
/// MPI's message for an error code, into `text` (at most `length` bytes, terminated).
void kiln_mpi_error_text(int code, char *text, size_t length);

#endif
