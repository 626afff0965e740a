#include "api.h"
#include "platform.h"

/* ==== op: dropout ====
   A counter-based generator: element i of the call that starts at stream
   offset o keeps its value when hash(seed, o + i) >= p. Nothing is stored:
   backward (and checkpoint recomputation) regenerate the same mask. */


static void aur__dropout_apply(aur_real *y, const aur_real *x, int64_t n, uint64_t seed, uint64_t offset, double p,
                               int accumulate)
{
    aur_real scale = (aur_real)(1.0 / (1.0 - p));
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        aur_real v = aur__dropout_keep(seed, offset + (uint64_t)i, p) ? x[i] * scale : 0;
        y[i] = accumulate ? y[i] + v : v;
    }
}

/* Both devices draw the same mask: the CUDA kernel calls aur__dropout_keep too. */
static int aur__dropout_run(aur_device dev, aur_real *y, const aur_real *x, int64_t n, uint64_t seed, uint64_t offset,
                            double p, int accumulate)
{
    if (dev == AUR_META) return 0;
    if (dev == AUR_CUDA) return AUR__GPU(aur_cuda_dropout, y, x, n, seed, offset, p, accumulate);
    aur__dropout_apply(y, x, n, seed, offset, p, accumulate);
    return 0;
}

static int aur__dropout_back(aur_tape *t, aur__node *n)
{
    aur_real *dx = aur__grad(t, n->in[0]);
    return aur__dropout_run(n->out->device, dx, n->out->grad, n->out->numel, (uint64_t)n->iarg[0], (uint64_t)n->iarg[1],
                            n->farg[0], 1);
}

AURDEF aur_tensor *aur_dropout(aur_tape *t, aur_tensor *x, double p)
{
    if (aur__check("dropout", &x, 1)) return NULL;
    if (!(p >= 0 && p < 1)) {
        aur__err(AUR_EINVAL, "dropout: p = %g is outside [0, 1)", p);
        return NULL;
    }
    if (!t->training || p == 0) return x;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    uint64_t offset = t->rng_offset;
    t->rng_offset += (uint64_t)x->numel;
    if (aur__dropout_run(x->device, aur__wr(y), aur__cr(x), x->numel, t->seed, offset, p, 0)) return NULL;
    aur__node *n = aur__record(t, y, "dropout", aur__dropout_back, &x, 1);
    if (!n) return NULL;
    n->iarg[0] = (int64_t)t->seed;
    n->iarg[1] = (int64_t)offset;
    n->farg[0] = p;
    return y;
}

/* ==== ops: clamp, expand, per-channel normalisation, row gather ==== */

/* y = rule(x, x2, a, b) element by element (aur__pw_value), on either device. */
static int aur__pointwise(int kind, aur_tensor *y, const aur_tensor *x, const aur_tensor *x2, double a, double b)
{
    const aur_real *xd = aur__cr(x), *x2d = x2 ? aur__cr(x2) : NULL;
    aur_real *yd = aur__wr(y), av = (aur_real)a, bv = (aur_real)b;
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_pointwise_fwd, kind, yd, xd, x2d, a, b, x->numel);
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t i = 0; i < x->numel; i++) yd[i] = aur__pw_value(kind, xd[i], x2d ? x2d[i] : 0, av, bv);
    return 0;
}

/* dx (and dx2) += its gradient (aur__pw_grad) element by element, on either device. */
static int aur__pointwise_back(int kind, aur_real *dx, aur_real *dx2, const aur_real *dy, const aur_tensor *x,
                               const aur_tensor *x2, double a, double b)
{
    const aur_real *xd = aur__cr(x), *x2d = x2 ? aur__cr(x2) : NULL;
    aur_real av = (aur_real)a, bv = (aur_real)b;
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_pointwise_bwd, kind, dx, dx2, dy, xd, x2d, a, b, x->numel);
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t i = 0; i < x->numel; i++)
        aur__pw_grad(kind, xd[i], x2d ? x2d[i] : 0, av, bv, dy[i], dx ? dx + i : NULL, dx2 ? dx2 + i : NULL);
    return 0;
}

static int aur__clamp_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    return aur__pointwise_back(AUR__PW_CLAMP, aur__grad(t, x), NULL, n->out->grad, x, NULL, n->farg[0], n->farg[1]);
}

AURDEF aur_tensor *aur_clamp(aur_tape *t, aur_tensor *x, double lo, double hi)
{
    if (aur__check("clamp", &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y || aur__pointwise(AUR__PW_CLAMP, y, x, NULL, lo, hi)) return NULL;
    aur__node *n = aur__save_inputs(t, aur__record(t, y, "clamp", aur__clamp_back, &x, 1));
    if (!n) return NULL;
    n->farg[0] = lo;
    n->farg[1] = hi;
    return y;
}

static int aur__expand_back(aur_tape *t, aur__node *n)
{
    aur__bcast g;
    aur__broadcast("expand", n->out, n->in[0], &g);
    if (n->out->device == AUR_META) return aur__grad(t, n->in[0]), 0;
    if (n->out->device == AUR_CUDA) return AUR__GPU(aur_cuda_broadcast_sum, t, &g, aur__grad(t, n->in[0]), n->out->grad);
    aur__binary_acc(&g, aur__grad(t, n->in[0]), g.sb, n->out->grad, NULL, g.sa, 1);
    return 0;
}

/* y from x, broadcast (numpy rules). */
static int aur__expand_rows(aur_tensor *y, const aur_tensor *x)
{
    aur__bcast g;
    aur__broadcast("expand", y, x, &g);
    int64_t last = g.ndim ? g.shape[g.ndim - 1] : 1, rows = last ? y->numel / last : 0, jb = g.ndim ? g.sb[g.ndim - 1] : 1;
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_expand_fwd, aur__wr(y), aur__cr(x), &g, y->numel);
    AUR__OMP_FOR_IF(y->numel > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oa, ob;
        aur__bcast_row(&g, r, &oa, &ob);
        for (int64_t j = 0; j < last; j++) aur__wr(y)[r * last + j] = aur__cr(x)[ob + j * jb];
    }
    return 0;
}

static int aur__expand_rebuild(aur_tape *t, const aur__rebuild *r, aur_tensor *y)
{
    (void)t;
    return aur__expand_rows(y, r->in[0]);
}

AURDEF aur_tensor *aur_expand(aur_tape *t, aur_tensor *x, aur_shape shape)
{
    char s1[64], s2[64];
    if (aur__check("expand", &x, 1) || aur__shape_ok(shape, "expand")) return NULL;
    aur_tensor *y = aur__output(t, shape, x->device, &x, 1);
    aur__bcast g;
    if (!y) return NULL;
    if (aur__broadcast("expand", y, x, &g) || g.ndim != shape.ndim || aur_shape_numel(aur_shapev(g.ndim, g.shape)) != y->numel) {
        aur__err(AUR_ESHAPE, "expand: %s does not broadcast to %s", aur_shape_str(x->shape, x->ndim, s1, sizeof s1),
                 aur_shape_str(shape.d, shape.ndim, s2, sizeof s2));
        return NULL;
    }
    if (aur__expand_rows(y, x)) return NULL;
    aur__node *n = aur__record(t, y, "expand", aur__expand_back, &x, 1);
    if (!n) return NULL;
    aur__rebuildable(t, y, aur__expand_rebuild, x, NULL, NULL, 0, 0, NULL, NULL); /* a broadcast copy: redone, not kept */
    return y;
}

/* x viewed as (outer, C, inner) with C along axis. */
static void aur__channel_geometry(const aur_tensor *x, int axis, int64_t *outer, int64_t *C, int64_t *inner)
{
    *outer = aur__outer(x, axis);
    *C = x->shape[axis];
    *inner = aur__inner(x, axis);
}

static int aur__normalise_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    const float *sc = (const float *)n->saved[0];
    int64_t outer, C, inner;
    aur_real *dx = aur__grad(t, x);
    const aur_real *dy = n->out->grad;
    aur__channel_geometry(x, (int)n->iarg[0], &outer, &C, &inner);
    int inverse = (int)n->iarg[1];
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_normalise, dx, dy, NULL, sc, C, inner, inverse, 1, x->numel);
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < C; c++) {
            aur_real f = inverse ? (aur_real)sc[c] : (aur_real)1 / (aur_real)sc[c];
            for (int64_t i = 0; i < inner; i++) dx[(o * C + c) * inner + i] += dy[(o * C + c) * inner + i] * f;
        }
    return 0;
}

AURDEF aur_tensor *aur_normalise(aur_tape *t, aur_tensor *x, int axis, const double *loc, const double *scale, int inverse)
{
    int a = 0;
    if (aur__check("normalise", &x, 1) || aur__axis("normalise", axis, x->ndim, &a)) return NULL;
    int64_t outer, C, inner;
    aur__channel_geometry(x, a, &outer, &C, &inner);
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    float *ls = y ? (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(2 * C + 1)) : NULL;
    if (!ls) return NULL;
    for (int64_t c = 0; c < C; c++) { /* torch rounds the Python floats to float32 */
        ls[c] = (float)loc[c];
        ls[C + c] = (float)scale[c];
        if (!(ls[C + c] != 0) || !isfinite(ls[C + c]) || !isfinite(ls[c])) {
            aur__err(AUR_EINVAL, "normalise: channel %lld has location %g and scale %g", (long long)c, loc[c], scale[c]);
            return NULL;
        }
    }
    const aur_real *xd = aur__cr(x);
    aur_real *yd = aur__wr(y);
    if (x->device == AUR_CUDA) { /* the statistics go to the GPU, kept there for backward */
        float *dls = (float *)aur__alloc(t, AUR_CUDA, sizeof(float) * (size_t)(2 * C));
        if (!dls || aur__copy_bytes(dls, AUR_CUDA, ls, AUR_CPU, sizeof(float) * (size_t)(2 * C)) ||
            AUR__GPU(aur_cuda_normalise, yd, xd, dls, dls + C, C, inner, inverse, 0, x->numel))
            return NULL;
        ls = dls;
    } else if (x->device == AUR_CPU) {
        AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t c = 0; c < C; c++) {
                const aur_real l = (aur_real)ls[c], s = (aur_real)ls[C + c];
                const aur_real *xr = xd + (o * C + c) * inner;
                aur_real *yr = yd + (o * C + c) * inner;
                /* two rounded operations each way (no FMA), as PyTorch's CPU kernels */
                if (inverse)
                    for (int64_t i = 0; i < inner; i++) {
                        volatile aur_real p = xr[i] * s;
                        yr[i] = p + l;
                    }
                else
                    for (int64_t i = 0; i < inner; i++) yr[i] = (xr[i] - l) / s;
            }
    }
    aur__node *n = aur__record(t, y, "normalise", aur__normalise_back, &x, 1);
    if (!n) return NULL;
    n->iarg[0] = a;
    n->iarg[1] = inverse;
    n->saved[0] = ls + C;
    return y;
}

static int aur__gather_back(aur_tape *t, aur__node *n)
{
    const aur_index *ix = (const aur_index *)n->saved[0];
    int64_t nb = n->iarg[0], d = n->iarg[1];
    aur_real *dx = aur__grad(t, n->in[0]);
    const aur_real *dy = n->out->grad;
    if (n->out->device == AUR_META) return 0;
    if (n->out->device == AUR_CUDA)
        return AUR__GPU(aur_cuda_gather, dx, dy, (const int64_t *)n->saved[1], nb, ix->n_out, ix->n_in, d, 1, ix->injective);
    for (int64_t b = 0; b < nb; b++) {
        aur_real *dxb = dx + b * ix->n_in * d;
        const aur_real *dyb = dy + b * ix->n_out * d;
        /* an injective table writes each source row once: safe to split over threads */
        AUR__OMP_FOR_IF(ix->injective && ix->n_out * d > AUR__PAR_MIN)
        for (int64_t i = 0; i < ix->n_out; i++) {
            if (ix->idx[i] < 0) continue;
            aur_real *dst = dxb + ix->idx[i] * d;
            for (int64_t j = 0; j < d; j++) dst[j] += dyb[i * d + j];
        }
    }
    return 0;
}

/* y's rows from x's by the table (dev_idx: its copy on the GPU). */
static int aur__gather_rows(aur_tensor *y, const aur_tensor *x, int64_t nb, int64_t d, const aur_index *ix, const int64_t *dev_idx)
{
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_gather, aur__wr(y), aur__cr(x), dev_idx, nb, ix->n_out, ix->n_in, d, 0, 0);
    for (int64_t b = 0; b < nb; b++) {
        const aur_real *xb = aur__cr(x) + b * ix->n_in * d;
        aur_real *yb = aur__wr(y) + b * ix->n_out * d;
        AUR__OMP_FOR_IF(ix->n_out * d > AUR__PAR_MIN)
        for (int64_t i = 0; i < ix->n_out; i++) {
            if (ix->idx[i] < 0) memset(yb + i * d, 0, (size_t)d * sizeof(aur_real));
            else memcpy(yb + i * d, xb + ix->idx[i] * d, (size_t)d * sizeof(aur_real));
        }
    }
    return 0;
}

static int aur__gather_rebuild(aur_tape *t, const aur__rebuild *r, aur_tensor *y)
{
    (void)t;
    const aur_tensor *x = r->in[0];
    int64_t nb = (int64_t)r->arg;
    return aur__gather_rows(y, x, nb, x->numel / (nb * ((const aur_index *)r->aux[0])->n_in), (const aur_index *)r->aux[0],
                            (const int64_t *)r->aux[1]);
}

/* aur_gather with the table's GPU copy given (a model's cached one), or NULL: copied for this step. */
static aur_tensor *aur__gather(aur_tape *t, aur_tensor *x, int64_t nb, int64_t d, const aur_index *ix, const int64_t *table,
                               aur_shape out_shape)
{
    if (aur__check("gather", &x, 1)) return NULL;
    if (nb < 1 || d < 1 || x->numel != nb * ix->n_in * d || aur_shape_numel(out_shape) != nb * ix->n_out * d) {
        aur__err(AUR_ESHAPE, "gather: %lld elements as (%lld, %lld, %lld) rows -> %lld rows of the table", (long long)x->numel,
                 (long long)nb, (long long)ix->n_in, (long long)d, (long long)ix->n_out);
        return NULL;
    }
    aur_tensor *y = aur__output(t, out_shape, x->device, &x, 1);
    if (!y) return NULL;
    const int64_t *dev_idx = table; /* the table on the GPU */
    if (x->device == AUR_CUDA && !table) {
        size_t bytes = sizeof(int64_t) * (size_t)ix->n_out;
        int64_t *copy = (int64_t *)aur__alloc(t, AUR_CUDA, bytes);
        if (!copy || aur__copy_bytes(copy, AUR_CUDA, ix->idx, AUR_CPU, bytes)) return NULL;
        dev_idx = copy;
    }
    if (aur__gather_rows(y, x, nb, d, ix, dev_idx)) return NULL;
    aur__mark_bf16(y, aur__is_bf16(x)); /* a copy (zeros where the table says none) */
    aur__node *n = aur__record(t, y, "gather", aur__gather_back, &x, 1);
    if (!n) return NULL;
    aur__rebuildable(t, y, aur__gather_rebuild, x, NULL, NULL, 0, (double)nb, ix, dev_idx); /* a copy: redone, not kept */
    n->saved[0] = (void *)ix;
    n->saved[1] = (void *)dev_idx;
    n->iarg[0] = nb;
    n->iarg[1] = d;
    return y;
}

AURDEF aur_tensor *aur_gather(aur_tape *t, aur_tensor *x, int64_t nb, int64_t d, const aur_index *ix, aur_shape out_shape)
{
    return aur__gather(t, x, nb, d, ix, NULL, out_shape);
}

/* ==== ops: atan2, nan_to_num, masked fill, remainder ==== */

static int aur__atan2_back(aur_tape *t, aur__node *n)
{
    aur_tensor *y = n->in[0], *x = n->in[1];
    return aur__pointwise_back(AUR__PW_ATAN2, aur__grad(t, y), aur__grad(t, x), n->out->grad, y, x, 0, 0);
}

AURDEF aur_tensor *aur_atan2(aur_tape *t, aur_tensor *y, aur_tensor *x)
{
    aur_tensor *in[2] = {y, x};
    if (aur__check("atan2", in, 2)) return NULL;
    if (y->numel != x->numel) {
        aur__err(AUR_ESHAPE, "atan2: %lld and %lld elements", (long long)y->numel, (long long)x->numel);
        return NULL;
    }
    aur_tensor *out = aur__output(t, aur_tensor_shape(y), y->device, in, 2);
    if (!out || aur__pointwise(AUR__PW_ATAN2, out, y, x, 0, 0)) return NULL;
    return aur__save_inputs(t, aur__record(t, out, "atan2", aur__atan2_back, in, 2)) ? out : NULL;
}


static int aur__grid_sample_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *grid = n->in[1];
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], Ho = grid->shape[1], Wo = grid->shape[2];
    aur_real *dx = aur__grad(t, x), *dg = aur__grad(t, grid);
    const aur_real *g = n->out->grad, *gd = aur__cr(grid), *xd = aur__cr(x);
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_grid_sample, NULL, dx, dg, g, xd, gd, N, C, H, W, Ho * Wo);
    for (int64_t e = 0; dg && e < N * Ho * Wo; e++) aur__gs_dgrid(dg, g, xd, gd, C, H, W, Ho * Wo, e);
    for (int64_t bc = 0; dx && bc < N * C; bc++) aur__gs_dx(dx, g, gd, C, H, W, Ho * Wo, bc);
    return 0;
}

AURDEF aur_tensor *aur_grid_sample(aur_tape *t, aur_tensor *x, aur_tensor *grid)
{
    aur_tensor *in[2] = {x, grid};
    if (aur__check("grid_sample", in, 2)) return NULL;
    if (x->ndim != 4 || grid->ndim != 4 || grid->shape[0] != x->shape[0] || grid->shape[3] != 2) {
        char s1[64], s2[64];
        aur__err(AUR_ESHAPE, "grid_sample: x %s and grid %s; expected (N, C, H, W) and (N, Ho, Wo, 2)", aur_shape_str(x->shape, x->ndim, s1, sizeof s1),
                 aur_shape_str(grid->shape, grid->ndim, s2, sizeof s2));
        return NULL;
    }
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], Ho = grid->shape[1], Wo = grid->shape[2];
    aur_tensor *out = aur__output(t, aur_shape4(N, C, Ho, Wo), x->device, in, 2);
    if (!out) return NULL;
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_grid_sample, aur__wr(out), NULL, NULL, NULL, aur__cr(x), aur__cr(grid), N, C, H, W, Ho * Wo)) return NULL;
    } else if (x->device == AUR_CPU)
        for (int64_t e = 0; e < N * Ho * Wo; e++) aur__gs_sample(aur__wr(out), aur__cr(x), aur__cr(grid), C, H, W, Ho * Wo, e);
    return aur__save_inputs(t, aur__record(t, out, "grid_sample", aur__grid_sample_back, in, 2)) ? out : NULL;
}

/* dx += dy where keep (the source is finite, or the mask is clear). */
static int aur__pass_where_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *mask = n->in[1];
    return aur__pointwise_back(mask ? AUR__PW_MASKED_FILL : AUR__PW_NAN_TO_NUM, aur__grad(t, x), NULL, n->out->grad, x, mask, 0, 0);
}

AURDEF aur_tensor *aur_nan_to_num(aur_tape *t, aur_tensor *x, double nan)
{
    if (aur__check("nan_to_num", &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    if (aur__pointwise(AUR__PW_NAN_TO_NUM, y, x, NULL, nan, 0)) return NULL;
    aur_tensor *in[2] = {x, NULL}; /* no mask: the backward tells nan_to_num from masked_fill by it */
    return aur__save_inputs(t, aur__record(t, y, "nan_to_num", aur__pass_where_back, in, 2)) ? y : NULL;
}

AURDEF aur_tensor *aur_masked_fill(aur_tape *t, aur_tensor *x, aur_tensor *mask, double value)
{
    aur_tensor *in[2] = {x, mask};
    if (aur__check("masked_fill", in, 2)) return NULL;
    if (mask->numel != x->numel) {
        aur__err(AUR_ESHAPE, "masked_fill: a mask of %lld elements for %lld", (long long)mask->numel, (long long)x->numel);
        return NULL;
    }
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    if (aur__pointwise(AUR__PW_MASKED_FILL, y, x, mask, value, 0)) return NULL;
    return aur__save_inputs(t, aur__record(t, y, "masked_fill", aur__pass_where_back, in, 2)) ? y : NULL;
}

AURDEF aur_tensor *aur_remainder(aur_tape *t, aur_tensor *x, double m)
{
    if (aur__check("remainder", &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    if (aur__pointwise(AUR__PW_REMAINDER, y, x, NULL, m, 0)) return NULL;
    return aur__record(t, y, "remainder", aur__identity_back, &x, 1) ? y : NULL;
}

/* ==== ops: device and dtype changes ==== */

static int aur__to_device_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *y = n->out;
    aur_real *dx = aur__grad(t, x);
    if (x->device == AUR_META || y->device == AUR_META) return 0; /* shapes only */
    aur__mark mk = aur__arena_mark(&t->main[x->device]);
    aur_real *tmp = aur__reals(t, x->device, y->numel);
    int rc = tmp ? aur__copy_bytes(tmp, x->device, y->grad, y->device, (size_t)y->numel * sizeof(aur_real)) : AUR_ENOMEM;
    if (!rc && x->device == AUR_CUDA) rc = AUR__GPU(aur_cuda_axpy, dx, tmp, 1, y->numel);
    else
        for (int64_t i = 0; i < y->numel && !rc; i++) dx[i] += tmp[i];
    aur__arena_release(&t->main[x->device], mk);
    return rc;
}

AURDEF aur_tensor *aur_to_device(aur_tape *t, aur_tensor *x, aur_device device)
{
    if (!x) return NULL;
    if (x->device == device) return x;
    aur_tensor *y = aur__tensor(t, x->dtype, device, aur_tensor_shape(x));
    if (!y || aur__copy_bytes(y->data, device, x->data, x->device, aur__nbytes(x))) return NULL;
    y->requires_grad = t->grad_on && x->requires_grad && x->dtype == AUR_F32;
    return aur__record(t, y, "to_device", aur__to_device_back, &x, 1) ? y : NULL;
}

static aur_tensor *aur__cast_record(aur_tape *t, aur_tensor *x, aur_tensor *y)
{
    y->requires_grad = t->grad_on && x->requires_grad;
    return aur__record(t, y, "cast", aur__identity_back, &x, 1) ? y : NULL;
}

AURDEF aur_tensor *aur_cast(aur_tape *t, aur_tensor *x, aur_dtype dtype)
{
    if (!x) return NULL;
    if (x->dtype == dtype) return x;
    aur_tensor *y = aur__tensor(t, dtype, x->device, aur_tensor_shape(x));
    if (!y) return NULL;
    if (x->device == AUR_META) return aur__cast_record(t, x, y);
    if (x->device == AUR_CUDA)
        return AUR__GPU(aur_cuda_cast, y->data, x->data, dtype == AUR_BF16, x->numel) ? NULL : aur__cast_record(t, x, y);
    for (int64_t i = 0; i < x->numel; i++) {
        if (dtype == AUR_BF16) ((uint16_t *)y->data)[i] = aur_f32_to_bf16((float)aur__cr(x)[i]);
        else aur__wr(y)[i] = aur_bf16_to_f32(((const uint16_t *)x->data)[i]);
    }
    return aur__cast_record(t, x, y);
}
