#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: Perceiver3DDecoder (aurora/model/decoder.py) ====
   The backbone's tokens (B, Ld L, 2 D) back to fields: the surface level's
   tokens through one linear head per surface variable; for the atmosphere,
   queries made from the pressure levels' encodings attend to the Ld - 1
   latent levels of each patch (deaggregate_levels, a PerceiverResampler),
   and one head per atmospheric variable (per level with level_condition)
   maps each level's token to its P x P patch (LinearPatchReconstruction). */

static aur_tensor *aur__unpatchify(const aur__fwd *F, aur_tensor *y, int levels);
static aur_tensor *aur__atmos_head(const aur__fwd *F, aur_tensor *x, const char *v);
static aur_tensor *aur__surf_head(const aur__fwd *F, aur_tensor *x0, const char *v);
static int aur__decoder_run(aur__fwd *F, aur_tensor *x, aur__decoded *out);
static aur_tensor *aur__pack_decoded(aur_tape *t, const aur__decoded *d);
static int aur__unpack_decoded(aur__fwd *F, aur_tensor *packed, aur__decoded *out);

/* A checkpointed decoder is one segment: its outputs packed into one tensor, and views of it unpacked. */
static aur_tensor *aur__decoder_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    (void)n_in;
    aur__decoded *d = (aur__decoded *)aur_tape_alloc(t, sizeof *d);
    return d && !aur__decoder_run((aur__fwd *)ctx, in[0], d) ? aur__pack_decoded(t, d) : NULL;
}

/* The decoder on one band of patch rows, checkpointed or not. */
static int aur__decoder_band(aur__fwd *F, aur_tensor *x, aur__decoded *out)
{
    if (!(F->c->checkpoint & AUR_CHECKPOINT_DECODER)) return aur__decoder_run(F, x, out);
    return aur__unpack_decoded(F, aur_checkpoint(F->t, aur__decoder_segment, F, &x, 1), out);
}

/* The bands' fields joined along the latitude (axis -2). */
static aur_tensor *aur__join_rows(aur_tape *t, aur__decoded *parts, int n, int atmos, int mod, int i)
{
    aur_tensor *xs[1024];
    for (int k = 0; k < n; k++) {
        xs[k] = atmos ? (mod ? parts[k].atmos_mod[i] : parts[k].atmos[i]) : (mod ? parts[k].surf_mod[i] : parts[k].surf[i]);
        if (!xs[k]) return NULL;
    }
    return n == 1 ? xs[0] : aur_concat(t, xs, n, -2);
}

static int aur__perceiver3d_decoder(aur__fwd *F, aur_tensor *x, aur__decoded *out)
{
    const int64_t E = 2 * (int64_t)F->D;
    int rows, n = aur__bands(F, (int64_t)(F->C > 1 ? F->C : 1) * E, "decoder", &rows);
    if (n < 0) return AUR_EINVAL;
    if (n == 1) return aur__decoder_band(F, x, out);
    aur__decoded *parts = (aur__decoded *)aur_tape_alloc(F->t, sizeof *parts * (size_t)n);
    if (!parts || !x) return AUR_ENOMEM;
    aur_tensor *x4 = aur_reshape(F->t, x, aur_shape4(F->B, F->Ld, F->L, E));
    for (int k = 0; k < n; k++) {
        aur__fwd *G = aur__fwd_band(F, k, rows);
        aur_tensor *xb = G ? aur_reshape(F->t, aur_slice(F->t, x4, 2, (int64_t)k * rows * F->w, G->L), aur_shape3(F->B, F->Ld * G->L, E)) : NULL;
        if (!xb || aur__decoder_band(G, xb, &parts[k])) return AUR_EINVAL;
    }
    memset(out, 0, sizeof *out);
    out->surf_names = parts[0].surf_names;
    out->n_atmos = parts[0].n_atmos;
    for (int i = 0; i < out->surf_names.n; i++) {
        if (!(out->surf[i] = aur__join_rows(F->t, parts, n, 0, 0, i))) return AUR_EINVAL;
        if (parts[0].surf_mod[i] && !(out->surf_mod[i] = aur__join_rows(F->t, parts, n, 0, 1, i))) return AUR_EINVAL;
    }
    for (int i = 0; i < out->n_atmos; i++) {
        if (!(out->atmos[i] = aur__join_rows(F->t, parts, n, 1, 0, i))) return AUR_EINVAL;
        if (parts[0].atmos_mod[i] && !(out->atmos_mod[i] = aur__join_rows(F->t, parts, n, 1, 1, i))) return AUR_EINVAL;
    }
    return 0;
}

static int aur__decoder_run(aur__fwd *F, aur_tensor *x, aur__decoded *out)
{
    const aur_aurora_config *c = F->c;
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    char name[160];
    const int B = F->B, C = F->C, Ld = F->Ld;
    const int64_t L = F->L, E = 2 * (int64_t)F->D;
    memset(out, 0, sizeof *out);
    out->surf_names = b->surf_names;
    out->n_atmos = b->atmos_names.n;
    static const int blcd[4] = {0, 2, 1, 3};
    x = aur_permute(t, aur_reshape(t, x, aur_shape4(B, Ld, L, E)), blcd); /* (B, L, Ld, E) */

    /* the surface level: a head per variable, and its modulation head (_mod) where configured */
    aur_tensor *x0 = aur_reshape(t, aur_slice(t, x, 2, 0, 1), aur_shape3(B, L, E));
    for (int i = 0; i < b->surf_names.n; i++) {
        const char *v = b->surf_names.name[i];
        out->surf[i] = aur__surf_head(F, x0, v);
        snprintf(name, sizeof name, "decoder_norm/surf/%s", v);
        aur__probe(F, name, out->surf[i]);
        if (aur__vl_find(&c->modulation_heads, v) >= 0) {
            snprintf(name, sizeof name, "%s_mod", v);
            out->surf_mod[i] = aur__surf_head(F, x0, name);
        }
        if (!out->surf[i]) return AUR_EINVAL;
    }
    if (!b->atmos_names.n) return 0;

    /* the atmosphere: the levels' embeddings query the latent levels of each patch */
    aur_tensor *lev = aur__encoded_levels(F, (int)E, "decoder.atmos_levels_embed", "decoder/levels_encode");
    aur_tensor *q = aur_expand(t, aur_reshape(t, lev, aur_shape3(1, C, E)), aur_shape3((int64_t)B * L, C, E));
    aur_tensor *ctx = aur_reshape(t, aur_slice(t, x, 2, 1, Ld - 1), aur_shape3((int64_t)B * L, Ld - 1, E));
    aur_tensor *main_out = NULL, *alt_out = NULL;
    for (int i = 0; i < b->atmos_names.n; i++) {
        const char *v = b->atmos_names.name[i];
        int alt = aur__vl_find(&c->separate_perceiver, v) >= 0; /* AuroraAirPollution's second decoder Perceiver */
        aur_tensor **src = alt ? &alt_out : &main_out;
        if (!*src) /* each Perceiver runs once, when a variable first needs it */
            *src = aur_reshape(t, aur__perceiver_resampler(F, alt ? "decoder.level_decoder_alternate" : "decoder.level_decoder", q, ctx,
                                                           c->dec_depth, 0, c->perceiver_ln_eps), aur_shape4(B, L, C, E));
        out->atmos[i] = aur__atmos_head(F, *src, v);
        snprintf(name, sizeof name, "decoder_norm/atmos/%s", v);
        aur__probe(F, name, out->atmos[i]);
        if (aur__vl_find(&c->modulation_heads, v) >= 0) {
            snprintf(name, sizeof name, "%s_mod", v);
            out->atmos_mod[i] = aur__atmos_head(F, *src, name);
        }
        if (!out->atmos[i]) return AUR_EINVAL;
    }
    return 0;
}

/* (B, L, [C,] P*P) head outputs -> (B, [C,] H, W): feature p1*P + p2 fills
   pixel (p1, p2) of its patch (aurora/model/util.py: unpatchify). */
static aur_tensor *aur__unpatchify(const aur__fwd *F, aur_tensor *y, int levels)
{
    aur_tape *t = F->t;
    int64_t B = F->B, h = F->h, w = F->w, P = F->P, C = levels;
    if (!levels) {
        static const int perm[5] = {0, 1, 3, 2, 4};
        return aur_reshape(t, aur_permute(t, aur_reshape(t, y, aur_shape5(B, h, w, P, P)), perm), aur_shape3(B, h * P, w * P));
    }
    static const int perm[6] = {0, 3, 1, 4, 2, 5};
    int64_t s6[6] = {B, h, w, C, P, P};
    return aur_reshape(t, aur_permute(t, aur_reshape(t, y, aur_shapev(6, s6)), perm), aur_shape4(B, C, h * P, w * P));
}

/* An atmospheric variable's head on (B, L, C, E) levels -> (B, C, H, W); with
   level_condition each level has its own head (aurora/model/levelcond.py: LevelConditioned). */
static aur_tensor *aur__atmos_head_run(const aur__fwd *F, aur_tensor *x, const char *v);

/* A variable's head (LinearPatchReconstruction and the unpatchify), in a scope or as a checkpoint. */
typedef struct aur__head_ctx {
    const aur__fwd *F;
    char v[AUR_NAME_LEN + 8];
    int atmos;
} aur__head_ctx;

static aur_tensor *aur__surf_head_run(const aur__fwd *F, aur_tensor *x0, const char *v)
{
    char p[160];
    snprintf(p, sizeof p, "decoder.surf_heads.%s", v);
    return aur__unpatchify(F, aur__lin(F, x0, p, 1), 0);
}

static aur_tensor *aur__head_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__head_ctx *k = (const aur__head_ctx *)ctx;
    (void)t, (void)n_in;
    return k->atmos ? aur__atmos_head_run(k->F, in[0], k->v) : aur__surf_head_run(k->F, in[0], k->v);
}

static aur_tensor *aur__head(const aur__fwd *F, aur_tensor *x, const char *v, int atmos)
{
    if (F->c->checkpoint & AUR_CHECKPOINT_PATCH_RECONSTRUCTION) {
        aur__head_ctx *k = (aur__head_ctx *)aur_tape_alloc(F->t, sizeof *k);
        if (!k) return NULL;
        k->F = F, k->atmos = atmos;
        snprintf(k->v, sizeof k->v, "%s", v);
        return aur_checkpoint(F->t, aur__head_segment, k, &x, 1);
    }
    aur_scope s = aur_scope_begin(F->t); /* the head's slices and reshuffles go when it has made its field */
    aur_tensor *y = atmos ? aur__atmos_head_run(F, x, v) : aur__surf_head_run(F, x, v);
    aur_scope_end(F->t, s, &y, 1);
    return y;
}

static aur_tensor *aur__surf_head(const aur__fwd *F, aur_tensor *x0, const char *v) { return aur__head(F, x0, v, 0); }
static aur_tensor *aur__atmos_head(const aur__fwd *F, aur_tensor *x, const char *v) { return aur__head(F, x, v, 1); }

/* The decoder's outputs flattened and joined: surface (each with its modulation head), then atmospheric. */
static aur_tensor *aur__pack_decoded(aur_tape *t, const aur__decoded *d)
{
    aur_tensor *flat[4 * AUR_MAX_VARS];
    int n = 0;
    for (int i = 0; i < d->surf_names.n; i++) {
        flat[n++] = aur_reshape(t, d->surf[i], aur_shape1(d->surf[i]->numel));
        if (d->surf_mod[i]) flat[n++] = aur_reshape(t, d->surf_mod[i], aur_shape1(d->surf_mod[i]->numel));
    }
    for (int i = 0; i < d->n_atmos; i++) {
        flat[n++] = aur_reshape(t, d->atmos[i], aur_shape1(d->atmos[i]->numel));
        if (d->atmos_mod[i]) flat[n++] = aur_reshape(t, d->atmos_mod[i], aur_shape1(d->atmos_mod[i]->numel));
    }
    return aur_concat(t, flat, n, 0);
}

/* Views of a packed output, in aur__pack_decoded's order (the modulation heads where configured). */
static int aur__unpack_decoded(aur__fwd *F, aur_tensor *packed, aur__decoded *out)
{
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    if (!packed) return AUR_EINVAL;
    memset(out, 0, sizeof *out);
    out->surf_names = b->surf_names;
    out->n_atmos = b->atmos_names.n;
    int64_t at = 0, S = (int64_t)F->B * F->H * F->W, A = S * F->C;
    aur_tensor **dst[2][2] = {{out->surf, out->surf_mod}, {out->atmos, out->atmos_mod}};
    const aur_var_list *names[2] = {&b->surf_names, &b->atmos_names};
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < names[g]->n; i++)
            for (int mod = 0; mod < 2; mod++) {
                if (mod && aur__vl_find(&F->c->modulation_heads, names[g]->name[i]) < 0) continue;
                int64_t n = g ? A : S;
                aur_shape sh = g ? aur_shape4(F->B, F->C, F->H, F->W) : aur_shape3(F->B, F->H, F->W);
                if (!(dst[g][mod][i] = aur_reshape(t, aur_slice(t, packed, 0, at, n), sh))) return AUR_EINVAL;
                at += n;
            }
    return at == packed->numel ? 0 : aur__err(AUR_ESHAPE, "decoder: %lld packed outputs for %lld", (long long)packed->numel, (long long)at);
}

static aur_tensor *aur__atmos_head_run(const aur__fwd *F, aur_tensor *x, const char *v)
{
    aur_tape *t = F->t;
    char p[160], lv[32];
    if (!F->c->n_level_condition) {
        snprintf(p, sizeof p, "decoder.atmos_heads.%s", v);
        return aur__unpatchify(F, aur__lin(F, x, p, 1), F->C);
    }
    aur_tensor *per[AUR_MAX_LEVELS];
    int64_t B = F->B, L = F->L, E = x ? x->shape[3] : 0, P2 = (int64_t)F->P * F->P;
    for (int l = 0; l < F->C; l++) {
        aur_level_to_str(F->levels[l], lv, sizeof lv);
        snprintf(p, sizeof p, "decoder.atmos_heads.%s.layers.%s", v, lv);
        aur_tensor *xl = aur_reshape(t, aur_slice(t, x, 2, l, 1), aur_shape3(B, L, E));
        per[l] = aur_reshape(t, aur__lin(F, xl, p, 1), aur_shape4(B, L, 1, P2));
        if (!per[l]) return NULL;
    }
    return aur__unpatchify(F, aur_concat(t, per, F->C, 2), F->C);
}
