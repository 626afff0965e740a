#include "../core/api.h"
#include "../core/platform.h"

#define AUR__CUDA_THREADS 256

#ifndef AUR__LAUNCH /* tests/cuda_emu.h defines its own */
#define AUR__LAUNCH(kernel, grid, block, shmem, ...) kernel<<<grid, block, shmem>>>(__VA_ARGS__)
#endif

static int aur__cuda_launch(const char *what)
{
    return aur__cuda_check(cudaGetLastError(), what);
}

static unsigned aur__cuda_grid(int64_t n)
{
    int64_t b = (n + AUR__CUDA_THREADS - 1) / AUR__CUDA_THREADS;
#ifdef AUR_CUDA_EMU
    if (b > 3) b = 3; /* grid-stride loops: a few blocks test the striding and keep the emulation fast */
#endif
    return (unsigned)(b < 1 ? 1 : b > 65535 * 32 ? 65535 * 32 : b);
}

/* Grid-stride loop over n elements. */
#define AUR__CUDA_FOR(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* ==== cuBLAS ==== */

static cublasHandle_t aur__cublas; /* the process's, made on first use under aur__cuda_lock (memory.c) */

static const char *aur__cublas_status(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    default: return "error";
    }
}

/* Threads that start together make one handle; a failed creation is tried again next time. */
static int aur__cublas_handle(void)
{
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
    cublasHandle_t h;
    pthread_mutex_lock(&aur__cuda_lock);
    if (!aur__cublas && (s = cublasCreate(&h)) == CUBLAS_STATUS_SUCCESS) {
        /* default math never lowers F32 products to TF32 (that takes TF32_TENSOR_OP_MATH, as
           torch's allow_tf32), and lets BF16 products use the tensor cores */
#ifdef AUR_ALLOW_TF32
        cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH);
#else
        cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
#endif
        aur__cublas = h; /* set once it is ready to use */
    }
    pthread_mutex_unlock(&aur__cuda_lock);
    if (s != CUBLAS_STATUS_SUCCESS) return aur__err(AUR_ECUDA, "cublasCreate: %s", aur__cublas_status(s));
    return 0;
}

/* How cuBLAS (column-major) reads a logical matrix m (element (r, c) at
   p[r*rs + c*cs]): with rs == 1 it is stored column-major as it is (op N,
   ld = cs); with cs == 1 it is the transpose of a column-major matrix (op T,
   ld = rs). One of the two strides must be 1. */
static int aur__cublas_operand(aur__mat m, cublasOperation_t *op, int64_t *ld)
{
    if (m.rs == 1) {
        *op = CUBLAS_OP_N;
        *ld = m.cs;
    } else if (m.cs == 1) {
        *op = CUBLAS_OP_T;
        *ld = m.rs;
    } else {
        return aur__err(AUR_EUNSUPPORTED, "cuBLAS: an operand with no unit stride");
    }
    return 0;
}

static int64_t aur__cublas_ld(int64_t ld, int64_t rows, int64_t cols)
{
    if (cols <= 1 && ld < rows) ld = rows;
    return ld < 1 ? 1 : ld;
}

/* Row-major C (M x N, ldc) (+)= A B for nb batches: computed as the
   column-major C^T = B^T A^T. */
static int aur__cuda_gemm_t(int64_t nb, int64_t M, int64_t N, int64_t K, aur__mat a, int64_t sa, aur__mat b, int64_t sb,
                            float *C, int64_t sc, int64_t ldc, int accumulate, int bf16)
{
    if (aur__cublas_handle()) return AUR_ECUDA;
    if (M == 0 || N == 0 || nb == 0) return 0;
    cublasOperation_t opa = CUBLAS_OP_N, opb = CUBLAS_OP_N;
    int64_t lda = 1, ldb = 1;
    /* B^T is the first cuBLAS operand: element (j, p) of B^T is B(p, j) */
    aur__mat bt = aur__matv(b.p, b.cs, b.rs), at = aur__matv(a.p, a.cs, a.rs);
    if (aur__cublas_operand(bt, &opb, &ldb) || aur__cublas_operand(at, &opa, &lda)) return AUR_EUNSUPPORTED;
    /* a stored matrix with one column never uses its leading dimension, but
       cuBLAS still wants it >= the number of stored rows */
    ldb = aur__cublas_ld(ldb, opb == CUBLAS_OP_N ? N : K, opb == CUBLAS_OP_N ? K : N);
    lda = aur__cublas_ld(lda, opa == CUBLAS_OP_N ? K : M, opa == CUBLAS_OP_N ? M : K);
    const float one = 1, beta = accumulate ? 1.0f : 0.0f;
    cublasStatus_t s;
    if (bf16) /* autocast: BF16 operands (a.p and b.p point at __nv_bfloat16), F32 accumulation and result */
        s = cublasGemmStridedBatchedEx(aur__cublas, opb, opa, (int)N, (int)M, (int)K, &one, b.p, CUDA_R_16BF, (int)ldb, sb,
                                       a.p, CUDA_R_16BF, (int)lda, sa, &beta, C, CUDA_R_32F, (int)ldc, sc, (int)nb,
                                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    else
        s = cublasSgemmStridedBatched(aur__cublas, opb, opa, (int)N, (int)M, (int)K, &one, (const float *)b.p, (int)ldb, sb,
                                      (const float *)a.p, (int)lda, sa, &beta, C, (int)ldc, sc, (int)nb);
    if (s != CUBLAS_STATUS_SUCCESS) return aur__err(AUR_ECUDA, "cuBLAS matrix product: %s", aur__cublas_status(s));
    return 0;
}

static int aur__cuda_gemm(int64_t nb, int64_t M, int64_t N, int64_t K, aur__mat a, int64_t sa, aur__mat b, int64_t sb,
                          float *C, int64_t sc, int64_t ldc, int accumulate)
{
    return aur__cuda_gemm_t(nb, M, N, K, a, sa, b, sb, C, sc, ldc, accumulate, 0);
}

__global__ void aur_k_fill(float *y, float v, int64_t n)
{
    AUR__CUDA_FOR(i, n) y[i] = v;
}

static int aur_cuda_fill(float *y, float v, int64_t n)
{
    AUR__LAUNCH(aur_k_fill, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, v, n);
    return aur__cuda_launch("fill");
}

/* ==== autocast: BF16 operands, F32 accumulation ====
   As on the CPU (aur__autocast_in, aur__acc_into): operands are rounded to
   BF16, products accumulate in F32, results are rounded to BF16, and under
   autocast a gradient is rounded to BF16 before it is added. */

__global__ void aur_k_to_bf16(__nv_bfloat16 *y, const float *x, int64_t n)
{
    AUR__CUDA_FOR(i, n) y[i] = __float2bfloat16(x[i]);
}

/* y = x rounded to BF16 (kept in F32); y += that when accumulate */
__global__ void aur_k_round_bf16(float *y, const float *x, int accumulate, int64_t n)
{
    AUR__CUDA_FOR(i, n)
    {
        float r = __bfloat162float(__float2bfloat16(x[i]));
        y[i] = accumulate ? y[i] + r : r;
    }
}

/* y (M x N) = round(y + round(b)), the autocast linear's epilogue */
__global__ void aur_k_bias_round(float *y, const float *b, int64_t M, int64_t N)
{
    AUR__CUDA_FOR(i, M * N)
    {
        float v = y[i] + (b ? __bfloat162float(__float2bfloat16(b[i % N])) : 0.0f);
        y[i] = __bfloat162float(__float2bfloat16(v));
    }
}

/* A BF16 copy of x in the step's arena: what cuBLAS reads under autocast. */
static const aur_real *aur__cuda_bf16(aur_tape *t, const float *x, int64_t n)
{
    __nv_bfloat16 *y = (__nv_bfloat16 *)aur__alloc(t, AUR_CUDA, sizeof(__nv_bfloat16) * (size_t)(n ? n : 1));
    if (!y) return NULL;
    AUR__LAUNCH(aur_k_to_bf16, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, n);
    return aur__cuda_launch("autocast copy") ? NULL : (const aur_real *)y;
}

/* x rounded to BF16, in F32 (for the ops that read it element by element) */
static const aur_real *aur__cuda_rounded(aur_tape *t, const float *x, int64_t n)
{
    float *y = aur__reals(t, AUR_CUDA, n);
    if (!y) return NULL;
    AUR__LAUNCH(aur_k_round_bf16, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, 0, n);
    return aur__cuda_launch("autocast rounding") ? NULL : y;
}

static int aur__cuda_round(float *y, const float *x, int accumulate, int64_t n)
{
    AUR__LAUNCH(aur_k_round_bf16, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, accumulate, n);
    return aur__cuda_launch("autocast rounding");
}

/* A matrix view moved by off elements of its type (BF16 under autocast). */
static aur__mat aur__mat_at(aur__mat m, int64_t off, int bf16)
{
    m.p = bf16 ? (const aur_real *)((const __nv_bfloat16 *)m.p + off) : m.p + off;
    return m;
}
