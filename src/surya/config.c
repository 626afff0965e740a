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

/* Surya's configs write null for "the default": it keeps the preset's value. */
static const cJSON *aur__sj(const cJSON *v) { return cJSON_IsNull(v) ? NULL : v; }

/* The heads' config.model section: pooling flags, penultimate linear, dropout, decoder. */
static int aur__surya_head_json(const cJSON *model, aur_surya_config *c)
{
    static const char *const pools[] = {"global_class_token", "global_average_pooling", "global_max_pooling", "attention_pooling",
                                        "transformer_pooling"};
    static const char *const decoders[] = {"linear", "perceiver", NULL};
    const char *W = "Surya config.model";
    int set = 0, rc = model && !cJSON_IsObject(model) ? aur__json_bad(model, "Surya keyword 'config'", "model", "an object") : 0;
    for (const cJSON *it = cJSON_IsObject(model) ? model->child : NULL; it && !rc; it = it->next) {
        const char *k = it->string;
        int flag = 0, known = 0;
        for (int p = 0; p < 5 && !known; p++)
            if (!strcmp(k, pools[p])) {
                known = 1;
                rc = aur__json_bool(aur__sj(it), W, &flag);
                if (flag) c->pooling = (aur_surya_pool)p, set++;
            }
        if (known) continue;
        if (!strcmp(k, "penultimate_linear_layer")) rc = aur__json_bool(aur__sj(it), W, &c->penultimate_linear);
        else if (!strcmp(k, "dropout")) rc = aur__json_num(aur__sj(it), W, -HUGE_VAL, HUGE_VAL, &c->head_dropout);
        else if (!strcmp(k, "ft_out_chans")) rc = aur__json_int(aur__sj(it), W, INT_MIN, INT_MAX, &c->out_chans);
        else if (!strcmp(k, "ft_unembedding_type")) rc = aur__json_enum(it, W, decoders, &c->perceiver_decoder);
        else return aur__err(AUR_EINVAL, "Surya head keyword '%s' is unknown", k);
    }
    if (!rc && c->head == AUR_SURYA_1D && set != 1)
        return aur__err(AUR_EINVAL, "Surya 1D head: exactly one pooling flag must be true (%d are)", set);
    return rc;
}

static int aur__surya_time_json(const cJSON *v, aur_surya_config *c)
{
    static const char *const kinds[] = {"linear", "perceiver", NULL};
    const char *W = "Surya time_embedding";
    const cJSON *type = aur__json_at(v, "type");
    int rc = type ? aur__json_enum(type, W, kinds, &c->perceiver_time)
                  : aur__json_bad(v, "Surya keyword", "time_embedding", "{\"type\", \"time_dim\", \"n_queries\"}");
    if (!rc) rc = aur__json_int(aur__sj(aur__json_at(v, "time_dim")), W, INT_MIN, INT_MAX, &c->time_dim);
    if (!rc) rc = aur__json_int(aur__sj(aur__json_at(v, "n_queries")), W, INT_MIN, INT_MAX, &c->n_queries);
    return rc;
}

/* One top-level keyword. */
static int aur__surya_key(const cJSON *it, aur_surya_config *c)
{
    const char *k = it->string, *W = "Surya keyword";
    const cJSON *v = aur__sj(it);
    struct { const char *key; int *dst; } ints[] = {
        {"img_size", &c->img_size}, {"patch_size", &c->patch_size}, {"in_chans", &c->in_chans}, {"embed_dim", &c->embed_dim},
        {"depth", &c->depth}, {"n_spectral_blocks", &c->n_spectral_blocks}, {"num_heads", &c->num_heads},
        {"window_size", &c->window_size}, {"dp_rank", &c->dp_rank}, {"nglo", &c->nglo}, {"num_outputs", &c->num_outputs},
        {"num_penultimate_transformer_layers", &c->penult_layers}, {"num_penultimate_heads", &c->penult_heads},
        {"ensemble", &c->ensemble}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(k, ints[i].key)) return aur__json_int(v, W, INT_MIN, INT_MAX, ints[i].dst);
    if (!strcmp(k, "mlp_ratio")) return aur__json_num(v, W, -HUGE_VAL, HUGE_VAL, &c->mlp_ratio);
    if (!strcmp(k, "drop_rate")) return aur__json_num(v, W, -HUGE_VAL, HUGE_VAL, &c->drop_rate);
    if (!strcmp(k, "dropout")) return aur__json_num(v, W, -HUGE_VAL, HUGE_VAL, &c->head_dropout); /* the pooling modules' dropout */
    if (!strcmp(k, "time_embedding")) return aur__surya_time_json(it, c);
    if (!strcmp(k, "learned_flow")) return aur__json_bool(v, W, &c->learned_flow);
    if (!strcmp(k, "rpe")) return aur__json_bool(v, W, &c->rpe);
    if (!strcmp(k, "use_latitude_in_learned_flow")) return aur__json_bool(v, W, &c->flow_latitude);
    if (!strcmp(k, "finetune")) {
        int ft = 0, rc = aur__json_bool(v, W, &ft);
        if (c->head == AUR_SURYA_FORECAST || c->head == AUR_SURYA_TOKENS) c->head = ft ? AUR_SURYA_TOKENS : AUR_SURYA_FORECAST;
        return rc;
    }
    if (!strcmp(k, "checkpoint_layers")) { /* the reference's list of blocks to checkpoint: here all or none */
        if (!cJSON_IsNull(it) && !cJSON_IsArray(it)) return aur__json_bad(it, W, k, "a list of block indices or null");
        c->checkpoint_blocks = cJSON_GetArraySize(it) > 0;
        return 0;
    }
    if (!strcmp(k, "config")) {
        if (!cJSON_IsObject(it)) return aur__json_bad(it, W, k, "an object (the downstream config, with its model section)");
        return aur__surya_head_json(aur__sj(aur__json_at(it, "model")), c);
    }
    /* init_weights only changes a fresh model's initialisation; dtype is ignored by the reference too */
    if (!strcmp(k, "init_weights") || !strcmp(k, "dtype")) return 0;
    return aur__err(AUR_EINVAL, "Surya keyword '%s' is unknown", k);
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
    if (aur__json_unique(kwargs, "Surya keywords")) return AUR_EINVAL;
    for (const cJSON *it = kwargs->child; it; it = it->next)
        if (aur__surya_key(it, c)) return AUR_EINVAL;
    return 0;
}

/* ---- the downstream configs' model section ---- */

/* What finetune.py does with each key of config.yaml's model section: a
   constructor keyword under another name, the head's config.model, or
   nothing the model sees. */
static const char *const aur__yaml_renamed[][2] = {{"in_channels", "in_chans"}, {"spectral_blocks", "n_spectral_blocks"}};
static const char *const aur__yaml_kwargs[] = {"img_size", "patch_size", "embed_dim", "time_embedding", "depth", "num_heads",
                                               "mlp_ratio", "drop_rate", "window_size", "dp_rank", "learned_flow", "init_weights",
                                               "checkpoint_layers", "rpe", "ensemble", "finetune", "nglo", "dropout", "num_outputs",
                                               NULL};
static const char *const aur__yaml_head[] = {"global_average_pooling", "global_max_pooling", "attention_pooling", "transformer_pooling",
                                             "global_class_token", "penultimate_linear_layer", "ft_unembedding_type", "ft_out_chans",
                                             NULL};
/* model_type, freeze_backbone, use_lora and lora_config are the run's; the
   UNet baseline's keys and epochs_to_learn_flow are read by no Surya model;
   AR's loss keys (select, bce, dice, iou): its script trains with BCE whatever they say */
static const char *const aur__yaml_run[] = {"model_type", "freeze_backbone", "use_lora", "lora_config", "unet_embed_dim", "unet_blocks",
                                            "unet_concat_activations", "epochs_to_learn_flow", "select", "bce", "dice", "iou", NULL};

static int aur__in_list(const char *const *list, const char *k)
{
    for (; *list; list++)
        if (!strcmp(*list, k)) return 1;
    return 0;
}

AURDEF int aur_surya_config_yaml(const cJSON *model, const char *task, aur_surya_config *c)
{
    static const char *const tasks[] = {"flare", "wind", "euv", "ar", NULL};
    if (!cJSON_IsObject(model)) return aur__err(AUR_EINVAL, "Surya run config: 'model' must be an object");
    if (!task || !aur__in_list(tasks, task)) return aur__err(AUR_EINVAL, "Surya run config: task '%s' is not flare, wind, euv or ar", task ? task : "");
    int ar = !strcmp(task, "ar"), rc = aur__json_unique(model, "Surya run config: model");
    cJSON *kw = cJSON_CreateObject(), *cfg = cJSON_AddObjectToObject(kw, "config"), *head = cJSON_AddObjectToObject(cfg, "model");
    for (const cJSON *it = model->child; it && !rc; it = it->next) {
        const char *k = it->string, *as = NULL;
        for (size_t i = 0; i < sizeof aur__yaml_renamed / sizeof aur__yaml_renamed[0]; i++)
            if (!strcmp(k, aur__yaml_renamed[i][0])) as = aur__yaml_renamed[i][1];
        /* finetune.py passes nglo, ensemble and dropout to the 1D head only */
        int for_2d = strcmp(k, "nglo") && strcmp(k, "ensemble") && strcmp(k, "dropout");
        if (as || aur__in_list(aur__yaml_kwargs, k)) {
            if (!ar || for_2d) cJSON_AddItemToObject(kw, as ? as : k, cJSON_Duplicate(it, 1));
        } else if (aur__in_list(aur__yaml_head, k)) {
            cJSON_AddItemToObject(head, k, cJSON_Duplicate(it, 1));
        } else if (!aur__in_list(aur__yaml_run, k)) {
            rc = aur__err(AUR_EINVAL, "Surya run config: model.%s is not a key of the reference's downstream configs", k);
        }
    }
    if (!rc) rc = aur_surya_config_json(kw, ar ? "HelioSpectformer2D" : "HelioSpectformer1D", ar ? NULL : task, c);
    cJSON_Delete(kw);
    return rc;
}
