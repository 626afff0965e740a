#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: forward ====
   One step of the model, as aurora/model/aurora.py: Aurora.forward runs it:

     batch_transform_hook      the variant's change of the raw batch (AuroraWave)
     normalise, crop           aurora/batch.py: Batch.normalise, Batch.crop
     clamp positive variables, then _pre_encoder_hook (AuroraAirPollution, AuroraWave)
     Perceiver3DEncoder        aurora/model/encoder.py: patches of every variable -> (B, Ld L, D) tokens
     Swin3DTransformerBackbone aurora/model/swin3d.py: a 3-D Swin U-Net over (levels, lat, lon)
     Perceiver3DDecoder        aurora/model/decoder.py: tokens -> a field per variable
     _post_decoder_hook        (AuroraAirPollution, AuroraWave)
     clamp positive variables, unnormalise

   This file holds the entry point and the steps around the three modules;
   encoder.c, backbone.c and decoder.c hold the modules (their building
   blocks, shared with the Perceivers, are in layers.c), variants.c the hooks. */

/* One forward call's working state. The sizes use the reference's letters
   (aurora/model/encoder.py: B, T, C, H, W; patch_size P; embed_dim D). */
typedef struct aur__fwd {
    aur__aurora *A;
    aur_tape *t;
    const aur_aurora_config *c;
    aur_batch *in;      /* the input batch as the hooks leave it (AuroraWave renames variables) */
    int B;              /* samples */
    int T;              /* history steps */
    int C;              /* pressure levels */
    int H, W;           /* latitudes and longitudes, cropped to whole patches */
    int P;              /* patch size */
    int h, w;           /* patches along latitude and longitude: H / P, W / P */
    int64_t L;          /* patches per level: h w */
    int D;              /* embed_dim: the token width (the decoder works at 2 D) */
    int Ld;             /* latent_levels: the surface level and Ld - 1 aggregated atmospheric ones */
    int step;           /* the input's rollout_step (for LoRA sets and probes) */
    int lora_set;       /* the LoRA set this step uses, or -1 */
    /* the normalised, cropped batch (the `batch` the decoder and the post-decoder hook see) */
    aur_tensor *surf[AUR_MAX_VARS], *statics[AUR_MAX_VARS], *atmos[AUR_MAX_VARS];
    /* the encoder's inputs: positive variables clamped, then the pre-encoder hook (`transformed_batch`) */
    aur_tensor *enc_surf[AUR_MAX_VARS], *enc_atmos[AUR_MAX_VARS];
    double levels[AUR_MAX_LEVELS]; /* hPa */
    float *lead_enc;    /* (B, D): the lead time's Fourier encoding (the encoder and the backbone's time_mlp) */
} aur__fwd;

/* The decoder's normalised predictions, before the post-decoder hook and unnormalisation. */
typedef struct aur__decoded {
    aur_var_list surf_names;     /* the post-decoder hook of AuroraWave renames them */
    aur_tensor *surf[AUR_MAX_VARS], *atmos[AUR_MAX_VARS];   /* (B, H, W) and (B, C, H, W) */
    aur_tensor *surf_mod[AUR_MAX_VARS], *atmos_mod[AUR_MAX_VARS]; /* modulation heads (AuroraAirPollution), or NULL */
    int n_atmos;
} aur__decoded;

/* The modules, in the order they run (encoder.c, backbone.c, decoder.c). */
static aur_tensor *aur__perceiver3d_encoder(aur__fwd *F);
static aur_tensor *aur__swin3d_backbone(aur__fwd *F, aur_tensor *x);
static int aur__perceiver3d_decoder(aur__fwd *F, aur_tensor *x, aur__decoded *out);
/* The variants' hooks (variants.c): each does nothing for the plain Aurora. */
static int aur__batch_transform_hook(aur_tape *t, const aur_aurora_config *c, aur_batch *b);
static int aur__pre_encoder_hook(aur__fwd *F);
static int aur__post_decoder_hook(aur__fwd *F, aur__decoded *d);

static aur__fwd *aur__fwd_begin(aur__aurora *A, aur_tape *t, const aur_batch *b);
static int aur__fwd_inputs(aur__fwd *F);
static int aur__clamp_positive_inputs(aur__fwd *F);
static aur_batch *aur__fwd_outputs(aur__fwd *F, const aur__decoded *d);
static void aur__keep_batch(aur_tape *t, aur_scope scope, const aur_batch *p);

AURDEF aur_batch *aur_aurora_forward(aur_model *m, aur_tape *t, const aur_batch *b)
{
    aur__aurora *A = aur__A(m);
    if (!A || !t || !b) return NULL;
    aur_scope scope = aur_scope_begin(t); /* what the step made goes at its end, but the prediction and what backward reads */
    aur__fwd *F = aur__fwd_begin(A, t, b);
    if (!F || aur__batch_transform_hook(t, F->c, F->in)) return NULL;
    if (aur__fwd_inputs(F) || aur__clamp_positive_inputs(F) || aur__pre_encoder_hook(F)) return NULL;
    aur_tensor *x = aur__perceiver3d_encoder(F);
    x = aur__swin3d_backbone(F, x);
    aur__decoded *d = (aur__decoded *)aur_tape_alloc(t, sizeof *d);
    if (!x || !d || aur__perceiver3d_decoder(F, x, d) || aur__post_decoder_hook(F, d)) return NULL;
    aur_batch *p = aur__fwd_outputs(F, d);
    if (p) aur__keep_batch(t, scope, p);
    return p;
}

/* Ends the forward's scope keeping the prediction's tensors. */
static void aur__keep_batch(aur_tape *t, aur_scope scope, const aur_batch *p)
{
    aur_tensor *keep[3 * AUR_MAX_VARS];
    int n = 0;
    for (int i = 0; i < p->surf_names.n; i++) keep[n++] = p->surf[i];
    for (int i = 0; i < p->static_names.n; i++) keep[n++] = p->statics[i];
    for (int i = 0; i < p->atmos_names.n; i++) keep[n++] = p->atmos[i];
    aur_scope_end(t, scope, keep, n);
}

/* The LoRA set a step uses (aurora/model/lora.py: LoRARollout), or -1. */
static int aur__lora_set(const aur_aurora_config *c, int step)
{
    if (!c->use_lora || step >= c->lora_steps) return -1;
    if (c->lora_mode == AUR_LORA_SINGLE) return 0;
    if (c->lora_mode == AUR_LORA_FROM_SECOND) return step >= 1 ? 0 : -1;
    return step;
}

/* The working state, in the step's arena, with a copy of the batch struct the hooks may change. */
static aur__fwd *aur__fwd_begin(aur__aurora *A, aur_tape *t, const aur_batch *b)
{
    const aur_aurora_config *c = &A->cfg;
    if (c->drop_rate > 0 && t->training) /* (aur_tape_set_training(t, 0) evaluates with it) */
        return aur__err(AUR_EUNSUPPORTED, "Aurora: drop_rate > 0 in training mode needs attention-weight dropout, not implemented"),
               (aur__fwd *)NULL;
    aur__fwd *F = (aur__fwd *)aur_tape_alloc(t, sizeof *F);
    aur_batch *w = (aur_batch *)aur_tape_alloc(t, sizeof *w);
    if (!F || !w) return NULL;
    memset(F, 0, sizeof *F);
    *w = *b;
    w->owns_tensors = 0;
    F->A = A, F->t = t, F->c = c, F->in = w;
    F->D = c->embed_dim, F->Ld = c->latent_levels;
    F->step = b->rollout_step;
    F->lora_set = aur__lora_set(c, F->step);
    return F;
}

/* ---- bands of patch rows ----
   The encoder and the decoder work patch by patch, so a large grid goes
   through them in bands of patch rows, one after another: only a band's
   activations exist at a time in a checkpointed module (and a band's
   temporaries in a plain one). A grid of up to AUR__BAND_FLOATS floats per
   unit (B L C width) is one band, so small grids run as before
   (cfg.band_floats sets another size). */
#define AUR__BAND_FLOATS ((int64_t)1 << 23)

/* How many bands a module with `per_patch` floats per patch (C levels x its
   width) takes the grid in, each of *rows patch rows but the last; at most
   1024 (-1 with an error naming the module). */
static int aur__bands(const aur__fwd *F, int64_t per_patch, const char *module, int *rows)
{
    int64_t band = F->c->band_floats > 0 ? (int64_t)F->c->band_floats : AUR__BAND_FLOATS;
    int64_t row = (int64_t)F->B * F->w * per_patch, r = row ? band / row : F->h;
    *rows = r < 1 ? 1 : r > F->h ? F->h : (int)r;
    int n = (F->h + *rows - 1) / *rows;
    if (n > 1024) return aur__err(AUR_EINVAL, "%s: %d bands of patch rows (at most 1024)", module, n), -1;
    return n;
}

/* The working state of band k, patch rows [k rows, k rows + its rows) (whose
   tokens the caller slices out): the same step on a shorter grid. */
static aur__fwd *aur__fwd_band(const aur__fwd *F, int k, int rows)
{
    aur__fwd *G = (aur__fwd *)aur_tape_alloc(F->t, sizeof *G); /* lives until backward (checkpoints keep it) */
    if (!G) return NULL;
    *G = *F;
    G->h = F->h - k * rows < rows ? F->h - k * rows : rows;
    G->H = G->h * F->P, G->L = (int64_t)G->h * F->w;
    return G;
}

/* A probe sees a named intermediate with the step's rollout_step (test hook). */
static void aur__probe(const aur__fwd *F, const char *name, const aur_tensor *x)
{
    if (F->A->probe && x) F->A->probe(F->A->probe_ctx, name, F->step, x);
}

/* ---- inputs: normalise and crop (aurora/batch.py: Batch.normalise, Batch.crop;
   aurora/normalisation.py) ---- */

/* x, a constant made on the host, on device dev: itself on the CPU, a copy in the step's arena on a GPU. */
static aur_tensor *aur__on(aur_tape *t, aur_tensor *x, aur_device dev)
{
    return !x || dev == AUR_CPU ? x : aur_to_device(t, x, dev);
}

static aur_tensor *aur__norm1(aur_tape *t, aur_tensor *x, double loc, double scale, int inverse)
{
    if (!x) return NULL;
    aur_tensor *flat = aur_reshape(t, x, aur_shape2(1, x->numel));
    return aur_reshape(t, aur_normalise(t, flat, 0, &loc, &scale, inverse), aur_tensor_shape(x));
}

/* Normalises a surface/static variable (or inverts it). */
static aur_tensor *aur__norm_surf(const aur__fwd *F, aur_tensor *x, const char *v, int inverse)
{
    double loc = 0, scale = 1;
    if (aur__surf_stats(F->A, v, &loc, &scale)) return NULL;
    return aur__norm1(F->t, x, loc, scale, inverse);
}

/* Normalises an atmospheric variable (..., C, H, W) per level. */
static aur_tensor *aur__norm_atmos(const aur__fwd *F, aur_tensor *x, const char *v, int inverse)
{
    double loc[AUR_MAX_LEVELS], scale[AUR_MAX_LEVELS];
    if (!x || aur__atmos_stats(F->A, v, F->levels, F->C, loc, scale)) return NULL;
    return aur_normalise(F->t, x, x->ndim - 3, loc, scale, inverse);
}

/* Drops the last latitude row when H0 % P == 1. */
static aur_tensor *aur__crop_rows(aur_tape *t, aur_tensor *x, int H)
{
    if (!x || x->shape[x->ndim - 2] == H) return x;
    return aur_slice(t, x, x->ndim - 2, 0, H);
}

static int aur__check_names(const aur_var_list *have, const aur_var_list *model, const char *what)
{
    for (int i = 0; i < have->n; i++)
        if (aur__vl_find(model, have->name[i]) < 0)
            return aur__err(AUR_EINVAL, "the batch has %s variable '%s', which the model has no weights for\n"
                            "---> HINT: add it to the config's %s_vars (and register its statistics)", what, have->name[i], what);
    return 0;
}

/* The sizes, checked against the model. */
static int aur__fwd_sizes(aur__fwd *F, const aur_batch *b)
{
    const aur_aurora_config *c = F->c;
    int P = c->patch_size, H0 = b->H;
    /* surface names are checked after the Wave hooks, which rename them */
    if ((!c->wave && aur__check_names(&b->surf_names, &c->surf_vars, "surf")) || aur__check_names(&b->static_names, &c->static_vars, "static") ||
        aur__check_names(&b->atmos_names, &c->atmos_vars, "atmos") || aur__check_coords(b))
        return AUR_EINVAL;
    if (b->W % P) return aur__err(AUR_ESHAPE, "batch: width %d is not a multiple of the patch size %d", b->W, P);
    if (H0 % P > 1) return aur__err(AUR_ESHAPE, "batch: height %d is more than one row off a multiple of the patch size %d", H0, P);
    if (H0 % P == 1 && b->lon_2d) return aur__err(AUR_EUNSUPPORTED, "batch: cropping a 2-D longitude grid (H %% P == 1) is ambiguous in the reference");
    if (b->T > c->max_history_size) return aur__err(AUR_ESHAPE, "batch: history %d is longer than max_history_size %d", b->T, c->max_history_size);
    if (b->atmos_names.n && b->C < 1) return aur__err(AUR_ESHAPE, "batch: atmospheric variables without pressure levels");
    for (int i = 0; i < b->B; i++)
        if (!isfinite(b->time[i])) return aur__err(AUR_EINVAL, "batch: element %d has no time (set batch->time[%d] to UTC Unix seconds)", i, i);
    F->B = b->B, F->T = b->T, F->C = b->C, F->W = b->W, F->P = P;
    F->H = H0 - H0 % P;
    F->h = F->H / P, F->w = F->W / P, F->L = (int64_t)F->h * F->w;
    memcpy(F->levels, b->levels, sizeof F->levels);
    return 0;
}

/* The lead time's encoding (the same for every sample). */
static int aur__lead_time_encoding(aur__fwd *F)
{
    F->lead_enc = (float *)aur_tape_alloc(F->t, sizeof(float) * (size_t)F->B * (size_t)F->D);
    if (!F->lead_enc) return AUR_ENOMEM;
    double hours = (double)(float)(F->c->timestep_seconds / 3600.0);
    /* fourier.py: lead_time_expansion, from a minute to three weeks */
    if (aur__fourier(&hours, 1, 1.0 / 60, 24 * 7 * 3, F->D, 1, F->lead_enc, "lead time")) return AUR_EINVAL;
    for (int i = 1; i < F->B; i++) memcpy(F->lead_enc + (int64_t)i * F->D, F->lead_enc, sizeof(float) * (size_t)F->D);
    return 0;
}

/* Brings the batch to the model's device, normalised and cropped to whole patches. */
static int aur__fwd_inputs(aur__fwd *F)
{
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    if (aur__fwd_sizes(F, b)) return AUR_EINVAL;
    aur_device dev = F->A->m->device;
    for (int i = 0; i < b->surf_names.n; i++)
        F->surf[i] = aur__crop_rows(t, aur__norm_surf(F, aur__on(t, b->surf[i], dev), b->surf_names.name[i], 0), F->H);
    for (int i = 0; i < b->static_names.n; i++)
        F->statics[i] = aur__crop_rows(t, aur__norm_surf(F, aur__on(t, b->statics[i], dev), b->static_names.name[i], 0), F->H);
    for (int i = 0; i < b->atmos_names.n; i++)
        F->atmos[i] = aur__crop_rows(t, aur__norm_atmos(F, aur__on(t, b->atmos[i], dev), b->atmos_names.name[i], 0), F->H);
    for (int i = 0; i < b->surf_names.n; i++)
        if (!F->surf[i]) return AUR_EINVAL;
    for (int i = 0; i < b->static_names.n; i++)
        if (!F->statics[i]) return AUR_EINVAL;
    for (int i = 0; i < b->atmos_names.n; i++)
        if (!F->atmos[i]) return AUR_EINVAL;
    return aur__lead_time_encoding(F);
}

/* x clamped at 0 when v is one of the positive variables. */
static aur_tensor *aur__clamp_if_positive(aur_tape *t, aur_tensor *x, const char *v, const aur_var_list *positive)
{
    return aur__vl_find(positive, v) < 0 ? x : aur_clamp(t, x, 0, INFINITY);
}

/* The encoder's inputs start as the batch with its positive variables clamped at 0. */
static int aur__clamp_positive_inputs(aur__fwd *F)
{
    const aur_batch *b = F->in;
    for (int i = 0; i < b->surf_names.n; i++)
        if (!(F->enc_surf[i] = aur__clamp_if_positive(F->t, F->surf[i], b->surf_names.name[i], &F->c->positive_surf_vars))) return AUR_EINVAL;
    for (int i = 0; i < b->atmos_names.n; i++)
        if (!(F->enc_atmos[i] = aur__clamp_if_positive(F->t, F->atmos[i], b->atmos_names.name[i], &F->c->positive_atmos_vars))) return AUR_EINVAL;
    return 0;
}

/* ---- outputs: clamp positive variables, unnormalise ---- */

/* The prediction batch on the tape: the batch's cropped grid, levels and names, the next step's time. */
static aur_batch *aur__pred_shell(const aur__fwd *F, const aur_var_list *surf_names)
{
    aur_batch *p = aur__batch_like(F->t, F->in, 1, F->H);
    if (!p) return NULL;
    for (int i = 0; i < F->B; i++) p->time[i] += F->c->timestep_seconds;
    p->rollout_step++;
    p->surf_names = *surf_names;
    return p;
}

/* The prediction in physical units, with its history axis; positive variables
   are clamped from the second step on (or from the first with clamp_at_first_step). */
static aur_batch *aur__fwd_outputs(aur__fwd *F, const aur__decoded *d)
{
    const aur_aurora_config *c = F->c;
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    aur_batch *p = aur__pred_shell(F, &d->surf_names);
    if (!p) return NULL;
    int clamp = p->rollout_step > 1 || c->clamp_at_first_step;
    for (int i = 0; i < d->surf_names.n; i++) {
        const char *v = d->surf_names.name[i];
        aur_tensor *y = aur_reshape(t, d->surf[i], aur_shape4(F->B, 1, F->H, F->W));
        if (clamp) y = aur__clamp_if_positive(t, y, v, &c->positive_surf_vars);
        if (!(p->surf[i] = aur__norm_surf(F, y, v, 1))) return NULL;
    }
    for (int i = 0; i < b->atmos_names.n; i++) {
        const char *v = b->atmos_names.name[i];
        aur_tensor *y = aur_reshape(t, d->atmos[i], aur_shape5(F->B, 1, F->C, F->H, F->W));
        if (clamp) y = aur__clamp_if_positive(t, y, v, &c->positive_atmos_vars);
        if (!(p->atmos[i] = aur__norm_atmos(F, y, v, 1))) return NULL;
    }
    for (int i = 0; i < b->static_names.n; i++) /* normalised then unnormalised, as the reference returns them */
        if (!(p->statics[i] = aur__norm_surf(F, F->statics[i], b->static_names.name[i], 1))) return NULL;
    return p;
}
