/* kernels.cuh - GENERATED from src/ by `make headers` (tools/make_headers.sh; src/manifest
   lists its files in order). Do not edit it: edit src/, run make headers, commit both. */
/* kernels.cuh - the CUDA kernels of aurora.h.

   Included by the implementation (aurora.h) when it is compiled by nvcc
   with -DAURORA_CUDA; never include it yourself. Each op has a section:
   __device__ helpers, __global__ aur_k_<op>_* kernels, and host launchers
   aur_cuda_<op>_* that check the launch and return an AUR_E* code.

   Matrix products go through cuBLAS with F32 compute and TF32 off (the
   library's fidelity bar is 1e-5; define AUR_ALLOW_TF32 to allow it), or
   under autocast with BF16 operands and F32 accumulation. Every reduction
   has a fixed shape (a thread's own order, fixed trees, fixed chunks added
   in order), never atomics: results do not change from run to run.
   Element rules shared with the CPU (dropout's hash, the losses, Adam's
   update, ...) are the CPU's own AUR__HD functions in aurora.h.

   Launches go through AUR__LAUNCH so that tests/cuda_emu.h can compile all
   of this with g++ and run it on a CPU (make test does). */

#ifndef AUR__KERNELS_CUH
#define AUR__KERNELS_CUH

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

/* ==== linear ==== */

__global__ void aur_k_rows_bias(float *y, const float *b, int64_t M, int64_t N)
{
    AUR__CUDA_FOR(i, M * N) y[i] = b ? b[i % N] : 0.0f;
}

/* Column sums out[j] += sum_r x[r, j] (bias gradients: R can be millions of
   rows, C a few hundred columns). Pass 1: block (bx, by) sums a chunk of rows
   for 32 columns, 8 threads per column over interleaved rows, then a fixed
   tree; pass 2: one thread per column adds the chunks in order. Sums in
   double (a million rows of float would lose digits); the chunking depends
   only on R: deterministic. */
#define AUR__COLSUM_MIN_CHUNK 256

static int64_t aur__colsum_chunk(int64_t R)
{
    int64_t chunk = AUR__COLSUM_MIN_CHUNK;
    while ((R + chunk - 1) / chunk > 65535) chunk *= 2; /* gridDim.y's limit */
    return chunk;
}

__global__ void aur_k_colsum_parts(double *part, const float *x, int64_t R, int64_t C, int64_t chunk)
{
    __shared__ double sh[8][32];
    int tx = threadIdx.x % 32, ty = threadIdx.x / 32;
    int64_t j = (int64_t)blockIdx.x * 32 + tx, r0 = (int64_t)blockIdx.y * chunk, r1 = r0 + chunk < R ? r0 + chunk : R;
    double s = 0;
    for (int64_t r = r0 + ty; j < C && r < r1; r += 8) s += x[r * C + j];
    sh[ty][tx] = s;
    __syncthreads();
    for (int w = 4; w > 0; w >>= 1) {
        if (ty < w) sh[ty][tx] += sh[ty + w][tx];
        __syncthreads();
    }
    if (ty == 0 && j < C) part[(int64_t)blockIdx.y * C + j] = sh[0][tx];
}

__global__ void aur_k_colsum_chunks(float *out, const double *part, int64_t chunks, int64_t C)
{
    AUR__CUDA_FOR(j, C)
    {
        double s = 0;
        for (int64_t c = 0; c < chunks; c++) s += part[c * C + j];
        out[j] += (float)s;
    }
}

static int aur__cuda_colsum(aur_tape *t, float *out, const float *x, int64_t R, int64_t C)
{
    int64_t chunk = aur__colsum_chunk(R), chunks = (R + chunk - 1) / chunk;
    if (R == 0 || C == 0) return 0;
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    double *part = (double *)aur__alloc(t, AUR_CUDA, sizeof(double) * (size_t)(chunks * C));
    if (!part) return aur__err(AUR_ENOMEM, "column sum: no GPU memory for %lld partial sums", (long long)(chunks * C));
    AUR__LAUNCH(aur_k_colsum_parts, dim3((unsigned)((C + 31) / 32), (unsigned)chunks), 256, 0, part, x, R, C, chunk);
    AUR__LAUNCH(aur_k_colsum_chunks, aur__cuda_grid(C), AUR__CUDA_THREADS, 0, out, (const double *)part, chunks, C);
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return aur__cuda_launch("column sum");
}

/* Linear forward: y = x w^T + b; under autocast y = round(bf16(x) bf16(w)^T + round(b)), as the CPU path. */
static int aur_cuda_linear_fwd(aur_tape *t, float *y, const float *x, const float *w, const float *b, int64_t M,
                               int64_t N, int64_t K)
{
    if (!t->autocast) {
        AUR__LAUNCH(aur_k_rows_bias, aur__cuda_grid(M * N), AUR__CUDA_THREADS, 0, y, b, M, N);
        if (aur__cuda_launch("linear bias")) return AUR_ECUDA;
        return aur__cuda_gemm(1, M, N, K, aur__matv(x, K, 1), 0, aur__matv(w, 1, K), 0, y, 0, N, 1);
    }
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    const aur_real *xb = aur__cuda_bf16(t, x, M * K), *wb = aur__cuda_bf16(t, w, N * K);
    int rc = xb && wb ? aur__cuda_gemm_t(1, M, N, K, aur__matv(xb, K, 1), 0, aur__matv(wb, 1, K), 0, y, 0, N, 0, 1) : AUR_ENOMEM;
    if (!rc) {
        AUR__LAUNCH(aur_k_bias_round, aur__cuda_grid(M * N), AUR__CUDA_THREADS, 0, y, b, M, N);
        rc = aur__cuda_launch("linear bias");
    }
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return rc;
}

/* out (+)= the product, or under autocast out += round(product): the gradients' rule (aur__acc_into) */
typedef struct aur__cuda_acc {
    aur_tape *t;
    int ac;
} aur__cuda_acc;

static float *aur__acc_target(const aur__cuda_acc *a, float *out, int64_t n)
{
    return a->ac ? aur__reals(a->t, AUR_CUDA, n) : out;
}

static int aur__acc_finish(const aur__cuda_acc *a, float *out, const float *tmp, int64_t n)
{
    return a->ac ? aur__cuda_round(out, tmp, 1, n) : 0;
}

static int aur_cuda_linear_bwd(aur_tape *t, int ac, float *dx, float *dw, float *db, const float *dy, const float *x,
                               const float *w, int64_t M, int64_t N, int64_t K)
{
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    aur__cuda_acc A = {t, ac};
    const aur_real *dyb = ac ? aur__cuda_bf16(t, dy, M * N) : dy;
    const aur_real *xb = ac && dw ? aur__cuda_bf16(t, x, M * K) : x, *wb = ac && dx ? aur__cuda_bf16(t, w, N * K) : w;
    int rc = dyb && xb && wb ? 0 : AUR_ENOMEM;
    if (!rc && dx) { /* dx += dy w */
        float *o = aur__acc_target(&A, dx, M * K);
        rc = o ? aur__cuda_gemm_t(1, M, K, N, aur__matv(dyb, N, 1), 0, aur__matv(wb, K, 1), 0, o, 0, K, !ac, ac) : AUR_ENOMEM;
        if (!rc) rc = aur__acc_finish(&A, dx, o, M * K);
    }
    if (!rc && dw) { /* dw += dy^T x */
        float *o = aur__acc_target(&A, dw, N * K);
        rc = o ? aur__cuda_gemm_t(1, N, K, M, aur__matv(dyb, 1, N), 0, aur__matv(xb, K, 1), 0, o, 0, K, !ac, ac) : AUR_ENOMEM;
        if (!rc) rc = aur__acc_finish(&A, dw, o, N * K);
    }
    if (!rc && db) { /* db += column sums of dy (rounded under autocast) */
        const float *dyr = ac ? aur__cuda_rounded(t, dy, M * N) : dy;
        float *o = aur__acc_target(&A, db, N);
        rc = dyr && o ? (ac ? aur_cuda_fill(o, 0, N) : 0) : AUR_ENOMEM;
        if (!rc) rc = aur__cuda_colsum(t, o, dyr, M, N);
        if (!rc) rc = aur__acc_finish(&A, db, o, N);
    }
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return rc;
}

/* ==== batched matmul ==== */

/* g with its operands as BF16 copies (autocast) */
static int aur__mm_bf16(aur_tape *t, aur__mm_geom *g, int64_t na, int64_t nb)
{
    g->a.p = aur__cuda_bf16(t, g->a.p, na);
    g->b.p = aur__cuda_bf16(t, g->b.p, nb);
    return g->a.p && g->b.p ? 0 : AUR_ENOMEM;
}

static int aur_cuda_matmul_fwd(aur_tape *t, const aur__mm_geom *g0, int64_t na, int64_t nb, float *y)
{
    aur__mm_geom g = *g0;
    int ac = t->autocast, rc;
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    rc = ac ? aur__mm_bf16(t, &g, na, nb) : 0;
    if (!rc) rc = aur__cuda_gemm_t(g.nb, g.M, g.N, g.K, g.a, g.sa, g.b, g.sb, y, g.M * g.N, g.N, 0, ac);
    if (!rc && ac) rc = aur__cuda_round(y, y, 0, g.nb * g.M * g.N);
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return rc;
}

static int aur_cuda_matmul_bwd(aur_tape *t, int ac, const aur__mm_geom *g0, int64_t na, int64_t nb, float *da, float *db,
                               const float *dy, int ta, int tb)
{
    aur__mm_geom g = *g0;
    aur__cuda_acc A = {t, ac};
    int64_t sy = g.M * g.N;
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    const aur_real *dyb = ac ? aur__cuda_bf16(t, dy, g.nb * sy) : dy;
    int rc = !dyb ? AUR_ENOMEM : ac ? aur__mm_bf16(t, &g, na, nb) : 0;
    if (!rc && da) {
        float *o = aur__acc_target(&A, da, na);
        if (!o) rc = AUR_ENOMEM;
        else if (!ta) /* da (M x K) += dy opB^T */
            rc = aur__cuda_gemm_t(g.nb, g.M, g.K, g.N, aur__matv(dyb, g.N, 1), sy, aur__matv(g.b.p, g.b.cs, g.b.rs), g.sb,
                                  o, g.sa, g.K, !ac, ac);
        else /* da (K x M) += opB dy^T */
            rc = aur__cuda_gemm_t(g.nb, g.K, g.M, g.N, g.b, g.sb, aur__matv(dyb, 1, g.N), sy, o, g.sa, g.M, !ac, ac);
        if (!rc) rc = aur__acc_finish(&A, da, o, na);
    }
    if (!rc && db) {
        /* a shared 2-D b sums its batches one after another: deterministic */
        int64_t nbb = g.sb ? g.nb : 1, steps = g.sb ? 1 : g.nb;
        float *o = aur__acc_target(&A, db, nb);
        if (!o) rc = AUR_ENOMEM;
        for (int64_t s = 0; s < steps && !rc; s++) {
            int acc = !ac || s > 0;
            aur__mat as = aur__mat_at(g.a, s * g.sa, ac);
            aur__mat dys = aur__mat_at(aur__matv(dyb, g.N, 1), s * sy, ac);
            if (!tb) /* db (K x N) += opA^T dy */
                rc = aur__cuda_gemm_t(nbb, g.K, g.N, g.M, aur__matv(as.p, as.cs, as.rs), g.sa, dys, sy, o, g.sb, g.N, acc, ac);
            else /* db (N x K) += dy^T opA */
                rc = aur__cuda_gemm_t(nbb, g.N, g.K, g.M, aur__matv(dys.p, 1, g.N), sy, as, g.sa, o, g.sb, g.K, acc, ac);
        }
        if (!rc) rc = aur__acc_finish(&A, db, o, nb);
    }
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return rc;
}

/* ==== elementwise with broadcasting ==== */

__device__ int64_t aur_k_offset(const int64_t *shape, const int64_t *st, int nd, int64_t i)
{
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; d--) {
        int64_t n = shape[d] ? shape[d] : 1;
        off += (i % n) * st[d];
        i /= n;
    }
    return off;
}

__global__ void aur_k_binary_fwd(int kind, aur__bcast g, float *y, const float *a, const float *b, int64_t n)
{
    AUR__CUDA_FOR(i, n)
    {
        float x = a[aur_k_offset(g.shape, g.sa, g.ndim, i)], z = b[aur_k_offset(g.shape, g.sb, g.ndim, i)];
        y[i] = kind == AUR__ADD ? x + z : kind == AUR__SUB ? x - z : x * z;
    }
}

/* d[e] += sign * sum of dy * other over the output positions that read
   operand element e: one thread per operand element, positions in order. */
__global__ void aur_k_binary_bwd(aur__bcast g, int which, float *d, int64_t nd_elems, const float *dy, const float *other,
                                 float sign)
{
    const int64_t *sd = which ? g.sb : g.sa, *so_other = which ? g.sa : g.sb;
    int64_t nbc = 1; /* positions per operand element: the product of its broadcast dims */
    for (int k = 0; k < g.ndim; k++)
        if (sd[k] == 0) nbc *= g.shape[k];
    AUR__CUDA_FOR(e, nd_elems)
    {
        float acc = 0;
        for (int64_t k = 0; k < nbc; k++) {
            int64_t rem = k, out = 0, oth = 0;
            for (int dd = g.ndim - 1; dd >= 0; dd--) {
                int64_t n = g.shape[dd] ? g.shape[dd] : 1, idx;
                if (sd[dd] == 0) {
                    idx = rem % n;
                    rem /= n;
                } else {
                    idx = (e / sd[dd]) % n;
                }
                out += idx * g.so[dd];
                oth += idx * so_other[dd];
            }
            acc += dy[out] * (other ? other[oth] : 1.0f);
        }
        d[e] += sign * acc;
    }
}

static int aur_cuda_binary_fwd(int kind, const aur__bcast *g, float *y, const float *a, const float *b)
{
    int64_t n = 1;
    for (int d = 0; d < g->ndim; d++) n *= g->shape[d];
    AUR__LAUNCH(aur_k_binary_fwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, kind, *g, y, a, b, n);
    return aur__cuda_launch("binary op");
}

static int64_t aur__bcast_operand_numel(const aur__bcast *g, int which)
{
    const int64_t *st = which ? g->sb : g->sa;
    int64_t n = 1;
    for (int d = 0; d < g->ndim; d++)
        if (st[d] != 0) n *= g->shape[d];
    return n;
}

/* An operand broadcast only over leading dims (a bias over rows): its
   gradient is a column sum of dy seen as (R, numel). 0 if it is not one. */
static int64_t aur__bcast_rows(const aur__bcast *g, int which)
{
    const int64_t *st = which ? g->sb : g->sa;
    int k = g->ndim;
    while (k > 0 && st[k - 1] != 0) k--; /* dims k.. are the operand's own */
    int64_t rows = 1, expect = 1;
    for (int d = g->ndim - 1; d >= k; d--) {
        if (g->shape[d] > 1 && st[d] != expect) return 0;
        expect *= g->shape[d];
    }
    for (int d = 0; d < k; d++) {
        if (st[d] != 0 && g->shape[d] > 1) return 0; /* an own dim before a broadcast one: not a plain bias */
        rows *= g->shape[d];
    }
    return rows;
}

__global__ void aur_k_mul(float *y, const float *a, const float *b, int64_t n)
{
    AUR__CUDA_FOR(i, n) y[i] = a[i] * b[i];
}

/* 1 if the operand is laid out as the output (not broadcast anywhere) */
static int aur__bcast_full(const aur__bcast *g, int which)
{
    const int64_t *st = which ? g->sb : g->sa;
    for (int d = 0; d < g->ndim; d++)
        if (g->shape[d] > 1 && st[d] != g->so[d]) return 0;
    return 1;
}

/* d (operand which of g) += sign * sum of dy (* other) over its broadcast positions:
   a column sum when the operand is a bias over leading rows (and other, if any, is full) */
static int aur__cuda_bcast_grad(aur_tape *t, const aur__bcast *g, int which, float *d, const float *dy, const float *other,
                                float sign)
{
    int64_t n = aur__bcast_operand_numel(g, which), rows = aur__bcast_rows(g, which);
    if (sign == 1.0f && rows > 1 && !other) return aur__cuda_colsum(t, d, dy, rows, n);
    if (sign == 1.0f && rows > 1 && aur__bcast_full(g, !which)) { /* d += colsum(dy * other) */
        aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
        float *prod = aur__reals(t, AUR_CUDA, rows * n);
        int rc = prod ? 0 : aur__err(AUR_ENOMEM, "broadcast gradient: no GPU memory for %lld products", (long long)(rows * n));
        if (!rc) AUR__LAUNCH(aur_k_mul, aur__cuda_grid(rows * n), AUR__CUDA_THREADS, 0, prod, dy, other, rows * n);
        if (!rc) rc = aur__cuda_colsum(t, d, prod, rows, n);
        aur__arena_release(&t->main[AUR_CUDA], mk);
        return rc;
    }
    AUR__LAUNCH(aur_k_binary_bwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, *g, which, d, n, dy, other, sign);
    return aur__cuda_launch("broadcast gradient");
}

static int aur_cuda_binary_bwd(aur_tape *t, int kind, const aur__bcast *g, float *da, float *db, const float *dy,
                               const float *a, const float *b)
{
    int rc = da ? aur__cuda_bcast_grad(t, g, 0, da, dy, kind == AUR__MUL ? b : NULL, 1.0f) : 0;
    if (!rc && db) rc = aur__cuda_bcast_grad(t, g, 1, db, dy, kind == AUR__MUL ? a : NULL, kind == AUR__SUB ? -1.0f : 1.0f);
    return rc;
}

/* ==== scale and axpy ==== */

__global__ void aur_k_scale(float *y, const float *x, float s, int64_t n)
{
    AUR__CUDA_FOR(i, n) y[i] = x[i] * s;
}

__global__ void aur_k_axpy(float *y, const float *x, float s, int64_t n)
{
    AUR__CUDA_FOR(i, n) y[i] += s * x[i];
}

static int aur_cuda_scale(float *y, const float *x, float s, int64_t n)
{
    AUR__LAUNCH(aur_k_scale, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, s, n);
    return aur__cuda_launch("scale");
}

static int aur_cuda_axpy(float *y, const float *x, float s, int64_t n)
{
    AUR__LAUNCH(aur_k_axpy, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, s, n);
    return aur__cuda_launch("axpy");
}

/* ==== activations ==== */

__device__ float aur_k_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void aur_k_unary_fwd(int kind, float *y, const float *x, int64_t n)
{
    const float k0 = 0.79788456080286535588f, k1 = 0.044715f;
    AUR__CUDA_FOR(i, n)
    {
        float v = x[i], r;
        switch (kind) {
        case AUR__GELU: r = 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f)); break;
        case AUR__GELU_TANH: r = 0.5f * v * (1.0f + tanhf(k0 * (v + k1 * v * v * v))); break;
        case AUR__SILU: r = v * aur_k_sigmoid(v); break;
        case AUR__SIGMOID: r = aur_k_sigmoid(v); break;
        case AUR__LOGARITHM: r = logf(v); break;
        case AUR__SINE: r = sinf(v); break;
        default: r = cosf(v); break;
        }
        y[i] = r;
    }
}

__global__ void aur_k_unary_bwd(int kind, float *dx, const float *dy, const float *x, const float *y, int64_t n, int fresh)
{
    const float k0 = 0.79788456080286535588f, k1 = 0.044715f;
    AUR__CUDA_FOR(i, n)
    {
        float v = x[i], d;
        if (kind == AUR__GELU) {
            d = 0.5f * (1.0f + erff(v * 0.70710678118654752440f)) + v * 0.39894228040143267794f * expf(-0.5f * v * v);
        } else if (kind == AUR__GELU_TANH) {
            float th = tanhf(k0 * (v + k1 * v * v * v));
            d = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * k0 * (1.0f + 3.0f * k1 * v * v);
        } else if (kind == AUR__SILU) {
            float s = aur_k_sigmoid(v);
            d = s * (1.0f + v * (1.0f - s));
        } else if (kind == AUR__SIGMOID) {
            d = y[i] * (1.0f - y[i]);
        } else if (kind == AUR__LOGARITHM) {
            d = 1.0f / v;
        } else if (kind == AUR__SINE) {
            d = cosf(v);
        } else {
            d = -sinf(v);
        }
        dx[i] = (fresh ? 0.0f : dx[i]) + dy[i] * d; /* fresh: dx is dy's bytes (aur__grad_in_place) */
    }
}

static int aur_cuda_unary_fwd(int kind, float *y, const float *x, int64_t n)
{
    AUR__LAUNCH(aur_k_unary_fwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, kind, y, x, n);
    return aur__cuda_launch("activation");
}

static int aur_cuda_unary_bwd(int kind, float *dx, const float *dy, const float *x, const float *y, int64_t n, int fresh)
{
    AUR__LAUNCH(aur_k_unary_bwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, kind, dx, dy, x, y, n, fresh);
    return aur__cuda_launch("activation gradient");
}

/* ==== rows: one warp per row ====
   Row ops (layer norm, softmax) give each row to a warp of 32 lanes that
   stride over it and combine with a fixed shuffle tree: deterministic. */

#define AUR__ROW_WARPS 8 /* warps (rows) per block */

__device__ float aur_k_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ float aur_k_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

static unsigned aur__cuda_row_blocks(int64_t rows) { return (unsigned)((rows + AUR__ROW_WARPS - 1) / AUR__ROW_WARPS); }

/* The row of this warp, or -1 past the end (the whole warp leaves together). */
__device__ int64_t aur_k_warp_row(int64_t rows)
{
    int64_t r = (int64_t)blockIdx.x * AUR__ROW_WARPS + threadIdx.x / 32;
    return r < rows ? r : -1;
}

/* ==== layer norm ==== */

__global__ void aur_k_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                                    int64_t N, int64_t C, float eps)
{
    int64_t r = aur_k_warp_row(N);
    if (r < 0) return;
    int lane = threadIdx.x % 32;
    const float *xr = x + r * C;
    float s = 0, v = 0;
    for (int64_t j = lane; j < C; j += 32) s += xr[j];
    float m = aur_k_warp_sum(s) / (float)C;
    for (int64_t j = lane; j < C; j += 32) v += (xr[j] - m) * (xr[j] - m);
    float rs = 1.0f / sqrtf(aur_k_warp_sum(v) / (float)C + eps);
    if (lane == 0) mean[r] = m, rstd[r] = rs;
    for (int64_t j = lane; j < C; j += 32) {
        float h = (xr[j] - m) * rs;
        y[r * C + j] = w ? h * w[j] + b[j] : h;
    }
}

/* dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dy w; dy_xhat (for dw) = dy xhat. */
__global__ void aur_k_layernorm_bwd(float *dx, float *dy_xhat, const float *dy, const float *x, const float *w,
                                    const float *mean, const float *rstd, int64_t N, int64_t C)
{
    int64_t r = aur_k_warp_row(N);
    if (r < 0) return;
    int lane = threadIdx.x % 32;
    const float *xr = x + r * C, *dyr = dy + r * C;
    float m = mean[r], rs = rstd[r], sg = 0, sgx = 0;
    for (int64_t j = lane; j < C; j += 32) {
        float h = (xr[j] - m) * rs, g = dyr[j] * (w ? w[j] : 1.0f);
        sg += g;
        sgx += g * h;
        if (dy_xhat) dy_xhat[r * C + j] = dyr[j] * h;
    }
    float mg = aur_k_warp_sum(sg) / (float)C, mgx = aur_k_warp_sum(sgx) / (float)C;
    if (!dx) return;
    for (int64_t j = lane; j < C; j += 32) {
        float h = (xr[j] - m) * rs, g = dyr[j] * (w ? w[j] : 1.0f);
        dx[r * C + j] += rs * (g - mg - h * mgx);
    }
}

static int aur_cuda_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                                  int64_t N, int64_t C, double eps)
{
    AUR__LAUNCH(aur_k_layernorm_fwd, aur__cuda_row_blocks(N), 32 * AUR__ROW_WARPS, 0, y, mean, rstd, x, w, b, N, C,
                (float)eps);
    return aur__cuda_launch("layernorm");
}

/* Column sums of dy xhat and dy give dw and db. */
static int aur_cuda_layernorm_bwd(aur_tape *t, float *dx, float *dw, float *db, float *dy_xhat, const float *dy,
                                  const float *x, const float *w, const float *mean, const float *rstd, int64_t N, int64_t C)
{
    AUR__LAUNCH(aur_k_layernorm_bwd, aur__cuda_row_blocks(N), 32 * AUR__ROW_WARPS, 0, dx, dy_xhat, dy, x, w, mean, rstd,
                N, C);
    int rc = aur__cuda_launch("layernorm gradient");
    if (!rc && dw) rc = aur__cuda_colsum(t, dw, dy_xhat, N, C);
    if (!rc && db) rc = aur__cuda_colsum(t, db, dy, N, C);
    return rc;
}

/* ==== softmax over the last dim (also the attention scores) ==== */

/* The mask offset of score row r (batch r / Lq, query r % Lq). */
__device__ int64_t aur_k_mask_row(const aur__attn_mask *mg, int64_t r)
{
    return aur_k_offset(mg->lead_shape, mg->lead_stride, mg->lead, r / mg->Lq) + r % mg->Lq * mg->si;
}

/* y = softmax(x * scale + mask) per row; mask (optional) at moff(row) + j*mj;
   lse (optional) keeps each row's log-sum-exp, from which backward rebuilds y. */
__global__ void aur_k_softmax_fwd(float *y, const float *x, int64_t R, int64_t C, float scale, const float *mask,
                                  aur__attn_mask mg, float *lse)
{
    int64_t r = aur_k_warp_row(R);
    if (r < 0) return;
    int lane = threadIdx.x % 32;
    const float *xr = x + r * C;
    float *yr = y + r * C, mx = -INFINITY, s = 0;
    int64_t moff = mask ? aur_k_mask_row(&mg, r) : 0;
    for (int64_t j = lane; j < C; j += 32) {
        float v = xr[j] * scale + (mask ? mask[moff + j * mg.sj] : 0.0f);
        yr[j] = v;
        mx = fmaxf(mx, v);
    }
    mx = aur_k_warp_max(mx);
    for (int64_t j = lane; j < C; j += 32) {
        float e = expf(yr[j] - mx);
        yr[j] = e;
        s += e;
    }
    s = aur_k_warp_sum(s);
    float inv = 1.0f / s;
    for (int64_t j = lane; j < C; j += 32) yr[j] *= inv;
    if (lse && lane == 0) lse[r] = mx + logf(s);
}

/* P = exp(S * scale + mask - lse) per row: the attention weights again, from the saved log-sum-exp. */
__global__ void aur_k_softmax_rebuild(float *P, const float *S, int64_t R, int64_t C, float scale, const float *mask,
                                      aur__attn_mask mg, const float *lse)
{
    AUR__CUDA_FOR(e, R * C)
    {
        int64_t r = e / C, j = e % C;
        float m = mask ? mask[aur_k_mask_row(&mg, r) + j * mg.sj] : 0.0f;
        P[e] = expf(S[e] * scale + m - lse[r]);
    }
}

/* out = y (dy - sum(dy y)), added to dx (accumulate) or written (the attention's dS) */
__global__ void aur_k_softmax_bwd(float *dx, const float *dy, const float *y, int64_t R, int64_t C, int accumulate)
{
    int64_t r = aur_k_warp_row(R);
    if (r < 0) return;
    int lane = threadIdx.x % 32;
    float s = 0;
    for (int64_t j = lane; j < C; j += 32) s += dy[r * C + j] * y[r * C + j];
    s = aur_k_warp_sum(s);
    for (int64_t j = lane; j < C; j += 32) {
        float v = y[r * C + j] * (dy[r * C + j] - s);
        dx[r * C + j] = accumulate ? dx[r * C + j] + v : v;
    }
}

static int aur_cuda_softmax_fwd(float *y, const float *x, int64_t R, int64_t C)
{
    aur__attn_mask none;
    memset(&none, 0, sizeof none);
    AUR__LAUNCH(aur_k_softmax_fwd, aur__cuda_row_blocks(R), 32 * AUR__ROW_WARPS, 0, y, x, R, C, 1.0f, (const float *)NULL,
                none, (float *)NULL);
    return aur__cuda_launch("softmax");
}

static int aur_cuda_softmax_bwd(float *dx, const float *dy, const float *y, int64_t R, int64_t C)
{
    AUR__LAUNCH(aur_k_softmax_bwd, aur__cuda_row_blocks(R), 32 * AUR__ROW_WARPS, 0, dx, dy, y, R, C, 1);
    return aur__cuda_launch("softmax gradient");
}

/* ==== scaled dot-product attention ====
   S = q k^T (cuBLAS), P = softmax(S scale + mask), o = P v (cuBLAS). P
   (nb Lq Lk floats, larger than q, k and v together for Aurora's windows)
   is not kept: only each row's log-sum-exp, and backward rebuilds P from
   S = q k^T again. Backward then as on the CPU: dP = do v^T,
   dS = P (dP - rowsum(dP P)). */

static aur__attn_mask aur__attn_mask_of(const aur__attn *g)
{
    aur__attn_mask m;
    memset(&m, 0, sizeof m);
    m.lead = g->lead;
    for (int i = 0; i < g->lead; i++) m.lead_shape[i] = g->lead_shape[i], m.lead_stride[i] = g->ms[i];
    m.Lq = g->Lq;
    m.si = g->ms[g->lead];
    m.sj = g->ms[g->lead + 1];
    return m;
}

static int aur__cuda_scores(const aur__attn *g, float *S, const float *q, const float *k)
{
    return aur__cuda_gemm(g->nb, g->Lq, g->Lk, g->d, aur__matv(q, g->d, 1), g->Lq * g->d, aur__matv(k, 1, g->d),
                          g->Lk * g->d, S, g->Lq * g->Lk, g->Lk, 0);
}

/* P is scratch (nb, Lq, Lk); lse (nb Lq) is kept for backward */
static int aur_cuda_sdpa_fwd(const aur__attn *g, float *y, float *P, float *lse, const float *q, const float *k,
                             const float *v, const float *mask)
{
    int rc = aur__cuda_scores(g, P, q, k);
    if (rc) return rc;
    aur__attn_mask mg = aur__attn_mask_of(g);
    AUR__LAUNCH(aur_k_softmax_fwd, aur__cuda_row_blocks(g->nb * g->Lq), 32 * AUR__ROW_WARPS, 0, P, P, g->nb * g->Lq,
                g->Lk, (float)g->scale, mask, mg, lse);
    if (aur__cuda_launch("attention softmax")) return AUR_ECUDA;
    return aur__cuda_gemm(g->nb, g->Lq, g->dv, g->Lk, aur__matv(P, g->Lk, 1), g->Lq * g->Lk, aur__matv(v, g->dv, 1),
                          g->Lk * g->dv, y, g->Lq * g->dv, g->dv, 0);
}

/* P and dS (nb, Lq, Lk) are scratch; P is rebuilt from lse; the mask
   gradient sums dS where the mask is broadcast. */
static int aur_cuda_sdpa_bwd(const aur__attn *g, float *dq, float *dk, float *dv, float *dm, float *P, float *dS,
                             const float *lse, const float *dO, const float *q, const float *k, const float *v,
                             const float *mask, const aur__bcast *mask_g)
{
    int64_t LL = g->Lq * g->Lk;
    int rc = aur__cuda_scores(g, P, q, k);
    if (rc) return rc;
    AUR__LAUNCH(aur_k_softmax_rebuild, aur__cuda_grid(g->nb * LL), AUR__CUDA_THREADS, 0, P, (const float *)P,
                g->nb * g->Lq, g->Lk, (float)g->scale, mask, aur__attn_mask_of(g), lse);
    if (aur__cuda_launch("attention weights")) return AUR_ECUDA;
    if (dv)
        rc = aur__cuda_gemm(g->nb, g->Lk, g->dv, g->Lq, aur__matv(P, 1, g->Lk), LL, aur__matv(dO, g->dv, 1),
                            g->Lq * g->dv, dv, g->Lk * g->dv, g->dv, 1);
    if (rc || (!dq && !dk && !dm)) return rc;
    rc = aur__cuda_gemm(g->nb, g->Lq, g->Lk, g->dv, aur__matv(dO, g->dv, 1), g->Lq * g->dv, aur__matv(v, 1, g->dv),
                        g->Lk * g->dv, dS, LL, g->Lk, 0);
    if (rc) return rc;
    AUR__LAUNCH(aur_k_softmax_bwd, aur__cuda_row_blocks(g->nb * g->Lq), 32 * AUR__ROW_WARPS, 0, dS, dS, P,
                g->nb * g->Lq, g->Lk, 0);
    if (aur__cuda_launch("attention softmax gradient")) return AUR_ECUDA;
    if (dm) {
        int64_t n = aur__bcast_operand_numel(mask_g, 1);
        AUR__LAUNCH(aur_k_binary_bwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, *mask_g, 1, dm, n, dS,
                    (const float *)NULL, 1.0f);
        if (aur__cuda_launch("attention mask gradient")) return AUR_ECUDA;
    }
    AUR__LAUNCH(aur_k_scale, aur__cuda_grid(g->nb * LL), AUR__CUDA_THREADS, 0, dS, dS, (float)g->scale, g->nb * LL);
    if (aur__cuda_launch("attention scale")) return AUR_ECUDA;
    if (dq)
        rc = aur__cuda_gemm(g->nb, g->Lq, g->d, g->Lk, aur__matv(dS, g->Lk, 1), LL, aur__matv(k, g->d, 1), g->Lk * g->d,
                            dq, g->Lq * g->d, g->d, 1);
    if (!rc && dk)
        rc = aur__cuda_gemm(g->nb, g->Lk, g->d, g->Lq, aur__matv(dS, 1, g->Lk), LL, aur__matv(q, g->d, 1), g->Lq * g->d,
                            dk, g->Lk * g->d, g->d, 1);
    return rc;
}

/* ==== fused attention ====
   For head sizes up to AUR__ATTN_DMAX, forward and backward run without
   any score matrix: a thread owns a query row (forward, dq) or a key row
   (dk, dv) and walks the other side in order, rebuilding the weights from
   the saved log-sum-exp, as flash attention does. Each output is summed by
   its one thread: deterministic. The rows the threads of a block walk are
   the same at each step, so their reads are broadcasts the caches serve.
   A mask gradient (a learned bias) takes the materialised path above. */

#define AUR__ATTN_DMAX 128

/* score of query i against key j, scaled and masked */
__device__ float aur_k_score(const float *qi, const float *kj, int64_t d, float scale, const float *mask,
                             const aur__attn_mask *mg, int64_t row, int64_t j)
{
    float s = 0;
    for (int64_t c = 0; c < d; c++) s += qi[c] * kj[c];
    return s * scale + (mask ? mask[aur_k_mask_row(mg, row) + j * mg->sj] : 0.0f);
}

/* o_i = softmax_j(s_ij) v_j with a running maximum; lse_i kept */
__global__ void aur_k_attn_fwd(float *y, float *lse, const float *q, const float *k, const float *v, aur__attn g,
                               aur__attn_mask mg, const float *mask)
{
    int64_t b = blockIdx.y, i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= g.Lq) return;
    const float *qi = q + (b * g.Lq + i) * g.d, *kb = k + b * g.Lk * g.d, *vb = v + b * g.Lk * g.dv;
    float acc[AUR__ATTN_DMAX], mx = -INFINITY, l = 0;
    for (int64_t c = 0; c < g.dv; c++) acc[c] = 0;
    for (int64_t j = 0; j < g.Lk; j++) {
        float s = aur_k_score(qi, kb + j * g.d, g.d, (float)g.scale, mask, &mg, b * g.Lq + i, j);
        if (s == -INFINITY) continue; /* a masked key adds nothing (and exp(-inf - -inf) would be NaN) */
        float m2 = fmaxf(mx, s), r = expf(mx - m2), p = expf(s - m2);
        l = l * r + p;
        for (int64_t c = 0; c < g.dv; c++) acc[c] = acc[c] * r + p * vb[j * g.dv + c];
        mx = m2;
    }
    for (int64_t c = 0; c < g.dv; c++) y[(b * g.Lq + i) * g.dv + c] = acc[c] / l;
    lse[b * g.Lq + i] = mx + logf(l);
}

/* P_ij (rebuilt from lse) and dP_ij = dO_i . v_j */
__device__ float aur_k_attn_p(const float *qi, const float *dOi, const float *kj, const float *vj, const aur__attn *g,
                              const float *mask, const aur__attn_mask *mg, int64_t row, int64_t j, float lse, float *dp)
{
    float p = expf(aur_k_score(qi, kj, g->d, (float)g->scale, mask, mg, row, j) - lse), s = 0;
    for (int64_t c = 0; c < g->dv; c++) s += dOi[c] * vj[c];
    *dp = s;
    return p;
}

/* D_i = sum_j P_ij dP_ij (as the CPU's rowsum(dP P); kept for dk), then
   dq_i = scale sum_j P_ij (dP_ij - D_i) k_j */
__global__ void aur_k_attn_dq(float *dq, float *D, const float *lse, const float *dO, const float *q, const float *k,
                              const float *v, aur__attn g, aur__attn_mask mg, const float *mask)
{
    int64_t b = blockIdx.y, i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= g.Lq) return;
    int64_t row = b * g.Lq + i;
    const float *qi = q + row * g.d, *dOi = dO + row * g.dv, *kb = k + b * g.Lk * g.d, *vb = v + b * g.Lk * g.dv;
    float Di = 0, dp, acc[AUR__ATTN_DMAX];
    for (int64_t j = 0; j < g.Lk; j++) {
        float p = aur_k_attn_p(qi, dOi, kb + j * g.d, vb + j * g.dv, &g, mask, &mg, row, j, lse[row], &dp);
        Di += p * dp;
    }
    D[row] = Di;
    for (int64_t c = 0; c < g.d; c++) acc[c] = 0;
    for (int64_t j = 0; j < g.Lk; j++) {
        float p = aur_k_attn_p(qi, dOi, kb + j * g.d, vb + j * g.dv, &g, mask, &mg, row, j, lse[row], &dp);
        float ds = p * (dp - Di);
        for (int64_t c = 0; c < g.d; c++) acc[c] += ds * kb[j * g.d + c];
    }
    if (dq)
        for (int64_t c = 0; c < g.d; c++) dq[row * g.d + c] += (float)g.scale * acc[c];
}

/* dv_j = sum_i P_ij dO_i and dk_j = scale sum_i P_ij (dP_ij - D_i) q_i, one thread per key */
__global__ void aur_k_attn_dkv(float *dk, float *dv, const float *D, const float *lse, const float *dO, const float *q,
                               const float *k, const float *v, aur__attn g, aur__attn_mask mg, const float *mask)
{
    int64_t b = blockIdx.y, j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= g.Lk) return;
    const float *kj = k + (b * g.Lk + j) * g.d, *vj = v + (b * g.Lk + j) * g.dv;
    float ak[AUR__ATTN_DMAX], av[AUR__ATTN_DMAX];
    for (int64_t c = 0; c < g.d; c++) ak[c] = 0;
    for (int64_t c = 0; c < g.dv; c++) av[c] = 0;
    for (int64_t i = 0; i < g.Lq; i++) {
        int64_t row = b * g.Lq + i;
        const float *qi = q + row * g.d, *dOi = dO + row * g.dv;
        float dp, p = aur_k_attn_p(qi, dOi, kj, vj, &g, mask, &mg, row, j, lse[row], &dp);
        float ds = p * (dp - D[row]);
        for (int64_t c = 0; c < g.dv; c++) av[c] += p * dOi[c];
        for (int64_t c = 0; c < g.d; c++) ak[c] += ds * qi[c];
    }
    if (dv)
        for (int64_t c = 0; c < g.dv; c++) dv[(b * g.Lk + j) * g.dv + c] += av[c];
    if (dk)
        for (int64_t c = 0; c < g.d; c++) dk[(b * g.Lk + j) * g.d + c] += (float)g.scale * ak[c];
}

/* on: the tape's choice (aur_tape_set_fused_attention), as it was at the forward */
static int aur__attn_fusable(const aur__attn *g, int on)
{
    return on && g->d <= AUR__ATTN_DMAX && g->dv <= AUR__ATTN_DMAX && g->nb <= 65535;
}

static dim3 aur__attn_grid(const aur__attn *g, int64_t rows) { return dim3((unsigned)((rows + 127) / 128), (unsigned)g->nb); }

static int aur_cuda_attn_fwd(const aur__attn *g, float *y, float *lse, const float *q, const float *k, const float *v,
                             const float *mask)
{
    AUR__LAUNCH(aur_k_attn_fwd, aur__attn_grid(g, g->Lq), 128, 0, y, lse, q, k, v, *g, aur__attn_mask_of(g), mask);
    return aur__cuda_launch("attention");
}

/* D (nb Lq) is scratch */
static int aur_cuda_attn_bwd(const aur__attn *g, float *dq, float *dk, float *dv, float *D, const float *lse,
                             const float *dO, const float *q, const float *k, const float *v, const float *mask)
{
    aur__attn_mask mg = aur__attn_mask_of(g);
    AUR__LAUNCH(aur_k_attn_dq, aur__attn_grid(g, g->Lq), 128, 0, dq, D, lse, dO, q, k, v, *g, mg, mask);
    if (dk || dv) AUR__LAUNCH(aur_k_attn_dkv, aur__attn_grid(g, g->Lk), 128, 0, dk, dv, (const float *)D, lse, dO, q, k, v, *g, mg, mask);
    return aur__cuda_launch("attention gradient");
}

/* ==== element-wise ops ==== */

/* the rules are aurora.h's aur__pw_value and aur__pw_grad, as on the CPU */
__global__ void aur_k_pointwise_fwd(int kind, float *y, const float *x, const float *x2, float a, float b, int64_t n)
{
    AUR__CUDA_FOR(i, n) y[i] = aur__pw_value(kind, x[i], x2 ? x2[i] : 0.0f, a, b);
}

__global__ void aur_k_pointwise_bwd(int kind, float *dx, float *dx2, const float *dy, const float *x, const float *x2,
                                    float a, float b, int64_t n)
{
    AUR__CUDA_FOR(i, n) aur__pw_grad(kind, x[i], x2 ? x2[i] : 0.0f, a, b, dy[i], dx ? dx + i : NULL, dx2 ? dx2 + i : NULL);
}

static int aur_cuda_pointwise_fwd(int kind, float *y, const float *x, const float *x2, double a, double b, int64_t n)
{
    AUR__LAUNCH(aur_k_pointwise_fwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, kind, y, x, x2, (float)a, (float)b, n);
    return aur__cuda_launch("element-wise op");
}

static int aur_cuda_pointwise_bwd(int kind, float *dx, float *dx2, const float *dy, const float *x, const float *x2,
                                  double a, double b, int64_t n)
{
    AUR__LAUNCH(aur_k_pointwise_bwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, kind, dx, dx2, dy, x, x2, (float)a,
                (float)b, n);
    return aur__cuda_launch("element-wise op gradient");
}

__global__ void aur_k_dropout(float *y, const float *x, int64_t n, uint64_t seed, uint64_t offset, double p,
                              int accumulate)
{
    float scale = (float)(1.0 / (1.0 - p));
    AUR__CUDA_FOR(i, n)
    {
        float v = aur__dropout_keep(seed, offset + (uint64_t)i, p) ? x[i] * scale : 0.0f;
        y[i] = accumulate ? y[i] + v : v;
    }
}

static int aur_cuda_dropout(float *y, const float *x, int64_t n, uint64_t seed, uint64_t offset, double p, int accumulate)
{
    AUR__LAUNCH(aur_k_dropout, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, n, seed, offset, p, accumulate);
    return aur__cuda_launch("dropout");
}

/* x viewed as (outer, C, inner): y = (x - loc[c]) / scale[c], or x * scale[c] + loc[c]
   rounded after each operation (no FMA), as PyTorch; backward dx += dy / scale (or * scale). */
__global__ void aur_k_normalise(float *y, const float *x, const float *loc, const float *scale, int64_t C,
                                int64_t inner, int inverse, int backward, int64_t n)
{
    AUR__CUDA_FOR(i, n)
    {
        int64_t c = i / inner % C;
        if (backward) y[i] += inverse ? x[i] * scale[c] : x[i] * (1.0f / scale[c]);
        else if (inverse) y[i] = __fadd_rn(__fmul_rn(x[i], scale[c]), loc[c]);
        else y[i] = (x[i] - loc[c]) / scale[c];
    }
}

static int aur_cuda_normalise(float *y, const float *x, const float *loc, const float *scale, int64_t C, int64_t inner,
                              int inverse, int backward, int64_t n)
{
    AUR__LAUNCH(aur_k_normalise, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, loc, scale, C, inner, inverse, backward,
                n);
    return aur__cuda_launch("normalise");
}

__global__ void aur_k_cast(void *y, const void *x, int to_bf16, int64_t n)
{
    AUR__CUDA_FOR(i, n)
    {
        if (to_bf16) ((__nv_bfloat16 *)y)[i] = __float2bfloat16(((const float *)x)[i]);
        else ((float *)y)[i] = __bfloat162float(((const __nv_bfloat16 *)x)[i]);
    }
}

static int aur_cuda_cast(void *y, const void *x, int to_bf16, int64_t n)
{
    AUR__LAUNCH(aur_k_cast, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, to_bf16, n);
    return aur__cuda_launch("cast");
}

/* ==== copies: concat, slice, pad, permute, roll, expand, gather ==== */

/* dst[o*dst_row + dst_off + j] (+)= src[o*src_row + src_off + j] for o < outer, j < len */
__global__ void aur_k_copy_rows(float *dst, int64_t dst_row, int64_t dst_off, const float *src, int64_t src_row,
                                int64_t src_off, int64_t outer, int64_t len, int accumulate)
{
    AUR__CUDA_FOR(i, outer * len)
    {
        int64_t o = i / len, j = i % len;
        float v = src[o * src_row + src_off + j];
        float *d = dst + o * dst_row + dst_off + j;
        *d = accumulate ? *d + v : v;
    }
}

static int aur_cuda_copy_rows(float *dst, int64_t dst_row, int64_t dst_off, const float *src, int64_t src_row,
                              int64_t src_off, int64_t outer, int64_t len, int accumulate)
{
    AUR__LAUNCH(aur_k_copy_rows, aur__cuda_grid(outer * len), AUR__CUDA_THREADS, 0, dst, dst_row, dst_off, src, src_row,
                src_off, outer, len, accumulate);
    return aur__cuda_launch("row copy");
}

/* Element i of the dense tensor (shape m.shape) and the strided one at
   sum_d ((idx_d + m.add_d) mod m.wrap_d) * m.stride_d: pad, permute and roll. */
__global__ void aur_k_strided(aur__strided m, int mode, float *dense, float *strided, int64_t n)
{
    AUR__CUDA_FOR(i, n)
    {
        int64_t rem = i, off = 0;
        for (int d = m.nd - 1; d >= 0; d--) {
            int64_t len = m.shape[d] ? m.shape[d] : 1, k = rem % len + m.add[d];
            rem /= len;
            if (m.wrap[d]) k = (k % m.wrap[d] + m.wrap[d]) % m.wrap[d];
            off += k * m.stride[d];
        }
        switch (mode) {
        case AUR__GATHER: dense[i] = strided[off]; break;
        case AUR__GATHER_ADD: dense[i] += strided[off]; break;
        case AUR__SCATTER: strided[off] = dense[i]; break;
        default: strided[off] += dense[i]; break; /* the map is injective: no two threads meet */
        }
    }
}

static int aur_cuda_strided(const aur__strided *m, int mode, float *dense, float *strided)
{
    int64_t n = 1;
    for (int d = 0; d < m->nd; d++) n *= m->shape[d];
    AUR__LAUNCH(aur_k_strided, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, *m, mode, dense, strided, n);
    return aur__cuda_launch("strided copy");
}

/* y[i] = x at its broadcast offset */
__global__ void aur_k_expand(float *y, const float *x, aur__bcast g, int64_t n)
{
    AUR__CUDA_FOR(i, n) y[i] = x[aur_k_offset(g.shape, g.sb, g.ndim, i)];
}

static int aur_cuda_expand_fwd(float *y, const float *x, const aur__bcast *g, int64_t n)
{
    AUR__LAUNCH(aur_k_expand, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, *g, n);
    return aur__cuda_launch("expand");
}

/* dx (operand b of g) += dy summed over the broadcast positions */
static int aur_cuda_broadcast_sum(aur_tape *t, const aur__bcast *g, float *dx, const float *dy)
{
    return aur__cuda_bcast_grad(t, g, 1, dx, dy, NULL, 1.0f);
}

/* rows of d values: y[b, i] = x[b, idx[i]] (0 where idx < 0) */
__global__ void aur_k_gather_fwd(float *y, const float *x, const int64_t *idx, int64_t n_out, int64_t n_in, int64_t d,
                                 int64_t n)
{
    AUR__CUDA_FOR(e, n)
    {
        int64_t j = e % d, i = e / d % n_out, b = e / (d * n_out), s = idx[i];
        y[e] = s < 0 ? 0.0f : x[(b * n_in + s) * d + j];
    }
}

/* injective: one thread per output element; otherwise one thread per source
   column walks the table in order, so the sums do not depend on scheduling */
__global__ void aur_k_gather_bwd(float *dx, const float *dy, const int64_t *idx, int64_t n_out, int64_t n_in, int64_t d,
                                 int64_t nb, int injective)
{
    if (injective) {
        AUR__CUDA_FOR(e, nb * n_out * d)
        {
            int64_t j = e % d, i = e / d % n_out, b = e / (d * n_out), s = idx[i];
            if (s >= 0) dx[(b * n_in + s) * d + j] += dy[e];
        }
        return;
    }
    AUR__CUDA_FOR(c, nb * d)
    {
        int64_t b = c / d, j = c % d;
        for (int64_t i = 0; i < n_out; i++)
            if (idx[i] >= 0) dx[(b * n_in + idx[i]) * d + j] += dy[(b * n_out + i) * d + j];
    }
}

static int aur_cuda_gather(float *y, const float *x, const int64_t *idx, int64_t nb, int64_t n_out, int64_t n_in,
                           int64_t d, int backward, int injective)
{
    if (!backward) {
        int64_t n = nb * n_out * d;
        AUR__LAUNCH(aur_k_gather_fwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, idx, n_out, n_in, d, n);
    } else {
        int64_t n = injective ? nb * n_out * d : nb * d;
        AUR__LAUNCH(aur_k_gather_bwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, idx, n_out, n_in, d, nb, injective);
    }
    return aur__cuda_launch("gather");
}

/* ==== reductions ==== */

/* x as (outer, len, inner): y[o, i] = s * sum_k x[o, k, i], one thread each, k in order */
__global__ void aur_k_sum_axis(float *y, const float *x, int64_t outer, int64_t len, int64_t inner, double s)
{
    AUR__CUDA_FOR(e, outer * inner)
    {
        int64_t o = e / inner, i = e % inner;
        double acc = 0;
        for (int64_t k = 0; k < len; k++) acc += x[(o * len + k) * inner + i];
        y[e] = (float)(acc * s);
    }
}

__global__ void aur_k_sum_axis_bwd(float *dx, const float *dy, int64_t len, int64_t inner, float s, int64_t n)
{
    AUR__CUDA_FOR(e, n) dx[e] += dy[e / (len * inner) * inner + e % inner] * s;
}

/* the first maximum (aur__argmax_along); arg keeps the flat index for backward */
__global__ void aur_k_max_axis(float *y, int64_t *arg, const float *x, int64_t outer, int64_t len, int64_t inner)
{
    AUR__CUDA_FOR(e, outer * inner)
    {
        arg[e] = aur__argmax_along(x, e / inner, e % inner, len, inner);
        y[e] = x[arg[e]];
    }
}

__global__ void aur_k_max_bwd(float *dx, const float *dy, const int64_t *arg, int64_t n)
{
    AUR__CUDA_FOR(e, n) dx[arg[e]] += dy[e]; /* each output owns its own argmax */
}

static int aur_cuda_sum_axis(float *y, const float *x, int64_t outer, int64_t len, int64_t inner, double s, int backward)
{
    if (backward) {
        int64_t n = outer * len * inner;
        AUR__LAUNCH(aur_k_sum_axis_bwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, y, x, len, inner, (float)s, n);
    } else {
        AUR__LAUNCH(aur_k_sum_axis, aur__cuda_grid(outer * inner), AUR__CUDA_THREADS, 0, y, x, outer, len, inner, s);
    }
    return aur__cuda_launch("sum");
}

static int aur_cuda_max_axis(float *y, int64_t *arg, const float *x, int64_t outer, int64_t len, int64_t inner)
{
    AUR__LAUNCH(aur_k_max_axis, aur__cuda_grid(outer * inner), AUR__CUDA_THREADS, 0, y, arg, x, outer, len, inner);
    return aur__cuda_launch("max");
}

static int aur_cuda_max_bwd(float *dx, const float *dy, const int64_t *arg, int64_t n)
{
    AUR__LAUNCH(aur_k_max_bwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, dx, dy, arg, n);
    return aur__cuda_launch("max gradient");
}

/* ==== losses ====
   Block c sums chunk c of the element losses in double with a fixed tree;
   the host adds the chunks in order, as the CPU path does. */

__global__ void aur_k_loss_chunks(int kind, double *part, int64_t *bad, const float *p, const float *y, const float *pw,
                                  int64_t C, int64_t N, int64_t per)
{
    __shared__ double sum[AUR__CUDA_THREADS];
    __shared__ int64_t cnt[AUR__CUDA_THREADS];
    int64_t lo = (int64_t)blockIdx.x * per, hi = lo + per < N ? lo + per : N;
    double s = 0, a, b;
    int64_t nb = 0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        s += aur__elem_loss(kind, p[i], y[i], pw ? pw[i % C] : 1.0, &a, &b);
        nb += !(isfinite(p[i]) && isfinite(y[i]));
    }
    sum[threadIdx.x] = s;
    cnt[threadIdx.x] = nb;
    __syncthreads();
    for (int w = AUR__CUDA_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sum[threadIdx.x] += sum[threadIdx.x + w], cnt[threadIdx.x] += cnt[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = sum[0], bad[blockIdx.x] = cnt[0];
}

__global__ void aur_k_loss_bwd(int kind, float *dp, float *dt, const float *p, const float *y, const float *pw, int64_t C,
                               double scale, int64_t n)
{
    AUR__CUDA_FOR(i, n)
    {
        double a, b;
        aur__elem_loss(kind, p[i], y[i], pw ? pw[i % C] : 1.0, &a, &b);
        if (dp) dp[i] += (float)(a * scale);
        if (dt) dt[i] += (float)(b * scale);
    }
}

static int aur_cuda_loss_chunks(int kind, double *part, int64_t *bad, const float *p, const float *y, const float *pw,
                                int64_t C, int64_t N, int chunks)
{
    int64_t per = (N + chunks - 1) / chunks;
    AUR__LAUNCH(aur_k_loss_chunks, chunks, AUR__CUDA_THREADS, 0, kind, part, bad, p, y, pw, C, N, per);
    return aur__cuda_launch("loss");
}

static int aur_cuda_loss_bwd(int kind, float *dp, float *dt, const float *p, const float *y, const float *pw, int64_t C,
                             double scale, int64_t n)
{
    AUR__LAUNCH(aur_k_loss_bwd, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, kind, dp, dt, p, y, pw, C, scale, n);
    return aur__cuda_launch("loss gradient");
}

/* cross entropy, one thread per row: loss[r] (0 where ignored), or the row's gradient */
__global__ void aur_k_cross_entropy(float *dx, double *loss, const float *x, const float *lab, int64_t N, int64_t C,
                                    int64_t ignore, double s, double gscale)
{
    AUR__CUDA_FOR(r, N)
    {
        int64_t y = (int64_t)lab[r];
        if (loss) loss[r] = y == ignore ? 0.0 : aur__ce_row_loss(x + r * C, C, y, s);
        else if (y != ignore) aur__ce_row_grad(dx + r * C, x + r * C, C, y, s, gscale);
    }
}

static int aur_cuda_cross_entropy(float *dx, double *loss, const float *x, const float *lab, int64_t N, int64_t C,
                                  int64_t ignore, double s, double gscale)
{
    AUR__LAUNCH(aur_k_cross_entropy, aur__cuda_grid(N), AUR__CUDA_THREADS, 0, dx, loss, x, lab, N, C, ignore, s, gscale);
    return aur__cuda_launch("cross entropy");
}

/* ==== grid sample (bilinear, border) ==== */

/* one thread per sample point (forward, the grid's gradient) or per plane (x's gradient): aurora.h's aur__gs_* */
__global__ void aur_k_grid_sample_fwd(float *out, const float *x, const float *grid, int64_t N, int64_t C, int64_t H,
                                      int64_t W, int64_t HWo)
{
    AUR__CUDA_FOR(e, N * HWo) aur__gs_sample(out, x, grid, C, H, W, HWo, e);
}

__global__ void aur_k_grid_sample_dgrid(float *dg, const float *g, const float *x, const float *grid, int64_t N,
                                        int64_t C, int64_t H, int64_t W, int64_t HWo)
{
    AUR__CUDA_FOR(e, N * HWo) aur__gs_dgrid(dg, g, x, grid, C, H, W, HWo, e);
}

__global__ void aur_k_grid_sample_dx(float *dx, const float *g, const float *grid, int64_t N, int64_t C, int64_t H,
                                     int64_t W, int64_t HWo)
{
    AUR__CUDA_FOR(bc, N * C) aur__gs_dx(dx, g, grid, C, H, W, HWo, bc);
}

static int aur_cuda_grid_sample(float *out, float *dx, float *dg, const float *g, const float *x, const float *grid,
                                int64_t N, int64_t C, int64_t H, int64_t W, int64_t HWo)
{
    if (out) AUR__LAUNCH(aur_k_grid_sample_fwd, aur__cuda_grid(N * HWo), AUR__CUDA_THREADS, 0, out, x, grid, N, C, H, W, HWo);
    if (dg) AUR__LAUNCH(aur_k_grid_sample_dgrid, aur__cuda_grid(N * HWo), AUR__CUDA_THREADS, 0, dg, g, x, grid, N, C, H, W, HWo);
    if (dx) AUR__LAUNCH(aur_k_grid_sample_dx, aur__cuda_grid(N * C), AUR__CUDA_THREADS, 0, dx, g, grid, N, C, H, W, HWo);
    return aur__cuda_launch("grid_sample");
}

/* ==== deterministic sums of squares (norms) ====
   AUR__REDUCE_SLOTS blocks each add a fixed stride of x in double and a
   fixed tree; one block then adds the partial sums the same way. */

__device__ void aur_k_block_sum(double *sh)
{
    __syncthreads();
    for (int w = AUR__CUDA_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
}

__global__ void aur_k_sumsq_parts(double *part, const float *x, int64_t n)
{
    __shared__ double sh[AUR__CUDA_THREADS];
    double a = 0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        a += (double)x[i] * x[i];
    sh[threadIdx.x] = a;
    aur_k_block_sum(sh);
    if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

__global__ void aur_k_sum_parts(double *out, const double *part, int n)
{
    __shared__ double sh[AUR__CUDA_THREADS];
    double a = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) a += part[i];
    sh[threadIdx.x] = a;
    aur_k_block_sum(sh);
    if (threadIdx.x == 0) *out = sh[0];
}

/* *dev_out (on the GPU) = sum of x^2; parts holds AUR__REDUCE_SLOTS doubles. The
   number of blocks depends only on n (a small tensor needs few): deterministic. */
static int aur_cuda_sumsq_into(const float *x, int64_t n, double *parts, double *dev_out)
{
    int64_t want = (n + AUR__CUDA_THREADS - 1) / AUR__CUDA_THREADS;
    int blocks = want < 1 ? 1 : want > AUR__REDUCE_SLOTS ? AUR__REDUCE_SLOTS : (int)want;
    AUR__LAUNCH(aur_k_sumsq_parts, blocks, AUR__CUDA_THREADS, 0, parts, x, n);
    AUR__LAUNCH(aur_k_sum_parts, 1, AUR__CUDA_THREADS, 0, dev_out, (const double *)parts, blocks);
    return aur__cuda_launch("sum of squares");
}

/* *out (host) = sum of x^2 */
static int aur_cuda_sumsq(const float *x, int64_t n, double *parts, double *out)
{
    double *result = parts + AUR__REDUCE_SLOTS; /* the slot after the partial sums */
    int rc = aur_cuda_sumsq_into(x, n, parts, result);
    if (!rc) rc = aur__cuda_check(cudaMemcpy(out, result, sizeof(double), cudaMemcpyDeviceToHost), "sum of squares");
    return rc;
}

/* ==== optimisers ==== */

__global__ void aur_k_adam(aur__adam_k k, float *p, float *m, float *v, const float *g, int64_t n)
{
    AUR__CUDA_FOR(i, n) aur__adam_elem(&k, p + i, m + i, v + i, g[i]);
}

static int aur_cuda_adam(const aur__adam_k *k, float *p, float *m, float *v, const float *g, int64_t n)
{
    AUR__LAUNCH(aur_k_adam, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, *k, p, m, v, g, n);
    return aur__cuda_launch("Adam");
}

/* Adafactor's second moments: the row and column means of g^2 (matrices of
   rows x cols), or the full variance; one thread per row, column or element. */
/* one thread per row, column, matrix or element: aurora.h's aur__af_* */
__global__ void aur_k_adafactor_rows(float *r, const float *g, int64_t cols, float w, int64_t n_rows)
{
    AUR__CUDA_FOR(e, n_rows) aur__af_row(r, g, cols, w, e);
}

__global__ void aur_k_adafactor_cols(float *c, const float *g, int64_t rows, int64_t cols, float w, int64_t n_cols)
{
    AUR__CUDA_FOR(e, n_cols) aur__af_col(c, g, rows, cols, w, e);
}

__global__ void aur_k_adafactor_denom(float *denom, const float *r, int64_t rows, int64_t mats, float eps1)
{
    AUR__CUDA_FOR(b, mats) denom[b] = aur__af_denom(r, rows, eps1, b);
}

__global__ void aur_k_adafactor_u(int factored, float *u, const float *denom, float *r, const float *c, const float *g,
                                  int64_t rows, int64_t cols, float w, float floor2, int64_t n)
{
    AUR__CUDA_FOR(i, n) u[i] = aur__af_update(factored, r, c, g, rows, cols, w, factored ? denom[i / (rows * cols)] : 0.0f, floor2, i);
}

static int aur_cuda_adafactor_u(int factored, float *u, float *denom, float *r, float *c, const float *g, int64_t rows,
                                int64_t cols, int64_t mats, float w, double eps1, int64_t n)
{
    if (factored) {
        AUR__LAUNCH(aur_k_adafactor_rows, aur__cuda_grid(mats * rows), AUR__CUDA_THREADS, 0, r, g, cols, w, mats * rows);
        AUR__LAUNCH(aur_k_adafactor_cols, aur__cuda_grid(mats * cols), AUR__CUDA_THREADS, 0, c, g, rows, cols, w,
                    mats * cols);
        AUR__LAUNCH(aur_k_adafactor_denom, aur__cuda_grid(mats), AUR__CUDA_THREADS, 0, denom, r, rows, mats, (float)eps1);
    }
    AUR__LAUNCH(aur_k_adafactor_u, aur__cuda_grid(n), AUR__CUDA_THREADS, 0, factored, u, (const float *)denom, r,
                (const float *)c, g, rows, cols, w, (float)(eps1 * eps1), n);
    return aur__cuda_launch("Adafactor");
}

#endif /* AUR__KERNELS_CUH */
