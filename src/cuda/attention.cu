#include "../core/api.h"
#include "../core/platform.h"

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
