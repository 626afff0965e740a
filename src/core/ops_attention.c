#include "api.h"
#include "platform.h"

/* ==== op: scaled dot-product attention ====
   Per batch: P = softmax(q k^T * scale + mask), o = P v. P is not kept:
   backward rebuilds it per batch (on a GPU from each row's log-sum-exp).
   Backward: dP = do v^T, dv += P^T do, dS = P (dP - rowsum(dP P)),
   dq += scale dS k, dk += scale dS^T q, dmask += dS (summed where broadcast). */


static int64_t aur__mask_offset(const aur__attn *g, int64_t b)
{
    int64_t idx[AUR_MAX_DIMS], off = 0;
    aur__unravel(b, g->lead_shape, g->lead, idx);
    for (int i = 0; i < g->lead; i++) off += idx[i] * g->ms[i];
    return off;
}

static int aur__attn_geometry(const aur_tensor *q, const aur_tensor *k, const aur_tensor *v, const aur_tensor *mask,
                              double scale, aur__attn *g)
{
    char s1[64], s2[64], s3[64];
    int R = q->ndim, bad = R < 2 || k->ndim != R || v->ndim != R;
    for (int i = 0; i + 2 < R && !bad; i++) bad = k->shape[i] != q->shape[i] || v->shape[i] != q->shape[i];
    if (!bad) bad = k->shape[R - 1] != q->shape[R - 1] || v->shape[R - 2] != k->shape[R - 2];
    if (bad)
        return aur__err(AUR_ESHAPE, "sdpa: q %s, k %s, v %s do not fit (want (..., Lq, d), (..., Lk, d), (..., Lk, dv))",
                        aur_shape_str(q->shape, q->ndim, s1, sizeof s1), aur_shape_str(k->shape, k->ndim, s2, sizeof s2),
                        aur_shape_str(v->shape, v->ndim, s3, sizeof s3));
    g->lead = R - 2;
    g->lead_shape = q->shape;
    g->Lq = q->shape[R - 2];
    g->d = q->shape[R - 1];
    g->Lk = k->shape[R - 2];
    g->dv = v->shape[R - 1];
    g->nb = 1;
    for (int i = 0; i < R - 2; i++) g->nb *= q->shape[i];
    g->scale = scale > 0 ? scale : 1.0 / sqrt((double)(g->d ? g->d : 1));
    memset(g->ms, 0, sizeof g->ms);
    if (!mask) return 0;
    if (mask->ndim > R) return aur__err(AUR_ESHAPE, "sdpa: the mask has more dims than q");
    int64_t st[AUR_MAX_DIMS], full[AUR_MAX_DIMS + 2];
    aur__strides(mask->shape, mask->ndim, st);
    for (int i = 0; i < R; i++) full[i] = i < R - 2 ? q->shape[i] : (i == R - 2 ? g->Lq : g->Lk);
    for (int i = 0; i < mask->ndim; i++) {
        int d = R - mask->ndim + i;
        if (mask->shape[i] != full[d] && mask->shape[i] != 1)
            return aur__err(AUR_ESHAPE, "sdpa: mask %s does not broadcast to the scores (..., %lld, %lld)",
                            aur_shape_str(mask->shape, mask->ndim, s1, sizeof s1), (long long)g->Lq, (long long)g->Lk);
        g->ms[d] = mask->shape[i] == 1 ? 0 : st[i];
    }
    return 0;
}

#ifdef AUR__HAS_CUDA /* ---- CUDA builds only: the GPU forward and backward (several launches each) ---- */
static const aur_real *aur__sdpa_operand(aur_tape *t, int ac, const aur_real *x, int64_t n)
{
    return ac ? aur__cuda_rounded(t, x, n) : x;
}

/* lse (kept for backward) gets each score row's log-sum-exp; the weights themselves are scratch. */
static int aur__sdpa_fwd_cuda(aur_tape *t, const aur__attn *g, aur_tensor *y, aur_real *lse, const aur_tensor *q,
                              const aur_tensor *k, const aur_tensor *v, const aur_tensor *mask)
{
    int ac = t->autocast;
    int fused = aur__attn_fusable(g, t->fused_attention); /* no score matrix at all */
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    aur_real *P = fused ? NULL : aur__reals(t, AUR_CUDA, g->nb * g->Lq * g->Lk);
    const aur_real *qd = aur__sdpa_operand(t, ac, aur__cr(q), q->numel), *kd = aur__sdpa_operand(t, ac, aur__cr(k), k->numel);
    const aur_real *vd = aur__sdpa_operand(t, ac, aur__cr(v), v->numel);
    const aur_real *md = mask ? aur__sdpa_operand(t, ac, aur__cr(mask), mask->numel) : NULL;
    int rc = (P || fused) && qd && kd && vd && (md || !mask) ? 0 : aur__err(AUR_ENOMEM, "sdpa: out of GPU memory for the attention weights");
    if (!rc) rc = fused ? aur_cuda_attn_fwd(g, aur__wr(y), lse, qd, kd, vd, md) : aur_cuda_sdpa_fwd(g, aur__wr(y), P, lse, qd, kd, vd, md);
    if (!rc && ac) rc = aur__cuda_round(aur__wr(y), aur__cr(y), 0, y->numel);
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return rc;
}

/* The mask gradient as a broadcast sum: dS over (lead..., Lq, Lk) into the mask's strides. */
static aur__bcast aur__sdpa_mask_bcast(const aur__attn *g, int R)
{
    aur__bcast b;
    memset(&b, 0, sizeof b);
    b.ndim = R;
    for (int i = 0; i < R; i++) {
        b.shape[i] = i < g->lead ? g->lead_shape[i] : i == g->lead ? g->Lq : g->Lk;
        b.sb[i] = g->ms[i];
    }
    aur__strides(b.shape, R, b.so);
    memcpy(b.sa, b.so, sizeof b.sa);
    return b;
}

static int aur__sdpa_back_cuda(aur_tape *t, aur__node *n, const aur__attn *g, aur_real *dq, aur_real *dk, aur_real *dv,
                               aur_real *dm, const aur_real *lse)
{
    aur_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2], *mask = n->in[3];
    int ac = (int)n->iarg[7]; /* autocast as in the forward: the operands rounded to BF16, F32 math, as on the CPU */
    int64_t LL = g->Lq * g->Lk;
    int fused = aur__attn_fusable(g, (int)n->iarg[6]) && !dm; /* a mask gradient needs the score gradient itself */
    aur__mark mk = aur__arena_mark(&t->main[AUR_CUDA]);
    /* fused: one number per query row (rowsum(dP P)); otherwise the weights P and their gradient dS */
    aur_real *D = fused ? aur__reals(t, AUR_CUDA, g->nb * g->Lq) : NULL;
    aur_real *P = fused ? NULL : aur__reals(t, AUR_CUDA, g->nb * LL), *dS = fused ? NULL : aur__reals(t, AUR_CUDA, g->nb * LL);
    aur__bcast mb = aur__sdpa_mask_bcast(g, q->ndim);
    const aur_real *dO = aur__sdpa_operand(t, ac, n->out->grad, n->out->numel), *qd = aur__sdpa_operand(t, ac, aur__cr(q), q->numel);
    const aur_real *kd = aur__sdpa_operand(t, ac, aur__cr(k), k->numel), *vd = aur__sdpa_operand(t, ac, aur__cr(v), v->numel);
    const aur_real *md = mask ? aur__sdpa_operand(t, ac, aur__cr(mask), mask->numel) : NULL;
    int rc = (fused ? D != NULL : P && dS) && dO && qd && kd && vd && (md || !mask) ? 0
             : aur__err(AUR_ENOMEM, "sdpa: no GPU memory for the attention weights and their gradient");
    if (!rc) rc = fused ? aur_cuda_attn_bwd(g, dq, dk, dv, D, lse, dO, qd, kd, vd, md)
                        : aur_cuda_sdpa_bwd(g, dq, dk, dv, dm, P, dS, lse, dO, qd, kd, vd, md, &mb);
    aur__arena_release(&t->main[AUR_CUDA], mk);
    return rc;
}
#endif

/* The attention weights of batch b into P (Lq x Lk): softmax(q k^T scale + mask).
   Backward rebuilds them with this same code (bit for bit) instead of keeping them. */
static void aur__sdpa_weights(const aur__attn *g, aur_real *ws, aur_real *P, const aur_real *qd, const aur_real *kd, const aur_real *md,
                              int64_t b)
{
    aur__gemm(ws, g->Lq, g->Lk, g->d, aur__matv(qd + b * g->Lq * g->d, g->d, 1), aur__matv(kd + b * g->Lk * g->d, 1, g->d), P, g->Lk, 0, 0);
    int64_t off = md ? aur__mask_offset(g, b) : 0;
    aur_real sc = (aur_real)g->scale;
    for (int64_t i = 0; i < g->Lq; i++) {
        aur_real *r = P + i * g->Lk;
        for (int64_t j = 0; j < g->Lk; j++) r[j] = r[j] * sc + (md ? md[off + i * g->ms[g->lead] + j * g->ms[g->lead + 1]] : 0);
        aur__softmax_row(r, r, g->Lk);
    }
}

/* One thread's workspace for every product of a batch's attention (each of
   M, N, K is one of Lq, Lk, d, dv). */
static int64_t aur__sdpa_gemm_ws(const aur__attn *g)
{
    int64_t x = g->Lq;
    if (g->Lk > x) x = g->Lk;
    if (g->d > x) x = g->d;
    if (g->dv > x) x = g->dv;
    return aur__gemm_ws(x, x, x, 1);
}

static int aur__sdpa_back(aur_tape *t, aur__node *n)
{
    aur_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2], *mask = n->in[3];
    aur__attn g;
    aur__attn_geometry(q, k, v, mask, n->farg[0], &g);
    aur_real *dq = aur__grad(t, q), *dk = aur__grad(t, k), *dv = aur__grad(t, v), *dm = aur__grad(t, mask);
    if (q->device == AUR_META) return 0; /* shapes only */
    if (q->device == AUR_CUDA) return AUR__GPU(aur__sdpa_back_cuda, t, n, &g, dq, dk, dv, dm, (const aur_real *)n->saved[0]);
    int threads = aur__threads(), ac = (int)n->iarg[7]; /* autocast as in the forward */
    int64_t per = aur__sdpa_gemm_ws(&g), LL = g.Lq * g.Lk, slice = per + 2 * aur__lines(LL);
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]), mt = aur__arena_mark(&t->per_thread);
    aur_real *ws = aur__thread_reals(t, slice, threads);
    aur_real *dS_all = dm ? aur__reals(t, AUR_CPU, g.nb * LL) : NULL;
    const aur_real *dO = aur__autocast_in(t, ac, n->out->grad, n->out->numel), *qd = aur__autocast_in(t, ac, aur__cr(q), q->numel);
    const aur_real *kd = aur__autocast_in(t, ac, aur__cr(k), k->numel), *vd = aur__autocast_in(t, ac, aur__cr(v), v->numel);
    const aur_real *md = mask ? aur__autocast_in(t, ac, aur__cr(mask), mask->numel) : NULL;
    if (!ws || (dm && !dS_all) || !dO || !qd || !kd || !vd || (mask && !md)) return AUR_ENOMEM;
    AUR__OMP_FOR_DYN_IF(threads > 1 && g.nb > 1)
    for (int64_t b = 0; b < g.nb; b++) {
        aur_real *w = ws + aur__thread_id() * slice, *Pb = w + per, *dS = Pb + aur__lines(LL);
        const aur_real *qb = qd + b * g.Lq * g.d, *kb = kd + b * g.Lk * g.d;
        const aur_real *vb = vd + b * g.Lk * g.dv, *dOb = dO + b * g.Lq * g.dv;
        aur__sdpa_weights(&g, w, Pb, qd, kd, md, b);
        if (dv) aur__gemm(w, g.Lk, g.dv, g.Lq, aur__matv(Pb, 1, g.Lk), aur__matv(dOb, g.dv, 1), dv + b * g.Lk * g.dv, g.dv, 1, 0);
        if (!dq && !dk && !dm) continue;
        aur__gemm(w, g.Lq, g.Lk, g.dv, aur__matv(dOb, g.dv, 1), aur__matv(vb, 1, g.dv), dS, g.Lk, 0, 0);
        for (int64_t i = 0; i < g.Lq; i++) { /* dS = P (dP - rowsum(dP P)) */
            aur_real *r = dS + i * g.Lk;
            const aur_real *p = Pb + i * g.Lk;
            double s = 0;
            for (int64_t j = 0; j < g.Lk; j++) s += (double)r[j] * p[j];
            for (int64_t j = 0; j < g.Lk; j++) r[j] = p[j] * (r[j] - (aur_real)s);
        }
        if (dS_all) memcpy(dS_all + b * LL, dS, (size_t)LL * sizeof(aur_real));
        aur_real sc = (aur_real)g.scale;
        for (int64_t i = 0; i < LL; i++) dS[i] *= sc;
        if (dq) aur__gemm(w, g.Lq, g.d, g.Lk, aur__matv(dS, g.Lk, 1), aur__matv(kb, g.d, 1), dq + b * g.Lq * g.d, g.d, 1, 0);
        if (dk) aur__gemm(w, g.Lk, g.d, g.Lq, aur__matv(dS, 1, g.Lk), aur__matv(qb, g.d, 1), dk + b * g.Lk * g.d, g.d, 1, 0);
    }
    for (int64_t b = 0; dm && b < g.nb; b++) { /* in batch order: deterministic */
        int64_t off = aur__mask_offset(&g, b);
        const aur_real *s = dS_all + b * LL;
        for (int64_t i = 0; i < g.Lq; i++)
            for (int64_t j = 0; j < g.Lk; j++) dm[off + i * g.ms[g.lead] + j * g.ms[g.lead + 1]] += s[i * g.Lk + j];
    }
    aur__arena_release(&t->main[AUR_CPU], mk);
    aur__arena_release(&t->per_thread, mt);
    return 0;
}

/* Backward reads q, k, v and the mask (and on a GPU the rows' log-sum-exp, kept in lse). */
static aur_tensor *aur__sdpa_record(aur_tape *t, aur_tensor *y, aur_tensor **in, aur__storage *lse, double scale)
{
    aur__mark_bf16(y, t->autocast); /* rounded on every device */
    aur__node *n = aur__record(t, y, "sdpa", aur__sdpa_back, in, 4);
    if (!n) return NULL;
    for (int i = 0; i < 4; i++) aur__save(t, n, in[i]);
    if (lse) {
        n->saved[0] = lse->ptr;
        aur__keep_buffer(t, n, lse);
    }
    n->farg[0] = scale;
    n->iarg[6] = t->fused_attention; /* a GPU backward takes the forward's path */
    n->iarg[7] = t->autocast;
    return y;
}

AURDEF aur_tensor *aur_sdpa(aur_tape *t, aur_tensor *q, aur_tensor *k, aur_tensor *v, aur_tensor *mask, double scale)
{
    aur_tensor *in[4] = {q, k, v, mask};
    aur__attn g;
    if (aur__check("sdpa", in, mask ? 4 : 3) || aur__attn_geometry(q, k, v, mask, scale, &g)) return NULL;
    aur_shape ys = aur_tensor_shape(q);
    ys.d[ys.ndim - 1] = g.dv;
    aur_tensor *y = aur__output(t, ys, q->device, in, 4);
    if (!y) return NULL;
    if (q->device != AUR_CPU) { /* keeps the rows' log-sum-exp, not P (the meta device accounts for it as a GPU) */
        aur__storage *kept = NULL;
        aur_real *lse = (aur_real *)aur__buffer(t, q->device, sizeof(aur_real) * (size_t)(g.nb * g.Lq), &kept);
        if (!lse || (q->device == AUR_CUDA && AUR__GPU(aur__sdpa_fwd_cuda, t, &g, y, lse, q, k, v, mask))) return NULL;
        return aur__sdpa_record(t, y, in, kept, scale);
    }
    int64_t LL = g.Lq * g.Lk, ws_gemm = aur__sdpa_gemm_ws(&g), per = ws_gemm + aur__lines(LL);
    int threads = aur__threads();
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]), mt = aur__arena_mark(&t->per_thread);
    aur_real *ws = aur__thread_reals(t, per, threads);
    /* under autocast the operands (and the mask) are BF16, accumulation F32, the result BF16 */
    const aur_real *qd = aur__autocast_in(t, t->autocast, aur__cr(q), q->numel), *kd = aur__autocast_in(t, t->autocast, aur__cr(k), k->numel);
    const aur_real *vd = aur__autocast_in(t, t->autocast, aur__cr(v), v->numel);
    const aur_real *md = mask ? aur__autocast_in(t, t->autocast, aur__cr(mask), mask->numel) : NULL;
    if (!ws || !qd || !kd || !vd || (mask && !md)) return NULL;
    AUR__OMP_FOR_DYN_IF(threads > 1 && g.nb > 1)
    for (int64_t b = 0; b < g.nb; b++) {
        aur_real *w = ws + aur__thread_id() * per, *Pb = w + ws_gemm;
        aur__sdpa_weights(&g, w, Pb, qd, kd, md, b);
        aur__gemm(w, g.Lq, g.dv, g.Lk, aur__matv(Pb, g.Lk, 1), aur__matv(vd + b * g.Lk * g.dv, g.dv, 1), aur__wr(y) + b * g.Lq * g.dv,
                  g.dv, 0, 0);
    }
    if (t->autocast) aur__round_bf16_inplace(aur__wr(y), y->numel);
    aur__arena_release(&t->main[AUR_CPU], mk);
    aur__arena_release(&t->per_thread, mt);
    return aur__sdpa_record(t, y, in, NULL, scale);
}
