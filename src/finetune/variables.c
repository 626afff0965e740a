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

static int aur__report_has(const aur_load_report *rep, const char *name)
{
    for (int i = 0; rep && i < rep->n_missing; i++)
        if (!strcmp(rep->missing[i], name)) return 1;
    return 0;
}

AURDEF void aur_model_summary(const aur_model *m, const aur_load_report *rep, FILE *out)
{
    enum { MODS = 8 };
    char mods[MODS][32];
    int64_t train[MODS] = {0}, frozen[MODS] = {0}, fresh[MODS] = {0};
    int n_mods = 0;
    for (int i = 0; i < m->n; i++) {
        const aur_tensor *p = m->params[i];
        if (p->is_buffer) continue;
        char top[32];
        size_t len = strcspn(p->name, ".");
        snprintf(top, sizeof top, "%.*s", (int)(len < sizeof top ? len : sizeof top - 1), p->name);
        int j = 0;
        while (j < n_mods && strcmp(mods[j], top)) j++;
        if (j == n_mods) {
            if (n_mods == MODS - 1) snprintf(top, sizeof top, "(other)"); /* the last row collects the rest */
            j = n_mods < MODS ? n_mods++ : MODS - 1;
            snprintf(mods[j], sizeof mods[j], "%s", top);
        }
        (p->requires_grad ? train : frozen)[j] += p->numel;
        if (rep && aur__report_has(rep, p->name)) fresh[j] += p->numel;
    }
    int64_t T = 0, F = 0, N = 0;
    fprintf(out, "%-12s %14s %14s %14s\n", "module", "trainable", "frozen", "new");
    for (int j = 0; j < n_mods; j++) {
        fprintf(out, "%-12s %14lld %14lld %14lld\n", mods[j], (long long)train[j], (long long)frozen[j], (long long)fresh[j]);
        T += train[j], F += frozen[j], N += fresh[j];
    }
    fprintf(out, "%-12s %14lld %14lld %14lld   (%.2f%% trainable)\n", "total", (long long)T, (long long)F, (long long)N,
            T + F ? 100.0 * (double)T / (double)(T + F) : 0.0);
}
