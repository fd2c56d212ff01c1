#ifndef SWIFT_DIFFUSERS_CDNNL_SHIM_H
#define SWIFT_DIFFUSERS_CDNNL_SHIM_H
#include <oneapi/dnnl/dnnl.h>

// oneDNN in Debian runs on OpenMP; worker threads that call small primitives set
// their own team size to 1 so that two levels of parallelism never stack.
void omp_set_num_threads(int num_threads);
int omp_get_max_threads(void);
#endif
