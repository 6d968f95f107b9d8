// OpenCL 1.2 API: NVIDIA and PoCL both speak it, and 2.0 features are not used.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <CL/cl_ext.h>
