#ifndef SWIFT_DIFFUSERS_CDNNL_SHIM_H
#define SWIFT_DIFFUSERS_CDNNL_SHIM_H
#include <oneapi/dnnl/dnnl.h>

// oneDNN (Intel's CPU build for GNU OpenMP, scripts/fetch-onednn.sh) runs on libgomp. The Swift kernels run their parallel loops on
// the same OpenMP team (GOMP_parallel is libgomp's entry point for `#pragma omp parallel`), so
// oneDNN's threads and ours are one pool: no oversubscription, no threads spinning against
// each other. Worker threads that run small primitives one per thread set their team size to 1.
void omp_set_num_threads(int num_threads);
int omp_get_max_threads(void);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
int omp_in_parallel(void);
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned int flags);

// The SSE/AVX control and status register of the calling thread (a rehearsal times kernels on
// garbage values with denormals treated as zero, so that their time is the real run's).
#if defined(__x86_64__)
#include <emmintrin.h>
static inline unsigned int swift_diffusers_get_mxcsr(void) { return _mm_getcsr(); }
static inline void swift_diffusers_set_mxcsr(unsigned int value) { _mm_setcsr(value); }
// Evicts [pointer, pointer + bytes) from every cache level (a rehearsal times a product with
// its weight in memory, as a denoising step reads each weight once, not hot from a first run).
static inline void swift_diffusers_flush(const void *pointer, long bytes) {
    const char *p = (const char *)pointer;
    for (long i = 0; i < bytes; i += 64) _mm_clflush(p + i);
    _mm_mfence();
}
#else
static inline void swift_diffusers_flush(const void *pointer, long bytes) { (void)pointer; (void)bytes; }
static inline unsigned int swift_diffusers_get_mxcsr(void) { return 0; }
static inline void swift_diffusers_set_mxcsr(unsigned int value) { (void)value; }
#endif

// Reads one word every `stride` bytes of [pointer, pointer + bytes) and returns their sum (so
// that the reads are made): a rehearsal evicts the caches and address translations a timing
// left warm by reading a large scratch block, and warms an operand a step finds warm.
static inline unsigned long swift_diffusers_touch(const void *pointer, long bytes, long stride) {
    const volatile unsigned long *p = (const volatile unsigned long *)pointer;
    unsigned long sum = 0;
    long words = bytes / (long)sizeof(unsigned long), step = stride / (long)sizeof(unsigned long);
    for (long i = 0; i < words; i += step > 0 ? step : 1) sum += p[i];
    return sum;
}

#endif
