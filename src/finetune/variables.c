#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

/* ==== fine-tuning: new variables, groups, summary ==== */

AURDEF int aur_model_fill(aur_model *m, const char *patterns, double value)
{
    int hits = 0;
    for (int i = 0; i < m->n; i++) {
        aur_tensor *p = m->params[i];
        if (!aur_name_matches(patterns, p->name)) continue;
        aur_real *v = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(p->numel ? p->numel : 1), "a fill");
        if (!v) return AUR_ENOMEM;
        for (int64_t k = 0; k < p->numel; k++) v[k] = (aur_real)value;
        int rc = aur_tensor_set(p, v, p->numel);
        AUR_FREE(v);
        if (rc) return rc;
        hits++;
    }
    return hits;
}

/* The parameters that exist once per variable: where a new variable lives. */
#define AUR__PER_VAR_PARAMS "encoder.*_token_embeds.weights.*,decoder.*_heads.*"

AURDEF char *aur_aurora_new_var_params(const aur_model *m, const aur_load_report *rep)
{
    size_t size = 1, k = 0;
    for (int i = 0; rep && i < rep->n_missing; i++) size += strlen(rep->missing[i]) + 1;
    char *out = (char *)aur__malloc(size, "a name list");
    if (!out) return NULL;
    out[0] = 0;
    for (int i = 0; rep && i < rep->n_missing; i++) {
        const char *n = rep->missing[i];
        if (!aur_name_matches(AUR__PER_VAR_PARAMS, n) || !aur_model_param(m, n)) continue;
        k += (size_t)snprintf(out + k, size - k, k ? ",%s" : "%s", n);
    }
    return out;
}

