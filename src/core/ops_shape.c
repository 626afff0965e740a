#include "api.h"
#include "platform.h"

/* ==== ops: concat, slice, split, pad ====
   Each moves blocks: a tensor seen as (outer, axis, inner) is copied block by
   block. Backward adds the same blocks the other way. */

/* Copies rows: for o < outer, dst[o*dst_row + dst_off ..+len] (+)= src[o*src_row + src_off ..+len]. */
static int aur__copy_rows(aur_device dev, aur_real *dst, int64_t dst_row, int64_t dst_off, const aur_real *src,
                           int64_t src_row, int64_t src_off, int64_t outer, int64_t len, int accumulate)
{
    if (dev == AUR_META) return 0;
    if (dev == AUR_CUDA) return AUR__GPU(aur_cuda_copy_rows, dst, dst_row, dst_off, src, src_row, src_off, outer, len, accumulate);
    AUR__OMP_FOR_IF(outer * len > AUR__PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        aur_real *d = dst + o * dst_row + dst_off;
        const aur_real *s = src + o * src_row + src_off;
        if (accumulate)
            for (int64_t j = 0; j < len; j++) d[j] += s[j];
        else
            memcpy(d, s, (size_t)len * sizeof(aur_real));
    }
    return 0;
}

static int64_t aur__outer(const aur_tensor *x, int axis)
{
    int64_t n = 1;
    for (int i = 0; i < axis; i++) n *= x->shape[i];
    return n;
}

static int64_t aur__inner(const aur_tensor *x, int axis)
{
    int64_t n = 1;
    for (int i = axis + 1; i < x->ndim; i++) n *= x->shape[i];
    return n;
}

static int aur__concat_back(aur_tape *t, aur__node *n)
{
    int axis = (int)n->iarg[0];
    int64_t outer = aur__outer(n->out, axis), row = n->out->shape[axis] * aur__inner(n->out, axis), off = 0;
    int rc = 0;
    for (int i = 0; i < n->n_in && !rc; i++) {
        aur_tensor *x = n->in[i];
        int64_t len = x->shape[axis] * aur__inner(x, axis);
        aur_real *dx = aur__grad(t, x);
        if (dx) rc = aur__copy_rows(x->device, dx, len, 0, n->out->grad, row, off, outer, len, 1);
        off += len;
    }
    return rc;
}

AURDEF aur_tensor *aur_concat(aur_tape *t, aur_tensor *const *xs, int n, int axis)
{
    int a = 0;
    char s1[64], s2[64];
    if (n < 1) {
        aur__err(AUR_EINVAL, "concat: no inputs");
        return NULL;
    }
    if (aur__check("concat", xs, n) || aur__axis("concat", axis, xs[0]->ndim, &a))
        return NULL;
    aur_shape ys = aur_tensor_shape(xs[0]);
    for (int i = 1; i < n; i++) {
        int bad = xs[i]->ndim != ys.ndim;
        for (int d = 0; d < ys.ndim && !bad; d++) bad = d != a && xs[i]->shape[d] != ys.d[d];
        if (bad) {
            aur__err(AUR_ESHAPE, "concat: input %d %s does not fit input 0 %s along axis %d", i,
                     aur_shape_str(xs[i]->shape, xs[i]->ndim, s1, sizeof s1),
                     aur_shape_str(xs[0]->shape, xs[0]->ndim, s2, sizeof s2), axis);
            return NULL;
        }
        ys.d[a] += xs[i]->shape[a];
    }
    aur_tensor *y = aur__output(t, ys, xs[0]->device, xs, n);
    if (!y) return NULL;
    int64_t outer = aur__outer(y, a), row = ys.d[a] * aur__inner(y, a), off = 0;
    for (int i = 0; i < n; i++) {
        int64_t len = xs[i]->shape[a] * aur__inner(xs[i], a);
        if (aur__copy_rows(y->device, aur__wr(y), row, off, aur__cr(xs[i]), len, 0, outer, len, 0)) return NULL;
        off += len;
    }
    aur__node *nd = aur__record(t, y, "concat", aur__concat_back, xs, n);
    if (!nd) return NULL;
    nd->iarg[0] = a;
    return y;
}

static int aur__slice_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    int axis = (int)n->iarg[0];
    int64_t inner = aur__inner(x, axis), len = n->out->shape[axis] * inner;
    aur_real *dx = aur__grad(t, x);
    return aur__copy_rows(x->device, dx, x->shape[axis] * inner, n->iarg[1] * inner, n->out->grad, len, 0, aur__outer(x, axis), len, 1);
}

AURDEF aur_tensor *aur_slice(aur_tape *t, aur_tensor *x, int axis, int64_t start, int64_t len)
{
    int a = 0;
    if (aur__check("slice", &x, 1) || aur__axis("slice", axis, x->ndim, &a)) return NULL;
    if (start < 0 || len < 0 || start + len > x->shape[a]) {
        aur__err(AUR_ESHAPE, "slice: [%lld, %lld) is outside axis %d of length %lld", (long long)start,
                 (long long)(start + len), axis, (long long)x->shape[a]);
        return NULL;
    }
    aur_shape ys = aur_tensor_shape(x);
    ys.d[a] = len;
    int64_t inner = aur__inner(x, a);
    aur_tensor *y;
    if (aur__outer(x, a) == 1) { /* one contiguous run of x: a view of its bytes */
        if (!(y = aur__view(t, x, ys))) return NULL;
        y->data = aur__wr(x) + start * inner;
        y->offset += sizeof(aur_real) * (size_t)(start * inner);
        y->requires_grad = t->grad_on && x->requires_grad;
    } else {
        if (!(y = aur__output(t, ys, x->device, &x, 1))) return NULL;
        if (aur__copy_rows(x->device, aur__wr(y), len * inner, 0, aur__cr(x), x->shape[a] * inner, start * inner, aur__outer(x, a),
                           len * inner, 0))
            return NULL;
        aur__mark_bf16(y, aur__is_bf16(x));
    }
    aur__node *n = aur__record(t, y, "slice", aur__slice_back, &x, 1);
    if (!n) return NULL;
    n->iarg[0] = a;
    n->iarg[1] = start;
    return y;
}

AURDEF int aur_split(aur_tape *t, aur_tensor *x, int axis, int n, const int64_t *sizes, aur_tensor **out)
{
    int a = 0;
    if (aur__check("split", &x, 1) || aur__axis("split", axis, x->ndim, &a)) return AUR_EINVAL;
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    if (total != x->shape[a])
        return aur__err(AUR_ESHAPE, "split: sizes sum to %lld, axis %d has %lld", (long long)total, axis,
                        (long long)x->shape[a]);
    int64_t start = 0;
    for (int i = 0; i < n; i++) {
        out[i] = aur_slice(t, x, a, start, sizes[i]);
        if (!out[i]) return AUR_EINVAL;
        start += sizes[i];
    }
    return 0;
}

/* Row offsets of x placed inside a larger tensor y at per-dim offsets pos. */
static int64_t aur__box_row(const aur_tensor *x, const int64_t *ystride, const int64_t *pos, int64_t r)
{
    int64_t idx[AUR_MAX_DIMS], off = 0;
    aur__unravel(r, x->shape, x->ndim - 1, idx);
    for (int d = 0; d + 1 < x->ndim; d++) off += (idx[d] + pos[d]) * ystride[d];
    return off + pos[x->ndim - 1];
}

/* The map of a tensor of shape `shape` into one with strides `stride`, shifted by add (wrapping where wrap):
   what the GPU's strided copy (pad, permute, roll) walks. */
static aur__strided aur__strided_map(const int64_t *shape, int nd, const int64_t *stride, const int64_t *add, int wrap)
{
    aur__strided m;
    memset(&m, 0, sizeof m);
    m.nd = nd;
    for (int d = 0; d < nd; d++) {
        m.shape[d] = shape[d];
        m.stride[d] = stride[d];
        m.add[d] = add ? add[d] : 0;
        m.wrap[d] = wrap ? shape[d] : 0;
    }
    return m;
}

static int aur__pad_rows(aur_tensor *x, aur_real *xd, const aur_tensor *y, aur_real *yd, const int64_t *before,
                         int to_y)
{
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) { /* x is the dense side, y the strided one */
        int64_t yst[AUR_MAX_DIMS];
        aur__strides(y->shape, y->ndim, yst);
        aur__strided m = aur__strided_map(x->shape, x->ndim, yst, before, 0);
        return AUR__GPU(aur_cuda_strided, &m, to_y ? AUR__SCATTER : AUR__GATHER_ADD, xd, yd);
    }
    int64_t st[AUR_MAX_DIMS], last = x->ndim ? x->shape[x->ndim - 1] : 1, rows = last ? x->numel / last : 0;
    aur__strides(y->shape, y->ndim, st);
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = x->ndim ? aur__box_row(x, st, before, r) : 0;
        if (to_y)
            memcpy(yd + off, xd + r * last, (size_t)last * sizeof(aur_real));
        else
            for (int64_t j = 0; j < last; j++) xd[r * last + j] += yd[off + j];
    }
    return 0;
}

static int aur__pad_back(aur_tape *t, aur__node *n)
{
    aur_real *dx = aur__grad(t, n->in[0]);
    return aur__pad_rows(n->in[0], dx, n->out, n->out->grad, n->iarg, 0);
}

AURDEF aur_tensor *aur_pad(aur_tape *t, aur_tensor *x, const int64_t *before, const int64_t *after, double value)
{
    if (aur__check("pad", &x, 1)) return NULL;
    aur_shape ys = aur_tensor_shape(x);
    for (int d = 0; d < x->ndim; d++) {
        if (before[d] < 0 || after[d] < 0) {
            aur__err(AUR_EINVAL, "pad: negative padding on dim %d (use aur_slice to crop)", d);
            return NULL;
        }
        ys.d[d] += before[d] + after[d];
    }
    aur_tensor *y = aur__output(t, ys, x->device, &x, 1);
    if (!y) return NULL;
    aur_real v = (aur_real)value, *yd = aur__wr(y);
    if (y->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_fill, yd, v, y->numel)) return NULL;
    } else if (y->device == AUR_CPU)
        for (int64_t i = 0; i < y->numel; i++) yd[i] = v;
    if (aur__pad_rows(x, aur__wr(x), y, yd, before, 1)) return NULL;
    aur__node *n = aur__record(t, y, "pad", aur__pad_back, &x, 1);
    if (!n) return NULL;
    for (int d = 0; d < x->ndim; d++) n->iarg[d] = before[d];
    return y;
}

/* ==== ops: permute, reshape, roll ==== */

/* y (shape of x permuted) from x, or dx += dy the other way. */
static int aur__permute_rows(const aur_tensor *x, aur_real *xd, const aur_tensor *y, aur_real *yd, const int *perm,
                             int to_y)
{
    int nd = y->ndim;
    int64_t xs[AUR_MAX_DIMS], last = nd ? y->shape[nd - 1] : 1, rows = last ? y->numel / last : 0;
    aur__strides(x->shape, x->ndim, xs);
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) { /* y is the dense side; x is read with permuted strides */
        int64_t ps[AUR_MAX_DIMS];
        for (int d = 0; d < nd; d++) ps[d] = xs[perm[d]];
        aur__strided m = aur__strided_map(y->shape, nd, ps, NULL, 0);
        return AUR__GPU(aur_cuda_strided, &m, to_y ? AUR__GATHER : AUR__SCATTER_ADD, yd, xd);
    }
    int64_t js = nd ? xs[perm[nd - 1]] : 1;
    AUR__OMP_FOR_IF(y->numel > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t idx[AUR_MAX_DIMS], off = 0;
        aur__unravel(r, y->shape, nd - 1, idx);
        for (int d = 0; d + 1 < nd; d++) off += idx[d] * xs[perm[d]];
        aur_real *yr = yd + r * last;
        if (to_y)
            for (int64_t j = 0; j < last; j++) yr[j] = xd[off + j * js];
        else
            for (int64_t j = 0; j < last; j++) xd[off + j * js] += yr[j];
    }
    return 0;
}

static int aur__permute_back(aur_tape *t, aur__node *n)
{
    int perm[AUR_MAX_DIMS];
    for (int d = 0; d < n->out->ndim; d++) perm[d] = (int)n->iarg[d];
    return aur__permute_rows(n->in[0], aur__grad(t, n->in[0]), n->out, n->out->grad, perm, 0);
}

AURDEF aur_tensor *aur_permute(aur_tape *t, aur_tensor *x, const int *perm)
{
    if (aur__check("permute", &x, 1)) return NULL;
    int seen[AUR_MAX_DIMS] = {0};
    aur_shape ys = aur_tensor_shape(x);
    for (int d = 0; d < x->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= x->ndim || seen[perm[d]]++) {
            aur__err(AUR_EINVAL, "permute: perm is not a permutation of 0..%d", x->ndim - 1);
            return NULL;
        }
        ys.d[d] = x->shape[perm[d]];
    }
    aur_tensor *y = aur__output(t, ys, x->device, &x, 1);
    if (!y) return NULL;
    if (aur__permute_rows(x, aur__wr(x), y, aur__wr(y), perm, 1)) return NULL;
    aur__mark_bf16(y, aur__is_bf16(x));
    aur__node *n = aur__record(t, y, "permute", aur__permute_back, &x, 1);
    if (!n) return NULL;
    for (int d = 0; d < x->ndim; d++) n->iarg[d] = perm[d];
    return y;
}

/* dx += dy: the backward of every op that only relabels or rounds (reshape, cast, remainder). */
static int aur__identity_back(aur_tape *t, aur__node *n)
{
    aur_real *dx = aur__grad(t, n->in[0]);
    const aur_real *dy = n->out->grad;
    int64_t N = n->out->numel;
    if (n->out->device == AUR_META) return 0;
    if (n->out->device == AUR_CUDA) return AUR__GPU(aur_cuda_axpy, dx, dy, 1, N);
    AUR__OMP_FOR_IF(N > AUR__PAR_MIN)
    for (int64_t i = 0; i < N; i++) dx[i] += dy[i];
    return 0;
}

/* The output shares x's data: tensors are never written after creation. */
AURDEF aur_tensor *aur_reshape(aur_tape *t, aur_tensor *x, aur_shape shape)
{
    char s1[64], s2[64];
    if (!x) return NULL;
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < shape.ndim; d++) {
        if (shape.d[d] == -1 && infer < 0) infer = d;
        else known *= shape.d[d];
    }
    if (infer >= 0 && known > 0 && x->numel % known == 0) shape.d[infer] = x->numel / known;
    if (shape.ndim < 0 || shape.ndim > AUR_MAX_DIMS || aur_shape_numel(shape) != x->numel || aur__shape_ok(shape, "reshape")) {
        aur__err(AUR_ESHAPE, "reshape: %s cannot become %s", aur_shape_str(x->shape, x->ndim, s1, sizeof s1),
                 aur_shape_str(shape.d, shape.ndim > 0 && shape.ndim <= AUR_MAX_DIMS ? shape.ndim : 0, s2, sizeof s2));
        return NULL;
    }
    aur_tensor *y = aur__view(t, x, shape);
    if (!y) return NULL;
    y->requires_grad = t->grad_on && x->requires_grad;
    return aur__record(t, y, "reshape", aur__identity_back, &x, 1) ? y : NULL;
}

/* y = roll(x, shifts) (to_y), or dx += roll(dy, -shifts). */
static int aur__roll_rows(aur_real *xd, aur_real *yd, const aur_tensor *x, const int64_t *shift, int to_y)
{
    int nd = x->ndim;
    int64_t st[AUR_MAX_DIMS], last = nd ? x->shape[nd - 1] : 1, rows = last ? x->numel / last : 0;
    int64_t s = nd && last ? ((shift[nd - 1] % last) + last) % last : 0;
    aur__strides(x->shape, nd, st);
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) { /* y[idx] = x[(idx - shift) mod shape] */
        int64_t back[AUR_MAX_DIMS];
        for (int d = 0; d < nd; d++) back[d] = -(shift[d] % (x->shape[d] ? x->shape[d] : 1));
        aur__strided m = aur__strided_map(x->shape, nd, st, back, 1);
        return AUR__GPU(aur_cuda_strided, &m, to_y ? AUR__GATHER : AUR__SCATTER_ADD, yd, xd);
    }
    AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t idx[AUR_MAX_DIMS], src = 0;
        aur__unravel(r, x->shape, nd - 1, idx);
        for (int d = 0; d + 1 < nd; d++) {
            int64_t n = x->shape[d];
            src += (((idx[d] - shift[d]) % n + n) % n) * st[d];
        }
        aur_real *yr = yd + r * last, *xr = xd + src;
        for (int64_t j = 0; j < last; j++) { /* y[j] = x[j - s] */
            int64_t k = j - s < 0 ? j - s + last : j - s;
            if (to_y) yr[j] = xr[k];
            else xr[k] += yr[j];
        }
    }
    return 0;
}

static int aur__roll_back(aur_tape *t, aur__node *n)
{
    return aur__roll_rows(aur__grad(t, n->in[0]), n->out->grad, n->in[0], n->iarg, 0);
}

AURDEF aur_tensor *aur_roll(aur_tape *t, aur_tensor *x, const int64_t *shifts)
{
    if (aur__check("roll", &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    if (aur__roll_rows(aur__wr(x), aur__wr(y), x, shifts, 1)) return NULL;
    aur__node *n = aur__record(t, y, "roll", aur__roll_back, &x, 1);
    if (!n) return NULL;
    for (int d = 0; d < x->ndim; d++) n->iarg[d] = shifts[d];
    return y;
}
