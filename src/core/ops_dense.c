#include "api.h"
#include "platform.h"

/* ==== op: linear ==== */

static int aur__linear_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2], *y = n->out;
    int64_t K = w->shape[1], N = w->shape[0], M = x->numel / K;
    aur_real *dx = aur__grad(t, x), *dw = aur__grad(t, w), *db = aur__grad(t, b);
    int ac = (int)n->iarg[7]; /* autocast as it was in the forward pass */
    if (y->device == AUR_META) return 0; /* shapes only */
    if (y->device == AUR_CUDA) return AUR__GPU(aur_cuda_linear_bwd, t, ac, dx, dw, db, y->grad, aur__cr(x), aur__cr(w), M, N, K);
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
    const aur_real *dy = aur__autocast_in(t, ac, y->grad, y->numel);
    const aur_real *xc = dw ? aur__autocast_in(t, ac, aur__cr(x), x->numel) : NULL;
    const aur_real *wc = dx ? aur__autocast_in(t, ac, aur__cr(w), w->numel) : NULL;
    int rc = (!dy || (dw && !xc) || (dx && !wc)) ? AUR_ENOMEM : 0;
    if (!rc && dx) { /* dx += dy w */
        aur_real *tmp = ac ? aur__reals(t, AUR_CPU, x->numel) : dx;
        rc = tmp ? aur__gemm1(t, M, K, N, aur__matv(dy, N, 1), aur__matv(wc, K, 1), tmp, !ac) : AUR_ENOMEM;
        if (!rc && ac) aur__acc_into(ac, dx, tmp, x->numel);
    }
    if (!rc && dw) { /* dw += dy^T x */
        aur_real *tmp = ac ? aur__reals(t, AUR_CPU, w->numel) : dw;
        rc = tmp ? aur__gemm1(t, N, K, M, aur__matv(dy, 1, N), aur__matv(xc, K, 1), tmp, !ac) : AUR_ENOMEM;
        if (!rc && ac) aur__acc_into(ac, dw, tmp, w->numel);
    }
    if (!rc && db) {
        aur_real *tmp = ac ? aur__reals(t, AUR_CPU, N) : db;
        rc = tmp ? aur__sum_rows(t, tmp, dy, M, N, !ac) : AUR_ENOMEM;
        if (!rc && ac) aur__acc_into(ac, db, tmp, N);
    }
    aur__arena_release(&t->main[AUR_CPU], mk);
    return rc;
}

AURDEF aur_tensor *aur_linear(aur_tape *t, aur_tensor *x, aur_tensor *w, aur_tensor *b)
{
    aur_tensor *in[3] = {x, w, b};
    char s1[64], s2[64];
    if (aur__check("linear", in, b ? 3 : 2)) return NULL;
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1] || (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))) {
        aur__err(AUR_ESHAPE, "linear: x %s does not fit weight %s (want x (..., in), weight (out, in), bias (out))",
                 aur_shape_str(x->shape, x->ndim, s1, sizeof s1), aur_shape_str(w->shape, w->ndim, s2, sizeof s2));
        return NULL;
    }
    int64_t K = w->shape[1], N = w->shape[0], M = K ? x->numel / K : 0;
    aur_shape ys = aur_tensor_shape(x);
    ys.d[ys.ndim - 1] = N;
    aur_tensor *y = aur__output(t, ys, x->device, in, 3);
    if (!y) return NULL;
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_linear_fwd, t, aur__wr(y), aur__cr(x), aur__cr(w), b ? aur__cr(b) : NULL, M, N, K)) return NULL;
    } else if (x->device == AUR_CPU) {
        aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
        const aur_real *xc = aur__autocast_in(t, t->autocast, aur__cr(x), x->numel), *wc = aur__autocast_in(t, t->autocast, aur__cr(w), w->numel);
        const aur_real *bc = b ? aur__autocast_in(t, t->autocast, aur__cr(b), N) : NULL;
        if (!xc || !wc || (b && !bc) || aur__gemm1(t, M, N, K, aur__matv(xc, K, 1), aur__matv(wc, 1, K), aur__wr(y), 0))
            return NULL;
        aur_real *yd = aur__wr(y);
        if (bc) {
            AUR__OMP_FOR_IF(M * N > AUR__PAR_MIN)
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) yd[i * N + j] += bc[j];
        }
        if (t->autocast) aur__round_bf16_inplace(yd, y->numel);
        aur__arena_release(&t->main[AUR_CPU], mk);
    }
    aur__mark_bf16(y, t->autocast); /* rounded on every device */
    aur__node *n = aur__record(t, y, "linear", aur__linear_back, in, 3);
    if (!n) return NULL;
    if (w->requires_grad) aur__save(t, n, x); /* dw = dy^T x */
    if (x->requires_grad) aur__save(t, n, w); /* dx = dy w */
    n->iarg[7] = t->autocast;
    return y;
}

/* ==== op: batched matmul ==== */

static aur__mm_geom aur__mm_geometry(const aur_tensor *a, const aur_tensor *b, int ta, int tb)
{
    aur__mm_geom g;
    int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    g.M = ta ? ac : ar;
    g.K = ta ? ar : ac;
    g.N = tb ? br : bc;
    g.nb = ar * ac != 0 ? a->numel / (ar * ac) : 0;
    g.a = ta ? aur__matv(aur__cr(a), 1, ac) : aur__matv(aur__cr(a), ac, 1);
    g.b = tb ? aur__matv(aur__cr(b), 1, bc) : aur__matv(aur__cr(b), bc, 1);
    g.sa = ar * ac;
    g.sb = b->ndim == 2 ? 0 : br * bc;
    return g;
}

static int aur__matmul_back(aur_tape *t, aur__node *n)
{
    aur_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    int ta = (int)n->iarg[0], tb = (int)n->iarg[1], ac = (int)n->iarg[7]; /* autocast as in the forward */
    aur__mm_geom g = aur__mm_geometry(a, b, ta, tb);
    aur_real *da = aur__grad(t, a), *db = aur__grad(t, b);
    int64_t ldy = g.N, sy = g.M * g.N;
    int rc = 0;
    if (y->device == AUR_META) return 0; /* shapes only */
    if (y->device == AUR_CUDA) return AUR__GPU(aur_cuda_matmul_bwd, t, ac, &g, a->numel, b->numel, da, db, y->grad, ta, tb);
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
    const aur_real *dy = aur__autocast_in(t, ac, y->grad, y->numel);
    if (ac) {
        g.a.p = aur__autocast_in(t, ac, g.a.p, a->numel);
        g.b.p = aur__autocast_in(t, ac, g.b.p, b->numel);
    }
    if (!dy || !g.a.p || !g.b.p) rc = AUR_ENOMEM;
    if (!rc && da) {
        aur_real *tmp = ac ? aur__reals(t, AUR_CPU, a->numel) : da;
        if (!tmp) rc = AUR_ENOMEM;
        else if (!ta) /* da (M x K) += dy opB^T */
            rc = aur__gemm_batched(t, g.nb, g.M, g.K, g.N, aur__matv(dy, ldy, 1), sy, aur__matv(g.b.p, g.b.cs, g.b.rs),
                                   g.sb, tmp, g.sa, g.K, !ac);
        else /* da (K x M) += opB dy^T */
            rc = aur__gemm_batched(t, g.nb, g.K, g.M, g.N, g.b, g.sb, aur__matv(dy, 1, ldy), sy, tmp, g.sa, g.M,
                                   !ac);
        if (!rc && ac) aur__acc_into(ac, da, tmp, a->numel);
    }
    if (!rc && db) {
        aur_real *tmp = ac ? aur__reals(t, AUR_CPU, b->numel) : db;
        int64_t nbb = g.sb ? g.nb : 1, steps = g.sb ? 1 : g.nb;
        if (!tmp) rc = AUR_ENOMEM;
        /* a shared b sums the batches one after another (in order: deterministic) */
        for (int64_t s = 0; s < steps && !rc; s++) {
            int acc = !ac || s > 0;
            aur__mat as = aur__matv(g.a.p + s * g.sa, g.a.rs, g.a.cs);
            const aur_real *dys = dy + s * sy;
            if (!tb) /* db (K x N) += opA^T dy */
                rc = aur__gemm_batched(t, nbb, g.K, g.N, g.M, aur__matv(as.p, as.cs, as.rs), g.sa,
                                       aur__matv(dys, ldy, 1), sy, tmp, g.sb, g.N, acc);
            else /* db (N x K) += dy^T opA */
                rc = aur__gemm_batched(t, nbb, g.N, g.K, g.M, aur__matv(dys, 1, ldy), sy, as, g.sa, tmp, g.sb, g.K,
                                       acc);
        }
        if (!rc && ac) aur__acc_into(ac, db, tmp, b->numel);
    }
    aur__arena_release(&t->main[AUR_CPU], mk);
    return rc;
}

AURDEF aur_tensor *aur_matmul(aur_tape *t, aur_tensor *a, aur_tensor *b, int ta, int tb)
{
    aur_tensor *in[2] = {a, b};
    char s1[64], s2[64];
    if (aur__check("matmul", in, 2)) return NULL;
    int bad = a->ndim < 2 || b->ndim < 2;
    if (!bad && b->ndim > 2) {
        bad = b->ndim != a->ndim;
        for (int i = 0; i + 2 < a->ndim && !bad; i++) bad = a->shape[i] != b->shape[i];
    }
    if (!bad) {
        aur__mm_geom g = aur__mm_geometry(a, b, ta, tb);
        bad = (tb ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2]) != g.K;
    }
    if (bad) {
        aur__err(AUR_ESHAPE, "matmul: a %s%s and b %s%s do not fit (want (..., M, K) x (..., K, N) or a 2-D b)",
                 aur_shape_str(a->shape, a->ndim, s1, sizeof s1), ta ? "^T" : "",
                 aur_shape_str(b->shape, b->ndim, s2, sizeof s2), tb ? "^T" : "");
        return NULL;
    }
    aur__mm_geom g = aur__mm_geometry(a, b, ta, tb);
    aur_shape ys = aur_tensor_shape(a);
    ys.d[ys.ndim - 2] = g.M;
    ys.d[ys.ndim - 1] = g.N;
    aur_tensor *y = aur__output(t, ys, a->device, in, 2);
    if (!y) return NULL;
    if (a->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_matmul_fwd, t, &g, a->numel, b->numel, aur__wr(y))) return NULL;
    } else if (a->device == AUR_CPU) {
        aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
        g.a.p = aur__autocast_in(t, t->autocast, g.a.p, a->numel);
        g.b.p = aur__autocast_in(t, t->autocast, g.b.p, b->numel);
        if (!g.a.p || !g.b.p ||
            aur__gemm_batched(t, g.nb, g.M, g.N, g.K, g.a, g.sa, g.b, g.sb, aur__wr(y), g.M * g.N, g.N, 0))
            return NULL;
        if (t->autocast) aur__round_bf16_inplace(aur__wr(y), y->numel);
        aur__arena_release(&t->main[AUR_CPU], mk);
    }
    aur__mark_bf16(y, t->autocast);
    aur__node *n = aur__record(t, y, "matmul", aur__matmul_back, in, 2);
    if (!n) return NULL;
    if (b->requires_grad) aur__save(t, n, a);
    if (a->requires_grad) aur__save(t, n, b);
    n->iarg[0] = ta;
    n->iarg[1] = tb;
    n->iarg[7] = t->autocast;
    return y;
}

/* ==== ops: elementwise with broadcasting ==== */

static int aur__broadcast(const char *op, const aur_tensor *a, const aur_tensor *b, aur__bcast *g)
{
    char s1[64], s2[64];
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t sta[AUR_MAX_DIMS], stb[AUR_MAX_DIMS];
    aur__strides(a->shape, a->ndim, sta);
    aur__strides(b->shape, b->ndim, stb);
    g->ndim = nd;
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t na = da >= 0 ? a->shape[da] : 1, nb = db >= 0 ? b->shape[db] : 1;
        if (na != nb && na != 1 && nb != 1)
            return aur__err(AUR_ESHAPE, "%s: shapes %s and %s do not broadcast", op,
                            aur_shape_str(a->shape, a->ndim, s1, sizeof s1), aur_shape_str(b->shape, b->ndim, s2, sizeof s2));
        g->shape[d] = na > nb ? na : nb;
        g->sa[d] = (da >= 0 && na == g->shape[d]) ? sta[da] : 0;
        g->sb[d] = (db >= 0 && nb == g->shape[d]) ? stb[db] : 0;
    }
    aur__strides(g->shape, nd, g->so);
    return 0;
}

/* Offsets of row r (all dims but the last) in a and b. */
static void aur__bcast_row(const aur__bcast *g, int64_t r, int64_t *oa, int64_t *ob)
{
    int64_t idx[AUR_MAX_DIMS];
    aur__unravel(r, g->shape, g->ndim - 1, idx);
    *oa = *ob = 0;
    for (int d = 0; d < g->ndim - 1; d++) {
        *oa += idx[d] * g->sa[d];
        *ob += idx[d] * g->sb[d];
    }
}

static void aur__binary_fwd(int kind, const aur__bcast *g, aur_real *y, const aur_real *a, const aur_real *b)
{
    int64_t last = g->ndim ? g->shape[g->ndim - 1] : 1, rows = 1;
    for (int d = 0; d + 1 < g->ndim; d++) rows *= g->shape[d];
    int64_t ja = g->ndim ? g->sa[g->ndim - 1] : 1, jb = g->ndim ? g->sb[g->ndim - 1] : 1;
    AUR__OMP_FOR_IF(rows * last > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oa, ob;
        aur__bcast_row(g, r, &oa, &ob);
        const aur_real *ar = a + oa, *br = b + ob;
        aur_real *yr = y + r * last;
        if (kind == AUR__ADD)
            for (int64_t j = 0; j < last; j++) yr[j] = ar[j * ja] + br[j * jb];
        else if (kind == AUR__SUB)
            for (int64_t j = 0; j < last; j++) yr[j] = ar[j * ja] - br[j * jb];
        else
            for (int64_t j = 0; j < last; j++) yr[j] = ar[j * ja] * br[j * jb];
    }
}

/* d (strides sd over the output) += sign * dy * other (strides so), summing
   over broadcast dims. Parallel only when d is not broadcast (no two rows
   write the same element), so the sums are deterministic. */
static void aur__binary_acc(const aur__bcast *g, aur_real *d, const int64_t *sd, const aur_real *dy,
                            const aur_real *other, const int64_t *so, aur_real sign)
{
    int64_t last = g->ndim ? g->shape[g->ndim - 1] : 1, rows = 1;
    int full = 1;
    for (int i = 0; i < g->ndim; i++) full &= sd[i] == g->so[i];
    for (int i = 0; i + 1 < g->ndim; i++) rows *= g->shape[i];
    int64_t jd = g->ndim ? sd[g->ndim - 1] : 1, jo = g->ndim && other ? so[g->ndim - 1] : 0;
    AUR__OMP_FOR_IF(full && rows * last > AUR__PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t idx[AUR_MAX_DIMS], od = 0, oo = 0;
        aur__unravel(r, g->shape, g->ndim - 1, idx);
        for (int i = 0; i + 1 < g->ndim; i++) {
            od += idx[i] * sd[i];
            if (other) oo += idx[i] * so[i];
        }
        const aur_real *dyr = dy + r * last;
        if (other)
            for (int64_t j = 0; j < last; j++) d[od + j * jd] += sign * dyr[j] * other[oo + j * jo];
        else
            for (int64_t j = 0; j < last; j++) d[od + j * jd] += sign * dyr[j];
    }
}

static int aur__binary_back(aur_tape *t, aur__node *n)
{
    aur_tensor *a = n->in[0], *b = n->in[1];
    int kind = (int)n->iarg[0];
    aur__bcast g;
    aur__broadcast(n->op, a, b, &g);
    aur_real *da = aur__grad(t, a), *db = aur__grad(t, b);
    if (a->device == AUR_META) return 0; /* shapes only */
    if (a->device == AUR_CUDA) return AUR__GPU(aur_cuda_binary_bwd, t, kind, &g, da, db, n->out->grad, aur__cr(a), aur__cr(b));
    if (da) aur__binary_acc(&g, da, g.sa, n->out->grad, kind == AUR__MUL ? aur__cr(b) : NULL, g.sb, 1);
    if (db) aur__binary_acc(&g, db, g.sb, n->out->grad, kind == AUR__MUL ? aur__cr(a) : NULL, g.sa, kind == AUR__SUB ? -1 : 1);
    return 0;
}

static aur_tensor *aur__binary(aur_tape *t, int kind, const char *op, aur_tensor *a, aur_tensor *b)
{
    aur_tensor *in[2] = {a, b};
    aur__bcast g;
    if (aur__check(op, in, 2) || aur__broadcast(op, a, b, &g)) return NULL;
    aur_tensor *y = aur__output(t, aur_shapev(g.ndim, g.shape), a->device, in, 2);
    if (!y) return NULL;
    if (a->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_binary_fwd, kind, &g, aur__wr(y), aur__cr(a), aur__cr(b))) return NULL;
    } else if (a->device == AUR_CPU)
        aur__binary_fwd(kind, &g, aur__wr(y), aur__cr(a), aur__cr(b));
    aur__node *n = aur__record(t, y, op, aur__binary_back, in, 2);
    if (!n) return NULL;
    if (kind == AUR__MUL && b->requires_grad) aur__save(t, n, a); /* a sum or difference reads neither */
    if (kind == AUR__MUL && a->requires_grad) aur__save(t, n, b);
    n->iarg[0] = kind;
    return y;
}

AURDEF aur_tensor *aur_add(aur_tape *t, aur_tensor *a, aur_tensor *b) { return aur__binary(t, AUR__ADD, "add", a, b); }
AURDEF aur_tensor *aur_sub(aur_tape *t, aur_tensor *a, aur_tensor *b) { return aur__binary(t, AUR__SUB, "sub", a, b); }
AURDEF aur_tensor *aur_mul(aur_tape *t, aur_tensor *a, aur_tensor *b) { return aur__binary(t, AUR__MUL, "mul", a, b); }

/* ==== op: scale ==== */

static int aur__scale_back(aur_tape *t, aur__node *n)
{
    aur_real *dx = aur__grad(t, n->in[0]), s = (aur_real)n->farg[0];
    const aur_real *dy = n->out->grad;
    int64_t N = n->out->numel;
    if (n->out->device == AUR_META) return 0;
    if (n->out->device == AUR_CUDA) return AUR__GPU(aur_cuda_axpy, dx, dy, s, N);
    AUR__OMP_FOR_IF(N > AUR__PAR_MIN)
    for (int64_t i = 0; i < N; i++) dx[i] += s * dy[i];
    return 0;
}

AURDEF aur_tensor *aur_scale(aur_tape *t, aur_tensor *x, double s)
{
    if (aur__check("scale", &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    aur_real sr = (aur_real)s, *yd = aur__wr(y);
    const aur_real *xd = aur__cr(x);
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_scale, yd, xd, sr, x->numel)) return NULL;
    } else if (x->device == AUR_CPU) {
        AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
        for (int64_t i = 0; i < x->numel; i++) yd[i] = xd[i] * sr;
    }
    aur__node *n = aur__record(t, y, "scale", aur__scale_back, &x, 1);
    if (!n) return NULL;
    n->farg[0] = s;
    return y;
}

/* ==== op: layer norm ====
   torch.nn.LayerNorm over the last dim C: y = (x - mean) * rstd * w + b with
   the biased variance. Statistics in double; saves mean and rstd per row. */

static void aur__layernorm_fwd(aur_real *y, aur_real *mean, aur_real *rstd, const aur_real *x, const aur_real *w,
                               const aur_real *b, int64_t N, int64_t C, double eps)
{
    AUR__OMP_FOR_IF(N * C > AUR__PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const aur_real *xr = x + r * C;
        double s = 0, v = 0;
        for (int64_t j = 0; j < C; j++) s += xr[j];
        double m = C ? s / (double)C : 0;
        for (int64_t j = 0; j < C; j++) v += (xr[j] - m) * (xr[j] - m);
        aur_real mr = (aur_real)m, rs = (aur_real)(1.0 / sqrt((C ? v / (double)C : 0) + eps));
        mean[r] = mr;
        rstd[r] = rs;
        aur_real *yr = y + r * C;
        for (int64_t j = 0; j < C; j++) {
            aur_real h = (xr[j] - mr) * rs;
            yr[j] = w ? h * w[j] + b[j] : h;
        }
    }
}

/* dx += rstd (g - mean(g) - xhat mean(g xhat)) with g = dy w; dxhat_w = dy xhat (for dw). */
static void aur__layernorm_bwd(aur_real *dx, aur_real *dy_xhat, const aur_real *dy, const aur_real *x,
                               const aur_real *w, const aur_real *mean, const aur_real *rstd, int64_t N, int64_t C)
{
    AUR__OMP_FOR_IF(N * C > AUR__PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const aur_real *xr = x + r * C, *dyr = dy + r * C;
        double sg = 0, sgx = 0;
        for (int64_t j = 0; j < C; j++) {
            double h = (xr[j] - mean[r]) * rstd[r], g = dyr[j] * (w ? w[j] : 1);
            sg += g;
            sgx += g * h;
            if (dy_xhat) dy_xhat[r * C + j] = (aur_real)(dyr[j] * h);
        }
        if (!dx) continue;
        double mg = sg / (double)C, mgx = sgx / (double)C;
        for (int64_t j = 0; j < C; j++) {
            double h = (xr[j] - mean[r]) * rstd[r], g = dyr[j] * (w ? w[j] : 1);
            dx[r * C + j] += (aur_real)(rstd[r] * (g - mg - h * mgx));
        }
    }
}

/* y = layernorm(x) on x's device, with each row's mean and 1/std in stats (2 N). */
static int aur__layernorm_run(aur_tensor *y, aur_real *stats, const aur_tensor *x, const aur_tensor *w, const aur_tensor *b, double eps)
{
    int64_t C = x->shape[x->ndim - 1], N = x->numel / C;
    const aur_real *wd = w ? aur__cr(w) : NULL, *bd = b ? aur__cr(b) : NULL;
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_layernorm_fwd, aur__wr(y), stats, stats + N, aur__cr(x), wd, bd, N, C, eps);
    if (x->device == AUR_CPU) aur__layernorm_fwd(aur__wr(y), stats, stats + N, aur__cr(x), wd, bd, N, C, eps);
    return 0;
}

/* y's bytes again: the same forward over the same input (its statistics come out the same). */
static int aur__layernorm_rebuild(aur_tape *t, const aur__rebuild *r, aur_tensor *y)
{
    const aur_tensor *x = r->in[0];
    aur__mark mk = aur__arena_mark(&t->main[x->device]);
    aur_real *stats = aur__reals(t, x->device, 2 * (x->numel / x->shape[x->ndim - 1]));
    int rc = stats ? aur__layernorm_run(y, stats, x, r->in[1], r->in[2], r->arg) : AUR_ENOMEM;
    aur__arena_release(&t->main[x->device], mk);
    return rc;
}

static int aur__layernorm_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int64_t C = x->shape[x->ndim - 1], N = C ? x->numel / C : 0;
    aur_real *dx = aur__grad(t, x), *dw = aur__grad(t, w), *db = aur__grad(t, b);
    const aur_real *dy = n->out->grad;
    const aur_real *mean = (const aur_real *)n->saved[0], *rstd = (const aur_real *)n->saved[1];
    aur__mark mk = aur__arena_mark(&t->main[x->device]);
    aur_real *dyx = dw ? aur__reals(t, x->device, x->numel) : NULL;
    if (dw && !dyx) return AUR_ENOMEM;
    int rc = 0;
    if (x->device == AUR_CUDA) {
        rc = AUR__GPU(aur_cuda_layernorm_bwd, t, dx, dw, db, dyx, dy, aur__cr(x), w ? aur__cr(w) : NULL, mean, rstd, N, C);
    } else if (x->device == AUR_CPU) {
        aur__layernorm_bwd(dx, dyx, dy, aur__cr(x), w ? aur__cr(w) : NULL, mean, rstd, N, C);
        if (dw) rc = aur__sum_rows(t, dw, dyx, N, C, 1);
        if (db && !rc) rc = aur__sum_rows(t, db, dy, N, C, 1);
    }
    aur__arena_release(&t->main[x->device], mk);
    return rc;
}

AURDEF aur_tensor *aur_layernorm(aur_tape *t, aur_tensor *x, aur_tensor *w, aur_tensor *b, double eps)
{
    aur_tensor *in[3] = {x, w, b};
    char s1[64];
    if (x && (!w) != (!b)) {
        aur__err(AUR_EINVAL, "layernorm: give both weight and bias, or neither");
        return NULL;
    }
    if (aur__check("layernorm", in, w ? 3 : 1)) return NULL;
    int64_t C = x->ndim ? x->shape[x->ndim - 1] : 0;
    if (x->ndim < 1 || C == 0 ||
        (w && (w->numel != C || b->numel != C))) {
        aur__err(AUR_ESHAPE, "layernorm: x %s with weight/bias of %lld/%lld elements (want both or neither, C each)",
                 aur_shape_str(x->shape, x->ndim, s1, sizeof s1), w ? (long long)w->numel : 0LL,
                 b ? (long long)b->numel : 0LL);
        return NULL;
    }
    int64_t N = x->numel / C;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, in, w ? 3 : 1);
    aur__storage *kept = NULL;
    aur_real *stats = y ? (aur_real *)aur__buffer(t, x->device, sizeof(aur_real) * (size_t)(2 * N), &kept) : NULL;
    if (!stats || aur__layernorm_run(y, stats, x, w, b, eps)) return NULL;
    aur__node *n = aur__record(t, y, "layernorm", aur__layernorm_back, in, 3);
    if (!n) return NULL;
    aur__keep_buffer(t, n, kept);
    aur__rebuildable(t, y, aur__layernorm_rebuild, x, w, b, 0, eps, NULL, NULL);
    if (x->requires_grad || (w && w->requires_grad)) aur__save(t, n, x); /* the bias's gradient needs only dy */
    if (x->requires_grad) aur__save(t, n, w);
    n->saved[0] = stats;
    n->saved[1] = stats + N;
    return y;
}

/* ==== ops: activations ==== */

static const char *const aur__unary_names[] = {"gelu", "gelu_tanh", "silu", "sigmoid", "log", "sin", "cos"};
#define AUR__SQRT1_2 0.70710678118654752440
#define AUR__SQRT_2_PI 0.79788456080286535588 /* sqrt(2/pi) */
#define AUR__INV_SQRT_2PI 0.39894228040143267794

static aur_real aur__sigm(aur_real x) { return 1 / (1 + AUR__EXP(-x)); }

static void aur__unary_fwd(int kind, aur_real *y, const aur_real *x, int64_t n)
{
    const aur_real k0 = (aur_real)AUR__SQRT_2_PI, k1 = (aur_real)0.044715, r2 = (aur_real)AUR__SQRT1_2;
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        aur_real v = x[i];
        switch (kind) {
        case AUR__GELU: y[i] = (aur_real)0.5 * v * (1 + AUR__ERF(v * r2)); break;
        case AUR__GELU_TANH: y[i] = (aur_real)0.5 * v * (1 + AUR__TANH(k0 * (v + k1 * v * v * v))); break;
        case AUR__SILU: y[i] = v * aur__sigm(v); break;
        case AUR__SIGMOID: y[i] = aur__sigm(v); break;
        case AUR__LOGARITHM: y[i] = AUR__LOG(v); break;
        case AUR__SINE: y[i] = AUR__SIN(v); break;
        default: y[i] = AUR__COS(v); break;
        }
    }
}

/* dx (+)= dy f'(x); fresh: dx is dy's own bytes (aur__grad_in_place), written over as 0 + dy f'(x) would be */
static void aur__unary_bwd(int kind, aur_real *dx, const aur_real *dy, const aur_real *x, const aur_real *y, int64_t n, int fresh)
{
    const aur_real k0 = (aur_real)AUR__SQRT_2_PI, k1 = (aur_real)0.044715, r2 = (aur_real)AUR__SQRT1_2;
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        aur_real v = x[i], d;
        switch (kind) {
        case AUR__GELU: /* Phi(x) + x phi(x) */
            d = (aur_real)0.5 * (1 + AUR__ERF(v * r2)) + v * (aur_real)AUR__INV_SQRT_2PI * AUR__EXP((aur_real)-0.5 * v * v);
            break;
        case AUR__GELU_TANH: {
            aur_real th = AUR__TANH(k0 * (v + k1 * v * v * v));
            d = (aur_real)0.5 * (1 + th) + (aur_real)0.5 * v * (1 - th * th) * k0 * (1 + 3 * k1 * v * v);
            break;
        }
        case AUR__SILU: {
            aur_real s = aur__sigm(v);
            d = s * (1 + v * (1 - s));
            break;
        }
        case AUR__SIGMOID: d = y[i] * (1 - y[i]); break;
        case AUR__LOGARITHM: d = 1 / v; break;
        case AUR__SINE: d = AUR__COS(v); break;
        default: d = -AUR__SIN(v); break;
        }
        dx[i] = (fresh ? (aur_real)0 : dx[i]) + dy[i] * d;
    }
}

/* y = f(x) on x's device. */
static int aur__unary_run(int kind, aur_tensor *y, const aur_tensor *x)
{
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_unary_fwd, kind, aur__wr(y), aur__cr(x), x->numel);
    if (x->device == AUR_CPU) aur__unary_fwd(kind, aur__wr(y), aur__cr(x), x->numel);
    return 0;
}

static int aur__unary_rebuild(aur_tape *t, const aur__rebuild *r, aur_tensor *y)
{
    (void)t;
    return aur__unary_run(r->kind, y, r->in[0]);
}

static int aur__unary_back(aur_tape *t, aur__node *n)
{
    aur_tensor *x = n->in[0];
    const aur_real *dy = n->out->grad;
    int fresh = aur__grad_in_place(x, n->out);
    aur_real *dx = fresh ? x->grad : aur__grad(t, x);
    if (x->device == AUR_META) return 0; /* shapes only */
    if (x->device == AUR_CUDA) return AUR__GPU(aur_cuda_unary_bwd, (int)n->iarg[0], dx, dy, aur__cr(x), aur__cr(n->out), x->numel, fresh);
    aur__unary_bwd((int)n->iarg[0], dx, dy, aur__cr(x), aur__cr(n->out), x->numel, fresh);
    return 0;
}

static aur_tensor *aur__unary(aur_tape *t, int kind, aur_tensor *x)
{
    const char *op = aur__unary_names[kind];
    if (aur__check(op, &x, 1)) return NULL;
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y || aur__unary_run(kind, y, x)) return NULL;
    aur__node *n = aur__record(t, y, op, aur__unary_back, &x, 1);
    if (!n) return NULL;
    aur__save(t, n, kind == AUR__SIGMOID ? y : x); /* sigmoid' = y (1 - y) */
    if (kind != AUR__SIGMOID) aur__rebuildable(t, y, aur__unary_rebuild, x, NULL, NULL, kind, 0, NULL, NULL);
    n->iarg[0] = kind;
    return y;
}

AURDEF aur_tensor *aur_gelu(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__GELU, x); }
AURDEF aur_tensor *aur_gelu_tanh(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__GELU_TANH, x); }
AURDEF aur_tensor *aur_silu(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__SILU, x); }
AURDEF aur_tensor *aur_sigmoid(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__SIGMOID, x); }
AURDEF aur_tensor *aur_log(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__LOGARITHM, x); }
AURDEF aur_tensor *aur_sin(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__SINE, x); }
AURDEF aur_tensor *aur_cos(aur_tape *t, aur_tensor *x) { return aur__unary(t, AUR__COSINE, x); }

/* ==== op: softmax over the last dim ==== */

static void aur__softmax_row(aur_real *y, const aur_real *x, int64_t n)
{
    aur_real mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    double s = 0;
    for (int64_t j = 0; j < n; j++) {
        y[j] = AUR__EXP(x[j] - mx);
        s += y[j];
    }
    aur_real inv = (aur_real)(1.0 / s);
    for (int64_t j = 0; j < n; j++) y[j] *= inv;
}

/* dx += y (dy - sum(dy y)) for one row. */
static void aur__softmax_row_bwd(aur_real *dx, const aur_real *dy, const aur_real *y, int64_t n)
{
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += (double)dy[j] * y[j];
    for (int64_t j = 0; j < n; j++) dx[j] += y[j] * (dy[j] - (aur_real)s);
}

static int aur__softmax_back(aur_tape *t, aur__node *n)
{
    aur_tensor *y = n->out;
    int64_t C = y->shape[y->ndim - 1], R = C ? y->numel / C : 0;
    aur_real *dx = aur__grad(t, n->in[0]);
    if (y->device == AUR_META) return 0; /* shapes only */
    if (y->device == AUR_CUDA) return AUR__GPU(aur_cuda_softmax_bwd, dx, y->grad, aur__cr(y), R, C);
    AUR__OMP_FOR_IF(y->numel > AUR__PAR_MIN)
    for (int64_t r = 0; r < R; r++) aur__softmax_row_bwd(dx + r * C, y->grad + r * C, aur__cr(y) + r * C, C);
    return 0;
}

AURDEF aur_tensor *aur_softmax(aur_tape *t, aur_tensor *x)
{
    if (aur__check("softmax", &x, 1)) return NULL;
    if (x->ndim < 1) {
        aur__err(AUR_ESHAPE, "softmax: needs at least one dim");
        return NULL;
    }
    aur_tensor *y = aur__output(t, aur_tensor_shape(x), x->device, &x, 1);
    if (!y) return NULL;
    int64_t C = x->shape[x->ndim - 1], R = C ? x->numel / C : 0;
    if (x->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_softmax_fwd, aur__wr(y), aur__cr(x), R, C)) return NULL;
    } else if (x->device == AUR_CPU) {
        AUR__OMP_FOR_IF(x->numel > AUR__PAR_MIN)
        for (int64_t r = 0; r < R; r++) aur__softmax_row(aur__wr(y) + r * C, aur__cr(x) + r * C, C);
    }
    aur__node *n = aur__record(t, y, "softmax", aur__softmax_back, &x, 1);
    if (!n) return NULL;
    aur__save(t, n, y);
    return y;
}
