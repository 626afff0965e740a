#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: Perceiver3DEncoder (aurora/model/encoder.py) ====
   Each patch becomes one D-wide token per level: the (T, P, P) values of
   every variable, each through its own kernel, summed (LevelPatchEmbed).
   The surface level keeps its tokens; the C
   pressure levels, tagged with their levels' encodings, are aggregated into
   Ld - 1 latent levels by a PerceiverResampler per patch. Position, scale,
   lead-time and absolute-time encodings are added: -> (B, Ld L, D). */

static int aur__encoder_inputs(const aur__fwd *F, aur_tensor **sx, aur_var_list *snames, aur_tensor **ax, aur_var_list *anames);
static aur_tensor *aur__level_patch_embed(const aur__fwd *F, aur_tensor *x, const char *prefix, const aur_var_list *names);
static aur_tensor *aur__stack_vars(aur_tape *t, aur_tensor *const *xs, int V);
static aur_tensor *aur__atmos_stack(aur_tape *t, aur_tensor *const *xs, int V, int level);
static aur_tensor *aur__encoded_levels(const aur__fwd *F, int width, const char *embed, const char *probe);
static aur_tensor *aur__add_patch_encodings(aur__fwd *F, aur_tensor *x);
static aur_tensor *aur__add_time_encodings(aur__fwd *F, aur_tensor *x);

static aur_tensor *aur__encoder_run(aur__fwd *F);
static aur_tensor *aur__surface_level(const aur__fwd *F, aur_tensor *const *sx, const aur_var_list *snames);
static aur_tensor *aur__atmos_latents(aur__fwd *F, aur_tensor *const *ax, const aur_var_list *anames);
static int aur__encoder_bands(const aur__fwd *F, int *rows);

/* A checkpointed encoder reads the batch's tensors through the segment's inputs (so the node holds them). */
static aur_tensor *aur__encoder_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    (void)t, (void)in, (void)n_in;
    return aur__encoder_run((aur__fwd *)ctx);
}

/* Checkpointed, the encoder is one segment on a grid of one band; on more,
   each band's atmospheric levels are a segment of their own (below), so only
   one band's activations are remade at a time. */
static aur_tensor *aur__perceiver3d_encoder(aur__fwd *F)
{
    int rows;
    if (!(F->c->checkpoint & AUR_CHECKPOINT_ENCODER) || aur__encoder_bands(F, &rows) != 1) {
        aur_scope s = aur_scope_begin(F->t); /* the encodings' sums and copies go once the tokens are made */
        aur_tensor *x = aur__encoder_run(F);
        aur_scope_end(F->t, s, &x, 1);
        return x;
    }
    const aur_batch *b = F->in;
    aur_tensor *in[3 * AUR_MAX_VARS];
    int n = 0;
    for (int i = 0; i < b->surf_names.n; i++) in[n++] = F->enc_surf[i];
    for (int i = 0; i < b->static_names.n; i++) in[n++] = F->statics[i];
    for (int i = 0; i < b->atmos_names.n; i++) in[n++] = F->enc_atmos[i];
    return aur_checkpoint(F->t, aur__encoder_segment, F, in, n);
}

static aur_tensor *aur__encoder_run(aur__fwd *F)
{
    const aur_aurora_config *c = F->c;
    aur_tape *t = F->t;
    const int B = F->B, D = F->D, Ld = F->Ld;
    const int64_t L = F->L;
    aur_tensor *sx[AUR_MAX_VARS * 2], *ax[AUR_MAX_VARS * 3];
    aur_var_list snames, anames;
    if (aur__encoder_inputs(F, sx, &snames, ax, &anames)) return NULL;

    aur_tensor *xs = aur__surface_level(F, sx, &snames);
    aur_tensor *agg = aur__atmos_latents(F, ax, &anames); /* (B, Ld - 1, L, D) */

    /* the surface level and the latent levels stacked: (B, Ld, L, D) */
    aur_tensor *parts[2] = {aur_reshape(t, xs, aur_shape4(B, 1, L, D)), agg};
    aur_tensor *x = aur__add_patch_encodings(F, aur_concat(t, parts, 2, 1));
    x = aur__add_time_encodings(F, aur_reshape(t, x, aur_shape3(B, Ld * L, D)));
    x = aur_dropout(t, x, c->drop_rate);
    aur__probe(F, "encoder_out", x);
    return x;
}

/* ---- the atmospheric levels, aggregated patch by patch, in bands of patch rows ---- */

/* Bands of patch rows the atmospheric levels go through (C levels of D-wide tokens per patch). */
static int aur__encoder_bands(const aur__fwd *F, int *rows)
{
    return aur__bands(F, (int64_t)(F->C > 1 ? F->C : 1) * F->D, "encoder", rows);
}

/* The atmospheric variables (B, T, C, H, W) of a band's patch rows -> its
   latent levels (B, Ld - 1, L, D): the patch embedding (one for all levels,
   or one per level with level_condition), the levels' encodings, and
   aggregate_levels, where per patch (B L independent problems) Ld - 1
   latents attend to the C levels. */
static aur_tensor *aur__atmos_band(const aur__fwd *F, aur_tensor *const *ax, const aur_var_list *anames)
{
    const aur_aurora_config *c = F->c;
    aur_tape *t = F->t;
    const int B = F->B, C = F->C, D = F->D, Ld = F->Ld;
    const int64_t L = F->L;
    aur_tensor *xa;
    aur_scope s = aur_scope_begin(t);
    if (!c->n_level_condition) {
        xa = aur__level_patch_embed(F, aur__atmos_stack(t, ax, anames->n, -1), "encoder.atmos_token_embeds", anames);
        aur__probe(F, "encoder/atmos_patch_embed", xa);
    } else {
        aur_tensor *per[AUR_MAX_LEVELS];
        char prefix[128], lv[32];
        for (int l = 0; l < C; l++) {
            aur_level_to_str(F->levels[l], lv, sizeof lv);
            snprintf(prefix, sizeof prefix, "encoder.atmos_token_embeds.layers.%s", lv);
            per[l] = aur_reshape(t, aur__level_patch_embed(F, aur__atmos_stack(t, ax, anames->n, l), prefix, anames), aur_shape4(B, 1, L, D));
            if (!per[l]) return NULL;
        }
        xa = aur_concat(t, per, C, 1);
    }
    aur_scope_end(t, s, &xa, 1);
    xa = aur_reshape(t, xa, aur_shape4(B, C, L, D));
    aur_tensor *lev = aur__encoded_levels(F, D, "encoder.atmos_levels_embed", "encoder/levels_encode");
    xa = aur_add(t, xa, aur_reshape(t, lev, aur_shape4(1, C, 1, D)));
    static const int blcd[4] = {0, 2, 1, 3};
    aur_tensor *ctx = aur_reshape(t, aur_permute(t, xa, blcd), aur_shape3((int64_t)B * L, C, D));
    aur_tensor *lat = aur_reshape(t, aur__paramf(F->A->m, "encoder.atmos_latents"), aur_shape3(1, Ld - 1, D));
    aur_tensor *agg = aur__perceiver_resampler(F, "encoder.level_agg", aur_expand(t, lat, aur_shape3((int64_t)B * L, Ld - 1, D)), ctx,
                                               c->enc_depth, c->stabilise_level_agg, c->perceiver_ln_eps);
    aur__probe(F, "encoder/level_agg_out", agg);
    return aur_permute(t, aur_reshape(t, agg, aur_shape4(B, L, Ld - 1, D)), blcd);
}

/* A segment of the banded encoder: the working state (of the band) and the variables it reads. */
typedef struct aur__vars_ctx {
    const aur__fwd *F;
    aur_var_list names;
} aur__vars_ctx;

/* A checkpointed band: its inputs are the band's slices of the variables. */
static aur_tensor *aur__atmos_band_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__vars_ctx *k = (const aur__vars_ctx *)ctx;
    (void)t, (void)n_in;
    return aur__atmos_band(k->F, in, &k->names);
}

/* The surface level: patch embedding, its level encoding, and a Perceiver-like MLP (not aggregated). */
static aur_tensor *aur__surface_run(const aur__fwd *F, aur_tensor *const *sx, const aur_var_list *snames)
{
    aur_tape *t = F->t;
    aur_scope s = aur_scope_begin(t); /* the stacked copies go once embedded */
    aur_tensor *xs = aur__level_patch_embed(F, aur__stack_vars(t, sx, snames->n), "encoder.surf_token_embeds", snames);
    aur_scope_end(t, s, &xs, 1);
    aur__probe(F, "encoder/surf_patch_embed", xs);
    xs = aur_add(t, xs, aur__paramf(F->A->m, "encoder.surf_level_encoding"));
    return aur_add(t, xs, aur__ln(F, aur__mlp(F, xs, "encoder.surf_mlp.net.0", "encoder.surf_mlp.net.2", 0), "encoder.surf_norm", 1e-5));
}

static aur_tensor *aur__surface_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__vars_ctx *k = (const aur__vars_ctx *)ctx;
    (void)t, (void)n_in;
    return aur__surface_run(k->F, in, &k->names);
}

/* A checkpointed encoder in bands checkpoints the surface level as a segment of its own too. */
static aur_tensor *aur__surface_level(const aur__fwd *F, aur_tensor *const *sx, const aur_var_list *snames)
{
    int rows;
    if (!(F->c->checkpoint & AUR_CHECKPOINT_ENCODER) || aur__encoder_bands(F, &rows) == 1) return aur__surface_run(F, sx, snames);
    aur__vars_ctx *ctx = (aur__vars_ctx *)aur_tape_alloc(F->t, sizeof *ctx); /* lives until backward */
    if (!ctx) return NULL;
    ctx->F = F, ctx->names = *snames;
    return aur_checkpoint(F->t, aur__surface_segment, ctx, sx, snames->n);
}

static aur_tensor *aur__atmos_latents(aur__fwd *F, aur_tensor *const *ax, const aur_var_list *anames)
{
    int rows, n = aur__encoder_bands(F, &rows), V = anames->n;
    if (n < 0) return NULL;
    if (n == 1) return aur__atmos_band(F, ax, anames);
    aur_tensor **parts = (aur_tensor **)aur_tape_alloc(F->t, sizeof *parts * (size_t)n), *slices[AUR_MAX_VARS * 3];
    if (!parts) return NULL;
    for (int k = 0; k < n; k++) {
        aur__vars_ctx *ctx = (aur__vars_ctx *)aur_tape_alloc(F->t, sizeof *ctx); /* lives until backward */
        aur_scope s = aur_scope_begin(F->t); /* the band's slices go once it is made (a checkpoint holds its inputs) */
        if (!ctx || !(ctx->F = aur__fwd_band(F, k, rows))) return NULL;
        ctx->names = *anames;
        for (int v = 0; v < V; v++) slices[v] = aur_slice(F->t, ax[v], -2, (int64_t)k * rows * F->P, ctx->F->H);
        parts[k] = F->c->checkpoint & AUR_CHECKPOINT_ENCODER ? aur_checkpoint(F->t, aur__atmos_band_segment, ctx, slices, V)
                                                             : aur__atmos_band(ctx->F, slices, anames);
        if (!parts[k]) return NULL;
        aur_scope_end(F->t, s, &parts[k], 1);
    }
    return aur_concat(F->t, parts, n, 2);
}

/* ---- the inputs, variable by variable ---- */

/* The dynamic variables of AuroraAirPollution for one sample: cos and sin of
   the hour of the day, the weekday and the day of the month (the reference's
   "doy" is the day of the month), in that order. */
static int aur__dynamic_value(double unix_seconds, int which, double *out)
{
    time_t tt = (time_t)floor(unix_seconds);
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) return aur__err(AUR_EINVAL, "time %g cannot be converted to a date", unix_seconds);
    double hour = tm.tm_hour, weekday = (tm.tm_wday + 6) % 7, day = tm.tm_mday; /* Monday = 0; the day of the month, as the reference */
    double ang = which < 2 ? 2 * AUR__PI * hour / 24 : which < 4 ? 2 * AUR__PI * weekday / 7 : 2 * AUR__PI * day / 365.25;
    *out = which % 2 == 0 ? cos(ang) : sin(ang);
    return 0;
}

/* The encoder's variables: surface ones (B, T, H, W) in the kernels' order
   (surface, statics, dynamic), and atmospheric ones (B, T, C, H, W) (the
   variables, then the surface statics as static_{s} with atmos_static_vars). */
static int aur__encoder_inputs(const aur__fwd *F, aur_tensor **sx, aur_var_list *snames, aur_tensor **ax, aur_var_list *anames)
{
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    char name[AUR_NAME_LEN + 8];
    int V = 0;
    *snames = b->surf_names;
    for (int i = 0; i < b->surf_names.n; i++) sx[V++] = F->enc_surf[i];
    for (int i = 0; i < b->static_names.n; i++) {
        sx[V++] = aur_expand(t, F->statics[i], aur_shape4(F->B, F->T, F->H, F->W));
        if (aur__vl_add(snames, b->static_names.name[i])) return AUR_EINVAL;
    }
    for (int k = 0; F->c->dynamic_vars && k < 6; k++) {
        aur_tensor *x = aur_tensor_new(t, AUR_CPU, aur_shape4(F->B, F->T, F->H, F->W));
        if (!x) return AUR_ENOMEM;
        for (int bi = 0; bi < F->B; bi++) {
            double v = 0;
            if (aur__dynamic_value(b->time[bi], k, &v)) return AUR_EINVAL;
            for (int64_t i = 0; i < (int64_t)F->T * F->H * F->W; i++) aur__wr(x)[bi * (int64_t)F->T * F->H * F->W + i] = (aur_real)(float)v;
        }
        sx[V++] = aur__on(t, x, F->A->m->device);
        if (aur__vl_add(snames, aur__dynamic_names[k])) return AUR_EINVAL;
    }
    V = 0;
    *anames = b->atmos_names;
    for (int i = 0; i < b->atmos_names.n; i++) ax[V++] = F->enc_atmos[i];
    int z = aur__vl_find(&b->atmos_names, "z");
    for (int i = b->surf_names.n; F->c->atmos_static_vars && i < snames->n; i++) {
        snprintf(name, sizeof name, "static_%s", snames->name[i]);
        if (aur__vl_add(anames, name)) return AUR_EINVAL;
        aur_tensor *s = aur_reshape(t, sx[i], aur_shape5(F->B, F->T, 1, F->H, F->W));
        ax[V] = aur_expand(t, s, aur_shape5(F->B, F->T, F->C, F->H, F->W));
        /* the reference's simulate_indexing_bug: static_z takes the slice of atmospheric z */
        if (F->c->simulate_indexing_bug && z >= 0 && !strcmp(name, "static_z")) ax[V] = ax[z];
        V++;
    }
    return 0;
}

/* aurora/model/patchembed.py: LevelPatchEmbed. x (N, V*T, H, W) with the
   (D, 1, Tmax, P, P) kernels of the variables `names` (their first T history
   slices): one linear map of each patch's V T P P values -> (N, L, D). */
static aur_tensor *aur__level_patch_embed(const aur__fwd *F, aur_tensor *x, const char *prefix, const aur_var_list *names)
{
    aur_tape *t = F->t;
    int64_t N = x ? x->shape[0] : 0, V = names->n, T = F->T, P = F->P;
    static const int perm[6] = {0, 2, 4, 1, 3, 5};
    int64_t s6[6] = {N, V * T, F->h, P, F->w, P};
    aur_tensor *xp = aur_permute(t, aur_reshape(t, x, aur_shapev(6, s6)), perm); /* (N, h, w, V*T, P, P) */
    xp = aur_reshape(t, xp, aur_shape3(N, F->L, V * T * P * P));
    aur_tensor *kernels[AUR_MAX_VARS * 2];
    for (int v = 0; v < V; v++) {
        aur_tensor *k = aur__paramf(F->A->m, "%s.weights.%s", prefix, names->name[v]);
        kernels[v] = aur_slice(t, k, 2, 0, T);
        if (!kernels[v]) return NULL;
    }
    aur_tensor *K = aur_reshape(t, aur_concat(t, kernels, (int)V, 1), aur_shape2(F->D, V * T * P * P));
    return aur_linear(t, xp, K, aur__paramf(F->A->m, "%s.bias", prefix));
}

/* Stacks (B, T, H, W) variables into (B, V*T, H, W). */
static aur_tensor *aur__stack_vars(aur_tape *t, aur_tensor *const *xs, int V)
{
    aur_tensor *r[AUR_MAX_VARS * 2];
    for (int v = 0; v < V; v++) {
        if (!xs[v]) return NULL;
        r[v] = aur_reshape(t, xs[v], aur_shape5(xs[v]->shape[0], 1, xs[v]->shape[1], xs[v]->shape[2], xs[v]->shape[3]));
    }
    aur_tensor *x = aur_concat(t, r, V, 1);
    return x ? aur_reshape(t, x, aur_shape4(x->shape[0], x->shape[1] * x->shape[2], x->shape[3], x->shape[4])) : NULL;
}

/* (B, T, V, C, H, W) stacked -> (B*C, V*T, H, W), or the (B, V*T, H, W) slice of one level. */
static aur_tensor *aur__atmos_stack(aur_tape *t, aur_tensor *const *xs, int V, int level)
{
    aur_tensor *r[AUR_MAX_VARS * 2];
    for (int v = 0; v < V; v++) {
        if (!xs[v]) return NULL;
        const int64_t *s = xs[v]->shape, s6[6] = {s[0], s[1], 1, s[2], s[3], s[4]};
        r[v] = aur_reshape(t, xs[v], aur_shapev(6, s6));
    }
    aur_tensor *x = aur_concat(t, r, V, 2); /* (B, T, V, C, H, W) */
    if (!x) return NULL;
    static const int perm[6] = {0, 3, 2, 1, 4, 5};
    x = aur_permute(t, x, perm); /* (B, C, V, T, H, W) */
    int64_t B = x->shape[0], C = x->shape[1], VT = x->shape[2] * x->shape[3], H = x->shape[4], W = x->shape[5];
    if (level < 0) return aur_reshape(t, x, aur_shape4(B * C, VT, H, W));
    return aur_reshape(t, aur_slice(t, x, 1, level, 1), aur_shape4(B, VT, H, W));
}

/* ---- the encodings ---- */

/* The pressure levels' Fourier encodings (aurora/model/fourier.py: levels_expansion), width wide, through
   the linear layer `embed` -> (C, width). The decoder uses them too. */
static aur_tensor *aur__encoded_levels(const aur__fwd *F, int width, const char *embed, const char *probe)
{
    aur_tape *t = F->t;
    double lev_in[AUR_MAX_LEVELS];
    float *enc = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(F->C * width + 1));
    aur__levels_input(F->levels, F->C, lev_in);
    if (!enc || aur__fourier(lev_in, F->C, 0.01, 1e5, width, 1, enc, "level")) return NULL;
    aur_tensor *lev = aur__const(t, F->A->m->device, aur_shape2(F->C, width), enc);
    aur__probe(F, probe, lev);
    return aur__lin(F, lev, embed, 1);
}

/* x (B, Ld, L, D) plus every patch's position and scale encodings through
   pos_embed and scale_embed (aurora/model/posencoding.py: pos_scale_enc). */
static aur_tensor *aur__add_patch_encodings(aur__fwd *F, aur_tensor *x)
{
    aur__aurora *A = F->A;
    aur_tape *t = F->t;
    const int64_t L = F->L, D = F->D;
    float *pos = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(2 * L * D));
    if (!x || !pos) return NULL;
    float *scl = pos + L * D;
    aur_batch crop = *F->in; /* the grid's first H rows */
    crop.H = F->H;
    if (aur__patch_encodings(t, &crop, F->H, F->W, F->P, (int)D, pos, scl)) return NULL;
    aur__probe(F, "encoder/pos_encode", aur__const(t, A->m->device, aur_shape2(L, D), pos));
    aur__probe(F, "encoder/scale_encode", aur__const(t, A->m->device, aur_shape2(L, D), scl));
    if (A->pos_override) {
        if (A->override_L != L) {
            aur__err(AUR_ESHAPE, "Aurora: override encodings have %lld patches, the grid has %lld", (long long)A->override_L, (long long)L);
            return NULL;
        }
        pos = A->pos_override;
        scl = A->scale_override;
    }
    x = aur_add(t, x, aur__lin(F, aur__const(t, A->m->device, aur_shape2(L, D), pos), "encoder.pos_embed", 1));
    return aur_add(t, x, aur__lin(F, aur__const(t, A->m->device, aur_shape2(L, D), scl), "encoder.scale_embed", 1));
}

/* x (B, Ld L, D) plus the lead time's and each sample's absolute time's encodings, through their embeddings. */
static aur_tensor *aur__add_time_encodings(aur__fwd *F, aur_tensor *x)
{
    aur_tape *t = F->t;
    const int B = F->B, D = F->D;
    aur_tensor *lead = aur__const(t, F->A->m->device, aur_shape2(B, D), F->lead_enc);
    aur__probe(F, "encoder/lead_time_encode", lead);
    x = aur_add(t, x, aur_reshape(t, aur__lin(F, lead, "encoder.lead_time_embed", 1), aur_shape3(B, 1, D)));
    double *hours = (double *)aur__alloc(t, AUR_CPU, sizeof(double) * (size_t)B);
    float *abs_enc = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(B * D));
    if (!hours || !abs_enc) return NULL;
    for (int i = 0; i < B; i++) hours[i] = (double)(float)(F->in->time[i] / 3600.0);
    if (aur__fourier(hours, B, 1, 24 * 365.25, D, 0, abs_enc, "absolute time")) return NULL;
    aur_tensor *abst = aur__const(t, F->A->m->device, aur_shape2(B, D), abs_enc);
    aur__probe(F, "encoder/absolute_time_encode", abst);
    return aur_add(t, x, aur_reshape(t, aur__lin(F, abst, "encoder.absolute_time_embed", 1), aur_shape3(B, 1, D)));
}
