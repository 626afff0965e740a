#include "api.h"
#include "../core/platform.h"

#include <regex.h>

AURDEF aur_lora_config aur_lora_defaults(void)
{
    aur_lora_config c;
    memset(&c, 0, sizeof c);
    c.r = 8;
    c.lora_alpha = 8;
    return c;
}

AURDEF int aur_lora_add_target(aur_lora_config *c, const char *module)
{
    if (c->n_targets >= AUR_LORA_MAX_TARGETS || strlen(module) >= sizeof c->target_modules[0])
        return aur__err(AUR_EINVAL, "LoRA: too many target modules or '%s' is too long", module);
    snprintf(c->target_modules[c->n_targets++], sizeof c->target_modules[0], "%s", module);
    return 0;
}

/* A list of names (or null) into fixed slots. */
static int aur__lora_names(const cJSON *v, char (*out)[96], int *n)
{
    return aur__json_names(v, "LoRA config", out[0], sizeof out[0], AUR_LORA_MAX_TARGETS, n);
}

/* Keys PEFT writes that change nothing here when they hold their defaults. */
static int aur__lora_inert(const char *k, const cJSON *v)
{
    static const char *null_ok[] = {"task_type", "revision", "layers_to_transform", "layers_pattern", "auto_mapping", "peft_version",
                                    "inference_mode", "init_lora_weights", "fan_in_fan_out", "bias", "lora_bias", "megatron_core",
                                    "megatron_config", "loftq_config", "exclude_modules", "layer_replication", "eva_config",
                                    "corda_config", "alora_invocation_tokens", "arrow_config", "ensure_weight_tying",
                                    "kasa_config", "lora_ga_config", "monteclora_config", "qalora_group_size", "target_parameters",
                                    "trainable_token_indices", "use_bdlora", "use_qalora", "velora_config", NULL};
    for (int i = 0; null_ok[i]; i++)
        if (!strcmp(k, null_ok[i])) return 1;
    (void)v;
    return 0;
}

/* Variants we do not implement must not be silently ignored. */
static int aur__lora_variant(const char *k, const cJSON *v)
{
    if (!strcmp(k, "use_dora") || !strcmp(k, "use_qalora") || !strcmp(k, "lora_bias")) return cJSON_IsTrue(v);
    if (!strcmp(k, "bias")) return cJSON_IsString(v) && strcmp(v->valuestring, "none");
    if (!strcmp(k, "fan_in_fan_out")) return cJSON_IsTrue(v);
    if (!strcmp(k, "rank_pattern") || !strcmp(k, "alpha_pattern")) return cJSON_IsObject(v) && v->child;
    if (!strcmp(k, "layers_to_transform") || !strcmp(k, "exclude_modules") || !strcmp(k, "layer_replication"))
        return v && !cJSON_IsNull(v);
    return 0;
}

AURDEF int aur_lora_config_json(const cJSON *j, aur_lora_config *c, char **warnings)
{
    aur__buf warn;
    memset(&warn, 0, sizeof warn);
    if (warnings) *warnings = NULL;
    if (!cJSON_IsObject(j)) return aur__err(AUR_EINVAL, "LoRA config: expected a JSON object");
    const char *W = "LoRA config";
    int rc = aur__json_unique(j, W);
    for (const cJSON *it = j->child; it && !rc; it = it->next) {
        const char *k = it->string;
        if (aur__lora_variant(k, it)) rc = aur__err(AUR_EUNSUPPORTED, "LoRA config: '%s' (a PEFT variant) is not supported", k);
        else if (!strcmp(k, "r")) rc = aur__json_int(it, W, 1, INT_MAX, &c->r);
        else if (!strcmp(k, "lora_alpha")) rc = aur__json_num(it, W, -HUGE_VAL, HUGE_VAL, &c->lora_alpha);
        else if (!strcmp(k, "lora_dropout")) {
            rc = aur__json_num(it, W, 0, 1, &c->lora_dropout);
            if (!rc && c->lora_dropout == 1) rc = aur__json_bad(it, W, k, "a probability below 1");
        }
        else if (!strcmp(k, "use_rslora")) rc = aur__json_bool(it, W, &c->use_rslora);
        else if (!strcmp(k, "target_modules")) {
            c->target_regex[0] = 0;
            if (cJSON_IsString(it) && strlen(it->valuestring) >= sizeof c->target_regex)
                rc = aur__err(AUR_EINVAL, "LoRA config: 'target_modules' is a regular expression of %zu characters; at most %zu are supported",
                              strlen(it->valuestring), sizeof c->target_regex - 1);
            else if (cJSON_IsString(it)) snprintf(c->target_regex, sizeof c->target_regex, "%s", it->valuestring);
            else rc = aur__lora_names(it, c->target_modules, &c->n_targets);
        } else if (!strcmp(k, "modules_to_save")) rc = aur__lora_names(it, c->modules_to_save, &c->n_modules_to_save);
        else if (!strcmp(k, "base_model_name_or_path")) { /* PEFT writes a name or null */
            const char *name = NULL;
            if (!cJSON_IsNull(it)) rc = aur__json_str(it, W, &name);
            if (name) snprintf(c->base_model_name_or_path, sizeof c->base_model_name_or_path, "%s", name);
        } else if (!strcmp(k, "peft_type")) {
            if (!cJSON_IsString(it) || strcmp(it->valuestring, "LORA"))
                rc = aur__err(AUR_EUNSUPPORTED, "adapter peft_type '%s': only LORA", cJSON_IsString(it) ? it->valuestring : "?");
        } else if (!strcmp(k, "rank_pattern") || !strcmp(k, "alpha_pattern")) {
        } else if (!aur__lora_inert(k, it)) aur__buf_printf(&warn, "%sunknown LoRA config key '%s' ignored", warn.n ? "; " : "", k);
    }
    if (warnings) *warnings = warn.p;
    else AUR_FREE(warn.p);
    return rc;
}
