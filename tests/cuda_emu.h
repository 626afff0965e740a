/* cuda_emu.h - runs the CUDA paths of aurora.h on the CPU, for testing.

   Most sessions (and CI) have no GPU, so every kernel of kernels.cuh is also
   compiled by g++ against this header (-DAURORA_CUDA -include tests/cuda_emu.h,
   which defines AUR_CUDA_EMU; the library itself never includes it) and run
   on the CPU by test_cuda, refcheck --cuda, test_train's device test and
   bench_cuda --tiny (make test runs the first three). It checks what can go
   wrong apart from speed: indexing, reductions, shared memory and barriers,
   warp shuffles, launch geometry, and the separation of host and device
   memory.

   - A launch runs its blocks one after another. Each block's threads are
     fibers on one OS thread, switched only at __syncthreads and warp
     shuffles, in a fixed order: the emulation is deterministic. A fiber is
     started once (ucontext) and then switched with _setjmp/_longjmp, which
     make no system call; it runs the kernel again for every block.
     __shared__ is a function-local static, shared by the block's fibers.
   - Device memory comes from one reserved region that is PROT_NONE whenever
     host code runs: host code that touches device memory faults at once, as
     a real GPU's memory would be unreachable. Kernels, cuBLAS and cudaMemcpy
     open it for their duration.
   - cuBLAS is a plain loop over the column-major definition, so the row-
     major/column-major mapping of kernels.cuh is checked against the
     documented semantics rather than against itself.
   - A barrier that some threads of a block never reach is reported and the
     program stops: on a GPU it is undefined behaviour.
   Not checked here: races between blocks (they run one at a time), a
   kernel that leans on a warp's lockstep without a shuffle or __syncwarp,
   speed, and the real cuBLAS. Grid-stride kernels get at most 3 blocks.
   Never used in a real build. */
#ifndef AUR_CUDA_EMU_H
#define AUR_CUDA_EMU_H
#define AUR_CUDA_EMU 1 /* aurora.h: take the CUDA API from here */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#define __global__ static
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __restrict__ __restrict

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
static dim3 threadIdx, blockIdx, blockDim, gridDim;
static const int warpSize = 32;

/* ---- errors and the runtime API ---- */

typedef enum cudaError { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorInvalidValue = 1 } cudaError_t;
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
typedef void *cudaStream_t;
static cudaError_t aur_emu_last = cudaSuccess;
static inline const char *cudaGetErrorString(cudaError_t e)
{
    return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory" : "invalid argument";
}
static inline cudaError_t cudaGetLastError(void)
{
    cudaError_t e = aur_emu_last;
    aur_emu_last = cudaSuccess;
    return e;
}
static inline cudaError_t cudaGetDeviceCount(int *n)
{
    *n = 1;
    return cudaSuccess;
}
static inline cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

/* ---- events: wall-clock time on the CPU ---- */

typedef struct aur_emu_event { double ms; } *cudaEvent_t;
static inline double aur_emu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
static inline cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    *e = (cudaEvent_t)calloc(1, sizeof **e);
    return *e ? cudaSuccess : cudaErrorMemoryAllocation;
}
static inline cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    free(e);
    return cudaSuccess;
}
static inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0)
{
    (void)s;
    e->ms = aur_emu_now_ms();
    return cudaSuccess;
}
static inline cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    (void)e;
    return cudaSuccess;
}
static inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    *ms = (float)(b->ms - a->ms);
    return cudaSuccess;
}

/* ---- device memory: one reserved region, closed while host code runs ---- */

#define AUR_EMU_REGION ((size_t)1 << 36) /* 64 GiB of address space, reserved not committed */
static char *aur_emu_base, *aur_emu_top;
static int aur_emu_open_depth;

static void aur_emu_protect(int open)
{
    if (aur_emu_top > aur_emu_base)
        mprotect(aur_emu_base, (size_t)(aur_emu_top - aur_emu_base), open ? PROT_READ | PROT_WRITE : PROT_NONE);
}
static void aur_emu_open(void)
{
    if (aur_emu_open_depth++ == 0) aur_emu_protect(1);
}
static void aur_emu_close(void)
{
    if (--aur_emu_open_depth == 0) aur_emu_protect(0);
}
/* pinned host memory mapped for the GPU (cudaHostAllocMapped): host memory the device may use */
static struct aur_emu_pinned { char *p; size_t n; } aur_emu_pinned[64];
static int aur_emu_npinned;

static int aur_emu_is_device(const void *p)
{
    for (int i = 0; i < aur_emu_npinned; i++)
        if ((const char *)p >= aur_emu_pinned[i].p && (const char *)p < aur_emu_pinned[i].p + aur_emu_pinned[i].n) return 1;
    return aur_emu_base && (const char *)p >= aur_emu_base && (const char *)p < aur_emu_top;
}

/* live blocks, so a free can return its pages to the system */
static struct aur_emu_block { char *p; size_t size; } *aur_emu_blocks;
static int aur_emu_nblocks, aur_emu_capblocks;

static inline cudaError_t cudaMalloc(void **p, size_t n)
{
    if (!aur_emu_base) {
        void *r = mmap(NULL, AUR_EMU_REGION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r == MAP_FAILED) return cudaErrorMemoryAllocation;
        aur_emu_base = aur_emu_top = (char *)r;
        madvise(r, AUR_EMU_REGION, MADV_HUGEPAGE); /* fewer page-table entries: opening and closing the region is cheaper */
    }
    size_t page = 4096, size = (n + 2 * page - 1) / page * page; /* an unused page between blocks */
    if ((size_t)(aur_emu_top - aur_emu_base) + size > AUR_EMU_REGION) return cudaErrorMemoryAllocation;
    *p = aur_emu_top;
    aur_emu_top += size;
    if (aur_emu_nblocks == aur_emu_capblocks) {
        aur_emu_capblocks = aur_emu_capblocks ? 2 * aur_emu_capblocks : 64;
        aur_emu_blocks = (struct aur_emu_block *)realloc(aur_emu_blocks, sizeof *aur_emu_blocks * (size_t)aur_emu_capblocks);
    }
    aur_emu_blocks[aur_emu_nblocks].p = (char *)*p;
    aur_emu_blocks[aur_emu_nblocks++].size = size;
    if (aur_emu_open_depth) aur_emu_protect(1);
    /* fresh device memory is garbage on a GPU: make it NaN-like so a kernel
       that reads what nobody wrote shows it */
    aur_emu_open(); /* the first and last MiB are enough to show a read of unwritten memory */
    size_t fill = n < (2u << 20) ? n : (1u << 20);
    memset(*p, 0xff, fill);
    memset((char *)*p + n - fill, 0xff, fill);
    aur_emu_close();
    return cudaSuccess;
}
static inline cudaError_t cudaFree(void *p)
{
    if (!p) return cudaSuccess;
    if (!aur_emu_is_device(p)) return cudaErrorInvalidValue;
    for (int i = 0; i < aur_emu_nblocks; i++)
        if (aur_emu_blocks[i].p == (char *)p) {
            /* the address space is never reused: a use after free reads zeros, never someone else's data */
            madvise(p, aur_emu_blocks[i].size, MADV_DONTNEED);
            aur_emu_blocks[i] = aur_emu_blocks[--aur_emu_nblocks];
            return cudaSuccess;
        }
    return cudaErrorInvalidValue; /* not a block start, or freed twice */
}
static inline cudaError_t cudaMallocHost(void **p, size_t n)
{
    *p = malloc(n ? n : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
#define cudaHostAllocMapped 2
static inline cudaError_t cudaHostAlloc(void **p, size_t n, unsigned flags)
{
    if (aur_emu_npinned == 64) return cudaErrorMemoryAllocation;
    *p = malloc(n ? n : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    if (flags & cudaHostAllocMapped) aur_emu_pinned[aur_emu_npinned].p = (char *)*p, aur_emu_pinned[aur_emu_npinned++].n = n;
    return cudaSuccess;
}
static inline cudaError_t cudaHostGetDevicePointer(void **dev, void *host, unsigned flags)
{
    (void)flags;
    *dev = host; /* unified addressing */
    return cudaSuccess;
}
static inline cudaError_t cudaFreeHost(void *p)
{
    for (int i = 0; i < aur_emu_npinned; i++)
        if (aur_emu_pinned[i].p == (char *)p) aur_emu_pinned[i] = aur_emu_pinned[--aur_emu_npinned];
    free(p);
    return cudaSuccess;
}

/* the direction must match where the pointers really are */
static inline cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind k)
{
    int dd = aur_emu_is_device(dst), sd = aur_emu_is_device(src);
    int want_dd = k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice;
    int want_sd = k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice;
    if (dd != want_dd || sd != want_sd) {
        fprintf(stderr, "cuda_emu: cudaMemcpy kind %d with dst %s, src %s\n", (int)k, dd ? "device" : "host",
                sd ? "device" : "host");
        return cudaErrorInvalidValue;
    }
    aur_emu_open();
    memmove(dst, src, n);
    aur_emu_close();
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t s = 0)
{
    (void)s;
    return cudaMemcpy(dst, src, n, k);
}
static inline cudaError_t cudaMemset(void *p, int v, size_t n)
{
    if (!aur_emu_is_device(p)) return cudaErrorInvalidValue;
    aur_emu_open();
    memset(p, v, n);
    aur_emu_close();
    return cudaSuccess;
}
static inline cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total)
{
    *free_b = *total = (size_t)16 << 30;
    return cudaSuccess;
}

/* ---- launches: blocks in turn, threads as fibers ---- */

enum { AUR_EMU_RUN, AUR_EMU_BLOCK_BARRIER, AUR_EMU_WARP_BARRIER, AUR_EMU_DONE };
#define AUR_EMU_MAX_THREADS 1024
#define AUR_EMU_STACK (64 * 1024)

typedef struct aur_emu_fiber {
    ucontext_t ctx; /* only to start it */
    jmp_buf jb;     /* where it stopped */
    int state, started;
    dim3 tid;
} aur_emu_fiber;

static aur_emu_fiber aur_emu_fibers[AUR_EMU_MAX_THREADS];
static char *aur_emu_stacks;
static jmp_buf aur_emu_sched;
static int aur_emu_cur, aur_emu_nthreads;
static void (*aur_emu_body)(void *);
static void *aur_emu_arg;
static uint32_t aur_emu_lanes[AUR_EMU_MAX_THREADS]; /* shuffle exchange slots */

static void aur_emu_yield(int state)
{
    aur_emu_fiber *f = &aur_emu_fibers[aur_emu_cur];
    f->state = state;
    if (!_setjmp(f->jb)) _longjmp(aur_emu_sched, 1);
    threadIdx = aur_emu_fibers[aur_emu_cur].tid; /* resumed: this fiber's coordinates again */
}

/* A fiber's life: run the kernel's body for a block, report done, wait for the next block. */
static void aur_emu_entry(void)
{
    for (;;) {
        aur_emu_body(aur_emu_arg);
        aur_emu_yield(AUR_EMU_DONE);
    }
}

/* Runs fiber i until it stops at a barrier or finishes its block. */
static void aur_emu_resume(int i)
{
    aur_emu_fiber *f = &aur_emu_fibers[i];
    aur_emu_cur = i;
    threadIdx = f->tid;
    if (_setjmp(aur_emu_sched)) return;
    if (f->started) _longjmp(f->jb, 1);
    f->started = 1;
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = aur_emu_stacks + (size_t)i * AUR_EMU_STACK;
    f->ctx.uc_stack.ss_size = AUR_EMU_STACK;
    f->ctx.uc_link = NULL;
    makecontext(&f->ctx, aur_emu_entry, 0);
    setcontext(&f->ctx);
}

static void aur_emu_fail(const char *what)
{
    fprintf(stderr, "cuda_emu: %s (block %u,%u,%u)\n", what, blockIdx.x, blockIdx.y, blockIdx.z);
    abort();
}

/* Releases every complete warp waiting at a warp barrier; returns how many threads were released. */
static int aur_emu_release_warps(void)
{
    int released = 0;
    for (int w = 0; w * 32 < aur_emu_nthreads; w++) {
        int lo = w * 32, hi = lo + 32 < aur_emu_nthreads ? lo + 32 : aur_emu_nthreads, waiting = 0, done = 0;
        for (int i = lo; i < hi; i++) {
            waiting += aur_emu_fibers[i].state == AUR_EMU_WARP_BARRIER;
            done += aur_emu_fibers[i].state == AUR_EMU_DONE;
        }
        if (waiting == hi - lo) {
            for (int i = lo; i < hi; i++) aur_emu_fibers[i].state = AUR_EMU_RUN;
            released += waiting;
        } else if (waiting && done) {
            aur_emu_fail("a warp shuffle that some lanes of the warp never reach");
        }
    }
    return released;
}

static void aur_emu_run_block(void)
{
    for (int i = 0; i < aur_emu_nthreads; i++) {
        aur_emu_fiber *f = &aur_emu_fibers[i];
        f->state = AUR_EMU_RUN;
        f->tid = dim3(i % blockDim.x, i / blockDim.x % blockDim.y, i / (blockDim.x * blockDim.y));
    }
    for (;;) {
        int ran = 0, at_barrier = 0, done = 0;
        for (int i = 0; i < aur_emu_nthreads; i++) {
            aur_emu_fiber *f = &aur_emu_fibers[i];
            if (f->state != AUR_EMU_RUN) continue;
            aur_emu_resume(i);
            ran++;
        }
        for (int i = 0; i < aur_emu_nthreads; i++) {
            at_barrier += aur_emu_fibers[i].state == AUR_EMU_BLOCK_BARRIER;
            done += aur_emu_fibers[i].state == AUR_EMU_DONE;
        }
        if (done == aur_emu_nthreads) return;
        if (aur_emu_release_warps()) continue;
        if (at_barrier + done == aur_emu_nthreads) {
            if (done) aur_emu_fail("__syncthreads that some threads of the block never reach");
            for (int i = 0; i < aur_emu_nthreads; i++) aur_emu_fibers[i].state = AUR_EMU_RUN;
            continue;
        }
        if (!ran) aur_emu_fail("threads wait at different barriers: deadlock");
    }
}

static void aur_emu_launch(dim3 grid, dim3 block, size_t shmem, void (*body)(void *), void *arg)
{
    int n = (int)(block.x * block.y * block.z);
    if (n < 1 || n > AUR_EMU_MAX_THREADS || shmem > 48 * 1024 || grid.x < 1 || grid.y > 65535 ||
        grid.z > 65535) {
        aur_emu_last = cudaErrorInvalidValue;
        return;
    }
    if (!aur_emu_stacks) aur_emu_stacks = (char *)malloc((size_t)AUR_EMU_MAX_THREADS * AUR_EMU_STACK);
    aur_emu_open();
    blockDim = block;
    gridDim = grid;
    aur_emu_nthreads = n;
    aur_emu_body = body;
    aur_emu_arg = arg;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx = dim3(x, y, z);
                aur_emu_run_block();
            }
    aur_emu_close();
}

template <typename F> static void aur_emu_call(void *f) { (*(F *)f)(); }
template <typename F> static void aur_emu_launch_lambda(dim3 grid, dim3 block, size_t shmem, F f)
{
    aur_emu_launch(grid, block, shmem, aur_emu_call<F>, &f);
}
#define AUR__LAUNCH(kernel, grid, block, shmem, ...) \
    aur_emu_launch_lambda(grid, block, shmem, [=]() { kernel(__VA_ARGS__); })

/* ---- device intrinsics ---- */

static inline void __syncthreads(void) { aur_emu_yield(AUR_EMU_BLOCK_BARRIER); }
static inline void __syncwarp(unsigned mask = 0xffffffffu)
{
    (void)mask;
    aur_emu_yield(AUR_EMU_WARP_BARRIER);
}
/* Every lane publishes its value, the warp meets, each reads its source lane, the warp meets again. */
static inline float aur_emu_shfl(float v, int src_lane_of_me)
{
    int me = aur_emu_cur, base = me / 32 * 32;
    memcpy(&aur_emu_lanes[me], &v, 4);
    __syncwarp();
    float r = v;
    int src = base + src_lane_of_me;
    if (src_lane_of_me >= 0 && src_lane_of_me < 32 && src < aur_emu_nthreads) memcpy(&r, &aur_emu_lanes[src], 4);
    __syncwarp();
    return r;
}
static inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask, int width = 32)
{
    (void)mask;
    (void)width;
    return aur_emu_shfl(v, (int)(threadIdx.x % 32) ^ lane_mask);
}
static inline float __shfl_down_sync(unsigned mask, float v, unsigned delta, int width = 32)
{
    (void)mask;
    (void)width;
    int lane = (int)(threadIdx.x % 32) + (int)delta;
    return aur_emu_shfl(v, lane < 32 ? lane : (int)(threadIdx.x % 32));
}
static inline float __shfl_sync(unsigned mask, float v, int src, int width = 32)
{
    (void)mask;
    (void)width;
    return aur_emu_shfl(v, src);
}
static inline float atomicAdd(float *p, float v)
{
    float old = *p; /* fibers never interleave inside a statement */
    *p += v;
    return old;
}
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
#define __expf expf
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __fmul_rn(float a, float b)
{
    volatile float r = a * b; /* rounded, never contracted into an FMA */
    return r;
}
static inline float __fadd_rn(float a, float b) { return a + b; }
template <typename T> static inline T __ldg(const T *p) { return *p; }

/* bf16 with round-to-nearest-even, as the GPU converts */
struct __nv_bfloat16 {
    uint16_t bits;
};
static inline __nv_bfloat16 __float2bfloat16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 b;
    if ((u & 0x7fffffffu) > 0x7f800000u) b.bits = (uint16_t)((u >> 16) | 0x40);
    else b.bits = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return b;
}
static inline float __bfloat162float(__nv_bfloat16 b)
{
    uint32_t u = (uint32_t)b.bits << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- cuBLAS: the column-major definitions as loops ---- */

typedef struct aur_emu_cublas *cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1, CUBLAS_STATUS_ALLOC_FAILED = 3,
               CUBLAS_STATUS_INVALID_VALUE = 7, CUBLAS_STATUS_EXECUTION_FAILED = 13 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_PEDANTIC_MATH = 2, CUBLAS_TF32_TENSOR_OP_MATH = 3 } cublasMath_t;
typedef enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType;
typedef enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_PEDANTIC = 69 } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;

static inline cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = (cublasHandle_t)1;
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    (void)h;
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m)
{
    (void)h;
    (void)m;
    return CUBLAS_STATUS_SUCCESS;
}

static inline float aur_emu_elem(const void *p, cudaDataType t, int64_t i)
{
    return t == CUDA_R_16BF ? __bfloat162float(((const __nv_bfloat16 *)p)[i]) : ((const float *)p)[i];
}

/* C = alpha op(A) op(B) + beta C, column-major, for every batch; sums in double */
static inline cublasStatus_t aur_emu_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                                          const void *A, cudaDataType at, int lda, long long sa, const void *B,
                                          cudaDataType bt, int ldb, long long sb, float beta, float *C, int ldc,
                                          long long sc, int batches)
{
    if (m < 0 || n < 0 || k < 0 || batches < 0 || ldc < (m > 1 ? m : 1) ||
        lda < ((ta == CUBLAS_OP_N ? m : k) > 1 ? (ta == CUBLAS_OP_N ? m : k) : 1) ||
        ldb < ((tb == CUBLAS_OP_N ? k : n) > 1 ? (tb == CUBLAS_OP_N ? k : n) : 1)) {
        fprintf(stderr, "cuda_emu: gemm op(%d,%d) m %d n %d k %d: lda %d ldb %d ldc %d below what cuBLAS requires\n", (int)ta,
                (int)tb, m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!aur_emu_is_device(C) || (k && (!aur_emu_is_device(A) || !aur_emu_is_device(B)))) {
        fprintf(stderr, "cuda_emu: cuBLAS given a host pointer\n");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    aur_emu_open();
    for (int b = 0; b < batches; b++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    int64_t ia = ta == CUBLAS_OP_N ? i + (int64_t)p * lda : p + (int64_t)i * lda;
                    int64_t ib = tb == CUBLAS_OP_N ? p + (int64_t)j * ldb : j + (int64_t)p * ldb;
                    s += (double)aur_emu_elem(A, at, b * sa + ia) * aur_emu_elem(B, bt, b * sb + ib);
                }
                float *c = C + b * sc + i + (int64_t)j * ldc;
                *c = (float)(alpha * s + (beta != 0 ? beta * (double)*c : 0.0));
            }
    aur_emu_close();
    return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                                       int m, int n, int k, const float *alpha, const float *A, int lda,
                                                       long long sa, const float *B, int ldb, long long sb,
                                                       const float *beta, float *C, int ldc, long long sc, int batches)
{
    (void)h;
    return aur_emu_gemm(ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, sa, B, CUDA_R_32F, ldb, sb, *beta, C, ldc, sc,
                        batches);
}

static inline cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                                        int m, int n, int k, const void *alpha, const void *A,
                                                        cudaDataType at, int lda, long long sa, const void *B,
                                                        cudaDataType bt, int ldb, long long sb, const void *beta,
                                                        void *C, cudaDataType ct, int ldc, long long sc, int batches,
                                                        cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
    (void)h;
    (void)compute;
    (void)algo;
    if (ct != CUDA_R_32F) return CUBLAS_STATUS_INVALID_VALUE;
    return aur_emu_gemm(ta, tb, m, n, k, *(const float *)alpha, A, at, lda, sa, B, bt, ldb, sb, *(const float *)beta,
                        (float *)C, ldc, sc, batches);
}

#endif /* AUR_CUDA_EMU_H */
