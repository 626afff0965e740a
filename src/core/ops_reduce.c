#include "api.h"
#include "platform.h"

/* ==== ops: reductions ==== */

/* x seen as (outer, n, inner) reduced over n. */
static aur_shape aur__reduced_shape(const aur_tensor *x, int a, int keepdim)
{
    aur_shape s = aur_tensor_shape(x);
    if (keepdim) {
        s.d[a] = 1;
    } else {
        for (int d = a; d + 1 < s.ndim; d++) s.d[d] = s.d[d + 1];
        s.ndim--;
        if (s.ndim == 0) s = aur_shape1(1);
    }
    return s;
}

static int aur__sum_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    int a = (int)n->iarg[0];
    int64_t outer = aur__outer(x, a), len = x->shape[a], inner = aur__inner(x, a);
    aur_real *dx = aur__grad(t, x), s = (aur_real)n->farg[0];
    const aur_real *dy = n->out->grad;
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_sum_axis, dx, dy, outer, len, inner, s, 1);
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < len; k++)
            for (int64_t i = 0; i < inner; i++) dx[(o * len + k) * inner + i] += dy[o * inner + i] * s;
    return 0;
}

static aur_tensor *aur__reduce_sum(aur_tape *t, aur_tensor *x, int axis, int keepdim, int mean, const char *op)
{
    int a = 0;
    if (aur__check(op, &x, 1) || aur__axis(op, axis, x->ndim, &a)) return NULL;
    aur_tensor *y = aur__output(t, aur__reduced_shape(x, a, keepdim), x->device, &x, 1);
    if (!y) return NULL;
    int64_t outer = aur__outer(x, a), len = x->shape[a], inner = aur__inner(x, a);
    double s = mean ? 1.0 / (double)len : 1.0;
    const aur_real *xd = aur__cr(x);
    aur_real *yd = aur__wr(y);
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_sum_axis, yd, xd, outer, len, inner, s, 0)) return NULL;
    } else if (x->device == AUR_CPU) {
        AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                double acc = 0;
                for (int64_t k = 0; k < len; k++) acc += xd[(o * len + k) * inner + i];
                yd[o * inner + i] = (aur_real)(acc * s);
            }
    }
    aur__node *n = aur__record(t, y, op, aur__sum_back, &x, 1);
    if (!n) return NULL;
    n->iarg[0] = a;
    n->farg[0] = s;
    return y;
}

AURDEF aur_tensor *aur_sum(aur_tape *t, aur_tensor *x, int axis, int keepdim) { return aur__reduce_sum(t, x, axis, keepdim, 0, "sum"); }
AURDEF aur_tensor *aur_mean(aur_tape *t, aur_tensor *x, int axis, int keepdim) { return aur__reduce_sum(t, x, axis, keepdim, 1, "mean"); }

static aur_tensor *aur__reduce_all(aur_tape *t, aur_tensor *x, int mean)
{
    if (!x) return NULL;
    aur_tensor *flat = aur_reshape(t, x, aur_shape1(x->numel));
    return aur__reduce_sum(t, flat, 0, 0, mean, mean ? "mean_all" : "sum_all");
}
AURDEF aur_tensor *aur_sum_all(aur_tape *t, aur_tensor *x) { return aur__reduce_all(t, x, 0); }
AURDEF aur_tensor *aur_mean_all(aur_tape *t, aur_tensor *x) { return aur__reduce_all(t, x, 1); }

static int aur__max_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    const int64_t *arg = (const int64_t *)n->saved[0];
    aur_real *dx = aur__grad(t, x);
    const aur_real *dy = n->out->grad;
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_max_bwd, dx, dy, arg, n->out->numel);
    for (int64_t i = 0; i < n->out->numel; i++) dx[arg[i]] += dy[i];
    return 0;
}

AURDEF aur_tensor *aur_max(aur_tape *t, aur_tensor *x, int axis, int keepdim)
{
    int a = 0;
    if (aur__check("max", &x, 1) || aur__axis("max", axis, x->ndim, &a)) return NULL;
    if (x->shape[a] == 0) {
        aur__err(AUR_ESHAPE, "max: axis %d is empty", axis);
        return NULL;
    }
    aur_tensor *y = aur__output(t, aur__reduced_shape(x, a, keepdim), x->device, &x, 1);
    aur__storage *kept = NULL;
    int64_t *arg = y ? (int64_t *)aur__buffer(t, x->device, sizeof(int64_t) * (size_t)y->numel, &kept) : NULL;
    if (!arg) return NULL;
    int64_t outer = aur__outer(x, a), len = x->shape[a], inner = aur__inner(x, a);
    const aur_real *xd = aur__cr(x);
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_max_axis, aur__wr(y), arg, xd, outer, len, inner)) return NULL;
    } else if (x->device == AUR_CPU)
        for (int64_t e = 0; e < outer * inner; e++) {
            arg[e] = aur__argmax_along(xd, e / inner, e % inner, len, inner);
            aur__wr(y)[e] = xd[arg[e]];
        }
    aur__node *n = aur__record(t, y, "max", aur__max_back, &x, 1);
    if (!n) return NULL;
    aur__keep_buffer(t, n, kept); /* the index of each maximum, not x */
    n->saved[0] = arg;
    return y;
}

/* ==== ops: losses ====
   Each returns the mean as a (1) tensor. Sums run in double over fixed
   chunks, so the value does not depend on the thread count. */


static double aur__chunked_sum(const double *part, int chunks)
{
    double s = 0;
    for (int c = 0; c < chunks; c++) s += part[c];
    return s;
}

static int aur__pointwise_loss_back(aur_tape *t, aur__node *n)
{
    aur_tensor *p = n->in[0], *y = n->in[1], *pw = n->in[2];
    aur_real *dp = aur__grad(t, p), *dy = aur__grad(t, y), g;
    int kind = (int)n->iarg[0];
    int64_t N = p->numel, C = p->shape[p->ndim - 1];
    if (p->device == AUR_META) return 0; /* shapes only */
    if (aur__copy_bytes(&g, AUR_CPU, n->out->grad, n->out->device, sizeof g)) return AUR_ECUDA;
    double scale = (double)g / n->farg[0]; /* the number of elements averaged */
    if (p->device == AUR_CUDA) return AUR__GPU(aur_cuda_loss_bwd, kind, dp, dy, aur__cr(p), aur__cr(y), pw ? aur__cr(pw) : NULL, C, scale, N);
    AUR__OMP_FOR_IF(N > AUR__PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        double a, b;
        aur__elem_loss(kind, aur__cr(p)[i], aur__cr(y)[i], pw ? aur__cr(pw)[i % C] : 1, &a, &b);
        if (dp) dp[i] += (aur_real)(a * scale);
        if (dy) dy[i] += (aur_real)(b * scale);
    }
    return 0;
}

/* x's values on the host: x itself on the CPU, else a copy in the CPU arena. */
static const aur_real *aur__host_copy(aur_tape *t, const aur_tensor *x)
{
    if (x->device == AUR_CPU) return aur__cr(x);
    aur_real *h = aur__reals(t, AUR_CPU, x->numel);
    if (!h || aur__copy_bytes(h, AUR_CPU, x->data, x->device, (size_t)x->numel * sizeof(aur_real))) return NULL;
    return h;
}

/* The first element of x, on any device (NaN if it cannot be read). */
static double aur__value(const aur_tensor *x)
{
    aur_real v = NAN;
    if (aur__copy_bytes(&v, AUR_CPU, x->data, x->device, sizeof v)) return NAN;
    return (double)v;
}

/* Writes a one-element tensor on any device. */
static int aur__set_scalar(aur_tensor *y, double v)
{
    aur_real r = (aur_real)v;
    return aur__copy_bytes(y->data, y->device, &r, AUR_CPU, sizeof r);
}

#ifdef AUR__HAS_CUDA /* ---- CUDA builds only: the losses' GPU sums (a launch and two copies) ---- */
/* The chunk sums (and the count of non-finite pairs) on the GPU, brought to the host. */
static int aur__loss_chunks_cuda(aur_tape *t, int kind, const aur_tensor *p, const aur_tensor *y, const aur_tensor *pw,
                                 double *part, int chunks, int64_t *bad)
{
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    double *dpart = (double *)aur__alloc(t, AUR_CUDA, sizeof(double) * (size_t)chunks);
    int64_t *dbad = (int64_t *)aur__alloc(t, AUR_CUDA, sizeof(int64_t) * (size_t)chunks), hbad[256];
    int rc = !dpart || !dbad || chunks > 256 ? aur__err(AUR_ENOMEM, "loss: no GPU memory for the partial sums") : 0;
    if (!rc) rc = aur_cuda_loss_chunks(kind, dpart, dbad, aur__cr(p), aur__cr(y), pw ? aur__cr(pw) : NULL,
                                       p->shape[p->ndim - 1], p->numel, chunks);
    if (!rc) rc = aur__copy_bytes(part, AUR_CPU, dpart, AUR_CUDA, sizeof(double) * (size_t)chunks);
    if (!rc) rc = aur__copy_bytes(hbad, AUR_CPU, dbad, AUR_CUDA, sizeof(int64_t) * (size_t)chunks);
    *bad = 0;
    for (int c = 0; c < chunks && !rc; c++) *bad += hbad[c];
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return rc;
}
#endif

static aur_tensor *aur__pointwise_loss(aur_tape *t, int kind, const char *op, aur_tensor *p, aur_tensor *y, aur_tensor *pw)
{
    enum { CHUNKS = 64 };
    aur_tensor *in[3] = {p, y, pw};
    char s1[64], s2[64];
    if (aur__check(op, in, pw ? 3 : 2)) return NULL;
    int same = p->ndim == y->ndim && p->ndim >= 1;
    for (int d = 0; same && d < p->ndim; d++) same = p->shape[d] == y->shape[d];
    if (!same || p->numel == 0 || (pw && (pw->ndim != 1 || pw->shape[0] != p->shape[p->ndim - 1]))) {
        aur__err(AUR_ESHAPE, "%s: prediction %s and target %s must have the same non-empty shape%s", op,
                 aur_shape_str(p->shape, p->ndim, s1, sizeof s1), aur_shape_str(y->shape, y->ndim, s2, sizeof s2),
                 pw ? " (and pos_weight the size of the last dim)" : "");
        return NULL;
    }
    aur_tensor *out = aur__output(t, aur_shape1(1), p->device, in, 2);
    if (!out) return NULL;
    int64_t N = p->numel, C = p->shape[p->ndim - 1], per = (N + CHUNKS - 1) / CHUNKS, count = N;
    double part[CHUNKS];
    if (p->device == AUR_CUDA) {
        int64_t bad = 0;
        if (AUR__GPU(aur__loss_chunks_cuda, t, kind, p, y, pw, part, CHUNKS, &bad)) return NULL;
        if (kind == AUR__MSE_FINITE) count -= bad;
    } else if (p->device == AUR_META) {
        memset(part, 0, sizeof part);
    } else {
        if (kind == AUR__MSE_FINITE) /* only the pairs where both are finite count */
            for (int64_t i = 0; i < N; i++) count -= !(isfinite(aur__cr(p)[i]) && isfinite(aur__cr(y)[i]));
        AUR__OMP_FOR_IF(N > AUR__PAR_MIN)
        for (int c = 0; c < CHUNKS; c++) {
            double s = 0, a, b;
            for (int64_t i = c * per; i < (c + 1) * per && i < N; i++)
                s += aur__elem_loss(kind, aur__cr(p)[i], aur__cr(y)[i], pw ? aur__cr(pw)[i % C] : 1, &a, &b);
            part[c] = s;
        }
    }
    if (aur__set_scalar(out, aur__chunked_sum(part, CHUNKS) / (double)count)) return NULL; /* 0/0 = NaN with nothing to average */
    aur__node *n = aur__save_inputs(t, aur__record(t, out, op, aur__pointwise_loss_back, in, 3));
    if (!n) return NULL;
    n->iarg[0] = kind;
    n->farg[0] = (double)count;
    return out;
}

AURDEF aur_tensor *aur_mse_loss(aur_tape *t, aur_tensor *pred, aur_tensor *target)
{
    return aur__pointwise_loss(t, AUR__MSE, "mse_loss", pred, target, NULL);
}
AURDEF aur_tensor *aur_mse_loss_finite(aur_tape *t, aur_tensor *pred, aur_tensor *target)
{
    return aur__pointwise_loss(t, AUR__MSE_FINITE, "mse_loss_finite", pred, target, NULL);
}
AURDEF aur_tensor *aur_mae_loss(aur_tape *t, aur_tensor *pred, aur_tensor *target)
{
    return aur__pointwise_loss(t, AUR__MAE, "mae_loss", pred, target, NULL);
}
AURDEF aur_tensor *aur_bce_logits_loss(aur_tape *t, aur_tensor *logits, aur_tensor *target, aur_tensor *pos_weight)
{
    return aur__pointwise_loss(t, AUR__BCE, "bce_logits_loss", logits, target, pos_weight);
}

/* On the GPU: each row's loss (0 where ignored), brought to the host to be added in order. NULL on the CPU. */
static double *aur__row_losses(aur_tape *t, const aur_tensor *logits, const aur_tensor *labels, int64_t ignore, double s)
{
    if (logits->device != AUR_CUDA) return NULL;
    int64_t N = logits->shape[0];
    double *dev = (double *)aur__alloc(t, AUR_CUDA, sizeof(double) * (size_t)N);
    double *host = (double *)aur__alloc(t, AUR_CPU, sizeof(double) * (size_t)N);
    if (!dev || !host ||
        AUR__GPU(aur_cuda_cross_entropy, NULL, dev, aur__cr(logits), aur__cr(labels), N, logits->shape[1], ignore, s, 0) ||
        aur__copy_bytes(host, AUR_CPU, dev, AUR_CUDA, sizeof(double) * (size_t)N))
        return NULL;
    return host;
}

/* torch cross_entropy with mean reduction over the rows whose label is not
   ignore_index: (1 - s) nll + s mean_c(-log p_c), s = label_smoothing. */
static int aur__cross_entropy_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *lab = n->in[1];
    int64_t N = x->shape[0], C = x->shape[1], ignore = n->iarg[0];
    double s = n->farg[0], valid = n->farg[1];
    aur_real *dx = aur__grad(t, x), g;
    if (x->device == AUR_META) return 0; /* shapes only */
    int rc = aur__copy_bytes(&g, AUR_CPU, n->out->grad, n->out->device, sizeof g);
    if (!rc && x->device == AUR_CUDA) return AUR__GPU(aur_cuda_cross_entropy, dx, NULL, aur__cr(x), aur__cr(lab), N, C, ignore, s, (double)g / valid);
    for (int64_t r = 0; r < N && !rc; r++) {
        int64_t y = (int64_t)aur__cr(lab)[r];
        if (y != ignore) aur__ce_row_grad(dx + r * C, aur__cr(x) + r * C, C, y, s, (double)g / valid);
    }
    return rc;
}

AURDEF aur_tensor *aur_cross_entropy(aur_tape *t, aur_tensor *logits, aur_tensor *labels, int64_t ignore_index,
                                     double label_smoothing)
{
    aur_tensor *in[2] = {logits, labels};
    if (aur__check("cross_entropy", in, 2)) return NULL;
    if (logits->ndim != 2 || labels->numel != logits->shape[0]) {
        aur__err(AUR_ESHAPE, "cross_entropy: want logits (N, C) and N labels");
        return NULL;
    }
    if (!(label_smoothing >= 0 && label_smoothing <= 1)) {
        aur__err(AUR_EINVAL, "cross_entropy: label_smoothing %g is outside [0, 1]", label_smoothing);
        return NULL;
    }
    int64_t N = logits->shape[0], C = logits->shape[1], valid = 0;
    double total = 0;
    const aur_real *lab = aur__host_copy(t, labels); /* the labels are checked on the host */
    if (!lab) return NULL;
    if (logits->device == AUR_META) valid = N; /* no labels to read */
    for (int64_t r = 0; r < N && logits->device != AUR_META; r++) {
        aur_real yl = lab[r];
        int64_t y = (int64_t)yl;
        if ((aur_real)y != yl || (y != ignore_index && (y < 0 || y >= C))) {
            aur__err(AUR_EINVAL, "cross_entropy: label %lld is %g: not a class index in [0, %lld) or ignore_index %lld",
                     (long long)r, (double)yl, (long long)C, (long long)ignore_index);
            return NULL;
        }
        valid += y != ignore_index;
    }
    double *row_loss = aur__row_losses(t, logits, labels, ignore_index, label_smoothing); /* GPU only */
    if (logits->device == AUR_CUDA && !row_loss) return NULL;
    for (int64_t r = 0; r < N && logits->device != AUR_META; r++) { /* rows in order on both devices */
        int64_t y = (int64_t)lab[r];
        if (y != ignore_index) total += row_loss ? row_loss[r] : aur__ce_row_loss(aur__cr(logits) + r * C, C, y, label_smoothing);
    }
    aur_tensor *out = aur__output(t, aur_shape1(1), logits->device, in, 1);
    if (!out || aur__set_scalar(out, total / (double)valid)) return NULL; /* no valid rows: NaN, as torch */
    aur__node *n = aur__save_inputs(t, aur__record(t, out, "cross_entropy", aur__cross_entropy_back, in, 2));
    if (!n) return NULL;
    n->iarg[0] = ignore_index;
    n->farg[0] = label_smoothing;
    n->farg[1] = (double)valid;
    return out;
}
