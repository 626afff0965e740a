#include "api.h"
#include "../core/platform.h"

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
