#include "api.h"
#include "../core/platform.h"

/* ---- PEFT files ---- */

/* JSON as Python's json.dumps(indent=2) writes it (PEFT's save_pretrained). */
static void aur__json_pretty(aur__buf *b, const cJSON *v, int depth)
{
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        int obj = cJSON_IsObject(v);
        if (!v->child) {
            aur__buf_printf(b, obj ? "{}" : "[]");
            return;
        }
        aur__buf_printf(b, obj ? "{\n" : "[\n");
        for (const cJSON *c = v->child; c; c = c->next) {
            aur__buf_printf(b, "%*s", 2 * (depth + 1), "");
            if (obj) aur__buf_printf(b, "\"%s\": ", c->string);
            aur__json_pretty(b, c, depth + 1);
            aur__buf_printf(b, c->next ? ",\n" : "\n");
        }
        aur__buf_printf(b, "%*s%s", 2 * depth, "", obj ? "}" : "]");
    } else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15) {
        aur__buf_printf(b, "%.0f", v->valuedouble);
    } else {
        char *s = cJSON_PrintUnformatted(v);
        aur__buf_printf(b, "%s", s ? s : "null");
        cJSON_free(s);
    }
}

AURDEF int aur_lora_save(const aur_model *m, const aur_lora_config *c, const char *dir)
{
    if (!m->n_adapters) return aur__err(AUR_EINVAL, "aur_lora_save: the model has no adapters");
    if (mkdir(dir, 0755) && errno != EEXIST) return aur__err(AUR_EIO, "cannot create %s: %s", dir, strerror(errno));
    aur_st_writer *w = aur_st_writer_create();
    char name[400], path[1200];
    int rc = w ? aur_st_writer_meta(w, "format", "pt") : AUR_ENOMEM;
    for (int i = 0; i < m->n_adapters && !rc; i++) {
        snprintf(name, sizeof name, "base_model.model.%s.lora_A.weight", m->adapters[i].module);
        rc = aur_st_writer_add(w, name, m->adapters[i].A);
        snprintf(name, sizeof name, "base_model.model.%s.lora_B.weight", m->adapters[i].module);
        if (!rc) rc = aur_st_writer_add(w, name, m->adapters[i].B);
    }
    unsigned char used[AUR_LORA_MAX_TARGETS];
    for (int i = 0; i < m->n && !rc; i++)
        if (aur__lora_saved(c, m->params[i]->name, used)) {
            snprintf(name, sizeof name, "base_model.model.%s", m->params[i]->name);
            rc = aur_st_writer_add(w, name, m->params[i]);
        }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (!rc) rc = aur_st_writer_write(w, path);
    aur_st_writer_free(w);
    if (rc) return rc;
    /* the config: PEFT's keys in sorted order, indent 2 (no others: older PEFT rejects unknown keys) */
    cJSON *j = cJSON_CreateObject(), *targets = cJSON_CreateArray(), *save = c->n_modules_to_save ? cJSON_CreateArray() : cJSON_CreateNull();
    for (int k = 0; k < c->n_targets; k++) cJSON_AddItemToArray(targets, cJSON_CreateString(c->target_modules[k]));
    for (int k = 0; k < c->n_modules_to_save; k++) cJSON_AddItemToArray(save, cJSON_CreateString(c->modules_to_save[k]));
    cJSON_AddItemToObject(j, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddItemToObject(j, "base_model_name_or_path",
                          c->base_model_name_or_path[0] ? cJSON_CreateString(c->base_model_name_or_path) : cJSON_CreateNull());
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddFalseToObject(j, "fan_in_fan_out");
    cJSON_AddTrueToObject(j, "inference_mode");
    cJSON_AddTrueToObject(j, "init_lora_weights");
    cJSON_AddNullToObject(j, "layers_pattern");
    cJSON_AddNullToObject(j, "layers_to_transform");
    cJSON_AddNumberToObject(j, "lora_alpha", c->lora_alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", c->lora_dropout);
    cJSON_AddItemToObject(j, "modules_to_save", save);
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddNumberToObject(j, "r", c->r);
    cJSON_AddItemToObject(j, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "revision");
    if (c->target_regex[0]) {
        cJSON_Delete(targets);
        cJSON_AddStringToObject(j, "target_modules", c->target_regex);
    } else cJSON_AddItemToObject(j, "target_modules", targets);
    cJSON_AddNullToObject(j, "task_type");
    cJSON_AddBoolToObject(j, "use_rslora", c->use_rslora);
    aur__buf out;
    memset(&out, 0, sizeof out);
    aur__json_pretty(&out, j, 0);
    aur__buf_printf(&out, "\n");
    char *text = out.failed ? NULL : out.p;
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    rc = text ? aur__write_text(path, text) : AUR_ENOMEM;
    AUR_FREE(out.p);
    return rc;
}

AURDEF int aur_lora_load_config(const char *dir, aur_lora_config *c, char **warnings)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    cJSON *j = aur_json_load(path);
    if (!j) return AUR_EFORMAT;
    *c = aur_lora_defaults();
    int rc = aur_lora_config_json(j, c, warnings);
    cJSON_Delete(j);
    return rc;
}

AURDEF const char *aur_lora_model_name(const char *peft_name, char *buf, size_t size)
{
    const char *s = strncmp(peft_name, "base_model.model.", 17) ? peft_name : peft_name + 17;
    snprintf(buf, size, "%s", s);
    char *bl = strstr(buf, ".base_layer.");
    if (bl) memmove(bl, bl + 11, strlen(bl + 11) + 1);
    for (int ab = 0; ab < 2; ab++) {
        char *l = strstr(buf, ab ? ".lora_B." : ".lora_A.");
        if (!l) continue;
        char tail[512];
        snprintf(tail, sizeof tail, "%s", l + 8); /* "weight" or "{adapter}.weight" */
        const char *dot = strcmp(tail, "weight") ? strchr(tail, '.') : ".weight";
        snprintf(l + 8, size - (size_t)(l + 8 - buf), "default%s", dot ? dot : "");
    }
    return buf;
}

/* Renames a PEFT file's entries to the model's names. */
static int aur__peft_names(aur_model *m, aur__ckpt *ck)
{
    (void)m;
    for (int i = 0; i < ck->n; i++) {
        char buf[512];
        char *copy = aur__strdup(aur_lora_model_name(ck->e[i].name, buf, sizeof buf));
        if (!copy) return AUR_ENOMEM;
        AUR_FREE(ck->e[i].name);
        ck->e[i].name = copy;
    }
    return 0;
}

AURDEF int aur_lora_load_peft_state_dict(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep)
{
    return aur__load_file(m, path, mode, rep, aur__peft_names);
}

AURDEF int aur_lora_load(aur_model *m, const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    aur_load_report rep;
    int rc = aur__load_file(m, path, AUR_LOAD_NONSTRICT, &rep, aur__peft_names);
    /* every tensor in the file must land; the model's other weights are not in an adapter file */
    if (!rc && rep.n_unexpected)
        rc = aur__err(AUR_EFORMAT, "%s: '%s' has no place in this model (declare the adapter first)", path, rep.unexpected[0]);
    for (int i = 0; !rc && i < m->n_adapters; i++)
        for (int k = 0; k < rep.n_missing; k++)
            if (!strcmp(rep.missing[k], m->adapters[i].A->name) || !strcmp(rep.missing[k], m->adapters[i].B->name))
                rc = aur__err(AUR_EFORMAT, "%s: no tensor for the adapter '%s'", path, rep.missing[k]);
    aur_load_report_free(&rep);
    return rc;
}
