#include "../core/api.h"
#include "../core/platform.h"

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
