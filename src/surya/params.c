#include "api.h"
#include "../core/platform.h"

/* ==== Surya: the parameter table ==== */

typedef struct aur__surya {
    aur_surya_config cfg;
    aur_model *m;
    aur_probe_fn probe;
    void *probe_ctx;
    /* the long-short attention's windows, as row-gather tables (built once) */
    aur_index q_group, q_ungroup, k_window;
    aur_real *window_mask; /* (ng^2, 1, kw^2): -inf where a window slot falls outside the image */
    aur_index rpe_index; /* (w^2 * kw^2) rows of the relative-position bias table */
    aur__rng noise_rng;  /* the ensembles' noise, or */
    float *noise;        /* noise given by aur_surya_set_noise (fidelity tests inject the reference's) */
    int64_t noise_n;
    float *latitude;     /* forecast latitudes for the learned flow, one per sample */
    int64_t n_latitude;
    /* DFT tables of the spectral filter (a = b = G) */
    aur_real *dft_fc, *dft_fs, *dft_ac, *dft_as, *dft_ic, *dft_is;
} aur__surya;

static void aur__surya_free(void *p)
{
    aur__surya *S = (aur__surya *)p;
    if (!S) return;
    AUR_FREE(S->q_group.idx);
    AUR_FREE(S->q_ungroup.idx);
    AUR_FREE(S->k_window.idx);
    AUR_FREE(S->window_mask);
    AUR_FREE(S->rpe_index.idx);
    AUR_FREE(S->noise);
    AUR_FREE(S->latitude);
    aur_real *tabs[6] = {S->dft_fc, S->dft_fs, S->dft_ac, S->dft_as, S->dft_ic, S->dft_is};
    for (int i = 0; i < 6; i++) AUR_FREE(tabs[i]);
    AUR_FREE(S);
}

static aur__surya *aur__S(const aur_model *m)
{
    if (!m || !m->impl || m->impl_free != aur__surya_free) {
        aur__err(AUR_EINVAL, "not a Surya model (make it with aur_surya_create)");
        return NULL;
    }
    return (aur__surya *)m->impl;
}

AURDEF const aur_surya_config *aur_surya_config_of(const aur_model *m)
{
    aur__surya *S = aur__S(m);
    return S ? &S->cfg : NULL;
}

AURDEF int aur_surya_set_noise(aur_model *m, const float *noise, int64_t n)
{
    aur__surya *S = aur__S(m);
    if (!S) return AUR_EINVAL;
    AUR_FREE(S->noise);
    S->noise = NULL, S->noise_n = 0;
    if (!noise) return 0;
    if (!(S->noise = (float *)aur__malloc(sizeof(float) * (size_t)n, "ensemble noise"))) return AUR_ENOMEM;
    memcpy(S->noise, noise, sizeof(float) * (size_t)n);
    S->noise_n = n;
    return 0;
}

AURDEF int aur_surya_set_latitude(aur_model *m, const float *latitude, int64_t B)
{
    aur__surya *S = aur__S(m);
    if (!S || B < 0) return AUR_EINVAL;
    AUR_FREE(S->latitude);
    S->latitude = NULL, S->n_latitude = 0;
    if (!latitude || !B) return 0;
    if (!(S->latitude = (float *)aur__malloc(sizeof(float) * (size_t)B, "latitudes"))) return AUR_ENOMEM;
    memcpy(S->latitude, latitude, sizeof(float) * (size_t)B);
    S->n_latitude = B;
    return 0;
}

AURDEF void aur_surya_set_probe(aur_model *m, aur_probe_fn fn, void *ctx)
{
    aur__surya *S = aur__S(m);
    if (S) S->probe = fn, S->probe_ctx = ctx;
}

/* Declares name (printf-style) with a shape; keeps the first error. */
static void aur__sdecl(aur_model *m, int *rc, int is_buffer, aur_shape s, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (!*rc && !aur_model_add(m, name, s, is_buffer)) *rc = AUR_EINVAL;
}

static void aur__sdecl_linear(aur_model *m, int *rc, const char *prefix, int64_t out, int64_t in, int bias)
{
    aur__sdecl(m, rc, 0, aur_shape2(out, in), "%s.weight", prefix);
    if (bias) aur__sdecl(m, rc, 0, aur_shape1(out), "%s.bias", prefix);
}

static void aur__sdecl_norm(aur_model *m, int *rc, const char *prefix, int64_t d)
{
    aur__sdecl(m, rc, 0, aur_shape1(d), "%s.weight", prefix);
    aur__sdecl(m, rc, 0, aur_shape1(d), "%s.bias", prefix);
}

static void aur__sdecl_mlp(aur_model *m, int *rc, const char *block, int64_t D, int64_t hidden)
{
    char p[200];
    snprintf(p, sizeof p, "%s.mlp.fc1", block);
    aur__sdecl_linear(m, rc, p, hidden, D, 1);
    snprintf(p, sizeof p, "%s.mlp.fc2", block);
    aur__sdecl_linear(m, rc, p, D, hidden, 1);
}

/* nn.MultiheadAttention's parameters. */
static void aur__sdecl_mha(aur_model *m, int *rc, const char *prefix, int64_t D)
{
    char p[200];
    aur__sdecl(m, rc, 0, aur_shape2(3 * D, D), "%s.in_proj_weight", prefix);
    aur__sdecl(m, rc, 0, aur_shape1(3 * D), "%s.in_proj_bias", prefix);
    snprintf(p, sizeof p, "%s.out_proj", prefix);
    aur__sdecl_linear(m, rc, p, D, D, 1);
}

static void aur__sdecl_backbone(aur_model *m, int *rc, const aur_surya_config *c)
{
    int64_t D = c->embed_dim, G = c->img_size / c->patch_size, hidden = (int64_t)(D * c->mlp_ratio);
    char b[160], p[200];
    for (int i = 0; i < c->n_spectral_blocks; i++) {
        snprintf(b, sizeof b, "backbone.blocks_spectral_gating.%d", i);
        snprintf(p, sizeof p, "%s.norm1", b);
        aur__sdecl_norm(m, rc, p, D);
        aur__sdecl(m, rc, 0, aur_shape4(G, G / 2 + 1, D, 2), "%s.filter.complex_weight", b);
        snprintf(p, sizeof p, "%s.norm2", b);
        aur__sdecl_norm(m, rc, p, D);
        aur__sdecl_mlp(m, rc, b, D, hidden);
    }
    for (int j = 0; j < c->depth - c->n_spectral_blocks; j++) {
        snprintf(b, sizeof b, "backbone.blocks_attention.%d", j);
        snprintf(p, sizeof p, "%s.norm1", b);
        aur__sdecl_norm(m, rc, p, D);
        snprintf(p, sizeof p, "%s.norm2", b);
        aur__sdecl_norm(m, rc, p, D);
        aur__sdecl_mlp(m, rc, b, D, hidden);
        snprintf(p, sizeof p, "%s.attn.qkv", b);
        aur__sdecl_linear(m, rc, p, 3 * D, D, 0);
        snprintf(p, sizeof p, "%s.attn.proj", b);
        aur__sdecl_linear(m, rc, p, D, D, 1);
        if (c->dp_rank > 0) {
            snprintf(p, sizeof p, "%s.attn.to_dynamic_projection", b);
            aur__sdecl_linear(m, rc, p, (int64_t)c->dp_rank * c->num_heads, D, 1);
        }
        snprintf(p, sizeof p, "%s.attn.dual_ln_dp", b); /* the reference makes it even without a projection */
        aur__sdecl_norm(m, rc, p, D);
        if (c->ensemble > 0) { /* adaLN: noise -> Linear -> GELU -> Linear to six modulations */
            snprintf(p, sizeof p, "%s.adaLN_modulation.0", b);
            aur__sdecl_linear(m, rc, p, D, D, 1);
            snprintf(p, sizeof p, "%s.adaLN_modulation.2", b);
            aur__sdecl_linear(m, rc, p, 6 * D, D, 1);
        }
        snprintf(p, sizeof p, "%s.attn.dual_ln_full", b);
        aur__sdecl_norm(m, rc, p, D);
        if (c->rpe) {
            int64_t w = c->window_size, wp = w / 2, kw = w + 2 * wp;
            aur__sdecl(m, rc, 0, aur_shape2(2 * (w + wp - 1) * (2 * wp + w + 1) + 1, c->num_heads), "%s.attn.local_relative_position_bias_table", b);
            aur__sdecl(m, rc, 1, aur_shape2(w * w, kw * kw), "%s.attn.relative_position_index", b);
        }
    }
}

/* A one-layer PerceiverResampler (16 heads of D/16) under `prefix`.perceiver. */
static void aur__sdecl_resampler(aur_model *m, int *rc, const char *prefix, int64_t D)
{
    int64_t inner = (D / 16) * 16;
    static const char *const parts[] = {"0.0.to_q", "0.0.to_kv", "0.0.to_out", "0.1.net.0", "0.1.net.2"};
    int64_t shapes[5][2] = {{inner, D}, {2 * inner, D}, {D, inner}, {4 * D, D}, {D, 4 * D}};
    char p[200];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s.perceiver.layers.%s", prefix, parts[i]);
        aur__sdecl_linear(m, rc, p, shapes[i][0], shapes[i][1], i >= 3);
    }
    snprintf(p, sizeof p, "%s.perceiver.layers.0.2", prefix);
    aur__sdecl_norm(m, rc, p, D);
    snprintf(p, sizeof p, "%s.perceiver.layers.0.3", prefix);
    aur__sdecl_norm(m, rc, p, D);
}

/* The Perceiver decoder (the 2-D head's, or the forecast decoder with the perceiver embedding). */
static void aur__sdecl_perceiver_decoder(aur_model *m, int *rc, const aur_surya_config *c, int64_t Co)
{
    int64_t D = c->embed_dim, p2 = (int64_t)c->patch_size * c->patch_size;
    aur__sdecl(m, rc, 0, aur_shape3(1, Co, D), "unembed.latent_queries");
    aur__sdecl_resampler(m, rc, "unembed", D);
    aur__sdecl(m, rc, 0, aur_shape4(Co * p2, D, 1, 1), "unembed.proj.weight");
    aur__sdecl(m, rc, 0, aur_shape1(Co * p2), "unembed.proj.bias");
}

/* PerceiverChannelEmbedding: a grouped patch convolution per channel, a learned
   position embedding, and n_queries latents per token attending over the channels. */
static void aur__sdecl_perceiver_embedding(aur_model *m, int *rc, const aur_surya_config *c)
{
    int64_t D = c->embed_dim, C = c->in_chans, p = c->patch_size, G = c->img_size / p;
    aur__sdecl(m, rc, 0, aur_shape4(C * D, c->time_dim, p, p), "embedding.proj.weight");
    aur__sdecl(m, rc, 0, aur_shape1(C * D), "embedding.proj.bias");
    aur__sdecl(m, rc, 0, aur_shape3(1, D, G * G), "embedding.pos_embed");
    aur__sdecl(m, rc, 0, aur_shape3(1, c->n_queries, D), "embedding.latent_queries");
    aur__sdecl_resampler(m, rc, "embedding", D);
    aur__sdecl_linear(m, rc, "embedding.latent_aggregation", D, (int64_t)c->n_queries * D, 1);
}

static void aur__sdecl_head1d(aur_model *m, int *rc, const aur_surya_config *c)
{
    int64_t D = c->embed_dim;
    char p[200];
    if (c->pooling == AUR_POOL_ATTENTION) aur__sdecl_mha(m, rc, "attention", D);
    for (int l = 0; c->pooling == AUR_POOL_TRANSFORMER && l < c->penult_layers; l++) {
        snprintf(p, sizeof p, "downstream_transformer.layers.%d.self_attn", l);
        aur__sdecl_mha(m, rc, p, D);
        snprintf(p, sizeof p, "downstream_transformer.layers.%d.linear1", l);
        aur__sdecl_linear(m, rc, p, D, D, 1);
        snprintf(p, sizeof p, "downstream_transformer.layers.%d.linear2", l);
        aur__sdecl_linear(m, rc, p, D, D, 1);
        snprintf(p, sizeof p, "downstream_transformer.layers.%d.norm1", l);
        aur__sdecl_norm(m, rc, p, D);
        snprintf(p, sizeof p, "downstream_transformer.layers.%d.norm2", l);
        aur__sdecl_norm(m, rc, p, D);
    }
    if (c->penultimate_linear) aur__sdecl_linear(m, rc, "linear", D, D, 1);
    aur__sdecl_linear(m, rc, "unembed", c->num_outputs, D, 1);
}

static int aur__surya_check(const aur_surya_config *c)
{
    if (c->learned_flow && c->perceiver_time)
        return aur__err(AUR_EUNSUPPORTED, "Surya: learned_flow with the perceiver embedding (the reference's shapes do not fit either)");
    if (c->ensemble < 0 || (c->ensemble > 0 && c->head == AUR_SURYA_1D && c->pooling == AUR_POOL_CLASS_TOKEN))
        return aur__err(AUR_EINVAL, "Surya: ensemble %d (a class-token head has no ensembles, as in the reference)", c->ensemble);
    if (c->perceiver_time && (c->n_queries < 1 || c->embed_dim % 16))
        return aur__err(AUR_EINVAL, "Surya perceiver time embedding: n_queries %d >= 1 and embed_dim %d a multiple of 16", c->n_queries,
                        c->embed_dim);
    if (c->rpe && c->window_size < 2) return aur__err(AUR_EINVAL, "Surya: rpe needs window_size >= 2 (it is %d)", c->window_size);
    int G = c->patch_size > 0 ? c->img_size / c->patch_size : 0;
    if (c->patch_size < 1 || c->img_size % c->patch_size || c->embed_dim % 4 || c->num_heads < 1 || c->embed_dim % c->num_heads ||
        c->depth < c->n_spectral_blocks || c->n_spectral_blocks < 0 || c->in_chans < 1 || c->time_dim < 1 ||
        (c->depth > c->n_spectral_blocks && (c->window_size < 1 || G % c->window_size)) || c->nglo < 0 || c->dp_rank < 0)
        return aur__err(AUR_EINVAL,
                        "Surya config: img_size %d must be a multiple of patch_size %d, the grid %d of window_size %d, embed_dim %d of 4 "
                        "and of num_heads %d; depth %d >= n_spectral_blocks %d",
                        c->img_size, c->patch_size, G, c->window_size, c->embed_dim, c->num_heads, c->depth, c->n_spectral_blocks);
    if (c->head == AUR_SURYA_1D && c->pooling == AUR_POOL_CLASS_TOKEN && c->nglo != 1)
        return aur__err(AUR_EINVAL, "Surya class-token head: the backbone needs nglo = 1 (it is %d)", c->nglo);
    if (c->head == AUR_SURYA_1D && (c->pooling == AUR_POOL_ATTENTION || c->pooling == AUR_POOL_TRANSFORMER) &&
        (c->penult_heads < 1 || c->embed_dim % c->penult_heads || (c->pooling == AUR_POOL_TRANSFORMER && c->penult_layers < 1)))
        return aur__err(AUR_EINVAL, "Surya %s pooling: num_penultimate_heads %d must divide embed_dim (and layers %d >= 1)",
                        c->pooling == AUR_POOL_ATTENTION ? "attention" : "transformer", c->penult_heads, c->penult_layers);
    return 0;
}

static int aur__surya_declare(aur_model *m, const aur_surya_config *c)
{
    int rc = aur__surya_check(c);
    int64_t D = c->embed_dim, G = c->img_size / c->patch_size, p = c->patch_size;
    int64_t cls = c->head == AUR_SURYA_1D && (c->pooling == AUR_POOL_CLASS_TOKEN || c->pooling == AUR_POOL_TRANSFORMER);
    if (cls) aur__sdecl(m, &rc, 0, aur_shape3(1, 1, D), "cls_token");
    if (c->learned_flow) {
        int64_t img = c->img_size;
        aur__sdecl(m, &rc, 1, aur_shape4(1, img, img, 2), "learned_flow_model.grid");
        aur__sdecl(m, &rc, 1, aur_shape4(1, img, img, 2 + c->flow_latitude), "learned_flow_model.higher_modes");
        aur__sdecl_linear(m, &rc, "learned_flow_model.flow_generator.0", 128, 2 + c->flow_latitude, 1);
        aur__sdecl_linear(m, &rc, "learned_flow_model.flow_generator.2", 2, 128, 1);
    }
    if (c->perceiver_time) aur__sdecl_perceiver_embedding(m, &rc, c);
    else { /* the learned flow's frame joins the inputs */
        aur__sdecl(m, &rc, 1, aur_shape3(1, G * G, D), "embedding.pos_embed"); /* state_dict order: the buffer first */
        aur__sdecl(m, &rc, 0, aur_shape4(D, (int64_t)c->in_chans * (c->time_dim + c->learned_flow), p, p), "embedding.patch_embed.proj.weight");
        aur__sdecl(m, &rc, 0, aur_shape1(D), "embedding.patch_embed.proj.bias");
    }
    if (c->head == AUR_SURYA_FORECAST && c->perceiver_time) aur__sdecl_perceiver_decoder(m, &rc, c, c->in_chans);
    else if (c->head == AUR_SURYA_FORECAST) {
        aur__sdecl(m, &rc, 0, aur_shape4(p * p * c->in_chans, D, 1, 1), "unembed.unembed.0.weight");
        aur__sdecl(m, &rc, 0, aur_shape1(p * p * c->in_chans), "unembed.unembed.0.bias");
    }
    aur__sdecl_backbone(m, &rc, c);
    if (c->head == AUR_SURYA_1D) aur__sdecl_head1d(m, &rc, c);
    if (c->head == AUR_SURYA_2D && c->perceiver_decoder) aur__sdecl_perceiver_decoder(m, &rc, c, c->out_chans);
    if (c->head == AUR_SURYA_2D && !c->perceiver_decoder) {
        aur__sdecl(m, &rc, 0, aur_shape4(p * p * c->out_chans, D, 1, 1), "unembed.unembed.0.weight");
        aur__sdecl(m, &rc, 0, aur_shape1(p * p * c->out_chans), "unembed.unembed.0.bias");
    }
    return rc;
}

/* ---- the attention windows and DFT tables ---- */

/* The relative-position index of the window bias (the reference's
   relative_position_index buffer): query (qh, qw) in the w x w window, key
   (kh, kw) in the padded window starting at -w/2; the row of the table is
   (qh - kh + w/2 + w - 1) * (2 (w/2) + w) + (qw - kw + w/2 + w - 1). */
static int64_t aur__rpe_row(int64_t w, int64_t qi, int64_t ki)
{
    int64_t wp = w / 2, side = w + 2 * wp, qh = qi / w, qw = qi % w, kh = ki / side - wp, kww = ki % side - wp;
    return (qh - kh + wp + w - 1) * (2 * wp + w) + (qw - kww + wp + w - 1);
}

static int aur__surya_rpe_index(aur__surya *S)
{
    int64_t w = S->cfg.window_size, kw = w + 2 * (w / 2), n = w * w * kw * kw;
    S->rpe_index.idx = (int64_t *)aur__malloc(sizeof(int64_t) * (size_t)n, "the relative-position index");
    if (!S->rpe_index.idx) return AUR_ENOMEM;
    for (int64_t qi = 0; qi < w * w; qi++)
        for (int64_t ki = 0; ki < kw * kw; ki++) S->rpe_index.idx[qi * kw * kw + ki] = aur__rpe_row(w, qi, ki);
    S->rpe_index.n_out = n, S->rpe_index.n_in = 2 * (w + w / 2 - 1) * (2 * (w / 2) + w + 1) + 1, S->rpe_index.injective = 0;
    return 0;
}

/* Window tables of the long-short attention on a G x G grid (window w, halo s):
   queries regrouped window by window, and each window's kw x kw keys from
   the zero-padded grid (-1 = padding). */
static int aur__surya_windows(aur__surya *S)
{
    const aur_surya_config *c = &S->cfg;
    int64_t G = c->img_size / c->patch_size, w = c->window_size, s = w / 2 > 1 ? w / 2 : 1, kw = w + 2 * s, ng = G / w;
    int64_t N = G * G, nk = ng * ng * kw * kw;
    S->q_group.idx = (int64_t *)aur__malloc(sizeof(int64_t) * (size_t)N, "window tables");
    S->q_ungroup.idx = (int64_t *)aur__malloc(sizeof(int64_t) * (size_t)N, "window tables");
    S->k_window.idx = (int64_t *)aur__malloc(sizeof(int64_t) * (size_t)nk, "window tables");
    S->window_mask = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(ng * ng * kw * kw), "window tables");
    if (!S->q_group.idx || !S->q_ungroup.idx || !S->k_window.idx || !S->window_mask) return AUR_ENOMEM;
    int64_t q = 0, k = 0;
    for (int64_t gi = 0; gi < ng; gi++)
        for (int64_t gj = 0; gj < ng; gj++) {
            for (int64_t u = 0; u < w; u++)
                for (int64_t v = 0; v < w; v++) {
                    int64_t row = (gi * w + u) * G + gj * w + v;
                    S->q_ungroup.idx[row] = q;
                    S->q_group.idx[q++] = row;
                }
            for (int64_t u = 0; u < kw; u++)
                for (int64_t v = 0; v < kw; v++, k++) {
                    int64_t r = gi * w - s + u, cc = gj * w - s + v;
                    int inside = r >= 0 && r < G && cc >= 0 && cc < G;
                    S->k_window.idx[k] = inside ? r * G + cc : -1;
                    S->window_mask[k] = inside ? 0 : (aur_real)-INFINITY;
                }
        }
    S->q_group.n_out = S->q_group.n_in = S->q_ungroup.n_out = S->q_ungroup.n_in = N;
    S->q_group.injective = S->q_ungroup.injective = 1;
    S->k_window.n_out = nk, S->k_window.n_in = N, S->k_window.injective = 0;
    return c->rpe ? aur__surya_rpe_index(S) : 0;
}

/* cos/sin tables (double precision, stored as float) of the orthonormal DFTs:
   forward real->half spectrum along b, complex along a, and the inverse
   half spectrum->real along b (weights 1, 2, .., 2, 1: Hermitian symmetry). */
static int aur__surya_dft(aur__surya *S)
{
    int64_t a = S->cfg.img_size / S->cfg.patch_size, b = a, K = b / 2 + 1;
    aur_real **tabs[6] = {&S->dft_fc, &S->dft_fs, &S->dft_ac, &S->dft_as, &S->dft_ic, &S->dft_is};
    size_t sizes[6] = {(size_t)(K * b), (size_t)(K * b), (size_t)(a * a), (size_t)(a * a), (size_t)(b * K), (size_t)(b * K)};
    for (int i = 0; i < 6; i++)
        if (!(*tabs[i] = (aur_real *)aur__malloc(sizeof(aur_real) * sizes[i], "DFT tables"))) return AUR_ENOMEM;
    const double two_pi = 6.283185307179586476925;
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < b; n++) {
            double ph = two_pi * (double)((k * n) % b) / (double)b, sb = sqrt((double)b);
            double weight = (k == 0 || (b % 2 == 0 && k == b / 2)) ? 1.0 : 2.0;
            S->dft_fc[k * b + n] = (aur_real)(cos(ph) / sb), S->dft_fs[k * b + n] = (aur_real)(sin(ph) / sb);
            S->dft_ic[n * K + k] = (aur_real)(weight * cos(ph) / sb), S->dft_is[n * K + k] = (aur_real)(weight * sin(ph) / sb);
        }
    for (int64_t m = 0; m < a; m++)
        for (int64_t j = 0; j < a; j++) {
            double ph = two_pi * (double)((m * j) % a) / (double)a, sa = sqrt((double)a);
            S->dft_ac[m * a + j] = (aur_real)(cos(ph) / sa), S->dft_as[m * a + j] = (aur_real)(sin(ph) / sa);
        }
    return 0;
}

AURDEF aur_model *aur_surya_declare_model(const aur_surya_config *cfg)
{
    aur_model *m = aur__model_with_impl(sizeof(aur__surya), aur__surya_free, "a Surya model");
    if (!m) return NULL;
    aur__surya *S = (aur__surya *)m->impl;
    S->cfg = *cfg;
    S->m = m;
    int rc = aur__surya_declare(m, cfg);
    if (!rc && cfg->depth > cfg->n_spectral_blocks && cfg->window_size > 0) rc = aur__surya_windows(S);
    if (!rc && cfg->n_spectral_blocks > 0) rc = aur__surya_dft(S);
    if (rc) {
        aur_model_free(m);
        return NULL;
    }
    return m;
}

/* ---- initialisation (SpectFormer's _init_weights and the modules' defaults) ---- */

/* The fixed sin/cos position embedding of the token grid (a buffer). */
static void aur__surya_pos_embed(const aur_surya_config *c, aur_real *out)
{
    int64_t G = c->img_size / c->patch_size, D = c->embed_dim, F = D / 4;
    for (int64_t h = 0; h < G; h++)
        for (int64_t w = 0; w < G; w++)
            for (int64_t i = 0; i < F; i++) {
                double f = F > 1 ? 1.0 + (G / 2.0 - 1.0) * (double)i / (double)(F - 1) : 1.0;
                double X = G > 1 ? (double)w / (double)(G - 1) : 0, Y = G > 1 ? (double)h / (double)(G - 1) : 0;
                aur_real *o = out + (h * G + w) * D + 4 * i;
                o[0] = (aur_real)cos(6.283185307179586 * f * X), o[1] = (aur_real)sin(6.283185307179586 * f * X);
                o[2] = (aur_real)cos(6.283185307179586 * f * Y), o[3] = (aur_real)sin(6.283185307179586 * f * Y);
            }
}

/* fan_in of a Linear or Conv2d weight: every dimension but the first. */
static double aur__fan_in(const aur_tensor *w) { return (double)(w->numel / w->shape[0]); }

static double aur__surya_init_value(const aur_tensor *p, aur__rng *r)
{
    const char *n = p->name;
    if (aur__ends_with(n, ".lora_B.default.weight")) return 0;
    if (aur__ends_with(n, ".lora_A.default.weight")) return (2 * aur__rng_uniform(r) - 1) / sqrt(aur__fan_in(p)); /* PEFT: kaiming_uniform(a=sqrt 5) */
    if (strstr(n, "local_relative_position_bias_table")) return 0.02 * aur__rng_normal(r);
    if (!strcmp(n, "cls_token")) return 0;
    if (strstr(n, "complex_weight") || strstr(n, "latent_queries")) return 0.02 * aur__rng_normal(r);
    if (p->ndim == 4) return (2 * aur__rng_uniform(r) - 1) / sqrt(aur__fan_in(p)); /* convolutions: torch's default bound */
    if (p->ndim == 1) return aur__ends_with(n, ".weight") ? 1 : 0; /* every 1-D weight is a LayerNorm's; biases 0 */
    return 0.02 * aur__rng_normal(r); /* Linear weights: trunc_normal(std 0.02) */
}

/* The fine-tuning heads (HelioSpectformer1D's linear and unembed,
   HelioSpectformer2D's decoder in the downstream examples' models.py) are built
   after HelioSpectFormer.__init__ ran _init_weights, so they keep torch's
   module defaults: Linear and Conv2d weights and biases uniform in
   +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)), LayerNorm 1 and 0,
   the Perceiver decoder's latent queries zeros. */
static double aur__surya_head_value(const aur_model *m, const aur_tensor *p, aur__rng *r)
{
    if (strstr(p->name, "latent_queries")) return 0;
    if (p->ndim >= 2) return (2 * aur__rng_uniform(r) - 1) / sqrt(aur__fan_in(p));
    if (!aur__ends_with(p->name, ".bias")) return 1; /* a LayerNorm's weight */
    size_t module = strlen(p->name) - 5;
    for (int i = 0; i < aur_model_count(m); i++) { /* a bias takes its weight's fan_in; a LayerNorm's is 0 */
        const aur_tensor *w = aur_model_at(m, i);
        if (w->ndim >= 2 && !strncmp(w->name, p->name, module) && !strcmp(w->name + module, ".weight"))
            return (2 * aur__rng_uniform(r) - 1) / sqrt(aur__fan_in(w));
    }
    return 0;
}

static int aur__surya_is_head(const aur__surya *S, const char *name)
{
    return S->cfg.head != AUR_SURYA_FORECAST && (!strncmp(name, "linear.", 7) || !strncmp(name, "unembed.", 8));
}

typedef struct aur__surya_init {
    const aur__surya *S;
    aur__rng r;
} aur__surya_init;

/* One tensor's initial values: the fixed buffers computed, the rest drawn. */
static void aur__surya_fill(void *ctx, const aur_tensor *p, aur_real *v)
{
    aur__surya_init *in = (aur__surya_init *)ctx;
    const aur__surya *S = in->S;
    if (!strcmp(p->name, "embedding.pos_embed")) aur__surya_pos_embed(&S->cfg, v);
    else if (!strcmp(p->name, "learned_flow_model.grid") || !strcmp(p->name, "learned_flow_model.higher_modes"))
        for (int64_t h = 0, n = S->cfg.img_size, k = p->shape[3]; h < n; h++) /* (u[w], v[h] [, 1]), u = v = linspace(-1, 1, n) */
            for (int64_t w = 0; w < n; w++) {
                v[(h * n + w) * k] = (aur_real)(n > 1 ? -1 + 2.0 * (double)w / (double)(n - 1) : -1);
                v[(h * n + w) * k + 1] = (aur_real)(n > 1 ? -1 + 2.0 * (double)h / (double)(n - 1) : -1);
                if (k == 3) v[(h * n + w) * k + 2] = 1;
            }
    else if (aur__ends_with(p->name, ".relative_position_index"))
        for (int64_t k = 0; k < p->numel; k++) v[k] = (aur_real)S->rpe_index.idx[k];
    else if (aur__surya_is_head(S, p->name))
        for (int64_t k = 0; k < p->numel; k++) v[k] = (aur_real)aur__surya_head_value(S->m, p, &in->r);
    else
        for (int64_t k = 0; k < p->numel; k++) v[k] = (aur_real)aur__surya_init_value(p, &in->r);
}

AURDEF int aur_surya_init_weights(aur_model *m, uint64_t seed)
{
    aur__surya *S = aur__S(m);
    if (!S) return AUR_EINVAL;
    S->noise_rng.s = seed * 0xD1B54A32D192ED03ull + 11;
    aur__surya_init in = {S, {seed * 0x9E3779B97F4A7C15ull + 7}};
    return aur__init_params(m, aur__surya_fill, &in);
}

AURDEF aur_model *aur_surya_create(const aur_surya_config *cfg, aur_device device, uint64_t seed)
{
    aur_model *m = aur_surya_declare_model(cfg);
    if (m && (aur_model_alloc(m, device) || aur_surya_init_weights(m, seed))) {
        aur_model_free(m);
        return NULL;
    }
    return m;
}
