/* ==== platform: system headers, configuration macros, threads ====
   What every part of the implementation relies on: POSIX and C headers,
   the allocator and assertion hooks (AUR_MALLOC, AUR_ASSERT), the CUDA
   headers of a CUDA build, OpenMP through _Pragma, and the math of aur_real. */

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

#if defined(AURORA_CUDA) && defined(AUR_CUDA_EMU)
#define AUR__HAS_CUDA 1 /* the CUDA runtime emulated on the CPU: a test build injected it (tests/cuda_emu.h) */
#elif defined(AURORA_CUDA) && defined(__CUDACC__)
#define AUR__HAS_CUDA 1
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#endif
/* Functions both paths run: the CPU loops and the CUDA kernels call the same code. */
#ifdef AUR__HAS_CUDA
#define AUR__HD __host__ __device__
#else
#define AUR__HD
#endif

#if !defined(AUR_MALLOC) && !defined(AUR_REALLOC) && !defined(AUR_FREE)
#define AUR_MALLOC(n) malloc(n)
#define AUR_REALLOC(p, n) realloc(p, n)
#define AUR_FREE(p) free(p)
#elif !defined(AUR_MALLOC) || !defined(AUR_REALLOC) || !defined(AUR_FREE)
#error "define all of AUR_MALLOC, AUR_REALLOC and AUR_FREE, or none"
#endif
#ifndef AUR_ASSERT
#define AUR_ASSERT(x) assert(x)
#endif

#ifdef __cplusplus
#define AUR__TLS thread_local
#else
#define AUR__TLS _Thread_local
#endif

#if defined(AUR_GRIB) && !defined(AUR_NETCDF)
#error "AUR_GRIB adds GRIB files to the NetCDF weather reader: define AUR_NETCDF too (and link -lnetcdf -leccodes)"
#endif

/* a helper some configurations leave unused (e.g. the calendar without AUR_NETCDF in aurora.h alone) */
#if defined(__GNUC__) || defined(__clang__)
#define AUR__MAYBE_UNUSED __attribute__((unused))
#else
#define AUR__MAYBE_UNUSED
#endif

/* OpenMP through _Pragma, so builds without -fopenmp see no unknown pragmas. */
#define AUR__PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP) && !defined(AUR_NO_OPENMP)
#include <omp.h>
#define AUR__OMP_FOR_IF(cond) AUR__PRAGMA(omp parallel for schedule(static) if (cond))
#define AUR__OMP_FOR_DYN_IF(cond) AUR__PRAGMA(omp parallel for schedule(dynamic, 1) if (cond))
static int aur__threads(void) { return omp_get_max_threads(); }
static int aur__thread_id(void) { return omp_get_thread_num(); }
#else
#define AUR__OMP_FOR_IF(cond)
#define AUR__OMP_FOR_DYN_IF(cond)
static int aur__threads(void) { return 1; }
static int aur__thread_id(void) { return 0; }
#endif
#define AUR__PAR_MIN 32768 /* elements below which a loop runs on one thread */

/* Math on aur_real: float functions in normal builds, double in test builds. */
#ifdef AUR_REAL_DOUBLE
#define AUR__EXP exp
#define AUR__LOG log
#define AUR__LOG1P log1p
#define AUR__SQRT sqrt
#define AUR__TANH tanh
#define AUR__ERF erf
#define AUR__FABS fabs
#define AUR__SIN sin
#define AUR__COS cos
#else
#define AUR__EXP expf
#define AUR__LOG logf
#define AUR__LOG1P log1pf
#define AUR__SQRT sqrtf
#define AUR__TANH tanhf
#define AUR__ERF erff
#define AUR__FABS fabsf
#define AUR__SIN sinf
#define AUR__COS cosf
#endif

/* qsort for any count: the C library's is undefined for a NULL base, which an
   empty list has (a safetensors header of `{}`), even with nothing to sort. */
static void aur__qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1) qsort(base, n, size, cmp);
}

/* Seconds on the monotonic clock (step times, the loader's waits). */
static double aur__wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
