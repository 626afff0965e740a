#include "api.h"
#include "../core/platform.h"

/* ==== Surya: forward ==== */

typedef struct aur__sfwd {
    aur__surya *S;
    aur_tape *t;
    const aur_surya_config *c;
} aur__sfwd;

static void aur__sprobe(const aur__sfwd *F, const char *name, const aur_tensor *x)
{
    if (F->S->probe && x) F->S->probe(F->S->probe_ctx, name, 0, x);
}

static aur_tensor *aur__slin(const aur__sfwd *F, aur_tensor *x, const char *prefix, int bias)
{
    return aur_model_linear(F->t, F->S->m, prefix, x, bias);
}

static aur_tensor *aur__sln(const aur__sfwd *F, aur_tensor *x, const char *prefix)
{
    return aur_layernorm(F->t, x, aur__paramf(F->S->m, "%s.weight", prefix), aur__paramf(F->S->m, "%s.bias", prefix), 1e-5);
}

/* Mlp: fc2(GELU(fc1(x))) (dropout off in eval and at drop_rate 0). */
static aur_tensor *aur__smlp(const aur__sfwd *F, aur_tensor *x, const char *block)
{
    char p1[200], p2[200];
    snprintf(p1, sizeof p1, "%s.mlp.fc1", block);
    snprintf(p2, sizeof p2, "%s.mlp.fc2", block);
    aur_tensor *h = aur_dropout(F->t, aur_gelu(F->t, aur__slin(F, x, p1, 1)), F->c->drop_rate);
    return aur_dropout(F->t, aur__slin(F, h, p2, 1), F->c->drop_rate);
}

/* The Perceiver embedding's and decoder's convolutions are grouped (one
   group per channel): an adapter declared on one is refused, not ignored. */
static int aur__grouped_conv_adapter(const aur__sfwd *F, const char *module)
{
    if (!aur__find_adapter(F->S->m, module)) return 0;
    aur__err(AUR_EUNSUPPORTED, "LoRA on %s: a grouped Conv2d (one group per channel) is not supported; leave it out of target_modules", module);
    return 1;
}

/* The linear time embedding: T frames stacked as input channels (c*T + t)
   of a p x p, stride p convolution, as one matrix product over patches. */
static aur_tensor *aur__surya_embed(const aur__sfwd *F, aur_tensor *ts)
{
    const aur_surya_config *c = F->c;
    int64_t B = ts->shape[0], CT = (int64_t)c->in_chans * ts->shape[2], p = c->patch_size, G = c->img_size / p;
    static const int perm[6] = {0, 2, 4, 1, 3, 5};
    int64_t six[6] = {B, CT, G, p, G, p};
    aur_tensor *patches = aur_reshape(F->t, aur_permute(F->t, aur_reshape(F->t, ts, aur_shapev(6, six)), perm), aur_shape3(B, G * G, CT * p * p));
    aur_tensor *x = aur_model_linear(F->t, F->S->m, "embedding.patch_embed.proj", patches, 1); /* with PEFT's Conv2d adapter, if any */
    return aur_dropout(F->t, aur_add(F->t, x, aur__paramf(F->S->m, "embedding.pos_embed")), c->drop_rate);
}

static aur_tensor *aur__resampler(const aur__sfwd *F, const char *prefix, aur_tensor *lat, aur_tensor *ctx);

/* PerceiverChannelEmbedding: channel c's T frames through its own p x p
   convolution (groups = C) to D values per token, plus a learned position
   embedding; then n_queries latents per token attend over the C channel
   tokens and are joined by a linear layer. (The time deltas are unused, as
   in the reference.) */
static aur_tensor *aur__surya_perceiver_embed(const aur__sfwd *F, aur_tensor *ts)
{
    aur_tape *t = F->t;
    const aur_surya_config *c = F->c;
    int64_t B = ts->shape[0], C = c->in_chans, T = c->time_dim, p = c->patch_size, G = c->img_size / p, N = G * G, D = c->embed_dim;
    int64_t K = T * p * p, NQ = c->n_queries;
    static const int patch_perm[6] = {0, 2, 4, 1, 3, 5}, cfirst[4] = {1, 0, 2, 3}, tok[4] = {1, 2, 0, 3}, nd[3] = {0, 2, 1};
    int64_t six[6] = {B * C, T, G, p, G, p};
    aur_tensor *patches = aur_reshape(t, aur_permute(t, aur_reshape(t, ts, aur_shapev(6, six)), patch_perm), aur_shape4(B, C, N, K));
    patches = aur_reshape(t, aur_permute(t, patches, cfirst), aur_shape3(C, B * N, K));
    if (aur__grouped_conv_adapter(F, "embedding.proj")) return NULL;
    aur_tensor *w = aur_reshape(t, aur__paramf(F->S->m, "embedding.proj.weight"), aur_shape3(C, D, K));
    aur_tensor *z = aur_matmul(t, patches, w, 0, 1); /* (C, B*N, D) */
    z = aur_add(t, z, aur_reshape(t, aur__paramf(F->S->m, "embedding.proj.bias"), aur_shape3(C, 1, D)));
    aur_tensor *pos = aur_reshape(t, aur_permute(t, aur__paramf(F->S->m, "embedding.pos_embed"), nd), aur_shape3(1, N, D)); /* (1, N, D) */
    z = aur_add(t, aur_reshape(t, z, aur_shape4(C, B, N, D)), aur_reshape(t, pos, aur_shape4(1, 1, N, D)));
    aur_tensor *ctx = aur_reshape(t, aur_permute(t, z, tok), aur_shape3(B * N, C, D)); /* each token's C channel tokens */
    aur_tensor *lat = aur_expand(t, aur__paramf(F->S->m, "embedding.latent_queries"), aur_shape3(B * N, NQ, D));
    lat = aur_reshape(t, aur__resampler(F, "embedding", lat, ctx), aur_shape3(B, N, NQ * D));
    return aur_dropout(t, aur__slin(F, lat, "embedding.latent_aggregation", 1), c->drop_rate);
}

static aur_tensor *aur__sconst(const aur__sfwd *F, const float *v, aur_shape s) { return aur__const(F->t, F->S->m->device, s, v); }

/* A table the model keeps (DFT matrices, window masks): viewed, not copied, each step. */
static aur_tensor *aur__stable(const aur__sfwd *F, const aur_real *v, aur_shape s) { return aur__const_view(F->t, F->S->m, s, v); }

/* HelioFlowModel: the last frame (or the mean of the last two) warped along
   grid + MLP(grid): a learned, time-independent flow field (bilinear, border). */
static aur_tensor *aur__learned_flow(const aur__sfwd *F, aur_tensor *ts, int *pretraining)
{
    aur_tape *t = F->t;
    int64_t B = ts->shape[0], C = ts->shape[1], T = ts->shape[2], H = ts->shape[3], W = ts->shape[4];
    static const int tlast[5] = {0, 2, 1, 3, 4};
    aur_tensor *frames = aur_permute(t, ts, tlast); /* (B, T, C, H, W) */
    aur_tensor *last = aur_reshape(t, aur_slice(t, frames, 1, T - 1, 1), aur_shape4(B, C, H, W));
    if (T > 1) last = aur_scale(t, aur_add(t, last, aur_reshape(t, aur_slice(t, frames, 1, T - 2, 1), aur_shape4(B, C, H, W))), 0.5);
    aur_tensor *hm = aur__paramf(F->S->m, "learned_flow_model.higher_modes");
    if (F->c->flow_latitude) { /* (u, v, 1) * (1, 1, latitude / 7) per sample */
        if (!F->S->latitude || F->S->n_latitude != B) {
            aur__err(AUR_EINVAL, "Surya learned flow with latitude: give %lld forecast latitudes (aur_surya_set_latitude)", (long long)B);
            return NULL;
        }
        aur_tensor *scale = aur_tensor_new(t, AUR_CPU, aur_shape4(B, 1, 1, 3));
        for (int64_t b = 0; scale && b < B; b++)
            aur__wr(scale)[3 * b] = aur__wr(scale)[3 * b + 1] = 1, aur__wr(scale)[3 * b + 2] = (aur_real)(F->S->latitude[b] / 7.0f);
        hm = aur_mul(t, hm, aur__on(t, scale, F->S->m->device));
    }
    aur_tensor *shift = aur__slin(F, aur_gelu(t, aur__slin(F, hm, "learned_flow_model.flow_generator.0", 1)), "learned_flow_model.flow_generator.2", 1);
    aur_tensor *field = aur_add(t, aur__paramf(F->S->m, "learned_flow_model.grid"), shift);
    if (field && field->shape[0] != B) field = aur_expand(t, field, aur_shape4(B, H, W, 2));
    *pretraining = 0;
    for (int i = 0; i < F->S->m->n; i++)
        if (!strncmp(F->S->m->params[i]->name, "learned_flow_model.flow_generator", 33)) *pretraining |= F->S->m->params[i]->requires_grad;
    return aur_grid_sample(t, last, field);
}

/* Along the last dim: x @ M^T for a table M (rows x cols). */
static aur_tensor *aur__dft(const aur__sfwd *F, aur_tensor *x, const aur_real *tab, int64_t rows, int64_t cols)
{
    return aur_linear(F->t, x, aur__stable(F, tab, aur_shape2(rows, cols)), NULL);
}

/* SpectralGatingNetwork: rfft2 (ortho) over the token grid, times the learned
   complex weight, irfft2 back, as real matrix products along each axis. */
static aur_tensor *aur__spectral_filter(const aur__sfwd *F, aur_tensor *x, const char *block)
{
    aur_tape *t = F->t;
    aur__surya *S = F->S;
    int64_t B = x->shape[0], a = (int64_t)sqrt((double)x->shape[1]), b = a, D = x->shape[2], K = b / 2 + 1;
    static const int to_bd[4] = {0, 1, 3, 2}, to_ka[4] = {0, 2, 3, 1}, back_a[4] = {0, 3, 1, 2}, w_perm[3] = {2, 1, 0};
    aur_tensor *X = aur_permute(t, aur_reshape(t, x, aur_shape4(B, a, b, D)), to_bd); /* (B, a, D, b) */
    /* along b: the half spectrum, X_k = sum_n x_n e^{-2 pi i k n / b} */
    aur_tensor *re = aur_permute(t, aur__dft(F, X, S->dft_fc, K, b), to_ka);                   /* (B, D, K, a) */
    aur_tensor *im = aur_permute(t, aur_scale(t, aur__dft(F, X, S->dft_fs, K, b), -1.0), to_ka);
    /* along a: the full complex DFT */
    aur_tensor *yr = aur_add(t, aur__dft(F, re, S->dft_ac, a, a), aur__dft(F, im, S->dft_as, a, a));
    aur_tensor *yi = aur_sub(t, aur__dft(F, im, S->dft_ac, a, a), aur__dft(F, re, S->dft_as, a, a));
    /* times the complex weight (a, K, D, 2), laid out as (D, K, a) */
    aur_tensor *cw = aur__paramf(F->S->m, "%s.filter.complex_weight", block);
    aur_tensor *wr = aur_permute(t, aur_reshape(t, aur_slice(t, cw, 3, 0, 1), aur_shape3(a, K, D)), w_perm);
    aur_tensor *wi = aur_permute(t, aur_reshape(t, aur_slice(t, cw, 3, 1, 1), aur_shape3(a, K, D)), w_perm);
    aur_tensor *zr = aur_sub(t, aur_mul(t, yr, wr), aur_mul(t, yi, wi));
    aur_tensor *zi = aur_add(t, aur_mul(t, yr, wi), aur_mul(t, yi, wr));
    /* inverse along a, then the half spectrum back to b real values */
    aur_tensor *ur = aur_permute(t, aur_sub(t, aur__dft(F, zr, S->dft_ac, a, a), aur__dft(F, zi, S->dft_as, a, a)), back_a);
    aur_tensor *ui = aur_permute(t, aur_add(t, aur__dft(F, zi, S->dft_ac, a, a), aur__dft(F, zr, S->dft_as, a, a)), back_a);
    aur_tensor *y = aur_sub(t, aur__dft(F, ur, S->dft_ic, b, K), aur__dft(F, ui, S->dft_is, b, K)); /* (B, a, D, b) */
    return aur_reshape(t, aur_permute(t, y, to_bd), aur_shape3(B, a * b, D));
}

/* BlockSpectralGating: x + MLP(LN2(filter(LN1(x)))). */
static aur_tensor *aur__spectral_block(const aur__sfwd *F, aur_tensor *x, int i)
{
    char b[160], n1[200], n2[200];
    snprintf(b, sizeof b, "backbone.blocks_spectral_gating.%d", i);
    snprintf(n1, sizeof n1, "%s.norm1", b);
    snprintf(n2, sizeof n2, "%s.norm2", b);
    aur_tensor *y = aur__sln(F, aur__spectral_filter(F, aur__sln(F, x, n1), b), n2);
    return aur_add(F->t, x, aur__smlp(F, y, b));
}

/* (B, n, D) -> (B*nh, n, hd) and back. */
static aur_tensor *aur__sheads(aur_tape *t, aur_tensor *x, int nh)
{
    aur_tensor *h = aur__split_heads(t, x, nh);
    return h ? aur_reshape(t, h, aur_shape3(h->shape[0] * nh, h->shape[2], h->shape[3])) : NULL;
}

static aur_tensor *aur__sunheads(aur_tape *t, aur_tensor *x, int64_t B, int nh)
{
    return x ? aur__merge_heads(t, aur_reshape(t, x, aur_shape4(B, nh, x->shape[1], x->shape[2]))) : NULL;
}

/* The dynamic projection's keys and values: r learned mixtures of all tokens,
   layer-normalised over the full width (k_lms, v_lms as (B*nh, r, hd)). */
static void aur__ls_dynamic(const aur__sfwd *F, const char *prefix, aur_tensor *xf, aur_tensor *k, aur_tensor *v, int64_t B,
                            aur_tensor **k_lms, aur_tensor **v_lms)
{
    aur_tape *t = F->t;
    int nh = F->c->num_heads, r = F->c->dp_rank;
    int64_t Nf = xf->shape[1], D = xf->shape[2], hd = D / nh;
    static const int cs_perm[4] = {0, 2, 3, 1}, rh[4] = {0, 2, 1, 3};
    char p[320], ln[320];
    snprintf(p, sizeof p, "%s.to_dynamic_projection", prefix);
    snprintf(ln, sizeof ln, "%s.dual_ln_dp", prefix);
    aur_tensor *cs = aur_reshape(t, aur__slin(F, xf, p, 1), aur_shape4(B, Nf, nh, r));
    cs = aur_reshape(t, aur_softmax(t, aur_permute(t, cs, cs_perm)), aur_shape3(B * nh, r, Nf)); /* over the tokens */
    aur_tensor *both[2] = {aur_matmul(t, cs, k, 0, 0), aur_matmul(t, cs, v, 0, 0)};           /* (B*nh, r, hd) */
    for (int i = 0; i < 2; i++) {
        aur_tensor *full = aur_reshape(t, aur_permute(t, aur_reshape(t, both[i], aur_shape4(B, nh, r, hd)), rh), aur_shape3(B, r, D));
        both[i] = aur__sheads(t, aur__sln(F, full, ln), nh);
    }
    *k_lms = both[0], *v_lms = both[1];
}

/* AttentionLS (transformer_ls.py): each feature token attends jointly (one
   softmax) to r dynamic-projection summaries, its window's kw x kw keys, and
   the global tokens; global tokens attend to everything except the summaries. */
static aur_tensor *aur__attention_ls(const aur__sfwd *F, aur_tensor *x, const char *prefix)
{
    aur_tape *t = F->t;
    aur__surya *S = F->S;
    const aur_surya_config *c = F->c;
    int nh = c->num_heads, ng_lo = c->nglo, r = c->dp_rank;
    int64_t B = x->shape[0], Ntot = x->shape[1], D = x->shape[2], hd = D / nh, Nf = Ntot - ng_lo;
    int64_t w = c->window_size, s = w / 2 > 1 ? w / 2 : 1, kw = w + 2 * s, G = c->img_size / c->patch_size, ng = G / w;
    char p[320];
    snprintf(p, sizeof p, "%s.qkv", prefix);
    aur_tensor *qkv = aur__slin(F, x, p, 0), *parts[3];
    int64_t sizes[3] = {D, D, D};
    if (aur_split(t, qkv, 2, 3, sizes, parts)) return NULL;
    snprintf(p, sizeof p, "%s.dual_ln_full", prefix);
    aur_tensor *q = aur_scale(t, parts[0], 1.0 / sqrt((double)hd)), *k = aur__sln(F, parts[1], p), *v = aur__sln(F, parts[2], p);
    aur_tensor *qf = aur__sheads(t, aur_slice(t, q, 1, ng_lo, Nf), nh), *kf = aur__sheads(t, aur_slice(t, k, 1, ng_lo, Nf), nh);
    aur_tensor *vf = aur__sheads(t, aur_slice(t, v, 1, ng_lo, Nf), nh); /* (B*nh, Nf, hd) */
    /* scores of each query, window by window: [dynamic (r) | window slots (kw^2) | global (nglo)] */
    int64_t BH = B * nh, nq = w * w, nk = kw * kw;
    aur_tensor *qg = aur__model_gather(t, S->m, qf, BH, hd, &S->q_group, aur_shape4(BH, ng * ng, nq, hd));
    aur_tensor *kwin = aur__model_gather(t, S->m, kf, BH, hd, &S->k_window, aur_shape4(BH, ng * ng, nk, hd));
    aur_tensor *vwin = aur__model_gather(t, S->m, vf, BH, hd, &S->k_window, aur_shape4(BH, ng * ng, nk, hd));
    aur_tensor *mask = aur__stable(F, S->window_mask, aur_shape3(ng * ng, 1, nk));
    aur_tensor *win = aur_add(t, aur_matmul(t, qg, kwin, 0, 1), mask);
    if (c->rpe) { /* table[index] as (nh, w^2, kw^2), added to every window of every sample */
        snprintf(p, sizeof p, "%s.local_relative_position_bias_table", prefix);
        static const int hfirst[3] = {2, 0, 1};
        aur_tensor *tab = aur__paramf(F->S->m, "%s", p);
        aur_tensor *bias = aur__model_gather(t, S->m, tab, 1, nh, &S->rpe_index, aur_shape3(nq, nk, nh));
        bias = aur_reshape(t, aur_permute(t, bias, hfirst), aur_shape5(1, nh, 1, nq, nk));
        win = aur_reshape(t, aur_add(t, aur_reshape(t, win, aur_shape5(B, nh, ng * ng, nq, nk)), bias), aur_shape4(BH, ng * ng, nq, nk));
    }
    aur_tensor *scores[3] = {NULL, win, NULL}, *k_lms = NULL, *v_lms = NULL, *kc = NULL, *vc = NULL;
    int n_parts = 0, first = 1;
    if (r > 0) {
        aur__ls_dynamic(F, prefix, aur_slice(t, x, 1, ng_lo, Nf), kf, vf, B, &k_lms, &v_lms);
        scores[0] = aur_reshape(t, aur_matmul(t, aur_reshape(t, qg, aur_shape3(BH, ng * ng * nq, hd)), k_lms, 0, 1),
                                aur_shape4(BH, ng * ng, nq, r));
        first = 0;
    }
    if (ng_lo > 0) {
        kc = aur__sheads(t, aur_slice(t, k, 1, 0, ng_lo), nh), vc = aur__sheads(t, aur_slice(t, v, 1, 0, ng_lo), nh);
        scores[2] = aur_reshape(t, aur_matmul(t, aur_reshape(t, qg, aur_shape3(BH, ng * ng * nq, hd)), kc, 0, 1),
                                aur_shape4(BH, ng * ng, nq, ng_lo));
    }
    aur_tensor *cat[3];
    for (int i = first; i < 3; i++)
        if (scores[i]) cat[n_parts++] = scores[i];
    aur_tensor *attn = aur_softmax(t, aur_concat(t, cat, n_parts, 3)), *pieces[3];
    int64_t widths[3] = {r, nk, ng_lo}, cut[3];
    int n_cut = 0;
    for (int i = first; i < 3; i++)
        if (scores[i]) cut[n_cut++] = widths[i];
    if (aur_split(t, attn, 3, n_cut, cut, pieces)) return NULL;
    aur_tensor *a_dp = r > 0 ? pieces[0] : NULL, *a_win = pieces[r > 0 ? 1 : 0], *a_glo = ng_lo > 0 ? pieces[n_cut - 1] : NULL;
    /* the reference's order: window, then + dynamic, then + global */
    aur_tensor *out = aur_reshape(t, aur_matmul(t, a_win, vwin, 0, 0), aur_shape3(BH, ng * ng * nq, hd));
    if (a_dp) out = aur_add(t, out, aur_matmul(t, aur_reshape(t, a_dp, aur_shape3(BH, ng * ng * nq, r)), v_lms, 0, 0));
    if (a_glo) out = aur_add(t, out, aur_matmul(t, aur_reshape(t, a_glo, aur_shape3(BH, ng * ng * nq, ng_lo)), vc, 0, 0));
    out = aur__model_gather(t, S->m, out, BH, hd, &S->q_ungroup, aur_shape3(BH, Nf, hd)); /* back to token order */
    if (ng_lo > 0) {                                                           /* the global tokens see every token */
        aur_tensor *qc = aur__sheads(t, aur_slice(t, q, 1, 0, ng_lo), nh), *kk[2] = {kc, kf}, *vv[2] = {vc, vf};
        aur_tensor *cd = aur_softmax(t, aur_matmul(t, qc, aur_concat(t, kk, 2, 1), 0, 1));
        aur_tensor *cls_next = aur_matmul(t, cd, aur_concat(t, vv, 2, 1), 0, 0);
        aur_tensor *both[2] = {cls_next, out};
        out = aur_concat(t, both, 2, 1);
    }
    snprintf(p, sizeof p, "%s.proj", prefix);
    return aur__slin(F, aur__sunheads(t, out, B, nh), p, 1);
}

static const float aur__one = 1.0f;

/* BlockAttention: x + gate * Attn(LN1(x) * scale + shift), then the same for
   the MLP, with the six modulations from the noise (ensembles) or, without
   ensembles, all 1.0: x + Attn(LN1(x) + 1) (the +1 is the reference's). */
static aur_tensor *aur__attention_block(const aur__sfwd *F, aur_tensor *x, aur_tensor *noise, int j)
{
    aur_tape *t = F->t;
    char b[160], p[200];
    snprintf(b, sizeof b, "backbone.blocks_attention.%d", j);
    aur_tensor *one = aur__sconst(F, &aur__one, aur_shape1(1)), *mod[6] = {one, one, one, one, one, one};
    if (noise) { /* shift, scale, gate of the attention, then of the MLP */
        char p0[200], p2[200];
        snprintf(p0, sizeof p0, "%s.adaLN_modulation.0", b);
        snprintf(p2, sizeof p2, "%s.adaLN_modulation.2", b);
        int64_t D = x->shape[2], six[6] = {D, D, D, D, D, D};
        if (aur_split(t, aur__slin(F, aur_gelu(t, aur__slin(F, noise, p0, 1)), p2, 1), 2, 6, six, mod)) return NULL;
    }
    snprintf(p, sizeof p, "%s.norm1", b);
    aur_tensor *h = aur_add(t, aur_mul(t, aur__sln(F, x, p), mod[1]), mod[0]);
    snprintf(p, sizeof p, "%s.attn", b);
    x = aur_add(t, x, aur_mul(t, mod[2], aur__attention_ls(F, h, p)));
    snprintf(p, sizeof p, "%s.norm2", b);
    h = aur_add(t, aur_mul(t, aur__sln(F, x, p), mod[4]), mod[3]);
    return aur_add(t, x, aur_mul(t, mod[5], aur__smlp(F, h, b)));
}

/* One backbone block as a checkpointable segment. */
typedef struct aur__sblock_ctx {
    aur__sfwd F; /* a copy: backward recomputes the block after the forward has returned */
    int index;
} aur__sblock_ctx;

static aur_tensor *aur__sblock_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__sblock_ctx *b = (const aur__sblock_ctx *)ctx;
    aur__sfwd F = b->F;
    F.t = t;
    int ns = F.c->n_spectral_blocks;
    return b->index < ns ? aur__spectral_block(&F, in[0], b->index) : aur__attention_block(&F, in[0], n_in > 1 ? in[1] : NULL, b->index - ns);
}

/* Embedding, then the blocks; a class token joins before the first attention block. */
/* The ensembles' noise (B*E, N, D): given, or drawn from the model's stream. */
static aur_tensor *aur__surya_noise(const aur__sfwd *F, aur_shape s)
{
    aur__surya *S = F->S;
    aur_tensor *z = aur_tensor_new(F->t, AUR_CPU, s);
    if (!z) return NULL;
    if (S->noise && S->noise_n != z->numel) {
        aur__err(AUR_ESHAPE, "Surya ensemble noise: %lld values given, %lld needed", (long long)S->noise_n, (long long)z->numel);
        return NULL;
    }
    for (int64_t i = 0; i < z->numel; i++) aur_tensor_f32(z)[i] = S->noise ? (aur_real)S->noise[i] : (aur_real)aur__rng_normal(&S->noise_rng);
    return aur__on(F->t, z, S->m->device);
}

static aur_tensor *aur__surya_backbone(const aur__sfwd *F, aur_tensor *x, int class_token)
{
    char name[32];
    aur_tensor *in[2] = {x, NULL};
    int n_in = 1;
    if (F->c->ensemble > 0 && x) { /* E copies of every sample (b0e0, b0e1, ...), one noise draw for all blocks */
        int64_t B = x->shape[0], N = x->shape[1], D = x->shape[2], E = F->c->ensemble;
        x = aur_reshape(F->t, aur_expand(F->t, aur_reshape(F->t, x, aur_shape4(B, 1, N, D)), aur_shape4(B, E, N, D)), aur_shape3(B * E, N, D));
        in[1] = aur__surya_noise(F, aur_shape3(B * E, N, D));
        n_in = 2;
        if (!in[1]) return NULL;
    }
    aur_scope s = aur_scope_begin(F->t); /* ended after each block: its temporaries and its input go (backward holds what it reads) */
    for (int i = 0; i < F->c->depth && x; i++) {
        if (class_token && i == F->c->n_spectral_blocks) {
            aur_tensor *cls = aur_expand(F->t, aur__paramf(F->S->m, "cls_token"), aur_shape3(x->shape[0], 1, x->shape[2])), *both[2] = {cls, x};
            x = aur_concat(F->t, both, 2, 1);
        }
        aur__sblock_ctx *ctx = (aur__sblock_ctx *)aur_tape_alloc(F->t, sizeof *ctx); /* lives until backward */
        if (!ctx) return NULL;
        ctx->F = *F, ctx->index = i;
        in[0] = x;
        x = F->c->checkpoint_blocks ? aur_checkpoint(F->t, aur__sblock_segment, ctx, in, n_in) : aur__sblock_segment(F->t, ctx, in, n_in);
        aur_scope_end(F->t, s, &x, 1);
        snprintf(name, sizeof name, "block%d_out", i);
        aur__sprobe(F, name, x);
    }
    return x;
}

/* LinearDecoder: a per-token linear to p^2 C values, then PixelShuffle(p). */
static aur_tensor *aur__pixel_decoder(const aur__sfwd *F, aur_tensor *z, int64_t Co)
{
    aur_tape *t = F->t;
    int64_t B = z->shape[0], G = (int64_t)sqrt((double)z->shape[1]), p = F->c->patch_size;
    static const int perm[6] = {0, 3, 1, 4, 2, 5};
    int64_t six[6] = {B, G, G, Co, p, p};
    return aur_reshape(t, aur_permute(t, aur_reshape(t, z, aur_shapev(6, six)), perm), aur_shape4(B, Co, G * p, G * p));
}

static aur_tensor *aur__linear_decoder(const aur__sfwd *F, aur_tensor *x, int64_t Co)
{
    return aur__pixel_decoder(F, aur_model_linear(F->t, F->S->m, "unembed.unembed.0", x, 1), Co); /* a 1x1 Conv2d on each token */
}

/* PerceiverResampler, one layer, residual_latent off: latents (N, Lq, D)
   attend to context (N, Lc, D) with 16 heads, then a post-norm MLP. */
static aur_tensor *aur__resampler(const aur__sfwd *F, const char *prefix, aur_tensor *lat, aur_tensor *ctx)
{
    aur_tape *t = F->t;
    int64_t D = lat->shape[2], hd = D / 16;
    char pre[160], n[200];
    snprintf(pre, sizeof pre, "%s.perceiver.layers.0", prefix);
    snprintf(n, sizeof n, "%s.0.to_q", pre);
    aur_tensor *q = aur__split_heads(t, aur__slin(F, lat, n, 0), 16);
    snprintf(n, sizeof n, "%s.0.to_kv", pre);
    aur_tensor *kv = aur__slin(F, ctx, n, 0), *k = aur__split_heads(t, aur_slice(t, kv, 2, 0, 16 * hd), 16);
    aur_tensor *v = aur__split_heads(t, aur_slice(t, kv, 2, 16 * hd, 16 * hd), 16);
    snprintf(n, sizeof n, "%s.0.to_out", pre);
    aur_tensor *a = aur__slin(F, aur__merge_heads(t, aur_sdpa(t, q, k, v, NULL, 0)), n, 0);
    snprintf(n, sizeof n, "%s.2", pre);
    a = aur__sln(F, a, n); /* residual_latent is off: the latents are replaced */
    char f1[200], f2[200];
    snprintf(f1, sizeof f1, "%s.1.net.0", pre);
    snprintf(f2, sizeof f2, "%s.1.net.2", pre);
    snprintf(n, sizeof n, "%s.3", pre);
    aur_tensor *ff = aur__slin(F, aur_gelu(t, aur__slin(F, a, f1, 1)), f2, 1);
    return aur_add(t, aur__sln(F, ff, n), a);
}

/* PerceiverDecoder: every token is the single context of Co latent queries
   (so the attention weights are exactly 1), then a grouped 1x1 conv and PixelShuffle. */
static aur_tensor *aur__perceiver_decoder(const aur__sfwd *F, aur_tensor *x, int64_t Co)
{
    aur_tape *t = F->t;
    int64_t B = x->shape[0], L = x->shape[1], D = x->shape[2], p = F->c->patch_size;
    aur_tensor *ctx = aur_reshape(t, x, aur_shape3(B * L, 1, D));
    aur_tensor *lat = aur__resampler(F, "unembed", aur_expand(t, aur__paramf(F->S->m, "unembed.latent_queries"), aur_shape3(B * L, Co, D)), ctx);
    /* grouped 1x1 conv: latent c's D values -> p^2 outputs of channel c */
    if (aur__grouped_conv_adapter(F, "unembed.proj")) return NULL;
    aur_tensor *w = aur_reshape(t, aur__paramf(F->S->m, "unembed.proj.weight"), aur_shape3(Co, p * p, D));
    static const int cfirst[3] = {1, 0, 2};
    aur_tensor *z = aur_matmul(t, aur_permute(t, lat, cfirst), w, 0, 1); /* (Co, B*L, p^2) */
    z = aur_reshape(t, aur_permute(t, z, cfirst), aur_shape3(B, L, Co * p * p));
    z = aur_add(t, z, aur__paramf(F->S->m, "unembed.proj.bias"));
    return aur__pixel_decoder(F, z, Co);
}

/* nn.MultiheadAttention self-attention on (B, L, D) (batch-first here). */
static aur_tensor *aur__mha(const aur__sfwd *F, aur_tensor *x, const char *prefix, int heads)
{
    aur_tape *t = F->t;
    int64_t D = x->shape[2];
    aur_tensor *qkv = aur_linear(t, x, aur__paramf(F->S->m, "%s.in_proj_weight", prefix), aur__paramf(F->S->m, "%s.in_proj_bias", prefix)), *p3[3];
    int64_t sizes[3] = {D, D, D};
    if (aur_split(t, qkv, 2, 3, sizes, p3)) return NULL;
    aur_tensor *o = aur__merge_heads(t, aur_sdpa(t, aur__split_heads(t, p3[0], heads), aur__split_heads(t, p3[1], heads),
                                                 aur__split_heads(t, p3[2], heads), NULL, 0));
    /* out_proj's weight is read directly, as torch does: a PEFT adapter on it has no effect there either */
    return aur_linear(t, o, aur__paramf(F->S->m, "%s.out_proj.weight", prefix), aur__paramf(F->S->m, "%s.out_proj.bias", prefix));
}

/* TransformerEncoderLayer (post-norm, ReLU, feed-forward width D). */
static aur_tensor *aur__encoder_layer(const aur__sfwd *F, aur_tensor *s, int l)
{
    char p[200], q[200];
    snprintf(p, sizeof p, "downstream_transformer.layers.%d.self_attn", l);
    snprintf(q, sizeof q, "downstream_transformer.layers.%d.norm1", l);
    s = aur__sln(F, aur_add(F->t, s, aur_dropout(F->t, aur__mha(F, s, p, F->c->penult_heads), F->c->head_dropout)), q);
    snprintf(p, sizeof p, "downstream_transformer.layers.%d.linear1", l);
    snprintf(q, sizeof q, "downstream_transformer.layers.%d.linear2", l);
    aur_tensor *h = aur_dropout(F->t, aur_clamp(F->t, aur__slin(F, s, p, 1), 0, INFINITY), F->c->head_dropout);
    h = aur_dropout(F->t, aur__slin(F, h, q, 1), F->c->head_dropout);
    snprintf(q, sizeof q, "downstream_transformer.layers.%d.norm2", l);
    return aur__sln(F, aur_add(F->t, s, h), q);
}

/* HelioSpectformer1D after the backbone: (penultimate linear), pooling, unembed. */
static aur_tensor *aur__head1d(const aur__sfwd *F, aur_tensor *tokens)
{
    aur_tape *t = F->t;
    const aur_surya_config *c = F->c;
    int64_t B = tokens->shape[0], D = tokens->shape[2];
    aur_tensor *x = aur_dropout(t, tokens, c->head_dropout), *agg = NULL;
    if (c->penultimate_linear) x = aur__slin(F, x, "linear", 1);
    switch (c->pooling) {
    case AUR_POOL_CLASS_TOKEN: agg = aur_reshape(t, x, aur_shape2(B, D)); break;
    case AUR_POOL_AVERAGE: agg = aur_mean(t, x, 1, 0); break;
    case AUR_POOL_MAX: agg = aur_max(t, x, 1, 0); break;
    case AUR_POOL_ATTENTION: agg = aur_sum(t, aur__mha(F, x, "attention", c->penult_heads), 1, 0); break; /* a sum, as the reference */
    case AUR_POOL_TRANSFORMER: {
        aur_tensor *cls = aur_expand(t, aur__paramf(F->S->m, "cls_token"), aur_shape3(B, 1, D)), *both[2] = {cls, x};
        aur_tensor *s = aur_concat(t, both, 2, 1);
        for (int l = 0; l < c->penult_layers; l++) s = aur__encoder_layer(F, s, l);
        agg = aur_reshape(t, aur_slice(t, s, 1, 0, 1), aur_shape2(B, D));
        break;
    }
    }
    aur__sprobe(F, "unembed_in", agg);
    aur_tensor *out = aur__slin(F, agg, "unembed", 1); /* the reference drops out agg and then discards the result */
    if (c->sigmoid_output) out = aur_sigmoid(t, out);
    if (c->squeeze_output && c->num_outputs == 1) out = aur_reshape(t, out, aur_shape1(B));
    return out;
}

static aur_tensor *aur__surya_run(aur_model *m, aur_tape *t, aur_tensor *ts);

AURDEF aur_tensor *aur_surya_forward(aur_model *m, aur_tape *t, aur_tensor *ts)
{
    aur_scope s = aur_scope_begin(t); /* what the forward made goes at its end, but the output and what backward reads */
    aur_tensor *y = aur__surya_run(m, t, ts);
    aur_scope_end(t, s, &y, 1);
    return y;
}

static aur_tensor *aur__surya_run(aur_model *m, aur_tape *t, aur_tensor *ts)
{
    aur__surya *S = aur__S(m);
    if (!S || !ts) return NULL;
    const aur_surya_config *c = &S->cfg;
    if (ts->ndim != 5 || ts->shape[1] != c->in_chans || ts->shape[2] != c->time_dim || ts->shape[3] != c->img_size ||
        ts->shape[4] != c->img_size) {
        char s1[64];
        aur__err(AUR_ESHAPE, "Surya input ts %s: expected (B, %d, %d, %d, %d)", aur_shape_str(ts->shape, ts->ndim, s1, sizeof s1),
                 c->in_chans, c->time_dim, c->img_size, c->img_size);
        return NULL;
    }
    aur__sfwd F = {S, t, c};
    ts = aur__on(t, ts, m->device); /* the images come to the model's device */
    aur_tensor *flow = NULL;
    if (c->learned_flow) {
        int pretraining = 0;
        flow = aur__learned_flow(&F, ts, &pretraining);
        if (!flow || pretraining) return flow; /* flow parameters trainable: the flow alone is trained (the reference's phase 1) */
        aur_tensor *frames[2] = {ts, aur_reshape(t, flow, aur_shape5(ts->shape[0], c->in_chans, 1, c->img_size, c->img_size))};
        ts = aur_concat(t, frames, 2, 2);
    }
    aur_tensor *x = c->perceiver_time ? aur__surya_perceiver_embed(&F, ts) : aur__surya_embed(&F, ts);
    aur__sprobe(&F, "embedding_out", x);
    int class_token = c->head == AUR_SURYA_1D && c->pooling == AUR_POOL_CLASS_TOKEN;
    x = aur__surya_backbone(&F, x, class_token);
    if (!x) return NULL;
    if (class_token) x = aur_slice(t, x, 1, 0, 1);
    if (c->head != AUR_SURYA_1D) aur__sprobe(&F, "unembed_in", x);
    switch (c->head) {
    case AUR_SURYA_FORECAST: {
        aur_tensor *y = c->perceiver_time ? aur__perceiver_decoder(&F, x, c->in_chans) : aur__linear_decoder(&F, x, c->in_chans);
        if (y && flow && c->ensemble > 0) { /* the flow forecast, once per member */
            int64_t B = flow->shape[0], rest = flow->numel / B;
            flow = aur_reshape(t, aur_expand(t, aur_reshape(t, flow, aur_shape3(B, 1, rest)), aur_shape3(B, c->ensemble, rest)), aur_tensor_shape(y));
        }
        if (y && flow) y = aur_add(t, y, flow); /* the network forecasts the residual of the flow */
        if (y && c->ensemble > 0) /* (B*E, C, H, W) -> (B, E, C, H, W) */
            y = aur_reshape(t, y, aur_shape5(ts->shape[0], c->ensemble, c->in_chans, c->img_size, c->img_size));
        return y;
    }
    case AUR_SURYA_TOKENS: return x;
    case AUR_SURYA_1D: return aur__head1d(&F, x);
    case AUR_SURYA_2D: return c->perceiver_decoder ? aur__perceiver_decoder(&F, x, c->out_chans) : aur__linear_decoder(&F, x, c->out_chans);
    }
    return NULL;
}
