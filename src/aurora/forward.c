#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: forward ==== */

/* One forward call's working state. */
typedef struct aur__fwd {
    aur__aurora *A;
    aur_tape *t;
    const aur_aurora_config *c;
    int B, T, C, H, W, h, w, P, D, Ld;
    int64_t L;
    int step;      /* rollout_step of the input batch */
    int lora_set;  /* which LoRA set this step uses, or -1 */
    const aur_batch *in;
    /* normalised and cropped inputs */
    aur_tensor *surf[AUR_MAX_VARS], *statics[AUR_MAX_VARS], *atmos[AUR_MAX_VARS];
    double levels[AUR_MAX_LEVELS];
    float *lat, *lon; /* cropped */
    float *lead_enc;  /* (B, D) */
} aur__fwd;

/* A parameter by formatted name, or NULL with an error naming it. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static aur_tensor *aur__P(const aur__fwd *F, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int i = aur__index_find(F->A->m, name);
    if (i < 0) {
        aur__err(AUR_EINVAL, "Aurora: no parameter '%s'", name);
        return NULL;
    }
    return F->A->m->params[i];
}

/* x, a constant made on the host, on device dev: itself on the CPU, a copy in the step's arena on a GPU. */
static aur_tensor *aur__on(aur_tape *t, aur_tensor *x, aur_device dev)
{
    return !x || dev == AUR_CPU ? x : aur_to_device(t, x, dev);
}

/* A constant tensor in the arena from host floats (no gradient), on dev. */
static aur_tensor *aur__const(aur_tape *t, aur_device dev, aur_shape s, const float *v)
{
    aur_tensor *x = aur__tensor(t, AUR_F32, AUR_CPU, s);
    if (x)
        for (int64_t i = 0; i < x->numel; i++) aur__wr(x)[i] = (aur_real)v[i];
    return aur__on(t, x, dev);
}

/* A constant view of a table the model keeps (cached masks, DFT matrices), on the model's device. */
static aur_tensor *aur__const_view(aur_tape *t, aur_model *m, aur_shape s, const aur_real *data)
{
    aur_tensor *x = (aur_tensor *)aur__alloc(t, AUR_CPU, sizeof *x);
    if (!x) return NULL;
    aur__tensor_init(x, AUR_F32, m->device, s);
    x->data = (void *)aur__mirror_of(m, data, sizeof(aur_real) * (size_t)aur_shape_numel(s));
    return x->data ? x : NULL;
}

/* A linear module by name; a PEFT-style adapter on it (lora.h) applies too. */
static aur_tensor *aur__lin(const aur__fwd *F, aur_tensor *x, const char *prefix, int bias)
{
    return aur_model_linear(F->t, F->A->m, prefix, x, bias);
}

static aur_tensor *aur__ln(const aur__fwd *F, aur_tensor *x, const char *prefix, double eps)
{
    aur_tensor *w = aur__P(F, "%s.weight", prefix), *b = aur__P(F, "%s.bias", prefix);
    return w && b ? aur_layernorm(F->t, x, w, b, eps) : NULL;
}

/* Linear -> GELU -> Linear (-> dropout): the MLPs of the Perceivers and the surface path. */
static aur_tensor *aur__mlp(const aur__fwd *F, aur_tensor *x, const char *fc1, const char *fc2)
{
    aur_tensor *h = aur_gelu(F->t, aur__lin(F, x, fc1, 1));
    h = aur_dropout(F->t, h, F->c->drop_rate);
    return aur_dropout(F->t, aur__lin(F, h, fc2, 1), F->c->drop_rate);
}

/* (N, L, nh*hd) -> (N, nh, L, hd) and back. */
static aur_tensor *aur__split_heads(aur_tape *t, aur_tensor *x, int nh)
{
    if (!x) return NULL;
    static const int perm[4] = {0, 2, 1, 3};
    int64_t N = x->shape[0], L = x->shape[1], hd = x->shape[2] / nh;
    return aur_permute(t, aur_reshape(t, x, aur_shape4(N, L, nh, hd)), perm);
}

static aur_tensor *aur__merge_heads(aur_tape *t, aur_tensor *x)
{
    if (!x) return NULL;
    static const int perm[4] = {0, 2, 1, 3};
    int64_t N = x->shape[0], nh = x->shape[1], L = x->shape[2], hd = x->shape[3];
    return aur_reshape(t, aur_permute(t, x, perm), aur_shape3(N, L, nh * hd));
}

/* PerceiverResampler (§3.4): queries Q (N, Lq, dim) attend to context X (N, Lc, dim). */
static aur_tensor *aur__perceiver(const aur__fwd *F, const char *prefix, aur_tensor *Q, aur_tensor *X, int depth, int ln_kq, double eps)
{
    char p[256], p2[256];
    aur_tape *t = F->t;
    int nh = F->c->num_heads;
    for (int k = 0; k < depth && Q; k++) {
        snprintf(p, sizeof p, "%s.layers.%d.0.to_q", prefix, k);
        aur_tensor *q = aur__lin(F, Q, p, 0);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_kv", prefix, k);
        aur_tensor *kv = aur__lin(F, X, p, 0);
        int64_t inner = q ? q->shape[2] : 0;
        aur_tensor *kk = aur_slice(t, kv, -1, 0, inner), *vv = aur_slice(t, kv, -1, inner, inner);
        if (ln_kq && k == 0) { /* before the head split, eps 1e-5 */
            snprintf(p, sizeof p, "%s.layers.0.0.ln_k", prefix);
            kk = aur__ln(F, kk, p, 1e-5);
            snprintf(p, sizeof p, "%s.layers.0.0.ln_q", prefix);
            q = aur__ln(F, q, p, 1e-5);
        }
        aur_tensor *o = aur_sdpa(t, aur__split_heads(t, q, nh), aur__split_heads(t, kk, nh), aur__split_heads(t, vv, nh), NULL, 0);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_out", prefix, k);
        o = aur__lin(F, aur__merge_heads(t, o), p, 0);
        snprintf(p, sizeof p, "%s.layers.%d.2", prefix, k);
        Q = aur_add(t, aur__ln(F, o, p, eps), Q); /* post-norm residuals */
        snprintf(p, sizeof p, "%s.layers.%d.1.net.0", prefix, k);
        snprintf(p2, sizeof p2, "%s.layers.%d.1.net.2", prefix, k);
        aur_tensor *h = aur__mlp(F, Q, p, p2);
        snprintf(p, sizeof p, "%s.layers.%d.3", prefix, k);
        Q = aur_add(t, aur__ln(F, h, p, eps), Q);
    }
    return Q;
}

/* ---- inputs: normalise and crop (§2.2, §2.3) ---- */

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

static int aur__fwd_inputs(aur__fwd *F, const aur_batch *b)
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
    aur_device dev = F->A->m->device; /* the batch comes to the model's device */
    for (int i = 0; i < b->surf_names.n; i++)
        F->surf[i] = aur__crop_rows(F->t, aur__norm_surf(F, aur__on(F->t, b->surf[i], dev), b->surf_names.name[i], 0), F->H);
    for (int i = 0; i < b->static_names.n; i++)
        F->statics[i] = aur__crop_rows(F->t, aur__norm_surf(F, aur__on(F->t, b->statics[i], dev), b->static_names.name[i], 0), F->H);
    for (int i = 0; i < b->atmos_names.n; i++)
        F->atmos[i] = aur__crop_rows(F->t, aur__norm_atmos(F, aur__on(F->t, b->atmos[i], dev), b->atmos_names.name[i], 0), F->H);
    for (int i = 0; i < b->surf_names.n; i++)
        if (!F->surf[i]) return AUR_EINVAL;
    for (int i = 0; i < b->static_names.n; i++)
        if (!F->statics[i]) return AUR_EINVAL;
    for (int i = 0; i < b->atmos_names.n; i++)
        if (!F->atmos[i]) return AUR_EINVAL;
    return 0;
}

/* ---- encoder (§3) ---- */

/* LevelPatchEmbed (§3.2): x (N, V*T, H, W) with the kernels of names -> (N, L, D). */
static aur_tensor *aur__patch_embed(const aur__fwd *F, aur_tensor *x, const char *prefix, const aur_var_list *names)
{
    aur_tape *t = F->t;
    int64_t N = x ? x->shape[0] : 0, V = names->n, T = F->T, P = F->P;
    static const int perm[6] = {0, 2, 4, 1, 3, 5};
    int64_t s6[6] = {N, V * T, F->h, P, F->w, P};
    aur_tensor *xp = aur_permute(t, aur_reshape(t, x, aur_shapev(6, s6)), perm); /* (N, h, w, V*T, P, P) */
    xp = aur_reshape(t, xp, aur_shape3(N, F->L, V * T * P * P));
    aur_tensor *kernels[AUR_MAX_VARS * 2];
    for (int v = 0; v < V; v++) { /* the first T history slices of each kernel */
        aur_tensor *k = aur__P(F, "%s.weights.%s", prefix, names->name[v]);
        kernels[v] = aur_slice(t, k, 2, 0, T);
        if (!kernels[v]) return NULL;
    }
    aur_tensor *K = aur_reshape(t, aur_concat(t, kernels, (int)V, 1), aur_shape2(F->D, V * T * P * P));
    return aur_linear(t, xp, K, aur__P(F, "%s.bias", prefix));
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

/* The dynamic variables of AuroraAirPollution for each batch element (§8.4). */
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

/* AuroraAirPollution's pre-encoder transform of a positive variable z (§8.4):
   Linear_v([clamp(z, 0, 2.5), (ln(max(z, 1e-4)) - ln(1e-4)) / -ln(1e-4)]). */
static aur_tensor *aur__feature_combine(const aur__fwd *F, aur_tensor *z, const char *group, const char *v)
{
    aur_tape *t = F->t;
    char p[160];
    if (!z) return NULL;
    aur_shape s = aur_tensor_shape(z), s1 = s;
    s1.d[s1.ndim++] = 1;
    aur_tensor *f1 = aur_clamp(t, z, 0, 2.5);
    aur_tensor *f2 = aur__norm1(t, aur_log(t, aur_clamp(t, z, 1e-4, INFINITY)), log(1e-4), -log(1e-4), 0);
    aur_tensor *both[2] = {aur_reshape(t, f1, s1), aur_reshape(t, f2, s1)};
    snprintf(p, sizeof p, "%s_feature_combiner.%s", group, v);
    return aur_reshape(t, aur__lin(F, aur_concat(t, both, 2, -1), p, 1), s);
}

/* The encoder input of a surface or atmospheric variable: clamped if positive,
   then AuroraAirPollution's feature combiner where it has one. */
static aur_tensor *aur__encoder_input(const aur__fwd *F, aur_tensor *x, const char *v, const aur_var_list *positive, const char *group)
{
    if (aur__vl_find(positive, v) < 0) return x;
    x = aur_clamp(F->t, x, 0, INFINITY);
    return F->c->air_pollution ? aur__feature_combine(F, x, group, v) : x;
}

/* Encoder surface inputs (B, T, H, W) in the kernels' order: surface, statics, dynamic. */
static int aur__surface_inputs(const aur__fwd *F, aur_tensor **xs, aur_var_list *names)
{
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    *names = b->surf_names;
    int V = 0;
    for (int i = 0; i < b->surf_names.n; i++) xs[V++] = aur__encoder_input(F, F->surf[i], b->surf_names.name[i], &F->c->positive_surf_vars, "surf");
    for (int i = 0; i < b->static_names.n; i++) {
        xs[V++] = aur_expand(t, F->statics[i], aur_shape4(F->B, F->T, F->H, F->W));
        aur__vl_add(names, b->static_names.name[i]);
    }
    for (int k = 0; F->c->dynamic_vars && k < 6; k++) {
        aur_tensor *x = aur_tensor_new(t, AUR_CPU, aur_shape4(F->B, F->T, F->H, F->W));
        if (!x) return AUR_ENOMEM;
        for (int bi = 0; bi < F->B; bi++) {
            double v = 0;
            if (aur__dynamic_value(b->time[bi], k, &v)) return AUR_EINVAL;
            for (int64_t i = 0; i < (int64_t)F->T * F->H * F->W; i++) aur__wr(x)[bi * (int64_t)F->T * F->H * F->W + i] = (aur_real)(float)v;
        }
        xs[V++] = aur__on(t, x, F->A->m->device);
        aur__vl_add(names, aur__dynamic_names[k]);
    }
    return 0;
}

/* Encoder atmospheric inputs (B, T, C, H, W): the variables, then the statics as static_{s} (§3.3). */
static int aur__atmos_inputs(const aur__fwd *F, aur_tensor *const *surf_in, const aur_var_list *surf_names, aur_tensor **xs,
                             aur_var_list *names)
{
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    char name[AUR_NAME_LEN + 8];
    *names = b->atmos_names;
    int V = 0;
    for (int i = 0; i < b->atmos_names.n; i++)
        xs[V++] = aur__encoder_input(F, F->atmos[i], b->atmos_names.name[i], &F->c->positive_atmos_vars, "atmos");
    int z = aur__vl_find(&b->atmos_names, "z");
    for (int i = b->surf_names.n; F->c->atmos_static_vars && i < surf_names->n; i++) {
        snprintf(name, sizeof name, "static_%s", surf_names->name[i]);
        aur__vl_add(names, name);
        aur_tensor *s = aur_reshape(t, surf_in[i], aur_shape5(F->B, F->T, 1, F->H, F->W));
        xs[V] = aur_expand(t, s, aur_shape5(F->B, F->T, F->C, F->H, F->W));
        if (F->c->simulate_indexing_bug && z >= 0 && !strcmp(name, "static_z")) xs[V] = xs[z]; /* the reference feeds atmospheric z here */
        V++;
    }
    return 0;
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

static aur_tensor *aur__encoder(aur__fwd *F)
{
    const aur_aurora_config *c = F->c;
    aur__aurora *A = F->A;
    aur_tape *t = F->t;
    const int B = F->B, C = F->C, D = F->D, Ld = F->Ld;
    const int64_t L = F->L;
    aur_tensor *sx[AUR_MAX_VARS * 2], *ax[AUR_MAX_VARS * 3];
    aur_var_list snames, anames;
    if (aur__surface_inputs(F, sx, &snames) || aur__atmos_inputs(F, sx, &snames, ax, &anames)) return NULL;

    /* 1-5: surface tokens */
    aur_tensor *xs = aur__patch_embed(F, aur__stack_vars(t, sx, snames.n), "encoder.surf_token_embeds", &snames);
    aur__probe(A, "encoder/surf_patch_embed", xs);
    xs = aur_add(t, xs, aur__P(F, "encoder.surf_level_encoding"));
    xs = aur_add(t, xs, aur__ln(F, aur__mlp(F, xs, "encoder.surf_mlp.net.0", "encoder.surf_mlp.net.2"), "encoder.surf_norm", 1e-5));

    /* 3: atmospheric tokens (B, C, L, D), per level with level_condition */
    aur_tensor *xa;
    if (!c->n_level_condition) {
        xa = aur__patch_embed(F, aur__atmos_stack(t, ax, anames.n, -1), "encoder.atmos_token_embeds", &anames);
        aur__probe(A, "encoder/atmos_patch_embed", xa);
    } else {
        aur_tensor *per[AUR_MAX_LEVELS];
        char prefix[128], lv[32];
        for (int l = 0; l < C; l++) {
            aur_level_to_str(F->levels[l], lv, sizeof lv);
            snprintf(prefix, sizeof prefix, "encoder.atmos_token_embeds.layers.%s", lv);
            per[l] = aur_reshape(t, aur__patch_embed(F, aur__atmos_stack(t, ax, anames.n, l), prefix, &anames), aur_shape4(B, 1, L, D));
            if (!per[l]) return NULL;
        }
        xa = aur_concat(t, per, C, 1);
    }
    xa = aur_reshape(t, xa, aur_shape4(B, C, L, D));

    /* 6: level encodings */
    double lev_in[AUR_MAX_LEVELS];
    float *enc = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(C * D + 1));
    aur__levels_input(F->levels, C, lev_in);
    if (!enc || aur__fourier(lev_in, C, 0.01, 1e5, D, 1, enc, "level")) return NULL;
    aur_tensor *lev = aur__const(t, F->A->m->device, aur_shape2(C, D), enc);
    aur__probe(A, "encoder/levels_encode", lev);
    lev = aur__lin(F, lev, "encoder.atmos_levels_embed", 1);
    xa = aur_add(t, xa, aur_reshape(t, lev, aur_shape4(1, C, 1, D)));

    /* 7: level aggregation, B*L independent problems */
    static const int blcd[4] = {0, 2, 1, 3};
    aur_tensor *ctx = aur_reshape(t, aur_permute(t, xa, blcd), aur_shape3((int64_t)B * L, C, D));
    aur_tensor *lat = aur_reshape(t, aur__P(F, "encoder.atmos_latents"), aur_shape3(1, Ld - 1, D));
    aur_tensor *agg = aur__perceiver(F, "encoder.level_agg", aur_expand(t, lat, aur_shape3((int64_t)B * L, Ld - 1, D)), ctx,
                                     c->enc_depth, c->stabilise_level_agg, c->perceiver_ln_eps);
    aur__probe(A, "encoder/level_agg_out", agg);
    agg = aur_permute(t, aur_reshape(t, agg, aur_shape4(B, L, Ld - 1, D)), blcd);

    /* 8-9: stack the latent levels; add position and scale encodings */
    aur_tensor *parts[2] = {aur_reshape(t, xs, aur_shape4(B, 1, L, D)), agg};
    aur_tensor *x = aur_concat(t, parts, 2, 1);
    float *pos = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(2 * L * D));
    if (!x || !pos) return NULL;
    float *scl = pos + L * D;
    aur_batch crop = *F->in; /* the cropped grid */
    crop.H = F->H;
    crop.lat = F->lat;
    crop.lon = F->lon;
    if (aur__patch_encodings(&crop, F->H, F->W, F->P, D, pos, scl)) return NULL;
    aur__probe(A, "encoder/pos_encode", aur__const(t, F->A->m->device, aur_shape2(L, D), pos));
    aur__probe(A, "encoder/scale_encode", aur__const(t, F->A->m->device, aur_shape2(L, D), scl));
    if (A->pos_override) {
        if (A->override_L != L) {
            aur__err(AUR_ESHAPE, "Aurora: override encodings have %lld patches, the grid has %lld", (long long)A->override_L, (long long)L);
            return NULL;
        }
        pos = A->pos_override;
        scl = A->scale_override;
    }
    x = aur_add(t, x, aur__lin(F, aur__const(t, F->A->m->device, aur_shape2(L, D), pos), "encoder.pos_embed", 1));
    x = aur_add(t, x, aur__lin(F, aur__const(t, F->A->m->device, aur_shape2(L, D), scl), "encoder.scale_embed", 1));
    x = aur_reshape(t, x, aur_shape3(B, Ld * L, D));

    /* 11-13: lead time and absolute time, then dropout */
    aur_tensor *lead = aur__const(t, F->A->m->device, aur_shape2(B, D), F->lead_enc);
    aur__probe(A, "encoder/lead_time_encode", lead);
    x = aur_add(t, x, aur_reshape(t, aur__lin(F, lead, "encoder.lead_time_embed", 1), aur_shape3(B, 1, D)));
    double hours[4096];
    float *abs_enc = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(B * D));
    if (!abs_enc || B > 4096) return NULL;
    for (int i = 0; i < B; i++) hours[i] = (double)(float)(F->in->time[i] / 3600.0);
    if (aur__fourier(hours, B, 1, 24 * 365.25, D, 0, abs_enc, "absolute time")) return NULL;
    aur_tensor *abst = aur__const(t, F->A->m->device, aur_shape2(B, D), abs_enc);
    aur__probe(A, "encoder/absolute_time_encode", abst);
    x = aur_add(t, x, aur_reshape(t, aur__lin(F, abst, "encoder.absolute_time_embed", 1), aur_shape3(B, 1, D)));
    x = aur_dropout(t, x, c->drop_rate);
    aur__probe(A, "encoder_out", x);
    return x;
}

/* ---- backbone (§5) ---- */

/* Everything a Swin block needs; allocated in the arena so that a
   checkpointed block can be recomputed during backward. */
typedef struct aur__block_ctx {
    const aur__fwd *F;
    char prefix[96];
    int64_t res[3], d;
    int heads, shifted, lora_set;
    double drop_path;
} aur__block_ctx;

/* AdaptiveLayerNorm (§5.3): LN(y) * scale + shift, (shift, scale) = Linear(SiLU(c)). */
static aur_tensor *aur__aln(const aur__fwd *F, aur_tensor *y, aur_tensor *c, const char *prefix, int64_t d)
{
    aur_tape *t = F->t;
    aur_tensor *m = aur__lin(F, aur_silu(t, c), prefix, 1);
    int64_t B = c ? c->shape[0] : 0;
    aur_tensor *shift = aur_reshape(t, aur_slice(t, m, -1, 0, d), aur_shape3(B, 1, d));
    aur_tensor *scale = aur_reshape(t, aur_slice(t, m, -1, d, d), aur_shape3(B, 1, d));
    return aur_add(t, aur_mul(t, aur_layernorm(t, y, NULL, NULL, 1e-5), scale), shift);
}

/* x W^T + b + LoRA: (x A^T) B^T, scaling alpha/r = 1. */
static aur_tensor *aur__lin_lora(const aur__fwd *F, aur_tensor *x, const char *prefix, const char *lora, int set)
{
    aur_tensor *y = aur__lin(F, x, prefix, 1);
    if (set < 0) return y;
    aur_tensor *a = aur__P(F, "%s.loras.%d.lora_A", lora, set), *b = aur__P(F, "%s.loras.%d.lora_B", lora, set);
    if (!a || !b) return NULL;
    return aur_add(F->t, y, aur_linear(F->t, aur_linear(F->t, x, a, NULL), b, NULL));
}

/* Stochastic depth: the branch of each sample is dropped with probability p. */
static aur_tensor *aur__drop_path(aur_tape *t, aur_tensor *x, double p)
{
    if (!x || p == 0 || !t->training) return x;
    aur_tensor *ones = aur_tensor_new(t, AUR_CPU, aur_shape3(x->shape[0], 1, 1));
    if (!ones) return NULL;
    for (int64_t i = 0; i < ones->numel; i++) aur__wr(ones)[i] = 1;
    return aur_mul(t, x, aur_dropout(t, aur__on(t, ones, x->device), p));
}

/* Swin3DTransformerBlock (§5.3): in[0] = x (B, N, d), in[1] = c (B, D). */
static aur_tensor *aur__swin_block(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__block_ctx *k = (const aur__block_ctx *)ctx;
    const aur__fwd *F = k->F;
    aur_tensor *x = in[0], *c = in[1];
    char p[160], lora[160];
    (void)n_in;
    aur__layout *lay = aur__windows(F->A, k->res, F->c->window_size, k->shifted);
    if (!x || !lay) return NULL;
    const int64_t B = x->shape[0], N = x->shape[1], d = k->d, nh = k->heads, hd = d / nh, nw = lay->nwin, n = lay->n;
    aur_tensor *xw = aur__model_gather(t, F->A->m, x, B, d, &lay->fwd, aur_shape3(B * nw, n, d)); /* roll, pad, partition */
    snprintf(p, sizeof p, "%s.attn.qkv", k->prefix);
    snprintf(lora, sizeof lora, "%s.attn.lora_qkv", k->prefix);
    aur_tensor *qkv = aur__lin_lora(F, xw, p, lora, k->lora_set);
    static const int split[6] = {3, 0, 1, 4, 2, 5}; /* (B, nW, n, 3, nh, hd) -> (3, B, nW, nh, n, hd) */
    int64_t s6[6] = {B, nw, n, 3, nh, hd};
    qkv = aur_permute(t, aur_reshape(t, qkv, aur_shapev(6, s6)), split);
    aur_shape hs = aur_shape5(B, nw, nh, n, hd);
    aur_tensor *q = aur_reshape(t, aur_slice(t, qkv, 0, 0, 1), hs), *kk = aur_reshape(t, aur_slice(t, qkv, 0, 1, 1), hs);
    aur_tensor *v = aur_reshape(t, aur_slice(t, qkv, 0, 2, 1), hs);
    aur_tensor *mask = lay->mask ? aur__const_view(t, F->A->m, aur_shape4(nw, 1, n, n), lay->mask) : NULL; /* shared by the heads */
    aur_tensor *o = aur_sdpa(t, q, kk, v, mask, 0);
    static const int merge[5] = {0, 1, 3, 2, 4};
    o = aur_reshape(t, aur_permute(t, o, merge), aur_shape3(B * nw, n, d));
    snprintf(p, sizeof p, "%s.attn.proj", k->prefix);
    snprintf(lora, sizeof lora, "%s.attn.lora_proj", k->prefix);
    o = aur_dropout(t, aur__lin_lora(F, o, p, lora, k->lora_set), F->c->drop_rate);
    aur_tensor *a = aur__model_gather(t, F->A->m, o, B, d, &lay->back, aur_shape3(B, N, d)); /* reverse, crop, roll back */
    snprintf(p, sizeof p, "%s.norm1.ln_modulation.1", k->prefix);
    x = aur_add(t, x, aur__drop_path(t, aur__aln(F, a, c, p, d), k->drop_path));
    snprintf(p, sizeof p, "%s.mlp.fc1", k->prefix);
    snprintf(lora, sizeof lora, "%s.mlp.fc2", k->prefix);
    aur_tensor *h = aur__mlp(F, x, p, lora);
    snprintf(p, sizeof p, "%s.norm2.ln_modulation.1", k->prefix);
    return aur_add(t, x, aur__drop_path(t, aur__aln(F, h, c, p, d), k->drop_path));
}

/* PatchMerging3D (§5.6). */
static aur_tensor *aur__merge(const aur__fwd *F, aur_tensor *x, const int64_t *res, const char *prefix)
{
    aur__layout *lay = aur__merge_layout(F->A, res);
    char p[160];
    if (!x || !lay) return NULL;
    int64_t B = x->shape[0], d = x->shape[2], n2 = lay->fwd.n_out / 4;
    aur_tensor *y = aur__model_gather(F->t, F->A->m, x, B, d, &lay->fwd, aur_shape3(B, n2, 4 * d));
    snprintf(p, sizeof p, "%s.norm", prefix);
    y = aur__ln(F, y, p, 1e-5);
    snprintf(p, sizeof p, "%s.reduction", prefix);
    return aur__lin(F, y, p, 0);
}

/* PatchSplitting3D (§5.7), cropping cH rows and cW columns. */
static aur_tensor *aur__split(const aur__fwd *F, aur_tensor *x, const int64_t *res, int64_t cH, int64_t cW, const char *prefix)
{
    aur__layout *lay = aur__split_layout(F->A, res, cH, cW);
    char p[160];
    if (!x || !lay) return NULL;
    int64_t B = x->shape[0], d = x->shape[2];
    snprintf(p, sizeof p, "%s.lin1", prefix);
    aur_tensor *y = aur_reshape(F->t, aur__lin(F, x, p, 0), aur_shape3(B, x->shape[1] * 4, d / 2));
    y = aur__model_gather(F->t, F->A->m, y, B, d / 2, &lay->fwd, aur_shape3(B, lay->fwd.n_out, d / 2));
    snprintf(p, sizeof p, "%s.norm", prefix);
    y = aur__ln(F, y, p, 1e-5);
    snprintf(p, sizeof p, "%s.lin2", prefix);
    return aur__lin(F, y, p, 0);
}

/* A stage's blocks; each block checkpointed if configured. */
static aur_tensor *aur__blocks(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                               const int64_t *res, int64_t d, const double *dpr)
{
    aur_tape *t = F->t;
    for (int j = 0; j < depth && x; j++) {
        aur__block_ctx *k = (aur__block_ctx *)aur_tape_alloc(t, sizeof *k);
        if (!k) return NULL;
        memset(k, 0, sizeof *k);
        k->F = F;
        snprintf(k->prefix, sizeof k->prefix, "%s.blocks.%d", layer, j);
        memcpy(k->res, res, sizeof k->res);
        k->d = d;
        k->heads = heads;
        k->shifted = j % 2;
        k->lora_set = F->lora_set;
        k->drop_path = dpr[j];
        aur_tensor *in[2] = {x, c};
        /* checkpointed blocks keep only their outputs; inference always does (nothing to recompute) */
        int segment = F->c->checkpoint_blocks || !t->grad_on;
        x = segment ? aur_checkpoint(t, aur__swin_block, k, in, 2) : aur__swin_block(t, k, in, 2);
    }
    return x;
}

static aur_tensor *aur__backbone(aur__fwd *F, aur_tensor *x)
{
    const aur_aurora_config *c = F->c;
    aur__aurora *A = F->A;
    aur_tape *t = F->t;
    const int S = c->n_stages, D = F->D;
    char name[96], layer[96];
    aur_tensor *cond = aur__lin(F, aur_silu(t, aur__lin(F, aur__const(t, F->A->m->device, aur_shape2(F->B, D), F->lead_enc), "backbone.time_mlp.0", 1)),
                                "backbone.time_mlp.2", 1);
    aur__probe(A, "backbone/time_cond", cond);
    int64_t res[AUR_MAX_STAGES][3], pad[AUR_MAX_STAGES][3];
    res[0][0] = F->Ld, res[0][1] = F->h, res[0][2] = F->w;
    for (int i = 1; i < S; i++) { /* the merges pad odd H and W; the level axis stays */
        pad[i - 1][0] = 0, pad[i - 1][1] = res[i - 1][1] % 2, pad[i - 1][2] = res[i - 1][2] % 2;
        res[i][0] = res[i - 1][0];
        res[i][1] = (res[i - 1][1] + pad[i - 1][1]) / 2;
        res[i][2] = (res[i - 1][2] + pad[i - 1][2]) / 2;
    }
    int total = 0;
    for (int i = 0; i < S; i++) total += c->encoder_depths[i];
    double *dpr = (double *)aur_tape_alloc(t, sizeof(double) * (size_t)(total + 1));
    if (!dpr) return NULL;
    for (int i = 0; i < total; i++) dpr[i] = total > 1 ? c->drop_path * i / (total - 1) : 0; /* linspace(0, drop_path) */
    int saved_autocast = t->autocast;
    t->autocast = c->autocast; /* only the backbone runs under autocast (§10) */
    aur_tensor *skip0 = NULL, *skips[AUR_MAX_STAGES] = {0};
    for (int i = 0, first = 0; i < S; first += c->encoder_depths[i], i++) {
        snprintf(layer, sizeof layer, "backbone.encoder_layers.%d", i);
        x = aur__blocks(F, x, cond, layer, c->encoder_depths[i], c->encoder_num_heads[i], res[i], (int64_t)D << i, dpr + first);
        skips[i] = x;
        snprintf(name, sizeof name, i < S - 1 ? "backbone/enc%d_blocks_out" : "backbone/enc%d_out", i);
        aur__probe(A, name, x);
        if (i == S - 1) break;
        snprintf(layer, sizeof layer, "backbone.encoder_layers.%d.downsample", i);
        x = aur__merge(F, x, res[i], layer);
        snprintf(name, sizeof name, "backbone/enc%d_resampled", i);
        aur__probe(A, name, x);
    }
    skip0 = skips[0];
    for (int i = 0, first = 0; i < S; first += c->decoder_depths[i], i++) {
        int k = S - 1 - i;
        snprintf(layer, sizeof layer, "backbone.decoder_layers.%d", i);
        x = aur__blocks(F, x, cond, layer, c->decoder_depths[i], c->decoder_num_heads[i], res[k], (int64_t)D << k, dpr + first);
        snprintf(name, sizeof name, i < S - 1 ? "backbone/dec%d_blocks_out" : "backbone/dec%d_out", i);
        aur__probe(A, name, x);
        if (i < S - 1) {
            snprintf(layer, sizeof layer, "backbone.decoder_layers.%d.upsample", i);
            x = aur__split(F, x, res[k], pad[k - 1][1], pad[k - 1][2], layer);
            snprintf(name, sizeof name, "backbone/dec%d_resampled", i);
            aur__probe(A, name, x);
        }
        if (i > 0 && i < S - 1) x = aur_add(t, x, skips[k - 1]);
        if (i == S - 1) {
            aur_tensor *cat[2] = {x, skip0};
            x = aur_concat(t, cat, 2, -1);
        }
    }
    t->autocast = saved_autocast;
    aur__probe(A, "backbone_out", x);
    return x;
}

/* ---- decoder (§7) ---- */

/* (B, L, [C,] P*P) head outputs -> (B, [C,] H, W): feature p1*P + p2 fills patch (i, j). */
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

/* An atmospheric head on (B, L, C, E) latents -> (B, C, H, W), per level with level_condition. */
static aur_tensor *aur__atmos_head(const aur__fwd *F, aur_tensor *x, const char *v)
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

/* The decoder: normalised predictions (B, H, W) and (B, C, H, W) for the batch's
   variables, plus the _mod heads where configured. */
static int aur__decoder(aur__fwd *F, aur_tensor *x, aur_tensor **surf, aur_tensor **surf_mod, aur_tensor **atmos, aur_tensor **atmos_mod)
{
    const aur_aurora_config *c = F->c;
    const aur_batch *b = F->in;
    aur_tape *t = F->t;
    char p[160], name[160];
    const int B = F->B, C = F->C, Ld = F->Ld;
    const int64_t L = F->L, E = 2 * (int64_t)F->D;
    static const int blcd[4] = {0, 2, 1, 3};
    x = aur_permute(t, aur_reshape(t, x, aur_shape4(B, Ld, L, E)), blcd); /* (B, L, Ld, E) */
    aur_tensor *x0 = aur_reshape(t, aur_slice(t, x, 2, 0, 1), aur_shape3(B, L, E));
    for (int i = 0; i < b->surf_names.n; i++) {
        const char *v = b->surf_names.name[i];
        snprintf(p, sizeof p, "decoder.surf_heads.%s", v);
        surf[i] = aur__unpatchify(F, aur__lin(F, x0, p, 1), 0);
        snprintf(name, sizeof name, "decoder_norm/surf/%s", v);
        aur__probe(F->A, name, surf[i]);
        surf_mod[i] = NULL;
        if (aur__vl_find(&c->modulation_heads, v) >= 0) {
            snprintf(p, sizeof p, "decoder.surf_heads.%s_mod", v);
            surf_mod[i] = aur__unpatchify(F, aur__lin(F, x0, p, 1), 0);
        }
        if (!surf[i]) return AUR_EINVAL;
    }
    if (!b->atmos_names.n) return 0;
    double lev_in[AUR_MAX_LEVELS];
    float *enc = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(C * E + 1));
    aur__levels_input(F->levels, C, lev_in);
    if (!enc || aur__fourier(lev_in, C, 0.01, 1e5, (int)E, 1, enc, "level")) return AUR_EINVAL;
    aur_tensor *lev = aur__const(t, F->A->m->device, aur_shape2(C, E), enc);
    aur__probe(F->A, "decoder/levels_encode", lev);
    aur_tensor *q = aur_expand(t, aur_reshape(t, aur__lin(F, lev, "decoder.atmos_levels_embed", 1), aur_shape3(1, C, E)),
                               aur_shape3((int64_t)B * L, C, E));
    aur_tensor *ctx = aur_reshape(t, aur_slice(t, x, 2, 1, Ld - 1), aur_shape3((int64_t)B * L, Ld - 1, E));
    aur_tensor *main_out = NULL, *alt_out = NULL;
    for (int i = 0; i < b->atmos_names.n; i++) {
        const char *v = b->atmos_names.name[i];
        int alt = aur__vl_find(&c->separate_perceiver, v) >= 0;
        aur_tensor **src = alt ? &alt_out : &main_out;
        if (!*src) /* each Perceiver runs once, when a variable first needs it */
            *src = aur_reshape(t, aur__perceiver(F, alt ? "decoder.level_decoder_alternate" : "decoder.level_decoder", q, ctx,
                                                 c->dec_depth, 0, c->perceiver_ln_eps), aur_shape4(B, L, C, E));
        atmos[i] = aur__atmos_head(F, *src, v);
        snprintf(name, sizeof name, "decoder_norm/atmos/%s", v);
        aur__probe(F->A, name, atmos[i]);
        atmos_mod[i] = NULL;
        if (aur__vl_find(&c->modulation_heads, v) >= 0) {
            snprintf(name, sizeof name, "%s_mod", v);
            atmos_mod[i] = aur__atmos_head(F, *src, name);
        }
        if (!atmos[i]) return AUR_EINVAL;
    }
    return 0;
}
