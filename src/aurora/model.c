#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: the model object ==== */

typedef struct aur__stat {
    char key[AUR_NAME_LEN + 16];
    double loc, scale;
} aur__stat;

/* Index tables of one layout (a window partition, a patch merge or split),
   made once per grid and kept, since backward needs them. */
typedef struct aur__layout {
    struct aur__layout *next;
    int64_t key[10];
    aur_index fwd, back; /* back: the reverse of a window partition */
    aur_real *mask;      /* windows: (nW, n, n) additive mask, NULL when not shifted */
    int64_t nwin, n;     /* windows per sample and tokens per window */
} aur__layout;

/* An Aurora model: its configuration, its table (m) and what it keeps between calls. */
typedef struct aur__aurora {
    aur_aurora_config cfg;
    aur_model *m;
    aur__stat *stats;                     /* the normalisation statistics by key ("2t", "z_500") */
    int n_stats, cap_stats;
    aur__names stats_index;
    aur__layout *layouts;                 /* the backbone's index tables, made per grid on first use */
    aur_probe_fn probe;                   /* test hook: sees named intermediates */
    void *probe_ctx;
    float *pos_override, *scale_override; /* injected patch encodings (override_L x D each), or NULL */
    int64_t override_L;
} aur__aurora;

/* The Aurora behind a model, or NULL with an error. */
static void aur__aurora_free(void *p);

static aur__aurora *aur__A(const aur_model *m)
{
    if (!m || !m->impl || m->impl_free != aur__aurora_free) {
        aur__err(AUR_EINVAL, "not an Aurora model (make it with aur_aurora_create)");
        return NULL;
    }
    return (aur__aurora *)m->impl;
}

static void aur__layout_free(aur__layout *l)
{
    if (!l) return;
    AUR_FREE(l->fwd.idx);
    AUR_FREE(l->back.idx);
    AUR_FREE(l->mask);
    AUR_FREE(l);
}

static void aur__aurora_free(void *p)
{
    aur__aurora *A = (aur__aurora *)p;
    if (!A) return;
    for (aur__layout *l = A->layouts, *n; l; l = n) {
        n = l->next;
        aur__layout_free(l);
    }
    AUR_FREE(A->stats);
    AUR_FREE(A->stats_index.slot);
    AUR_FREE(A->pos_override);
    AUR_FREE(A->scale_override);
    AUR_FREE(A);
}

AURDEF const aur_aurora_config *aur_aurora_config_of(const aur_model *m)
{
    aur__aurora *A = aur__A(m);
    return A ? &A->cfg : NULL;
}

AURDEF int aur_aurora_set_checkpoint(aur_model *m, unsigned modules)
{
    aur__aurora *A = aur__A(m);
    if (!A) return aur__err(AUR_EINVAL, "aur_aurora_set_checkpoint: not an Aurora model");
    if (modules & ~(unsigned)AUR_CHECKPOINT_ALL) return aur__err(AUR_EINVAL, "aur_aurora_set_checkpoint: 0x%x has bits outside AUR_CHECKPOINT_ALL", modules);
    A->cfg.checkpoint = modules;
    return 0;
}

static const char *aur__stat_key(const void *A, int k) { return ((const aur__aurora *)A)->stats[k].key; }

/* Normalisation statistics a model can use: x' = (x - loc) / scale. */
static int aur__stats_usable(double loc, double scale) { return isfinite(loc) && isfinite(scale) && scale > 0; }

AURDEF int aur_aurora_set_stats(aur_model *m, const char *key, double loc, double scale)
{
    aur__aurora *A = aur__A(m);
    if (!A) return AUR_EINVAL;
    if (!aur__stats_usable(loc, scale))
        return aur__err(AUR_EINVAL, "statistics for '%s': location %g and scale %g (the scale must be finite and positive)", key, loc, scale);
    if (strlen(key) >= sizeof A->stats[0].key) return aur__err(AUR_EINVAL, "statistics key '%s' is too long", key);
    int i = aur__names_find(&A->stats_index, key, aur__stat_key, A);
    if (i < 0) {
        if (aur__grow((void **)&A->stats, &A->cap_stats, A->n_stats + 1, sizeof(aur__stat))) return AUR_ENOMEM;
        snprintf(A->stats[A->n_stats].key, sizeof A->stats[0].key, "%s", key);
        if (aur__names_add(&A->stats_index, A->n_stats, aur__stat_key, A)) return AUR_ENOMEM;
        i = A->n_stats++;
    }
    A->stats[i].loc = loc;
    A->stats[i].scale = scale;
    return 0;
}

AURDEF int aur_aurora_get_stats(const aur_model *m, const char *key, double *loc, double *scale)
{
    aur__aurora *A = aur__A(m);
    if (!A) return AUR_EINVAL;
    int i = aur__names_find(&A->stats_index, key, aur__stat_key, A);
    if (i >= 0) {
        *loc = A->stats[i].loc;
        *scale = A->stats[i].scale;
        return 0;
    }
    return aur__err(AUR_EINVAL, "no normalisation statistics for '%s'\n---> HINT: register them with aur_aurora_set_stats(m, \"%s\", loc, scale)",
                    key, key);
}

/* A surface or static variable's statistics: surf_stats first, then the registry. */
static int aur__surf_stats(const aur__aurora *A, const char *v, double *loc, double *scale)
{
    for (int i = 0; i < A->cfg.n_surf_stats; i++)
        if (!strcmp(A->cfg.surf_stats_name[i], v)) {
            *loc = A->cfg.surf_stats[i][0];
            *scale = A->cfg.surf_stats[i][1];
            return 0;
        }
    return aur_aurora_get_stats(A->m, v, loc, scale);
}

/* An atmospheric variable's statistics at each level: keys "{v}_{level}". */
static int aur__atmos_stats(const aur__aurora *A, const char *v, const double *levels, int C, double *loc, double *scale)
{
    char key[AUR_NAME_LEN + 32], lv[32];
    for (int c = 0; c < C; c++) {
        aur_level_to_str(levels[c], lv, sizeof lv);
        snprintf(key, sizeof key, "%s_%s", v, lv);
        if (aur_aurora_get_stats(A->m, key, &loc[c], &scale[c])) return AUR_EINVAL;
    }
    return 0;
}

/* ---- initialisation (the reference's init_weights and module inits) ---- */

typedef struct aur__rng {
    uint64_t s;
} aur__rng;

static double aur__rng_uniform(aur__rng *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    return (double)(aur__mix64(r->s) >> 11) * (1.0 / 9007199254740992.0);
}

static double aur__rng_normal(aur__rng *r)
{
    double u = aur__rng_uniform(r) + 1e-300, v = aur__rng_uniform(r);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static int aur__ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The initial value of one parameter element, by the reference's rules: aurora/model/util.py:
   init_weights (Linear weights N(0, 0.02), truncated at +-2 absolute), the modules' own
   init_weights (patchembed.py: LevelPatchEmbed, film.py: AdaptiveLayerNorm, lora.py: LoRA)
   and the encoder's latents (encoder.py: Perceiver3DEncoder.__init__). */
static double aur__init_value(const aur_aurora_config *c, const aur_tensor *p, aur__rng *r)
{
    const char *n = p->name;
    double tk = 1.0 / sqrt((double)c->max_history_size * c->patch_size * c->patch_size);
    if (strstr(n, "_token_embeds.")) return (2 * aur__rng_uniform(r) - 1) * tk; /* kernels and their shared bias */
    if (strstr(n, "ln_modulation.1.")) return 0;                                 /* every residual branch starts at 0 */
    if (aur__ends_with(n, ".lora_B")) return 0;
    if (aur__ends_with(n, ".lora_A")) return (2 * aur__rng_uniform(r) - 1) / sqrt((double)p->shape[1]);
    if (strstr(n, "feature_combiner.")) return aur__ends_with(n, ".weight") ? 0.5 : 0;
    if (p->ndim == 1 && !strcmp(n, "encoder.surf_level_encoding")) return 0.02 * aur__rng_normal(r);
    if (p->ndim == 1) /* biases 0; LayerNorm weights 1 */
        return aur__ends_with(n, ".weight") ? 1 : 0;
    return 0.02 * aur__rng_normal(r); /* Linear weights and the latents: N(0, 0.02^2) (trunc at +-2: no effect) */
}

/* Sets every parameter and buffer in table order: fill writes p's p->numel
   initial values into a host buffer (Aurora's and Surya's initialisations). */
static int aur__init_params(aur_model *m, void (*fill)(void *ctx, const aur_tensor *p, aur_real *v), void *ctx)
{
    int rc = 0;
    if (m->device == AUR_META) return 0; /* no values to draw */
    for (int i = 0; i < m->n && !rc; i++) {
        aur_tensor *p = m->params[i];
        aur_real *v = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(p->numel ? p->numel : 1), "initial weights");
        if (!v) return AUR_ENOMEM;
        fill(ctx, p, v);
        rc = aur_tensor_set(p, v, p->numel);
        AUR_FREE(v);
    }
    return rc;
}

/* An empty model with a zeroed implementation struct of impl_size bytes attached (Aurora, Surya). */
static aur_model *aur__model_with_impl(size_t impl_size, void (*impl_free)(void *), const char *what)
{
    aur_model *m = aur_model_create();
    void *impl = aur__calloc(impl_size, what);
    if (!m || !impl) {
        AUR_FREE(impl);
        aur_model_free(m);
        return NULL;
    }
    m->impl = impl;
    m->impl_free = impl_free;
    return m;
}

typedef struct aur__aurora_init {
    const aur_aurora_config *cfg;
    aur__rng r;
} aur__aurora_init;

static void aur__aurora_fill(void *ctx, const aur_tensor *p, aur_real *v)
{
    aur__aurora_init *in = (aur__aurora_init *)ctx;
    for (int64_t k = 0; k < p->numel; k++) v[k] = (aur_real)aur__init_value(in->cfg, p, &in->r);
}

AURDEF int aur_aurora_init_weights(aur_model *m, uint64_t seed)
{
    aur__aurora *A = aur__A(m);
    if (!A) return AUR_EINVAL;
    aur__aurora_init in = {&A->cfg, {seed * 0x9E3779B97F4A7C15ull + 1}};
    return aur__init_params(m, aur__aurora_fill, &in);
}

AURDEF aur_model *aur_aurora_declare_model(const aur_aurora_config *cfg)
{
    aur_model *m = aur__model_with_impl(sizeof(aur__aurora), aur__aurora_free, "an Aurora model");
    if (!m) return NULL;
    aur__aurora *A = (aur__aurora *)m->impl;
    A->cfg = *cfg;
    A->m = m;
    int rc = aur_aurora_declare(m, cfg);
    for (size_t i = 0; i < sizeof aur__builtin_stats / sizeof aur__builtin_stats[0] && !rc; i++)
        rc = aur_aurora_set_stats(m, aur__builtin_stats[i].key, aur__builtin_stats[i].loc, aur__builtin_stats[i].scale);
    if (rc) {
        aur_model_free(m);
        return NULL;
    }
    return m;
}

AURDEF aur_model *aur_aurora_create(const aur_aurora_config *cfg, aur_device device, uint64_t seed)
{
    aur_model *m = aur_aurora_declare_model(cfg);
    if (m && (aur_model_alloc(m, device) || aur_aurora_init_weights(m, seed))) {
        aur_model_free(m);
        return NULL;
    }
    return m;
}

AURDEF void aur_aurora_set_probe(aur_model *m, aur_probe_fn fn, void *ctx)
{
    aur__aurora *A = aur__A(m);
    if (!A) return;
    A->probe = fn;
    A->probe_ctx = ctx;
}

AURDEF int aur_aurora_override_encodings(aur_model *m, const float *pos, const float *scale, int64_t L)
{
    aur__aurora *A = aur__A(m);
    if (!A) return AUR_EINVAL;
    AUR_FREE(A->pos_override);
    AUR_FREE(A->scale_override);
    A->pos_override = A->scale_override = NULL;
    A->override_L = 0;
    if (!pos || !scale) return 0;
    size_t n = (size_t)L * (size_t)A->cfg.embed_dim;
    A->pos_override = (float *)aur__malloc(sizeof(float) * n, "encodings");
    A->scale_override = (float *)aur__malloc(sizeof(float) * n, "encodings");
    if (!A->pos_override || !A->scale_override) return AUR_ENOMEM;
    memcpy(A->pos_override, pos, sizeof(float) * n);
    memcpy(A->scale_override, scale, sizeof(float) * n);
    A->override_L = L;
    return 0;
}
