#include "../core/api.h"
#include "../core/platform.h"

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
