#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: the parameter table ====
   Declared in the reference's state_dict order: module registration order,
   with ParameterDict keys sorted as strings. */

AURDEF void aur_level_to_str(double level, char *buf, size_t size)
{
    double r = round(level * 1000.0) / 1000.0;
    if (r == floor(r)) {
        snprintf(buf, size, "%lld", (long long)r);
        return;
    }
    snprintf(buf, size, "%.3f", r);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0') buf[--n] = 0;
    for (char *c = buf; *c; c++)
        if (*c == '.') *c = '_';
}

/* Adds a parameter by printf-style name; failures stick in *rc. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static aur_tensor *aur__p(aur_model *m, int *rc, aur_shape s, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (*rc) return NULL;
    aur_tensor *t = aur_model_add(m, name, s, 0);
    if (!t) *rc = AUR_EINVAL;
    return t;
}

static int aur__strcmp_p(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* Names sorted as torch.nn.ParameterDict stores a plain dict's keys (sorted, bytewise). */
static void aur__sorted(const aur_var_list *in, aur_var_list *out)
{
    *out = *in;
    aur__qsort(out->name, (size_t)out->n, AUR_NAME_LEN, aur__strcmp_p);
}

static void aur__sorted_levels(const aur_aurora_config *c, aur_var_list *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < c->n_level_condition; i++) {
        char s[AUR_NAME_LEN];
        aur_level_to_str(c->level_condition[i], s, sizeof s);
        aur__vl_add(out, s);
    }
    aur__qsort(out->name, (size_t)out->n, AUR_NAME_LEN, aur__strcmp_p);
}

static void aur__declare_linear(aur_model *m, int *rc, const char *prefix, int64_t out, int64_t in, int bias)
{
    aur__p(m, rc, aur_shape2(out, in), "%s.weight", prefix);
    if (bias) aur__p(m, rc, aur_shape1(out), "%s.bias", prefix);
}

static void aur__declare_norm(aur_model *m, int *rc, const char *prefix, int64_t n)
{
    aur__p(m, rc, aur_shape1(n), "%s.weight", prefix);
    aur__p(m, rc, aur_shape1(n), "%s.bias", prefix);
}

/* PerceiverResampler: layers.{k}.0 (attention), .1 (MLP), .2 and .3 (norms). */
static void aur__declare_perceiver(aur_model *m, int *rc, const char *prefix, int64_t dim, int nh, int depth, double ratio,
                                   int ln_kq)
{
    char p[256];
    int64_t inner = (dim / nh) * nh, hid = (int64_t)(dim * ratio);
    for (int k = 0; k < depth; k++) {
        snprintf(p, sizeof p, "%s.layers.%d.0.to_q", prefix, k);
        aur__declare_linear(m, rc, p, inner, dim, 0);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_kv", prefix, k);
        aur__declare_linear(m, rc, p, 2 * inner, dim, 0);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_out", prefix, k);
        aur__declare_linear(m, rc, p, dim, inner, 0);
        if (ln_kq && k == 0) {
            snprintf(p, sizeof p, "%s.layers.0.0.ln_k", prefix);
            aur__declare_norm(m, rc, p, inner);
            snprintf(p, sizeof p, "%s.layers.0.0.ln_q", prefix);
            aur__declare_norm(m, rc, p, inner);
        }
        snprintf(p, sizeof p, "%s.layers.%d.1.net.0", prefix, k);
        aur__declare_linear(m, rc, p, hid, dim, 1);
        snprintf(p, sizeof p, "%s.layers.%d.1.net.2", prefix, k);
        aur__declare_linear(m, rc, p, dim, hid, 1);
        snprintf(p, sizeof p, "%s.layers.%d.2", prefix, k);
        aur__declare_norm(m, rc, p, dim);
        snprintf(p, sizeof p, "%s.layers.%d.3", prefix, k);
        aur__declare_norm(m, rc, p, dim);
    }
}

/* The encoder's input variable names: surface (+ statics + dynamic), atmospheric (+ static_*). */
static const char *const aur__dynamic_names[6] = {"tod_cos", "tod_sin", "dow_cos", "dow_sin", "doy_cos", "doy_sin"};

static void aur__embed_names(const aur_aurora_config *c, aur_var_list *surf, aur_var_list *atmos)
{
    char name[AUR_NAME_LEN + 8];
    *surf = c->surf_vars;
    for (int i = 0; i < c->static_vars.n; i++) aur__vl_add(surf, c->static_vars.name[i]);
    if (c->dynamic_vars)
        for (int i = 0; i < 6; i++) aur__vl_add(surf, aur__dynamic_names[i]);
    *atmos = c->atmos_vars;
    if (c->atmos_static_vars)
        for (int i = c->surf_vars.n; i < surf->n; i++) {
            snprintf(name, sizeof name, "static_%s", surf->name[i]);
            aur__vl_add(atmos, name);
        }
}

/* LevelPatchEmbed: bias, then weights.{v} (sorted), kernels (D, 1, Tmax, P, P). */
static void aur__declare_patch_embed(aur_model *m, int *rc, const aur_aurora_config *c, const char *prefix, const aur_var_list *vars)
{
    aur_var_list sorted;
    aur__sorted(vars, &sorted);
    int64_t D = c->embed_dim, T = c->max_history_size, P = c->patch_size;
    aur__p(m, rc, aur_shape1(D), "%s.bias", prefix);
    for (int i = 0; i < sorted.n; i++) aur__p(m, rc, aur_shape5(D, 1, T, P, P), "%s.weights.%s", prefix, sorted.name[i]);
}

static void aur__declare_encoder(aur_model *m, int *rc, const aur_aurora_config *c)
{
    int64_t D = c->embed_dim, hid = (int64_t)(D * c->mlp_ratio);
    static const char *const embeds[5] = {"pos_embed", "scale_embed", "lead_time_embed", "absolute_time_embed", "atmos_levels_embed"};
    char p[256];
    aur_var_list surf, atmos, levels;
    aur__embed_names(c, &surf, &atmos);
    aur__p(m, rc, aur_shape2(c->latent_levels - 1, D), "encoder.atmos_latents");
    aur__p(m, rc, aur_shape1(D), "encoder.surf_level_encoding");
    aur__declare_linear(m, rc, "encoder.surf_mlp.net.0", hid, D, 1);
    aur__declare_linear(m, rc, "encoder.surf_mlp.net.2", D, hid, 1);
    aur__declare_norm(m, rc, "encoder.surf_norm", D);
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "encoder.%s", embeds[i]);
        aur__declare_linear(m, rc, p, D, D, 1);
    }
    aur__declare_patch_embed(m, rc, c, "encoder.surf_token_embeds", &surf);
    if (!c->n_level_condition) {
        aur__declare_patch_embed(m, rc, c, "encoder.atmos_token_embeds", &atmos);
    } else {
        aur__sorted_levels(c, &levels);
        for (int l = 0; l < levels.n; l++) {
            snprintf(p, sizeof p, "encoder.atmos_token_embeds.layers.%s", levels.name[l]);
            aur__declare_patch_embed(m, rc, c, p, &atmos);
        }
    }
    aur__declare_perceiver(m, rc, "encoder.level_agg", D, c->num_heads, c->enc_depth, c->mlp_ratio, c->stabilise_level_agg);
}

/* LoRA sets on a linear layer: loras.{k}.lora_A (8, in) and lora_B (out, 8). */
static void aur__declare_lora(aur_model *m, int *rc, const aur_aurora_config *c, const char *prefix, int64_t in, int64_t out)
{
    int sets = c->lora_mode == AUR_LORA_ALL ? c->lora_steps : 1;
    for (int k = 0; k < sets; k++) {
        aur__p(m, rc, aur_shape2(8, in), "%s.loras.%d.lora_A", prefix, k);
        aur__p(m, rc, aur_shape2(out, 8), "%s.loras.%d.lora_B", prefix, k);
    }
}

static void aur__declare_block(aur_model *m, int *rc, const aur_aurora_config *c, const char *prefix, int64_t d)
{
    int64_t D = c->embed_dim, hid = (int64_t)(d * c->mlp_ratio);
    char p[256];
    snprintf(p, sizeof p, "%s.norm1.ln_modulation.1", prefix);
    aur__declare_linear(m, rc, p, 2 * d, D, 1);
    snprintf(p, sizeof p, "%s.attn.qkv", prefix);
    aur__declare_linear(m, rc, p, 3 * d, d, 1);
    snprintf(p, sizeof p, "%s.attn.proj", prefix);
    aur__declare_linear(m, rc, p, d, d, 1);
    if (c->use_lora) {
        snprintf(p, sizeof p, "%s.attn.lora_proj", prefix);
        aur__declare_lora(m, rc, c, p, d, d);
        snprintf(p, sizeof p, "%s.attn.lora_qkv", prefix);
        aur__declare_lora(m, rc, c, p, d, 3 * d);
    }
    snprintf(p, sizeof p, "%s.norm2.ln_modulation.1", prefix);
    aur__declare_linear(m, rc, p, 2 * d, D, 1);
    snprintf(p, sizeof p, "%s.mlp.fc1", prefix);
    aur__declare_linear(m, rc, p, hid, d, 1);
    snprintf(p, sizeof p, "%s.mlp.fc2", prefix);
    aur__declare_linear(m, rc, p, d, hid, 1);
}

static void aur__declare_backbone(aur_model *m, int *rc, const aur_aurora_config *c)
{
    int64_t D = c->embed_dim;
    int S = c->n_stages;
    char p[256];
    aur__declare_linear(m, rc, "backbone.time_mlp.0", D, D, 1);
    aur__declare_linear(m, rc, "backbone.time_mlp.2", D, D, 1);
    for (int i = 0; i < S; i++) {
        int64_t d = D << i;
        for (int j = 0; j < c->encoder_depths[i]; j++) {
            snprintf(p, sizeof p, "backbone.encoder_layers.%d.blocks.%d", i, j);
            aur__declare_block(m, rc, c, p, d);
        }
        if (i < S - 1) {
            aur__p(m, rc, aur_shape2(2 * d, 4 * d), "backbone.encoder_layers.%d.downsample.reduction.weight", i);
            snprintf(p, sizeof p, "backbone.encoder_layers.%d.downsample.norm", i);
            aur__declare_norm(m, rc, p, 4 * d);
        }
    }
    for (int i = 0; i < S; i++) {
        int64_t d = D << (S - 1 - i);
        for (int j = 0; j < c->decoder_depths[i]; j++) {
            snprintf(p, sizeof p, "backbone.decoder_layers.%d.blocks.%d", i, j);
            aur__declare_block(m, rc, c, p, d);
        }
        if (i < S - 1) {
            aur__p(m, rc, aur_shape2(2 * d, d), "backbone.decoder_layers.%d.upsample.lin1.weight", i);
            aur__p(m, rc, aur_shape2(d / 2, d / 2), "backbone.decoder_layers.%d.upsample.lin2.weight", i);
            snprintf(p, sizeof p, "backbone.decoder_layers.%d.upsample.norm", i);
            aur__declare_norm(m, rc, p, d / 2);
        }
    }
}

/* The decoder's head names: the variables, then {v}_mod for modulation heads. */
static void aur__head_names(const aur_var_list *vars, const aur_var_list *mod, aur_var_list *out)
{
    char name[AUR_NAME_LEN + 8];
    *out = *vars;
    for (int i = 0; i < vars->n; i++)
        if (aur__vl_find(mod, vars->name[i]) >= 0) {
            snprintf(name, sizeof name, "%s_mod", vars->name[i]);
            aur__vl_add(out, name);
        }
}

static void aur__declare_decoder(aur_model *m, int *rc, const aur_aurora_config *c)
{
    int64_t E = 2 * (int64_t)c->embed_dim, P2 = (int64_t)c->patch_size * c->patch_size;
    aur_var_list surf, atmos, sorted, levels;
    char p[256];
    aur__declare_perceiver(m, rc, "decoder.level_decoder", E, c->num_heads, c->dec_depth, c->dec_mlp_ratio, 0);
    if (c->separate_perceiver.n)
        aur__declare_perceiver(m, rc, "decoder.level_decoder_alternate", E, c->num_heads, c->dec_depth, c->dec_mlp_ratio, 0);
    aur__head_names(&c->surf_vars, &c->modulation_heads, &surf);
    aur__head_names(&c->atmos_vars, &c->modulation_heads, &atmos);
    aur__sorted(&surf, &sorted);
    for (int i = 0; i < sorted.n; i++) {
        snprintf(p, sizeof p, "decoder.surf_heads.%s", sorted.name[i]);
        aur__declare_linear(m, rc, p, P2, E, 1);
    }
    aur__sorted(&atmos, &sorted);
    aur__sorted_levels(c, &levels);
    for (int i = 0; i < sorted.n; i++) {
        if (!c->n_level_condition) {
            snprintf(p, sizeof p, "decoder.atmos_heads.%s", sorted.name[i]);
            aur__declare_linear(m, rc, p, P2, E, 1);
        }
        for (int l = 0; l < levels.n; l++) {
            snprintf(p, sizeof p, "decoder.atmos_heads.%s.layers.%s", sorted.name[i], levels.name[l]);
            aur__declare_linear(m, rc, p, P2, E, 1);
        }
    }
    aur__declare_linear(m, rc, "decoder.atmos_levels_embed", E, E, 1);
}

/* AuroraAirPollution: a Linear(2, 1) per positive variable. */
static void aur__declare_air_pollution(aur_model *m, int *rc, const aur_aurora_config *c)
{
    char p[256];
    aur_var_list sorted;
    aur__sorted(&c->positive_surf_vars, &sorted);
    for (int i = 0; i < sorted.n; i++) {
        snprintf(p, sizeof p, "surf_feature_combiner.%s", sorted.name[i]);
        aur__declare_linear(m, rc, p, 1, 2, 1);
    }
    aur__sorted(&c->positive_atmos_vars, &sorted);
    for (int i = 0; i < sorted.n; i++) {
        snprintf(p, sizeof p, "atmos_feature_combiner.%s", sorted.name[i]);
        aur__declare_linear(m, rc, p, 1, 2, 1);
    }
}

AURDEF int aur_aurora_declare(aur_model *m, const aur_aurora_config *cfg)
{
    int rc = aur__config_check(cfg);
    if (rc) return rc;
    aur__declare_encoder(m, &rc, cfg);
    aur__declare_backbone(m, &rc, cfg);
    aur__declare_decoder(m, &rc, cfg);
    if (cfg->air_pollution) aur__declare_air_pollution(m, &rc, cfg);
    return rc;
}
