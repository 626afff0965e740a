#include "api.h"
#include "../core/platform.h"

/* ==== Surya: configuration ==== */

AURDEF int aur_surya_preset(const char *name, aur_surya_config *c)
{
    memset(c, 0, sizeof *c);
    c->img_size = 4096, c->patch_size = 16, c->in_chans = 13, c->embed_dim = 1280, c->time_dim = 2;
    c->depth = 10, c->n_spectral_blocks = 2, c->num_heads = 16, c->mlp_ratio = 4.0;
    c->window_size = 2, c->dp_rank = 4, c->head = AUR_SURYA_FORECAST;
    c->num_outputs = 1, c->out_chans = 1, c->penultimate_linear = 1;
    if (!strcmp(name, "surya-1.0") || !strcmp(name, "Surya-1.0")) return 0;
    if (!strcmp(name, "surya-tiny")) {
        c->img_size = 64, c->patch_size = 4, c->embed_dim = 64, c->depth = 4, c->num_heads = 4;
        return 0;
    }
    return aur__err(AUR_EINVAL, "unknown Surya preset '%s' (surya-1.0, surya-tiny)", name);
}

static int aur__sj_int(const cJSON *v, const char *k, int *out)
{
    if (cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return aur__err(AUR_EINVAL, "Surya keyword '%s': expected a whole number", k);
    *out = (int)v->valuedouble;
    return 0;
}

static int aur__sj_num(const cJSON *v, const char *k, double *out)
{
    if (cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return aur__err(AUR_EINVAL, "Surya keyword '%s': expected a number", k);
    *out = v->valuedouble;
    return 0;
}

static int aur__sj_bool(const cJSON *v, const char *k, int *out)
{
    if (cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return aur__err(AUR_EINVAL, "Surya keyword '%s': expected true or false", k);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* The heads' config.model section: pooling flags, penultimate linear, dropout, decoder. */
static int aur__surya_head_json(const cJSON *model, aur_surya_config *c)
{
    static const char *pools[] = {"global_class_token", "global_average_pooling", "global_max_pooling", "attention_pooling",
                                  "transformer_pooling"};
    int set = 0, rc = 0;
    for (const cJSON *it = model ? model->child : NULL; it && !rc; it = it->next) {
        const char *k = it->string;
        int flag = 0, known = 0;
        for (int p = 0; p < 5 && !known; p++)
            if (!strcmp(k, pools[p])) {
                known = 1;
                rc = aur__sj_bool(it, k, &flag);
                if (flag) c->pooling = (aur_surya_pool)p, set++;
            }
        if (known) continue;
        if (!strcmp(k, "penultimate_linear_layer")) rc = aur__sj_bool(it, k, &c->penultimate_linear);
        else if (!strcmp(k, "dropout")) rc = aur__sj_num(it, k, &c->head_dropout);
        else if (!strcmp(k, "ft_out_chans")) rc = aur__sj_int(it, k, &c->out_chans);
        else if (!strcmp(k, "ft_unembedding_type")) {
            if (!cJSON_IsString(it) || (strcmp(it->valuestring, "linear") && strcmp(it->valuestring, "perceiver")))
                return aur__err(AUR_EINVAL, "Surya keyword 'ft_unembedding_type': \"linear\" or \"perceiver\"");
            c->perceiver_decoder = !strcmp(it->valuestring, "perceiver");
        } else return aur__err(AUR_EINVAL, "Surya head keyword '%s' is unknown", k);
    }
    if (!rc && c->head == AUR_SURYA_1D && set != 1)
        return aur__err(AUR_EINVAL, "Surya 1D head: exactly one pooling flag must be true (%d are)", set);
    return rc;
}

static int aur__surya_time_json(const cJSON *v, aur_surya_config *c)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
    if (!cJSON_IsObject(v) || !cJSON_IsString(type))
        return aur__err(AUR_EINVAL, "Surya keyword 'time_embedding': expected {\"type\", \"time_dim\", \"n_queries\"}");
    c->perceiver_time = !strcmp(type->valuestring, "perceiver");
    if (!c->perceiver_time && strcmp(type->valuestring, "linear"))
        return aur__err(AUR_EINVAL, "Surya time_embedding type '%s': \"linear\" or \"perceiver\"", type->valuestring);
    int rc = aur__sj_int(cJSON_GetObjectItemCaseSensitive(v, "time_dim"), "time_dim", &c->time_dim);
    if (!rc) rc = aur__sj_int(cJSON_GetObjectItemCaseSensitive(v, "n_queries"), "n_queries", &c->n_queries);
    return rc;
}

/* One top-level keyword. */
static int aur__surya_key(const cJSON *it, aur_surya_config *c)
{
    const char *k = it->string;
    int ignored = 0;
    struct { const char *key; int *dst; } ints[] = {
        {"img_size", &c->img_size}, {"patch_size", &c->patch_size}, {"in_chans", &c->in_chans}, {"embed_dim", &c->embed_dim},
        {"depth", &c->depth}, {"n_spectral_blocks", &c->n_spectral_blocks}, {"num_heads", &c->num_heads},
        {"window_size", &c->window_size}, {"dp_rank", &c->dp_rank}, {"nglo", &c->nglo}, {"num_outputs", &c->num_outputs},
        {"num_penultimate_transformer_layers", &c->penult_layers}, {"num_penultimate_heads", &c->penult_heads}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(k, ints[i].key)) return aur__sj_int(it, k, ints[i].dst);
    if (!strcmp(k, "mlp_ratio")) return aur__sj_num(it, k, &c->mlp_ratio);
    if (!strcmp(k, "drop_rate")) return aur__sj_num(it, k, &c->drop_rate);
    if (!strcmp(k, "dropout")) return aur__sj_num(it, k, &c->head_dropout); /* the pooling modules' dropout */
    if (!strcmp(k, "time_embedding")) return aur__surya_time_json(it, c);
    if (!strcmp(k, "learned_flow")) return aur__sj_bool(it, k, &c->learned_flow);
    if (!strcmp(k, "rpe")) return aur__sj_bool(it, k, &c->rpe);
    if (!strcmp(k, "finetune")) {
        int ft = 0, rc = aur__sj_bool(it, k, &ft);
        if (c->head == AUR_SURYA_FORECAST || c->head == AUR_SURYA_TOKENS) c->head = ft ? AUR_SURYA_TOKENS : AUR_SURYA_FORECAST;
        return rc;
    }
    if (!strcmp(k, "ensemble")) return cJSON_IsNull(it) ? 0 : aur__sj_int(it, k, &c->ensemble);
    if (!strcmp(k, "checkpoint_layers")) {
        c->checkpoint_blocks = cJSON_GetArraySize(it) > 0;
        return 0;
    }
    if (!strcmp(k, "config")) return aur__surya_head_json(cJSON_GetObjectItemCaseSensitive(it, "model"), c);
    /* init_weights only changes a fresh model's initialisation; dtype is ignored by the reference too */
    if (!strcmp(k, "use_latitude_in_learned_flow")) return aur__sj_bool(it, k, &c->flow_latitude);
    if (!strcmp(k, "init_weights") || !strcmp(k, "dtype")) ignored = 1;
    return ignored ? 0 : aur__err(AUR_EINVAL, "Surya keyword '%s' is unknown", k);
}

AURDEF int aur_surya_config_json(const cJSON *kwargs, const char *cls, const char *task, aur_surya_config *c)
{
    if (cls && !strcmp(cls, "HelioSpectformer1D")) c->head = AUR_SURYA_1D;
    else if (cls && !strcmp(cls, "HelioSpectformer2D")) c->head = AUR_SURYA_2D;
    else if (cls && strcmp(cls, "HelioSpectFormer")) return aur__err(AUR_EINVAL, "unknown Surya class '%s'", cls);
    if (c->head == AUR_SURYA_1D) {
        c->squeeze_output = !task || !strcmp(task, "flare") || !strcmp(task, "euv");
        c->sigmoid_output = task && !strcmp(task, "euv");
    }
    if (!cJSON_IsObject(kwargs)) return aur__err(AUR_EINVAL, "Surya keywords: expected an object");
    for (const cJSON *it = kwargs->child; it; it = it->next)
        if (aur__surya_key(it, c)) return AUR_EINVAL;
    return 0;
}
