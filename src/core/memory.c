#include "api.h"
#include "platform.h"

/* ==== memory: host and device allocation ==== */

static void *aur__malloc(size_t n, const char *what)
{
    void *p = AUR_MALLOC(n ? n : 1);
    if (!p) aur__err(AUR_ENOMEM, "out of memory: %zu bytes for %s", n, what);
    return p;
}

static void *aur__calloc(size_t n, const char *what)
{
    void *p = aur__malloc(n, what);
    if (p) memset(p, 0, n);
    return p;
}

static char *aur__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = (char *)aur__malloc(n, "a string");
    if (p) memcpy(p, s, n);
    return p;
}

/* Grows an array of elem-byte items to hold at least want items. */
static int aur__grow(void **arr, int *cap, int want, size_t elem)
{
    if (want <= *cap) return 0;
    if (want > INT_MAX / 2) return aur__err(AUR_ENOMEM, "an array of %d items is more than this library holds", want);
    int nc = *cap ? *cap * 2 : 16;
    while (nc < want) nc *= 2;
    void *p = AUR_REALLOC(*arr, (size_t)nc * elem);
    if (!p) return aur__err(AUR_ENOMEM, "out of memory growing an array to %d items", nc);
    *arr = p;
    *cap = nc;
    return 0;
}

/* ---- the GPU's memory: the one place that calls the CUDA runtime for it ----
   Every GPU block of the library is allocated here and counted, so
   aur_cuda_memory can report the current and peak bytes. A build without
   CUDA gets the same functions failing (it can make no CUDA tensor). */
#ifdef AUR__HAS_CUDA
/* GPU blocks and their sizes, so frees can be counted. Allocations are rare
   (slabs and arena chunks), so a plain array is enough. The table, the
   counters and the cuBLAS handle (launch.cu) are the process's, shared by
   every thread: aur__cuda_lock guards them. */
typedef struct aur__cuda_block {
    void *p;
    size_t n;
} aur__cuda_block;
static aur__cuda_block *aur__cuda_blocks;
static int aur__cuda_nblocks, aur__cuda_capblocks;
static size_t aur__cuda_cur, aur__cuda_peak;
static pthread_mutex_t aur__cuda_lock = PTHREAD_MUTEX_INITIALIZER;

static int aur__cuda_check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return 0;
    return aur__err(AUR_ECUDA, "%s: %s", what, cudaGetErrorString(e));
}

/* The allocation and its entry happen under the lock together, so a
   failure's message and the counters agree with the table. */
static void *aur__cuda_alloc(size_t n, const char *what)
{
    void *p = NULL;
    pthread_mutex_lock(&aur__cuda_lock);
    int full = aur__grow((void **)&aur__cuda_blocks, &aur__cuda_capblocks, aur__cuda_nblocks + 1, sizeof(aur__cuda_block));
    cudaError_t e = full ? cudaSuccess : cudaMalloc(&p, n ? n : 1);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear it: the failed allocation is reported here, not by the next launch */
        aur__err(AUR_ENOMEM, "GPU: %s for %.2f GiB (%s; the library holds %.2f GiB)", cudaGetErrorString(e),
                 (double)n / 1073741824.0, what, (double)aur__cuda_cur / 1073741824.0);
        p = NULL;
    } else if (p) {
        aur__cuda_blocks[aur__cuda_nblocks].p = p;
        aur__cuda_blocks[aur__cuda_nblocks++].n = n;
        aur__cuda_cur += n;
        if (aur__cuda_cur > aur__cuda_peak) aur__cuda_peak = aur__cuda_cur;
    }
    pthread_mutex_unlock(&aur__cuda_lock);
    return p;
}

static void aur__cuda_free(void *p)
{
    pthread_mutex_lock(&aur__cuda_lock);
    for (int i = 0; i < aur__cuda_nblocks; i++) {
        if (aur__cuda_blocks[i].p != p) continue;
        aur__cuda_cur -= aur__cuda_blocks[i].n;
        aur__cuda_blocks[i] = aur__cuda_blocks[--aur__cuda_nblocks];
        break;
    }
    cudaFree(p);
    pthread_mutex_unlock(&aur__cuda_lock);
}

/* Pinned host memory mapped into the GPU's address space (unified
   addressing: the same pointer works in kernels and on the host). Not
   counted as GPU memory. */
static void *aur__pinned_alloc(size_t n, const char *what)
{
    void *p = NULL, *dev = NULL;
    if (aur__cuda_check(cudaHostAlloc(&p, n ? n : 1, cudaHostAllocMapped), what)) return NULL;
    if (cudaHostGetDevicePointer(&dev, p, 0) != cudaSuccess || dev != p) { /* kernels get p itself */
        cudaFreeHost(p);
        aur__err(AUR_EUNSUPPORTED, "%s: the GPU does not map pinned memory at its host address (no unified addressing)", what);
        return NULL;
    }
    return p;
}

static void aur__pinned_free(void *p)
{
    if (p) cudaFreeHost(p);
}

/* Page-locked host memory, not mapped: host buffers (prefetched windows) the
   GPU copies from by DMA, without the driver's staging copy. */
static void *aur__page_locked_alloc(size_t n, const char *what)
{
    void *p = NULL;
    return aur__cuda_check(cudaMallocHost(&p, n ? n : 1), what) ? NULL : p;
}

static void aur__page_locked_free(void *p)
{
    if (p) cudaFreeHost(p);
}

static int aur__cuda_copy(void *dst, aur_device dd, const void *src, aur_device sd, size_t n)
{
#ifdef AUR_CUDA_EMU /* the emulator checks that the pointers are where the devices say */
    enum cudaMemcpyKind k = dd == AUR_CPU ? cudaMemcpyDeviceToHost
                            : sd == AUR_CPU ? cudaMemcpyHostToDevice
                                            : cudaMemcpyDeviceToDevice;
#else /* unified addressing finds the direction, also for the pinned host memory of offloaded state */
    enum cudaMemcpyKind k = cudaMemcpyDefault;
    (void)dd, (void)sd;
#endif
    return aur__cuda_check(cudaMemcpy(dst, src, n, k), "cudaMemcpy");
}

static int aur__cuda_zero(void *p, size_t n) { return aur__cuda_check(cudaMemset(p, 0, n), "cudaMemset"); }

AURDEF void aur_cuda_memory(size_t *current, size_t *peak)
{
    pthread_mutex_lock(&aur__cuda_lock);
    if (current) *current = aur__cuda_cur;
    if (peak) *peak = aur__cuda_peak;
    pthread_mutex_unlock(&aur__cuda_lock);
}

AURDEF void aur_cuda_reset_peak(void)
{
    pthread_mutex_lock(&aur__cuda_lock);
    aur__cuda_peak = aur__cuda_cur;
    pthread_mutex_unlock(&aur__cuda_lock);
}

AURDEF int aur_cuda_available(void)
{
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

static int aur__cuda_build(void) { return 1; }
#else
static void *aur__cuda_alloc(size_t n, const char *what)
{
    aur__err(AUR_EUNSUPPORTED, "%s: this build has no CUDA (compile the implementation with nvcc -DAURORA_CUDA)", what);
    (void)n;
    return NULL;
}

static void aur__cuda_free(void *p) { (void)p; }

static void *aur__pinned_alloc(size_t n, const char *what)
{
    aur__err(AUR_EUNSUPPORTED, "%s: pinned memory needs a CUDA build", what);
    (void)n;
    return NULL;
}

static void aur__pinned_free(void *p) { (void)p; }
static void *aur__page_locked_alloc(size_t n, const char *what) { return aur__pinned_alloc(n, what); }
static void aur__page_locked_free(void *p) { (void)p; }

static int aur__cuda_copy(void *dst, aur_device dd, const void *src, aur_device sd, size_t n)
{
    (void)dst, (void)dd, (void)src, (void)sd, (void)n;
    return aur__err(AUR_EUNSUPPORTED, "copy to or from CUDA memory: this build has no CUDA");
}

static int aur__cuda_zero(void *p, size_t n)
{
    (void)p, (void)n;
    return aur__err(AUR_EUNSUPPORTED, "cudaMemset: this build has no CUDA");
}

AURDEF void aur_cuda_memory(size_t *current, size_t *peak)
{
    if (current) *current = 0;
    if (peak) *peak = 0;
}

AURDEF void aur_cuda_reset_peak(void) {}

AURDEF int aur_cuda_available(void) { return 0; }

static int aur__cuda_build(void) { return 0; }
#endif

/* Addresses on the meta device: aligned, distinct within a thread, never
   backed by memory and never read (only the heap's bookkeeping compares them). */
static void *aur__meta_alloc(size_t n)
{
    static AUR__TLS uintptr_t top = 4096;
    uintptr_t p = top;
    top += (n + 4095) & ~(uintptr_t)4095;
    return (void *)p;
}

/* Memory on a device. All GPU memory of the library comes through here. */
static void *aur__dev_alloc(aur_device dev, size_t n, const char *what)
{
    if (dev == AUR_META) return aur__meta_alloc(n);
    return dev == AUR_CPU ? aur__malloc(n, what) : aur__cuda_alloc(n, what);
}

static void aur__dev_free(aur_device dev, void *p)
{
    if (!p || dev == AUR_META) return;
    if (dev == AUR_CPU) AUR_FREE(p);
    else aur__cuda_free(p);
}

/* Copies n bytes between any two devices. */
static int aur__copy_bytes(void *dst, aur_device dd, const void *src, aur_device sd, size_t n)
{
    if (n == 0 || dd == AUR_META || sd == AUR_META) return 0; /* no bytes to move */
    if (dd == AUR_CPU && sd == AUR_CPU) {
        memmove(dst, src, n);
        return 0;
    }
    return aur__cuda_copy(dst, dd, src, sd, n);
}

static int aur__zero_bytes(void *p, aur_device dev, size_t n)
{
    if (n == 0 || dev == AUR_META) return 0;
    if (dev == AUR_CPU) {
        memset(p, 0, n);
        return 0;
    }
    return aur__cuda_zero(p, n);
}

/* ---- a growable string: headers, JSON, metrics lines ---- */
typedef struct aur__buf {
    char *p;
    size_t n, cap;
    int failed;
} aur__buf;

/* Room for `more` bytes and a NUL after the current end; on failure the buffer is marked failed. */
static int aur__buf_reserve(aur__buf *b, size_t more)
{
    if (b->failed) return 0;
    if (b->p && b->n + more + 1 <= b->cap) return 1;
    size_t nc = (b->cap ? b->cap * 2 : 4096) + more;
    char *np = (char *)AUR_REALLOC(b->p, nc);
    if (!np) {
        b->failed = 1;
        return 0;
    }
    b->p = np;
    b->cap = nc;
    return 1;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void aur__buf_printf(aur__buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = 1;
            return;
        }
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        if (!aur__buf_reserve(b, (size_t)k)) return;
    }
}

/* Appends n raw bytes (NUL bytes included). */
static void aur__buf_append(aur__buf *b, const char *p, size_t n)
{
    if (!aur__buf_reserve(b, n)) return;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
}
