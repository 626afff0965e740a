#include "api.h"
#include "platform.h"

/* ==== ops: shared checks ==== */

/* Every input present, F32, on one device. */
static int aur__check(const char *op, aur_tensor *const *in, int n)
{
    const aur_tensor *first = NULL;
    for (int i = 0; i < n; i++) {
        if (!in[i]) return AUR_EINVAL; /* an earlier op failed; keep its message */
        if (in[i]->dtype != AUR_F32)
            return aur__err(AUR_EUNSUPPORTED, "%s: input %d is BF16; ops take F32 tensors (use aur_cast)", op, i);
        if (first && in[i]->device != first->device)
            return aur__err(AUR_EINVAL, "%s: inputs on different devices (use aur_to_device)", op);
        if (!first) first = in[i];
    }
    return 0;
}

static int aur__axis(const char *op, int axis, int ndim, int *out)
{
    int a = axis < 0 ? axis + ndim : axis;
    if (a < 0 || a >= ndim) return aur__err(AUR_EINVAL, "%s: axis %d out of range for rank %d", op, axis, ndim);
    *out = a;
    return 0;
}

static const aur_real *aur__cr(const aur_tensor *x) { return (const aur_real *)x->data; }
static aur_real *aur__wr(aur_tensor *x) { return (aur_real *)x->data; }

/* Multi-index of flat index r in a shape, last dim fastest. */
AUR__HD static void aur__unravel(int64_t r, const int64_t *shape, int ndim, int64_t *idx)
{
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t n = shape[d] ? shape[d] : 1;
        idx[d] = r % n;
        r /= n;
    }
}

static void aur__strides(const int64_t *shape, int ndim, int64_t *st)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= shape[d];
    }
}

/* ---- BF16 autocast emulation on the CPU ----
   Under autocast the reference computes matrix products with BF16 operands
   and F32 accumulation and returns BF16. On the CPU we round the operands
   and the result to BF16 values kept in F32, so the same path is testable. */

static void aur__round_bf16_inplace(aur_real *x, int64_t n)
{
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = (aur_real)aur_round_bf16((float)x[i]);
}

/* x itself, or under autocast a BF16-rounded copy in the arena. */
static const aur_real *aur__autocast_in(aur_tape *t, int autocast, const aur_real *x, int64_t n)
{
    if (!autocast) return x;
    aur_real *c = aur__reals(t, AUR_CPU, n);
    if (!c) return NULL;
    memcpy(c, x, (size_t)n * sizeof(aur_real));
    aur__round_bf16_inplace(c, n);
    return c;
}

/* Adds src (n elements) into dst, rounding src to BF16 first under autocast. */
static void aur__acc_into(int autocast, aur_real *dst, aur_real *src, int64_t n)
{
    if (autocast) aur__round_bf16_inplace(src, n);
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* out[c] (+)= sum over rows of x (R x C), in fixed row chunks so the result
   does not depend on the thread count. */
static int aur__sum_rows(aur_tape *t, aur_real *out, const aur_real *x, int64_t R, int64_t C, int accumulate)
{
    enum { CHUNKS = 32 };
    int64_t rows = (R + CHUNKS - 1) / CHUNKS;
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
    double *part = (double *)aur__alloc(t, AUR_CPU, sizeof(double) * (size_t)(CHUNKS * C));
    if (!part) return AUR_ENOMEM;
    AUR__OMP_FOR_IF(R * C > AUR__PAR_MIN)
    for (int c = 0; c < CHUNKS; c++) {
        double *p = part + c * C;
        for (int64_t j = 0; j < C; j++) p[j] = 0;
        for (int64_t r = c * rows; r < (c + 1) * rows && r < R; r++)
            for (int64_t j = 0; j < C; j++) p[j] += x[r * C + j];
    }
    for (int64_t j = 0; j < C; j++) {
        double s = 0;
        for (int c = 0; c < CHUNKS; c++) s += part[c * C + j];
        out[j] = accumulate ? out[j] + (aur_real)s : (aur_real)s;
    }
    aur__arena_release(&t->main[AUR_CPU], mk);
    return 0;
}

/* ==== shapes and element rules of ops, shared by the CPU and CUDA paths ==== */

/* The geometry of a batched product. */
typedef struct aur__mm_geom {
    int64_t nb, M, N, K;
    aur__mat a, b;   /* op(a) and op(b) of batch 0 */
    int64_t sa, sb;  /* batch strides (sb = 0: shared 2-D b) */
} aur__mm_geom;

enum { AUR__ADD, AUR__SUB, AUR__MUL };

/* numpy broadcasting of a and b: the output shape, and each operand's
   strides over it (0 where it is broadcast). */
typedef struct aur__bcast {
    int ndim;
    int64_t shape[AUR_MAX_DIMS];
    int64_t sa[AUR_MAX_DIMS], sb[AUR_MAX_DIMS], so[AUR_MAX_DIMS];
} aur__bcast;

enum { AUR__GELU, AUR__GELU_TANH, AUR__SILU, AUR__SIGMOID, AUR__LOGARITHM, AUR__SINE, AUR__COSINE };

typedef struct aur__attn {
    int64_t nb, Lq, Lk, d, dv;
    int lead;                     /* leading dims */
    const int64_t *lead_shape;
    int64_t ms[AUR_MAX_DIMS + 2]; /* mask strides over (lead..., Lq, Lk); 0 where broadcast */
    double scale;
} aur__attn;

/* What a kernel needs to find a row's mask: the mask offset of batch b is
   sum over the lead dims of idx * lead_stride, then + i si + j sj. */
typedef struct aur__attn_mask {
    int lead;
    int64_t lead_shape[AUR_MAX_DIMS], lead_stride[AUR_MAX_DIMS], Lq, si, sj;
} aur__attn_mask;

/* Element-wise ops with one rule each (aur_k_pointwise_* on the GPU). */
enum { AUR__PW_CLAMP, AUR__PW_NAN_TO_NUM, AUR__PW_MASKED_FILL, AUR__PW_REMAINDER, AUR__PW_ATAN2 };

/* A dense tensor of shape `shape` and a strided one it maps to: element idx
   of the dense one is element sum_d ((idx_d + add_d) mod wrap_d) * stride_d
   of the other (no mod where wrap_d is 0). Pad, permute and roll are such maps. */
typedef struct aur__strided {
    int nd;
    int64_t shape[AUR_MAX_DIMS], stride[AUR_MAX_DIMS], add[AUR_MAX_DIMS], wrap[AUR_MAX_DIMS];
} aur__strided;
enum { AUR__GATHER, AUR__GATHER_ADD, AUR__SCATTER, AUR__SCATTER_ADD };

/* Blocks of a deterministic GPU sum: each adds a fixed stride of the
   input, then one block adds the partial sums in a fixed tree. */
#define AUR__REDUCE_SLOTS 256

/* Element rules used by both paths: the CUDA kernels call these same functions. */

AUR__HD static uint64_t aur__mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

AUR__HD static int aur__dropout_keep(uint64_t seed, uint64_t i, double p)
{
    double u = (double)(aur__mix64(seed ^ aur__mix64(i)) >> 40) * (1.0 / 16777216.0);
    return u >= p;
}

enum { AUR__MSE, AUR__MAE, AUR__BCE, AUR__MSE_FINITE };

/* Per-element loss, and its derivatives by the prediction (dp) and target (dt). */
AUR__HD static double aur__elem_loss(int kind, double p, double y, double pw, double *dp, double *dt)
{
    if (kind == AUR__MSE_FINITE && !(isfinite(p) && isfinite(y))) { /* masked out */
        *dp = *dt = 0;
        return 0;
    }
    if (kind == AUR__MSE || kind == AUR__MSE_FINITE) {
        *dp = 2 * (p - y);
        *dt = -*dp;
        return (p - y) * (p - y);
    }
    if (kind == AUR__MAE) {
        *dp = p > y ? 1 : (p < y ? -1 : 0);
        *dt = -*dp;
        return fabs(p - y);
    }
    /* torch: (1 - y) x + lw (log1p(exp(-|x|)) + max(-x, 0)), lw = 1 + (pw - 1) y */
    double lw = 1 + (pw - 1) * y, sp = log1p(exp(-fabs(p))) + (p < 0 ? -p : 0); /* softplus(-x) */
    *dp = (1 - y) - lw / (1 + exp(p));                                        /* sigmoid(-x) = 1/(1+e^x) */
    *dt = -p + (pw - 1) * sp;
    return (1 - y) * p + lw * sp;
}

AUR__HD static float aur__lerp(float a, float b, float w) { return fabsf(w) < 0.5f ? a + w * (b - a) : b - (b - a) * (1 - w); }

/* The scalars of one Adam step, rounded to float where torch meets tensors. */
typedef struct aur__adam_k {
    float decay, l2, w1, fb2, w2, step_size, bc2_sqrt, eps;
    int decoupled, l2_on; /* AdamW's decay of the weight; Adam's L2 term in the gradient */
} aur__adam_k;

/* torch's single-tensor Adam(W) on one element. */
AUR__HD static void aur__adam_elem(const aur__adam_k *k, aur_real *p, aur_real *m, aur_real *v, aur_real g)
{
    float pi = (float)*p, gi = (float)g;
    if (k->decoupled) pi *= k->decay;
    if (k->l2_on) gi = gi + k->l2 * pi;
    float mi = aur__lerp((float)*m, gi, k->w1);
    float vi = (float)*v * k->fb2 + (k->w2 * gi) * gi;
    float denom = sqrtf(vi) / k->bc2_sqrt + k->eps;
    *p = (aur_real)(pi + (k->step_size * mi) / denom);
    *m = (aur_real)mi;
    *v = (aur_real)vi;
}

/* The forward rule of an AUR__PW_* op at one element: v and v2 its inputs, a and b its constants. */
AUR__HD static aur_real aur__pw_value(int kind, aur_real v, aur_real v2, aur_real a, aur_real b)
{
    const aur_real big = sizeof(aur_real) == 4 ? (aur_real)FLT_MAX : (aur_real)DBL_MAX;
    switch (kind) {
    case AUR__PW_CLAMP: return v < a ? a : v > b ? b : v; /* NaN stays NaN */
    case AUR__PW_NAN_TO_NUM: return isnan(v) ? a : isinf(v) ? (v > 0 ? big : -big) : v;
    case AUR__PW_MASKED_FILL: return v2 != 0 ? a : v;
    case AUR__PW_REMAINDER: return v - a * (aur_real)floor((double)(v / a)); /* torch: the sign of the divisor */
    default: return (aur_real)atan2((double)v, (double)v2);
    }
}

/* Its gradient, g times d/dv into *d and d/dv2 into *d2 (either may be NULL): the
   gradient passes where the forward passed v through; atan2(v, v2) has both. */
AUR__HD static void aur__pw_grad(int kind, aur_real v, aur_real v2, aur_real a, aur_real b, aur_real g, aur_real *d,
                                 aur_real *d2)
{
    if (kind == AUR__PW_ATAN2) {
        aur_real r = v2 * v2 + v * v;
        if (d) *d += g * v2 / r;
        if (d2) *d2 -= g * v / r;
        return;
    }
    int pass = kind == AUR__PW_CLAMP ? v >= a && v <= b : kind == AUR__PW_NAN_TO_NUM ? isfinite(v) : v2 == 0;
    if (pass && d) *d += g;
}

/* The flat index of the first maximum of x along the axis of (o, :, i) (len, inner): NaN wins, as in torch. */
AUR__HD static int64_t aur__argmax_along(const aur_real *x, int64_t o, int64_t i, int64_t len, int64_t inner)
{
    int64_t best = o * len * inner + i;
    for (int64_t k = 1; k < len && !isnan(x[best]); k++) {
        int64_t j = (o * len + k) * inner + i;
        if (x[j] > x[best] || isnan(x[j])) best = j;
    }
    return best;
}

/* torch Adafactor's second moments over matrices (rows x cols, in sequence):
   row e's mean of g^2 into r[e], column e's into c[e] (norms in double, as
   torch's norm), a matrix's denominator mean(r) clamped at eps1, and
   element i's update g / sqrt(max(v, eps1^2)) with v = r c / denominator,
   or for a vector the variance r[i] itself, updated here. */
AUR__HD static void aur__af_row(aur_real *r, const aur_real *g, int64_t cols, float w, int64_t e)
{
    double ss = 0;
    for (int64_t j = 0; j < cols; j++) ss += (double)g[e * cols + j] * g[e * cols + j];
    float nr = (float)sqrt(ss);
    r[e] = (aur_real)aur__lerp((float)r[e], nr * nr / (float)cols, w);
}

AUR__HD static void aur__af_col(aur_real *c, const aur_real *g, int64_t rows, int64_t cols, float w, int64_t e)
{
    int64_t b = e / cols, j = e % cols;
    double ss = 0;
    for (int64_t i = 0; i < rows; i++) ss += (double)g[(b * rows + i) * cols + j] * g[(b * rows + i) * cols + j];
    float nc = (float)sqrt(ss);
    c[e] = (aur_real)aur__lerp((float)c[e], nc * nc / (float)rows, w);
}

AUR__HD static float aur__af_denom(const aur_real *r, int64_t rows, float eps1, int64_t b)
{
    double rmean = 0;
    for (int64_t i = 0; i < rows; i++) rmean += r[b * rows + i];
    float d = (float)(rmean / (double)rows);
    return d < eps1 ? eps1 : d;
}

AUR__HD static float aur__af_update(int factored, aur_real *r, const aur_real *c, const aur_real *g, int64_t rows, int64_t cols,
                                    float w, float denom, float floor2, int64_t i)
{
    float v;
    if (factored) {
        int64_t b = i / (rows * cols), ii = i / cols % rows, j = i % cols;
        v = ((float)r[b * rows + ii] * (float)c[b * cols + j]) / denom;
    } else {
        float gi = (float)g[i];
        r[i] = (aur_real)aur__lerp((float)r[i], gi * gi, w);
        v = (float)r[i];
    }
    v = v < floor2 ? floor2 : v;
    return (1.0f / sqrtf(v)) * (float)g[i];
}

/* torch cross_entropy of one row with label y and label smoothing s:
   (1 - s) nll + s mean_c(-log p_c). */
AUR__HD static double aur__ce_row_loss(const aur_real *xr, int64_t C, int64_t y, double s)
{
    double mx = -INFINITY, z = 0, sum_logp = 0;
    for (int64_t c = 0; c < C; c++) mx = xr[c] > mx ? xr[c] : mx;
    for (int64_t c = 0; c < C; c++) z += exp(xr[c] - mx);
    double lse = mx + log(z);
    for (int64_t c = 0; c < C; c++) sum_logp += xr[c] - lse;
    return (1 - s) * (lse - xr[y]) - s * sum_logp / (double)C;
}

/* dx_c += gscale (softmax_c - (1 - s) [c == y] - s / C) */
AUR__HD static void aur__ce_row_grad(aur_real *dxr, const aur_real *xr, int64_t C, int64_t y, double s, double gscale)
{
    double mx = -INFINITY, z = 0;
    for (int64_t c = 0; c < C; c++) mx = xr[c] > mx ? xr[c] : mx;
    for (int64_t c = 0; c < C; c++) z += exp(xr[c] - mx);
    for (int64_t c = 0; c < C; c++) {
        double p = exp(xr[c] - mx) / z, d = p - (c == y ? 1 - s : 0) - s / (double)C;
        dxr[c] += (aur_real)(d * gscale);
    }
}

/* One axis of grid_sample: the pixel coordinate of a normalised one (align_corners
   False), clipped to the border; *pass is 1 where the clip let the gradient through. */
AUR__HD static double aur__grid_coord(double g, int64_t size, int *pass)
{
    double c = ((g + 1) * (double)size - 1) / 2;
    *pass = c > 0 && c < (double)(size - 1);
    return c <= 0 ? 0 : c >= (double)(size - 1) ? (double)(size - 1) : c;
}

/* The four corners and weights of a bilinear sample at (ix, iy). */
typedef struct aur__bilinear {
    int64_t x0, y0;
    double fx, fy; /* fractional parts */
} aur__bilinear;

AUR__HD static aur__bilinear aur__bilinear_at(double ix, double iy)
{
    aur__bilinear b = {(int64_t)floor(ix), (int64_t)floor(iy), 0, 0};
    b.fx = ix - (double)b.x0, b.fy = iy - (double)b.y0;
    return b;
}

/* x's value at (row, col), 0 outside (a corner past the border has weight 0 anyway). */
AUR__HD static double aur__pixel(const aur_real *plane, int64_t H, int64_t W, int64_t r, int64_t c)
{
    return r >= 0 && r < H && c >= 0 && c < W ? (double)plane[r * W + c] : 0.0;
}

/* grid_sample (bilinear, border) as three loops both paths share: the
   samples of sample point e (all channels); the grid's gradient at e; and
   x's gradient for plane bc, its sample points in order (points may share
   pixels, so one plane is one loop: the sums keep their order). x is
   (N, C, H, W), the grid (N, HWo, 2), the output (N, C, HWo). */
AUR__HD static aur__bilinear aur__gs_point(const aur_real *grid, int64_t e, int64_t H, int64_t W, int *px, int *py)
{
    const aur_real *gp = grid + e * 2;
    return aur__bilinear_at(aur__grid_coord(gp[0], W, px), aur__grid_coord(gp[1], H, py));
}

AUR__HD static void aur__gs_sample(aur_real *out, const aur_real *x, const aur_real *grid, int64_t C, int64_t H, int64_t W,
                                   int64_t HWo, int64_t e)
{
    int64_t b = e / HWo, o = e % HWo;
    int px, py;
    aur__bilinear s = aur__gs_point(grid, e, H, W, &px, &py);
    for (int64_t c = 0; c < C; c++) {
        const aur_real *plane = x + (b * C + c) * H * W;
        double v = aur__pixel(plane, H, W, s.y0, s.x0) * (1 - s.fx) * (1 - s.fy) + aur__pixel(plane, H, W, s.y0, s.x0 + 1) * s.fx * (1 - s.fy) +
                   aur__pixel(plane, H, W, s.y0 + 1, s.x0) * (1 - s.fx) * s.fy + aur__pixel(plane, H, W, s.y0 + 1, s.x0 + 1) * s.fx * s.fy;
        out[(b * C + c) * HWo + o] = (aur_real)v;
    }
}

AUR__HD static void aur__gs_dgrid(aur_real *dg, const aur_real *g, const aur_real *x, const aur_real *grid, int64_t C,
                                  int64_t H, int64_t W, int64_t HWo, int64_t e)
{
    int64_t b = e / HWo, o = e % HWo;
    int px, py;
    aur__bilinear s = aur__gs_point(grid, e, H, W, &px, &py);
    double gx = 0, gy = 0;
    for (int64_t c = 0; c < C; c++) {
        const aur_real *plane = x + (b * C + c) * H * W;
        double go = g[(b * C + c) * HWo + o];
        double v00 = aur__pixel(plane, H, W, s.y0, s.x0), v01 = aur__pixel(plane, H, W, s.y0, s.x0 + 1);
        double v10 = aur__pixel(plane, H, W, s.y0 + 1, s.x0), v11 = aur__pixel(plane, H, W, s.y0 + 1, s.x0 + 1);
        gx += go * ((v01 - v00) * (1 - s.fy) + (v11 - v10) * s.fy);
        gy += go * ((v10 - v00) * (1 - s.fx) + (v11 - v01) * s.fx);
    }
    /* chain through the clip and the unnormalisation (size / 2) */
    dg[e * 2] += (aur_real)(px ? gx * (double)W / 2 : 0);
    dg[e * 2 + 1] += (aur_real)(py ? gy * (double)H / 2 : 0);
}

AUR__HD static void aur__gs_dx(aur_real *dx, const aur_real *g, const aur_real *grid, int64_t C, int64_t H, int64_t W,
                               int64_t HWo, int64_t bc)
{
    int64_t b = bc / C;
    for (int64_t o = 0; o < HWo; o++) {
        int px, py;
        aur__bilinear s = aur__gs_point(grid, b * HWo + o, H, W, &px, &py);
        double go = g[bc * HWo + o];
        double w[4] = {(1 - s.fx) * (1 - s.fy), s.fx * (1 - s.fy), (1 - s.fx) * s.fy, s.fx * s.fy};
        int64_t rr[4] = {s.y0, s.y0, s.y0 + 1, s.y0 + 1}, cc[4] = {s.x0, s.x0 + 1, s.x0, s.x0 + 1};
        for (int k = 0; k < 4; k++)
            if (rr[k] >= 0 && rr[k] < H && cc[k] >= 0 && cc[k] < W) dx[bc * H * W + rr[k] * W + cc[k]] += (aur_real)(go * w[k]);
    }
}

#ifdef AUR__HAS_CUDA
#include "kernels.cuh"
#endif
