#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ======================================================================== */
/*                                 AURORA                                   */
/* ======================================================================== */

/* ==== Aurora: configuration and presets ==== */

static int aur__vl_find(const aur_var_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->name[i], name)) return i;
    return -1;
}

static int aur__vl_add(aur_var_list *l, const char *name)
{
    if (l->n >= AUR_MAX_VARS) return aur__err(AUR_EINVAL, "more than %d variables", AUR_MAX_VARS);
    if (strlen(name) >= AUR_NAME_LEN) return aur__err(AUR_EINVAL, "variable name '%s' is longer than %d", name, AUR_NAME_LEN - 1);
    snprintf(l->name[l->n++], AUR_NAME_LEN, "%s", name);
    return 0;
}

/* Appends the names in s, separated by any of the characters in seps (no
   strtok: its hidden state would make concurrent calls interleave). */
static int aur__vl_split(aur_var_list *l, const char *s, const char *seps)
{
    char name[AUR_NAME_LEN];
    while (*s) {
        size_t n = strcspn(s, seps);
        if (n >= AUR_NAME_LEN) return aur__err(AUR_EINVAL, "variable name '%.*s' is longer than %d", (int)n, s, AUR_NAME_LEN - 1);
        if (n) {
            memcpy(name, s, n);
            name[n] = 0;
            if (aur__vl_add(l, name)) return AUR_EINVAL;
        }
        s += n;
        s += strspn(s, seps);
    }
    return 0;
}

/* A list from a space-separated string (presets). */
static aur_var_list aur__vl(const char *names)
{
    aur_var_list l;
    memset(&l, 0, sizeof l);
    aur__vl_split(&l, names, " ");
    return l;
}

static void aur__set_stages(aur_aurora_config *c, int n, const int *ed, const int *eh, const int *dd, const int *dh)
{
    c->n_stages = n;
    for (int i = 0; i < n; i++) {
        c->encoder_depths[i] = ed[i];
        c->encoder_num_heads[i] = eh[i];
        c->decoder_depths[i] = dd[i];
        c->decoder_num_heads[i] = dh[i];
    }
}

/* The reference's base class defaults (which are the 0.25 fine-tuned model, LoRA on). */
static aur_aurora_config aur__aurora_base(void)
{
    aur_aurora_config c;
    memset(&c, 0, sizeof c);
    c.surf_vars = aur__vl("2t 10u 10v msl");
    c.static_vars = aur__vl("lsm z slt");
    c.atmos_vars = aur__vl("z u v t q");
    c.window_size[0] = 2;
    c.window_size[1] = 6;
    c.window_size[2] = 12;
    int ed[3] = {6, 10, 8}, eh[3] = {8, 16, 32}, dd[3] = {8, 10, 6}, dh[3] = {32, 16, 8};
    aur__set_stages(&c, 3, ed, eh, dd, dh);
    c.latent_levels = 4;
    c.patch_size = 4;
    c.embed_dim = 512;
    c.num_heads = 16;
    c.mlp_ratio = 4.0;
    c.dec_mlp_ratio = 2.0;
    c.enc_depth = c.dec_depth = 1;
    c.perceiver_ln_eps = 1e-5;
    c.max_history_size = 2;
    c.timestep_seconds = 6 * 3600;
    c.use_lora = 1;
    c.lora_steps = 40;
    c.lora_mode = AUR_LORA_SINGLE;
    return c;
}

static const char *const aur__preset_names[] = {"aurora-pretrained", "aurora-small-pretrained", "aurora-0.25-finetuned",
                                                "aurora-12h-pretrained", "aurora-highres", "aurora-air-pollution",
                                                "aurora-wave", NULL};

AURDEF const char *const *aur_aurora_preset_names(void) { return aur__preset_names; }

/* AuroraWave's angle variables (modelled as sin and cos) and the variables with
   a density channel (aurora/model/aurora.py: AuroraWave.__init__). */
static const char *const aur__wave_angles[] = {"mwd", "mdww", "mdts", "mwd1", "mwd2"};
static const char *const aur__wave_density[] = {"swh", "mwd", "mwp", "pp1d", "shww", "mdww", "mpww", "shts", "mdts", "mpts",
                                                "swh1", "mwd1", "mwp1", "swh2", "mwd2", "mwp2", "wind", "10u_wave", "10v_wave"};
#define AUR__COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* 1 if v is one of the n names in l. */
static int aur__listed(const char *const *l, int n, const char *v)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(l[i], v)) return 1;
    return 0;
}

/* AuroraWave's surf_vars keyword lists the data's names: each angle becomes
   its sin and cos, and each wave variable gets its density channel. */
static aur_var_list aur__wave_expand(const aur_var_list *in)
{
    aur_var_list out;
    memset(&out, 0, sizeof out);
    char name[AUR_NAME_LEN + 16];
    for (int i = 0; i < in->n; i++) {
        const char *v = in->name[i];
        if (aur__listed(aur__wave_angles, AUR__COUNT(aur__wave_angles), v)) {
            snprintf(name, sizeof name, "%s_sin", v);
            aur__vl_add(&out, name);
            snprintf(name, sizeof name, "%s_cos", v);
            aur__vl_add(&out, name);
        } else {
            aur__vl_add(&out, v);
        }
        if (aur__listed(aur__wave_density, AUR__COUNT(aur__wave_density), v)) {
            snprintf(name, sizeof name, "%s_density", v);
            aur__vl_add(&out, name);
        }
    }
    return out;
}

/* The reference's class names, as aliases of the presets. */
static const char *aur__preset_of_class(const char *name)
{
    static const char *const map[][2] = {{"Aurora", "aurora-0.25-finetuned"},
                                         {"AuroraPretrained", "aurora-pretrained"},
                                         {"AuroraSmallPretrained", "aurora-small-pretrained"},
                                         {"AuroraSmall", "aurora-small-pretrained"},
                                         {"Aurora12hPretrained", "aurora-12h-pretrained"},
                                         {"AuroraHighRes", "aurora-highres"},
                                         {"AuroraAirPollution", "aurora-air-pollution"},
                                         {"AuroraWave", "aurora-wave"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(name, map[i][0])) return map[i][1];
    return name;
}

AURDEF int aur_aurora_preset(const char *name, aur_aurora_config *cfg)
{
    aur_aurora_config c = aur__aurora_base();
    name = aur__preset_of_class(name);
    if (!strcmp(name, "aurora-0.25-finetuned") || !strcmp(name, "aurora")) {
    } else if (!strcmp(name, "aurora-pretrained")) {
        c.use_lora = 0;
    } else if (!strcmp(name, "aurora-small-pretrained") || !strcmp(name, "aurora-small")) {
        int ed[3] = {2, 6, 2}, eh[3] = {4, 8, 16}, dd[3] = {2, 6, 2}, dh[3] = {16, 8, 4};
        aur__set_stages(&c, 3, ed, eh, dd, dh);
        c.embed_dim = 256;
        c.num_heads = 8;
        c.use_lora = 0;
    } else if (!strcmp(name, "aurora-12h-pretrained")) {
        c.timestep_seconds = 12 * 3600;
        c.use_lora = 0;
    } else if (!strcmp(name, "aurora-highres")) {
        int ed[3] = {6, 8, 8}, eh[3] = {8, 16, 32}, dd[3] = {8, 8, 6}, dh[3] = {32, 16, 8};
        aur__set_stages(&c, 3, ed, eh, dd, dh);
        c.patch_size = 10;
    } else if (!strcmp(name, "aurora-air-pollution")) {
        static const double lv[13] = {50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000};
        c.surf_vars = aur__vl("2t 10u 10v msl pm1 pm2p5 pm10 tcco tc_no tcno2 gtco3 tcso2");
        c.static_vars = aur__vl("lsm z slt static_ammonia static_ammonia_log static_co static_co_log static_nox "
                                "static_nox_log static_so2 static_so2_log");
        c.atmos_vars = aur__vl("z u v t q co no no2 go3 so2");
        c.patch_size = 3;
        c.timestep_seconds = 12 * 3600;
        c.n_level_condition = 13;
        memcpy(c.level_condition, lv, sizeof lv);
        c.dynamic_vars = c.atmos_static_vars = 1;
        c.separate_perceiver = aur__vl("co no no2 go3 so2");
        c.modulation_heads = aur__vl("pm1 pm2p5 pm10 co tcco no tc_no no2 tcno2 so2 tcso2 go3 gtco3");
        c.positive_surf_vars = aur__vl("pm1 pm2p5 pm10 tcco tc_no tcno2 gtco3 tcso2");
        c.positive_atmos_vars = aur__vl("co no no2 go3 so2");
        c.simulate_indexing_bug = 1;
        c.air_pollution = 1;
    } else if (!strcmp(name, "aurora-wave")) {
        aur_var_list data = aur__vl("2t 10u 10v msl swh mwd mwp pp1d shww mdww mpww shts mdts mpts swh1 mwd1 mwp1 swh2 mwd2 "
                                    "mwp2 wind 10u_wave 10v_wave");
        c.surf_vars = aur__wave_expand(&data);
        c.static_vars = aur__vl("lsm z slt wmb lat_mask");
        c.lora_mode = AUR_LORA_FROM_SECOND;
        c.stabilise_level_agg = 1;
        c.wave = 1;
    } else {
        return aur__err(AUR_EINVAL, "unknown Aurora preset '%s' (aurora-pretrained, aurora-small-pretrained, "
                        "aurora-0.25-finetuned, aurora-12h-pretrained, aurora-highres, aurora-air-pollution, aurora-wave)", name);
    }
    *cfg = c;
    return 0;
}

/* ---- the configuration from JSON keywords ---- */

#define AUR__KW "Aurora keyword"

/* A list of names (null: none, as the reference's None). */
static int aur__kw_vars(const cJSON *v, aur_var_list *out)
{
    return aur__json_names(v, AUR__KW, out->name[0], AUR_NAME_LEN, AUR_MAX_VARS, &out->n);
}

/* surf_stats: {name: [location, scale]} or null. */
static int aur__kw_surf_stats(const cJSON *v, aur_aurora_config *c)
{
    int rc = aur__json_pairs(v, AUR__KW, "[location, scale]");
    c->n_surf_stats = 0;
    for (const cJSON *e = cJSON_IsObject(v) ? v->child : NULL; e && !rc; e = e->next) {
        if (c->n_surf_stats >= AUR_MAX_VARS || strlen(e->string) >= AUR_NAME_LEN)
            return aur__err(AUR_EINVAL, "Aurora keyword 'surf_stats': more than %d names, or '%s' is longer than %d", AUR_MAX_VARS,
                            e->string, AUR_NAME_LEN - 1);
        snprintf(c->surf_stats_name[c->n_surf_stats], AUR_NAME_LEN, "%s", e->string);
        c->surf_stats[c->n_surf_stats][0] = e->child->valuedouble;
        c->surf_stats[c->n_surf_stats++][1] = e->child->next->valuedouble;
    }
    return rc;
}

static const char *const aur__checkpoint_names[] = {"Perceiver3DEncoder",  "Swin3DTransformerBackbone", "Basic3DEncoderLayer",
                                                    "Basic3DDecoderLayer", "Swin3DTransformerBlock",    "Perceiver3DDecoder",
                                                    "LinearPatchReconstruction", NULL};

/* One class name into cfg->checkpoint. */
static int aur__checkpoint_module(aur_aurora_config *cfg, const char *name, size_t n)
{
    for (int k = 0; aur__checkpoint_names[k]; k++)
        if (strlen(aur__checkpoint_names[k]) == n && !strncmp(aur__checkpoint_names[k], name, n)) {
            cfg->checkpoint |= 1u << k;
            return 0;
        }
    return aur__err(AUR_EINVAL, "checkpoint modules: '%.*s' is not a module of Aurora (Perceiver3DEncoder, Swin3DTransformerBackbone, "
                    "Basic3DEncoderLayer, Basic3DDecoderLayer, Swin3DTransformerBlock, Perceiver3DDecoder, LinearPatchReconstruction)",
                    (int)n, name);
}

AURDEF int aur_aurora_checkpoint_modules(aur_aurora_config *cfg, const char *names)
{
    if (!names || !*names) {
        cfg->checkpoint = AUR_CHECKPOINT_ALL;
        return 0;
    }
    unsigned before = cfg->checkpoint;
    cfg->checkpoint = 0;
    if (!strcmp(names, "none")) return 0;
    for (const char *s = names; *s;) {
        size_t n = strcspn(s, ", ");
        if (n && aur__checkpoint_module(cfg, s, n)) {
            cfg->checkpoint = before;
            return AUR_EINVAL;
        }
        s += n;
        s += strspn(s, ", ");
    }
    return 0;
}

/* "checkpoint_modules": true (the reference's default set), false, or a list of class names. */
static int aur__checkpoint_json(aur_aurora_config *c, const cJSON *v)
{
    if (cJSON_IsBool(v)) {
        c->checkpoint = cJSON_IsTrue(v) ? AUR_CHECKPOINT_ALL : 0;
        return 0;
    }
    if (!cJSON_IsArray(v)) return aur__json_bad(v, AUR__KW, "checkpoint_modules", "true, false or a list of module class names");
    c->checkpoint = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return aur__json_bad(e, AUR__KW, "checkpoint_modules[]", "a module class name");
        if (aur__checkpoint_module(c, e->valuestring, strlen(e->valuestring))) return AUR_EINVAL;
    }
    return 0;
}

/* One keyword; returns 1 if the key is not an Aurora keyword. */
static int aur__config_key(aur_aurora_config *c, const cJSON *v)
{
    static const char *const lora_modes[] = {"single", "from_second", "all", NULL}; /* aur_lora_mode's order */
    const char *k = v->string;
    int n = 0, rc = 0, mode = c->lora_mode;
    if (!strcmp(k, "surf_vars")) {
        rc = aur__kw_vars(v, &c->surf_vars);
        if (!rc && c->wave) c->surf_vars = aur__wave_expand(&c->surf_vars); /* as the AuroraWave subclass does */
    }
    else if (!strcmp(k, "static_vars")) rc = aur__kw_vars(v, &c->static_vars);
    else if (!strcmp(k, "atmos_vars")) rc = aur__kw_vars(v, &c->atmos_vars);
    else if (!strcmp(k, "window_size")) rc = aur__json_ints(v, AUR__KW, c->window_size, 3, 3, &n);
    else if (!strcmp(k, "encoder_depths")) rc = aur__json_ints(v, AUR__KW, c->encoder_depths, 1, AUR_MAX_STAGES, &c->n_stages);
    else if (!strcmp(k, "encoder_num_heads")) rc = aur__json_ints(v, AUR__KW, c->encoder_num_heads, 1, AUR_MAX_STAGES, &n);
    else if (!strcmp(k, "decoder_depths")) rc = aur__json_ints(v, AUR__KW, c->decoder_depths, 1, AUR_MAX_STAGES, &n);
    else if (!strcmp(k, "decoder_num_heads")) rc = aur__json_ints(v, AUR__KW, c->decoder_num_heads, 1, AUR_MAX_STAGES, &n);
    else if (!strcmp(k, "latent_levels")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->latent_levels);
    else if (!strcmp(k, "patch_size")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->patch_size);
    else if (!strcmp(k, "embed_dim")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->embed_dim);
    else if (!strcmp(k, "num_heads")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->num_heads);
    else if (!strcmp(k, "mlp_ratio")) rc = aur__json_num(v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->mlp_ratio);
    else if (!strcmp(k, "dec_mlp_ratio")) rc = aur__json_num(v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->dec_mlp_ratio);
    else if (!strcmp(k, "drop_path")) rc = aur__json_num(v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->drop_path);
    else if (!strcmp(k, "drop_rate")) rc = aur__json_num(v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->drop_rate);
    else if (!strcmp(k, "enc_depth")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->enc_depth);
    else if (!strcmp(k, "dec_depth")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->dec_depth);
    else if (!strcmp(k, "perceiver_ln_eps")) rc = aur__json_num(v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->perceiver_ln_eps);
    else if (!strcmp(k, "max_history_size")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->max_history_size);
    else if (!strcmp(k, "timestep")) { /* seconds, or a timedelta as {"timedelta_seconds": s} */
        const cJSON *s = aur__json_at(v, "timedelta_seconds");
        rc = aur__json_num(s ? s : v, AUR__KW, -HUGE_VAL, HUGE_VAL, &c->timestep_seconds);
    } else if (!strcmp(k, "stabilise_level_agg")) rc = aur__json_bool(v, AUR__KW, &c->stabilise_level_agg);
    else if (!strcmp(k, "use_lora")) rc = aur__json_bool(v, AUR__KW, &c->use_lora);
    else if (!strcmp(k, "lora_steps")) rc = aur__json_int(v, AUR__KW, INT_MIN, INT_MAX, &c->lora_steps);
    else if (!strcmp(k, "lora_mode")) {
        rc = aur__json_enum(v, AUR__KW, lora_modes, &mode);
        c->lora_mode = (aur_lora_mode)mode;
    } else if (!strcmp(k, "surf_stats")) rc = aur__kw_surf_stats(v, c);
    else if (!strcmp(k, "autocast")) rc = aur__json_bool(v, AUR__KW, &c->autocast);
    else if (!strcmp(k, "bf16_mode")) { /* deprecated: sets autocast */
        int on = 0;
        rc = aur__json_bool(v, AUR__KW, &on);
        if (on) c->autocast = 1;
    } else if (!strcmp(k, "level_condition"))
        rc = aur__json_nums(v, AUR__KW, c->level_condition, 0, AUR_MAX_LEVELS, &c->n_level_condition);
    else if (!strcmp(k, "dynamic_vars")) rc = aur__json_bool(v, AUR__KW, &c->dynamic_vars);
    else if (!strcmp(k, "atmos_static_vars")) rc = aur__json_bool(v, AUR__KW, &c->atmos_static_vars);
    else if (!strcmp(k, "separate_perceiver")) rc = aur__kw_vars(v, &c->separate_perceiver);
    else if (!strcmp(k, "modulation_heads")) rc = aur__kw_vars(v, &c->modulation_heads);
    else if (!strcmp(k, "positive_surf_vars")) rc = aur__kw_vars(v, &c->positive_surf_vars);
    else if (!strcmp(k, "positive_atmos_vars")) rc = aur__kw_vars(v, &c->positive_atmos_vars);
    else if (!strcmp(k, "clamp_at_first_step")) rc = aur__json_bool(v, AUR__KW, &c->clamp_at_first_step);
    else if (!strcmp(k, "simulate_indexing_bug")) rc = aur__json_bool(v, AUR__KW, &c->simulate_indexing_bug);
    else if (!strcmp(k, "checkpoint_modules")) rc = aur__checkpoint_json(c, v);
    else return 1;
    return rc ? AUR_EINVAL : 0;
}

/* The rules the reference asserts (and the combinations it cannot run). */
#define AUR__MAX_WIDTH 65536
#define AUR__MAX_SIZE 1024

static int aur__config_check(const aur_aurora_config *c)
{
    const int D = c->embed_dim;
    /* the encoder's inputs: surface variables, statics and the dynamic ones; atmospheric ones and their static_ copies */
    int n_surf = c->surf_vars.n + c->static_vars.n + (c->dynamic_vars ? 6 : 0);
    int n_atmos = c->atmos_vars.n + (c->atmos_static_vars ? n_surf - c->surf_vars.n : 0);
    if (n_surf > AUR_MAX_VARS || n_atmos > AUR_MAX_VARS)
        return aur__err(AUR_EINVAL, "Aurora: %d surface and %d atmospheric encoder inputs (variables, statics, dynamic ones); at most %d each",
                        n_surf, n_atmos, AUR_MAX_VARS);
    if (c->n_stages < 1 || c->n_stages > AUR_MAX_STAGES) return aur__err(AUR_EINVAL, "Aurora: %d backbone stages", c->n_stages);
    /* sizes far beyond any Aurora (embed_dim 512, patch 4-10, 4 latent levels) would only overflow the shapes built from them */
    if (D < 4 || D % 4 || D > AUR__MAX_WIDTH)
        return aur__err(AUR_EINVAL, "Aurora: embed_dim %d must be a positive multiple of 4, at most %d", D, AUR__MAX_WIDTH);
    int sizes[] = {c->patch_size, c->latent_levels, c->window_size[0], c->window_size[1], c->window_size[2], c->max_history_size,
                   c->enc_depth, c->dec_depth, c->lora_steps};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        if (sizes[k] > AUR__MAX_SIZE)
            return aur__err(AUR_EINVAL, "Aurora: patch_size, latent_levels, window_size, max_history_size, enc_depth, dec_depth and lora_steps "
                            "must be at most %d (found %d)", AUR__MAX_SIZE, sizes[k]);
    int se = 0, sd = 0;
    for (int i = 0; i < c->n_stages; i++) {
        if (c->encoder_depths[i] < 0 || c->decoder_depths[i] < 0 || c->encoder_depths[i] > AUR__MAX_SIZE || c->decoder_depths[i] > AUR__MAX_SIZE)
            return aur__err(AUR_EINVAL, "Aurora: stage %d depths must be in [0, %d]", i, AUR__MAX_SIZE);
        se += c->encoder_depths[i];
        sd += c->decoder_depths[i];
        int di = D << i;
        if (c->encoder_num_heads[i] < 1 || di % c->encoder_num_heads[i] || c->decoder_num_heads[i] < 1 ||
            (D << (c->n_stages - 1 - i)) % c->decoder_num_heads[i])
            return aur__err(AUR_EINVAL, "Aurora: stage %d width does not split into its heads", i);
    }
    if (se != sd) return aur__err(AUR_EINVAL, "Aurora: encoder depths sum to %d, decoder depths to %d", se, sd);
    if (c->num_heads < 1 || c->num_heads > D) return aur__err(AUR_EINVAL, "Aurora: num_heads %d", c->num_heads);
    if (c->latent_levels < 2) return aur__err(AUR_EINVAL, "Aurora: latent_levels %d must be > 1", c->latent_levels);
    for (int a = 0; a < 3; a++)
        if (c->window_size[a] < 1) return aur__err(AUR_EINVAL, "Aurora: window_size must be positive");
    if (c->latent_levels % c->window_size[0])
        return aur__err(AUR_EINVAL, "Aurora: latent_levels %d must be a multiple of window_size[0] %d", c->latent_levels, c->window_size[0]);
    if (c->patch_size < 2) return aur__err(AUR_EINVAL, "Aurora: patch_size %d (the patch area needs P >= 2)", c->patch_size);
    if (c->max_history_size < 1 || c->enc_depth < 1 || c->dec_depth < 1 || c->lora_steps < 1)
        return aur__err(AUR_EINVAL, "Aurora: max_history_size, enc_depth, dec_depth and lora_steps must be >= 1");
    if (!(c->mlp_ratio > 0 && c->dec_mlp_ratio > 0 && c->perceiver_ln_eps > 0 && c->timestep_seconds > 0))
        return aur__err(AUR_EINVAL, "Aurora: mlp ratios, perceiver_ln_eps and timestep must be positive");
    if (!(c->drop_path >= 0 && c->drop_path < 1 && c->drop_rate >= 0 && c->drop_rate < 1))
        return aur__err(AUR_EINVAL, "Aurora: drop_path and drop_rate must be in [0, 1)");
    if (c->wave && c->positive_surf_vars.n) /* its pre-encoder hook changes the batch itself, which a clamped copy would hide */
        return aur__err(AUR_EUNSUPPORTED, "Aurora: AuroraWave with positive_surf_vars cannot run in the reference either");
    if (c->atmos_static_vars && !c->dynamic_vars)
        return aur__err(AUR_EUNSUPPORTED, "Aurora: atmos_static_vars without dynamic_vars cannot run in the reference either");
    return 0;
}

AURDEF int aur_aurora_config_json(const cJSON *kwargs, aur_aurora_config *cfg)
{
    if (!cJSON_IsObject(kwargs)) return aur__err(AUR_EINVAL, "Aurora keywords: expected a JSON object");
    if (aur__json_unique(kwargs, "Aurora keywords")) return AUR_EINVAL;
    aur_aurora_config c = *cfg;
    for (const cJSON *v = kwargs->child; v; v = v->next) {
        int rc = aur__config_key(&c, v);
        if (rc == 1) return aur__err(AUR_EINVAL, "unknown Aurora keyword '%s'", v->string);
        if (rc) return rc;
    }
    int rc = aur__config_check(&c);
    if (!rc) *cfg = c;
    return rc;
}
