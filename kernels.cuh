/* kernels.cuh - the CUDA kernels of aurora.h.

   Included by the implementation (aurora.h) when it is compiled by nvcc
   with -DAURORA_CUDA; never include it yourself. Each op has a section:
   __device__ helpers, __global__ aur_k_<op>_* kernels, and host launchers
   aur_cuda_<op>_* that check the launch and return an AUR_E* code.

   Matrix products go through cuBLAS with F32 compute and TF32 off (the
   library's fidelity bar is 1e-5); define AUR_ALLOW_TF32 to allow it.
   Reductions that feed gradients are written so each output is summed by
   one thread in a fixed order: results do not change from run to run. */

#ifndef AUR_KERNELS_CUH
#define AUR_KERNELS_CUH

#define AUR__CUDA_THREADS 256

static int aur__cuda_launch(const char *what)
{
    return aur__cuda_check(cudaGetLastError(), what);
}

static unsigned aur__cuda_grid(int64_t n)
{
    int64_t b = (n + AUR__CUDA_THREADS - 1) / AUR__CUDA_THREADS;
    return (unsigned)(b < 1 ? 1 : b > 65535 * 32 ? 65535 * 32 : b);
}

/* Grid-stride loop over n elements. */
#define AUR__CUDA_FOR(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* ==== cuBLAS ==== */

static cublasHandle_t aur__cublas;

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

static int aur__cublas_handle(void)
{
    if (aur__cublas) return 0;
    cublasStatus_t s = cublasCreate(&aur__cublas);
    if (s != CUBLAS_STATUS_SUCCESS) return aur__err(AUR_ECUDA, "cublasCreate: %s", aur__cublas_status(s));
#ifdef AUR_ALLOW_TF32
    cublasSetMathMode(aur__cublas, CUBLAS_TF32_TENSOR_OP_MATH);
#else
    cublasSetMathMode(aur__cublas, CUBLAS_PEDANTIC_MATH);
#endif
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

/* Row-major C (M x N, ldc) (+)= A B for nb batches: computed as the
   column-major C^T = B^T A^T. */
static int aur__cuda_gemm(int64_t nb, int64_t M, int64_t N, int64_t K, aur__mat a, int64_t sa, aur__mat b, int64_t sb,
                          float *C, int64_t sc, int64_t ldc, int accumulate)
{
    if (aur__cublas_handle()) return AUR_ECUDA;
    if (M == 0 || N == 0 || nb == 0) return 0;
    cublasOperation_t opa = CUBLAS_OP_N, opb = CUBLAS_OP_N;
    int64_t lda = 1, ldb = 1;
    /* B^T is the first cuBLAS operand: element (j, p) of B^T is B(p, j) */
    aur__mat bt = aur__matv(b.p, b.cs, b.rs), at = aur__matv(a.p, a.cs, a.rs);
    if (aur__cublas_operand(bt, &opb, &ldb) || aur__cublas_operand(at, &opa, &lda)) return AUR_EUNSUPPORTED;
    if (ldb < 1) ldb = 1;
    if (lda < 1) lda = 1;
    const float one = 1, beta = accumulate ? 1.0f : 0.0f;
    cublasStatus_t s = cublasSgemmStridedBatched(aur__cublas, opb, opa, (int)N, (int)M, (int)K, &one, (const float *)b.p,
                                                 (int)ldb, sb, (const float *)a.p, (int)lda, sa, &beta, C, (int)ldc, sc,
                                                 (int)nb);
    if (s != CUBLAS_STATUS_SUCCESS) return aur__err(AUR_ECUDA, "cublasSgemmStridedBatched: %s", aur__cublas_status(s));
    return 0;
}

/* ==== linear ==== */

__global__ void aur_k_rows_bias(float *y, const float *b, int64_t M, int64_t N)
{
    AUR__CUDA_FOR(i, M * N) y[i] = b ? b[i % N] : 0.0f;
}

/* out[j] += sum over rows of x[r, j]: one thread per column, rows in order. */
__global__ void aur_k_colsum(float *out, const float *x, int64_t R, int64_t C)
{
    AUR__CUDA_FOR(j, C)
    {
        float s = 0;
        for (int64_t r = 0; r < R; r++) s += x[r * C + j];
        out[j] += s;
    }
}

static int aur__cuda_no_autocast(const aur_tape *t, const char *op)
{
    if (!t->autocast) return 0;
    return aur__err(AUR_EUNSUPPORTED, "%s: BF16 autocast on CUDA is not built yet", op);
}

static int aur_cuda_linear_fwd(aur_tape *t, float *y, const float *x, const float *w, const float *b, int64_t M,
                               int64_t N, int64_t K)
{
    if (aur__cuda_no_autocast(t, "linear")) return AUR_EUNSUPPORTED;
    aur_k_rows_bias<<<aur__cuda_grid(M * N), AUR__CUDA_THREADS>>>(y, b, M, N);
    if (aur__cuda_launch("linear bias")) return AUR_ECUDA;
    return aur__cuda_gemm(1, M, N, K, aur__matv(x, K, 1), 0, aur__matv(w, 1, K), 0, y, 0, N, 1);
}

static int aur_cuda_linear_bwd(aur_tape *t, float *dx, float *dw, float *db, const float *dy, const float *x,
                               const float *w, int64_t M, int64_t N, int64_t K)
{
    int rc = aur__cuda_no_autocast(t, "linear");
    if (!rc && dx) rc = aur__cuda_gemm(1, M, K, N, aur__matv(dy, N, 1), 0, aur__matv(w, K, 1), 0, dx, 0, K, 1);
    if (!rc && dw) rc = aur__cuda_gemm(1, N, K, M, aur__matv(dy, 1, N), 0, aur__matv(x, K, 1), 0, dw, 0, K, 1);
    if (!rc && db) {
        aur_k_colsum<<<aur__cuda_grid(N), AUR__CUDA_THREADS>>>(db, dy, M, N);
        rc = aur__cuda_launch("linear bias gradient");
    }
    return rc;
}

/* ==== batched matmul ==== */

static int aur_cuda_matmul_fwd(aur_tape *t, const aur__mm_geom *g, float *y)
{
    if (aur__cuda_no_autocast(t, "matmul")) return AUR_EUNSUPPORTED;
    return aur__cuda_gemm(g->nb, g->M, g->N, g->K, g->a, g->sa, g->b, g->sb, y, g->M * g->N, g->N, 0);
}

static int aur_cuda_matmul_bwd(aur_tape *t, const aur__mm_geom *g, float *da, float *db, const float *dy, int ta, int tb)
{
    int64_t sy = g->M * g->N;
    int rc = aur__cuda_no_autocast(t, "matmul");
    if (!rc && da) {
        if (!ta)
            rc = aur__cuda_gemm(g->nb, g->M, g->K, g->N, aur__matv(dy, g->N, 1), sy, aur__matv(g->b.p, g->b.cs, g->b.rs),
                                g->sb, da, g->sa, g->K, 1);
        else
            rc = aur__cuda_gemm(g->nb, g->K, g->M, g->N, g->b, g->sb, aur__matv(dy, 1, g->N), sy, da, g->sa, g->M, 1);
    }
    /* a shared 2-D b sums its batches one after another: deterministic */
    int64_t nbb = g->sb ? g->nb : 1, steps = g->sb ? 1 : g->nb;
    for (int64_t s = 0; s < steps && !rc && db; s++) {
        aur__mat as = aur__matv(g->a.p + s * g->sa, g->a.rs, g->a.cs);
        const float *dys = dy + s * sy;
        if (!tb)
            rc = aur__cuda_gemm(nbb, g->K, g->N, g->M, aur__matv(as.p, as.cs, as.rs), g->sa, aur__matv(dys, g->N, 1), sy,
                                db, g->sb, g->N, 1);
        else
            rc = aur__cuda_gemm(nbb, g->N, g->K, g->M, aur__matv(dys, 1, g->N), sy, as, g->sa, db, g->sb, g->K, 1);
    }
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
    aur_k_binary_fwd<<<aur__cuda_grid(n), AUR__CUDA_THREADS>>>(kind, *g, y, a, b, n);
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

static int aur_cuda_binary_bwd(int kind, const aur__bcast *g, float *da, float *db, const float *dy, const float *a,
                               const float *b)
{
    if (da) {
        int64_t n = aur__bcast_operand_numel(g, 0);
        aur_k_binary_bwd<<<aur__cuda_grid(n), AUR__CUDA_THREADS>>>(*g, 0, da, n, dy, kind == AUR__MUL ? b : NULL, 1.0f);
        if (aur__cuda_launch("binary op gradient")) return AUR_ECUDA;
    }
    if (db) {
        int64_t n = aur__bcast_operand_numel(g, 1);
        aur_k_binary_bwd<<<aur__cuda_grid(n), AUR__CUDA_THREADS>>>(*g, 1, db, n, dy, kind == AUR__MUL ? a : NULL,
                                                                      kind == AUR__SUB ? -1.0f : 1.0f);
        if (aur__cuda_launch("binary op gradient")) return AUR_ECUDA;
    }
    return 0;
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
    aur_k_scale<<<aur__cuda_grid(n), AUR__CUDA_THREADS>>>(y, x, s, n);
    return aur__cuda_launch("scale");
}

static int aur_cuda_axpy(float *y, const float *x, float s, int64_t n)
{
    aur_k_axpy<<<aur__cuda_grid(n), AUR__CUDA_THREADS>>>(y, x, s, n);
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

__global__ void aur_k_unary_bwd(int kind, float *dx, const float *dy, const float *x, const float *y, int64_t n)
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
        dx[i] += dy[i] * d;
    }
}

static int aur_cuda_unary_fwd(int kind, float *y, const float *x, int64_t n)
{
    aur_k_unary_fwd<<<aur__cuda_grid(n), AUR__CUDA_THREADS>>>(kind, y, x, n);
    return aur__cuda_launch("activation");
}

static int aur_cuda_unary_bwd(int kind, float *dx, const float *dy, const float *x, const float *y, int64_t n)
{
    aur_k_unary_bwd<<<aur__cuda_grid(n), AUR__CUDA_THREADS>>>(kind, dx, dy, x, y, n);
    return aur__cuda_launch("activation gradient");
}

#endif /* AUR_KERNELS_CUH */
