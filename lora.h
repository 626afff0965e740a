/* lora.h - GENERATED from src/ by `make headers` (tools/make_headers.sh; src/manifest
   lists its files in order). Do not edit it: edit src/, run make headers, commit both. */
/* lora.h - LoRA adapters for any linear layer of an aurora.h model (Aurora or
   Surya), interchangeable with Hugging Face PEFT. MIT licence.

   A LoRA adapter adds a low-rank update to a frozen linear layer:
       y = x W^T + b + scaling * (dropout(x) A^T) B^T,   A (r, in), B (out, r),
   scaling = alpha / r (alpha / sqrt(r) with rsLoRA). Only A and B train, so a
   1.3 B model fine-tunes with a few million parameters. PEFT's rules are
   kept exactly (huggingface/peft: src/peft/tuners/lora,
   src/peft/utils/save_and_load.py): which modules a target list matches, the
   names of the tensors, the adapter directory (adapter_config.json +
   adapter_model.safetensors), and what stays frozen.

   USAGE (include after aurora.h or surya.h; the implementation comes with
   AURORA_IMPLEMENTATION):

       aur_model *m = aur_surya_declare_model(&cfg);     (or aur_aurora_declare_model)
       aur_lora_config lc = aur_lora_defaults();          r 8, alpha 8
       aur_lora_add_target(&lc, "fc1"); aur_lora_add_target(&lc, "fc2");
       aur_lora_report rep;
       aur_lora_declare(m, &lc, &rep);                    adapters on every matching linear; rep lists
       aur_model_alloc(m, AUR_CPU); aur_surya_init_weights(m, 0);   what matched and what did not
       aur_load_safetensors(m, "surya.safetensors", AUR_LOAD_NONSTRICT, NULL);
       aur_lora_freeze_base(m, &lc);                      as PEFT: only adapters (and modules_to_save) train
       ... train ...
       aur_lora_save(m, &lc, "my-adapter");                  loads in Python with PeftModel.from_pretrained */

#ifndef AUR__LORA_H
#define AUR__LORA_H

#include "aurora.h"

#define AUR_LORA_MAX_TARGETS 32

typedef struct aur_lora_config {
    int r;
    double lora_alpha, lora_dropout;
    int use_rslora;
    int n_targets;
    char target_modules[AUR_LORA_MAX_TARGETS][96]; /* a list: a module matches t when its name is t or ends in ".t" */
    char target_regex[256];                        /* or a string: a full-match regular expression (POSIX ERE) */
    int n_modules_to_save;
    char modules_to_save[AUR_LORA_MAX_TARGETS][96]; /* trained in full and saved with the adapter */
    char base_model_name_or_path[256];
} aur_lora_config;

AURDEF aur_lora_config aur_lora_defaults(void); /* r 8, alpha 8, dropout 0, no targets */
AURDEF int aur_lora_add_target(aur_lora_config *c, const char *module);
/* Reads PEFT's LoraConfig fields from JSON (adapter_config.json or a kwargs
   object). Unknown keys are ignored with a warning in *warnings (may be
   NULL; owned: free()); DoRA and other variants are AUR_EUNSUPPORTED. */
AURDEF int aur_lora_config_json(const struct cJSON *j, aur_lora_config *c, char **warnings);

typedef struct aur_lora_report {
    int n_matched, n_unmatched;
    char **matched;   /* module names that got an adapter */
    char **unmatched; /* listed targets that matched no linear module (PEFT would raise only if none matched) */
} aur_lora_report;
AURDEF void aur_lora_report_free(aur_lora_report *rep);
AURDEF void aur_lora_report_print(const aur_lora_report *rep, FILE *out);

/* Declares an adapter on every matching linear module of a declared (not
   yet allocated) model. Nothing matching is an error. rep may be NULL. */
AURDEF int aur_lora_declare(aur_model *m, const aur_lora_config *c, aur_lora_report *rep);
/* PEFT's freezing: every parameter but the adapters and modules_to_save. */
AURDEF int aur_lora_freeze_base(aur_model *m, const aur_lora_config *c);
/* W += scaling B A for every adapter (inference without the extra products), and back. */
AURDEF int aur_lora_merge(aur_model *m);
AURDEF int aur_lora_unmerge(aur_model *m);

/* An adapter directory in PEFT's format: adapter_config.json (PEFT's keys,
   sorted, indent 2) and adapter_model.safetensors ("base_model.model.{module}.lora_A.weight", ...). */
AURDEF int aur_lora_save(const aur_model *m, const aur_lora_config *c, const char *dir);
/* Reads an adapter directory's config (to declare the adapters before allocating). */
AURDEF int aur_lora_load_config(const char *dir, aur_lora_config *c, char **warnings);
/* Loads an adapter directory's tensors into the model's declared adapters (strict). */
AURDEF int aur_lora_load(aur_model *m, const char *dir);
/* A PEFT name as the model names it: no "base_model.model." prefix,
   "{m}.base_layer.{p}" -> "{m}.{p}", "{m}.lora_A[.{adapter}].weight" ->
   "{m}.lora_A.default.weight". Writes buf, returns it. */
AURDEF const char *aur_lora_model_name(const char *peft_name, char *buf, size_t size);
/* Loads a whole PEFT-wrapped state dict ("base_model.model.{m}.base_layer.weight",
   "...lora_A.{adapter}.weight") into the model's names. */
AURDEF int aur_lora_load_peft_state_dict(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep);

#endif /* AUR__LORA_H */

/* ======================================================================== */
/*                            IMPLEMENTATION                                */
/* ======================================================================== */

#if defined(AURORA_IMPLEMENTATION) && !defined(AUR__LORA_IMPL_DONE)
#define AUR__LORA_IMPL_DONE

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

/* ---- matching ---- */

/* PEFT's rule for a list entry: the name is the target or ends in "." + target. */
static int aur__lora_list_match(const char *module, const char *target)
{
    size_t n = strlen(module), k = strlen(target);
    return !strcmp(module, target) || (n > k && module[n - k - 1] == '.' && !strcmp(module + n - k, target));
}

/* A Linear or Conv2d module, as PEFT adapts them: "{m}.weight" 2-D or 4-D,
   not an adapter tensor itself. Writes m. */
static int aur__lora_linear_module(const aur_tensor *p, char *module, size_t size)
{
    size_t n = strlen(p->name);
    if ((p->ndim != 2 && p->ndim != 4) || p->is_buffer || n < 8 || strcmp(p->name + n - 7, ".weight") || strstr(p->name, ".lora_")) return 0;
    snprintf(module, size, "%.*s", (int)(n - 7), p->name);
    return 1;
}

static int aur__lora_push(char ***list, int *n, const char *s)
{
    char **l = (char **)AUR_REALLOC(*list, sizeof(char *) * (size_t)(*n + 1));
    if (!l) return AUR_ENOMEM;
    *list = l;
    return (l[(*n)++] = aur__strdup(s)) ? 0 : AUR_ENOMEM;
}

AURDEF void aur_lora_report_free(aur_lora_report *r)
{
    if (!r) return;
    for (int i = 0; i < r->n_matched; i++) AUR_FREE(r->matched[i]);
    for (int i = 0; i < r->n_unmatched; i++) AUR_FREE(r->unmatched[i]);
    AUR_FREE(r->matched);
    AUR_FREE(r->unmatched);
    memset(r, 0, sizeof *r);
}

AURDEF void aur_lora_report_print(const aur_lora_report *r, FILE *out)
{
    fprintf(out, "LoRA: %d modules adapted", r->n_matched);
    for (int i = 0; i < r->n_matched; i++) fprintf(out, "%s%s", i ? ", " : ": ", r->matched[i]);
    fprintf(out, "\n");
    for (int i = 0; i < r->n_unmatched; i++) fprintf(out, "LoRA: target '%s' matched no linear module\n", r->unmatched[i]);
}

/* Compiles "^(re)$"; Python-only syntax ((?...), \d, \w) fails clearly. */
static int aur__lora_regex(const char *re, regex_t *rx)
{
    if (strstr(re, "(?") || strstr(re, "\\d") || strstr(re, "\\w") || strstr(re, "\\s"))
        return aur__err(AUR_EUNSUPPORTED, "LoRA target regex '%s' uses Python-only syntax; use POSIX ERE ([0-9], [[:alnum:]_])", re);
    char full[300];
    snprintf(full, sizeof full, "^(%s)$", re);
    if (regcomp(rx, full, REG_EXTENDED | REG_NOSUB)) return aur__err(AUR_EINVAL, "LoRA target regex '%s' does not compile", re);
    return 0;
}

AURDEF int aur_lora_declare(aur_model *m, const aur_lora_config *c, aur_lora_report *rep)
{
    aur_lora_report local;
    aur_lora_report *r = rep ? rep : &local;
    memset(r, 0, sizeof *r);
    if (c->r < 1) return aur__err(AUR_EINVAL, "LoRA: r must be >= 1 (it is %d)", c->r);
    regex_t rx;
    int use_rx = c->target_regex[0] != 0, rc = use_rx ? aur__lora_regex(c->target_regex, &rx) : 0;
    int compiled = use_rx && !rc; /* regfree only what regcomp made */
    int hits[AUR_LORA_MAX_TARGETS] = {0}, n0 = m->n; /* the model grows as adapters are added */
    double scaling = c->use_rslora ? c->lora_alpha / sqrt((double)c->r) : c->lora_alpha / c->r;
    char module[256];
    for (int i = 0; i < n0 && !rc; i++) {
        if (!aur__lora_linear_module(m->params[i], module, sizeof module)) continue;
        int match = use_rx ? regexec(&rx, module, 0, NULL, 0) == 0 : 0;
        for (int k = 0; !use_rx && k < c->n_targets; k++)
            if (aur__lora_list_match(module, c->target_modules[k])) hits[k]++, match = 1;
        if (match) rc = aur_model_add_adapter(m, module, c->r, scaling, c->lora_dropout);
        if (match && !rc) rc = aur__lora_push(&r->matched, &r->n_matched, module);
    }
    if (compiled) regfree(&rx);
    for (int k = 0; !rc && k < c->n_targets; k++)
        if (!hits[k]) rc = aur__lora_push(&r->unmatched, &r->n_unmatched, c->target_modules[k]);
    if (!rc && !r->n_matched)
        rc = aur__err(AUR_EINVAL, "LoRA: the targets matched no linear module (%s%s)", use_rx ? "regex " : "",
                      use_rx ? c->target_regex : c->n_targets ? c->target_modules[0] : "no targets given");
    if (!rep) aur_lora_report_free(&local);
    return rc;
}

/* 1 if the parameter belongs to a modules_to_save entry (each one found is marked in used). */
static int aur__lora_saved(const aur_lora_config *c, const char *name, unsigned char *used)
{
    int saved = 0;
    for (int k = 0; k < c->n_modules_to_save; k++) {
        size_t n = strlen(c->modules_to_save[k]);
        const char *hit = strstr(name, c->modules_to_save[k]);
        /* the module is a whole dotted component of the parameter's module path */
        while (hit && !((hit == name || hit[-1] == '.') && hit[n] == '.')) hit = strstr(hit + 1, c->modules_to_save[k]);
        if (hit) used[k] = 1, saved = 1;
    }
    return saved;
}

AURDEF int aur_lora_freeze_base(aur_model *m, const aur_lora_config *c)
{
    unsigned char used[AUR_LORA_MAX_TARGETS] = {0};
    if (!m->n_adapters) return aur__err(AUR_EINVAL, "aur_lora_freeze_base: the model has no adapters");
    for (int k = 0; k < m->n; k++) /* first check: an entry that names nothing changes no parameter */
        if (!m->params[k]->is_buffer) aur__lora_saved(c, m->params[k]->name, used);
    for (int k = 0; k < c->n_modules_to_save; k++)
        if (!used[k]) return aur__err(AUR_EINVAL, "LoRA: modules_to_save entry '%s' names no module of the model", c->modules_to_save[k]);
    for (int i = 0; i < m->n; i++) {
        aur_tensor *p = m->params[i];
        if (!p->is_buffer) p->requires_grad = strstr(p->name, ".lora_A.") || strstr(p->name, ".lora_B.") || aur__lora_saved(c, p->name, used);
    }
    return 0;
}

/* W += sign * scaling * B A, on the host. */
static int aur__lora_fold(aur_model *m, double sign, int merged)
{
    char name[300];
    for (int i = 0; i < m->n_adapters; i++) {
        aur__adapter *a = &m->adapters[i];
        if (a->merged == merged) continue;
        snprintf(name, sizeof name, "%s.weight", a->module);
        aur_tensor *W = aur_model_param(m, name);
        if (!W || W->device != AUR_CPU) return W ? aur__err(AUR_EUNSUPPORTED, "LoRA merge: CPU models only for now") : AUR_EINVAL;
        int64_t out = W->shape[0], in = W->numel / out, r = a->A->shape[0]; /* a Conv2d's weight as (out, in kh kw) */
        const aur_real *A = (const aur_real *)a->A->data, *B = (const aur_real *)a->B->data;
        aur_real *w = aur_tensor_f32(W);
        for (int64_t o = 0; o < out; o++)
            for (int64_t k = 0; k < in; k++) {
                double s = 0;
                for (int64_t j = 0; j < r; j++) s += (double)B[o * r + j] * (double)A[j * in + k];
                w[o * in + k] = (aur_real)((double)w[o * in + k] + sign * a->scaling * s);
            }
        a->merged = merged;
    }
    return 0;
}

AURDEF int aur_lora_merge(aur_model *m) { return aur__lora_fold(m, 1.0, 1); }
AURDEF int aur_lora_unmerge(aur_model *m) { return aur__lora_fold(m, -1.0, 0); }

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

#endif /* AUR__LORA_IMPL_DONE */
