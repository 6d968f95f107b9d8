// See include/mpi_loader.h. The prototypes are MPI's, with Open MPI's handle types (pointers to its
// predefined objects) written as void *; MPI_IN_PLACE is Open MPI's ((void *) 1).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include "mpi_loader.h"

typedef void *handle;
#define IN_PLACE ((void *)1)
#define MAX_ERROR_STRING 256

// X(name, return type, parameters)
#define KILN_MPI_FUNCTIONS(X) \
    X(MPI_Init, int, (int *, char ***)) \
    X(MPI_Comm_rank, int, (handle, int *)) \
    X(MPI_Comm_size, int, (handle, int *)) \
    X(MPI_Comm_set_errhandler, int, (handle, handle)) \
    X(MPI_Allreduce, int, (const void *, void *, int, handle, handle, handle)) \
    X(MPI_Bcast, int, (void *, int, handle, int, handle)) \
    X(MPI_Abort, int, (handle, int)) \
    X(MPI_Finalize, int, (void)) \
    X(MPI_Error_string, int, (int, char *, int *))

// Open MPI's predefined objects, whose addresses are the handles.
#define KILN_MPI_OBJECTS(X) \
    X(ompi_mpi_comm_world) X(ompi_mpi_float) X(ompi_mpi_double) X(ompi_mpi_byte) X(ompi_mpi_op_sum) X(ompi_mpi_op_max) \
    X(ompi_mpi_errors_return)

#define DECLARE_FUNCTION(name, type, parameters) static type(*p_##name) parameters;
KILN_MPI_FUNCTIONS(DECLARE_FUNCTION)
#define DECLARE_OBJECT(name) static handle p_##name;
KILN_MPI_OBJECTS(DECLARE_OBJECT)

int kiln_mpi_open(const char *path, char *error, size_t length) {
    // RTLD_GLOBAL: Open MPI's own plugins, which it opens in turn, look up libmpi's symbols globally.
    void *library = dlopen(path ? path : "libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
    if (!library) {
        snprintf(error, length, "cannot load %s: %s", path ? path : "libmpi.so.40", dlerror());
        return -1;
    }
#define RESOLVE(name, ...) \
    if (!(*(void **)&p_##name = dlsym(library, #name))) { snprintf(error, length, "%s lacks %s (not Open MPI?)", path ? path : "libmpi.so.40", #name); return -1; }
    KILN_MPI_FUNCTIONS(RESOLVE)
#define RESOLVE_OBJECT(name) RESOLVE(name)
    KILN_MPI_OBJECTS(RESOLVE_OBJECT)
    return 0;
}

int kiln_mpi_init(int *rank, int *size) {
    int status = p_MPI_Init(NULL, NULL);
    if (status == 0) status = p_MPI_Comm_set_errhandler(p_ompi_mpi_comm_world, p_ompi_mpi_errors_return);
    if (status == 0) status = p_MPI_Comm_rank(p_ompi_mpi_comm_world, rank);
    if (status == 0) status = p_MPI_Comm_size(p_ompi_mpi_comm_world, size);
    return status;
}

int kiln_mpi_sum_floats(float *values, int count) {
    return p_MPI_Allreduce(IN_PLACE, values, count, p_ompi_mpi_float, p_ompi_mpi_op_sum, p_ompi_mpi_comm_world);
}

int kiln_mpi_sum_doubles(double *values, int count) {
    return p_MPI_Allreduce(IN_PLACE, values, count, p_ompi_mpi_double, p_ompi_mpi_op_sum, p_ompi_mpi_comm_world);
}

int kiln_mpi_max_doubles(double *values, int count) {
    return p_MPI_Allreduce(IN_PLACE, values, count, p_ompi_mpi_double, p_ompi_mpi_op_max, p_ompi_mpi_comm_world);
}

int kiln_mpi_broadcast(void *bytes, int count, int root) {
    return p_MPI_Bcast(bytes, count, p_ompi_mpi_byte, root, p_ompi_mpi_comm_world);
}

void kiln_mpi_abort(int code) { p_MPI_Abort(p_ompi_mpi_comm_world, code); }

int kiln_mpi_finalize(void) { return p_MPI_Finalize(); }

void kiln_mpi_error_text(int code, char *text, size_t length) {
    char message[MAX_ERROR_STRING] = "";
    int used = 0;
    if (p_MPI_Error_string && p_MPI_Error_string(code, message, &used) == 0) snprintf(text, length, "%s", message);
    else snprintf(text, length, "MPI error %d", code);
}
