#include "api.h"
#include "platform.h"

/* ==== models: what trains and what is frozen ==== */

/* One row of the report: the parameters whose names start with `module.`. */
typedef struct aur__train_row {
    char module[96];
    int64_t trainable, frozen, adapter; /* elements; adapter counts the trainable ".lora_" ones too */
    int n_new, n_new_frozen;            /* tensors the checkpoint did not fill (of them frozen) */
} aur__train_row;

static int aur__is_new(const char *name, const aur_load_report *rep)
{
    for (int i = 0; rep && i < rep->n_missing; i++)
        if (!strcmp(rep->missing[i], name)) return 1;
    return 0;
}

/* The row of p's top-level module, added if it is the first of its module. */
static aur__train_row *aur__train_row_of(aur__train_row *rows, int *n, const char *name)
{
    size_t len = strcspn(name, ".");
    for (int i = 0; i < *n; i++)
        if (strlen(rows[i].module) == len && !strncmp(rows[i].module, name, len)) return &rows[i];
    aur__train_row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->module, sizeof r->module, "%.*s", (int)len, name);
    return r;
}

static void aur__print_train_row(FILE *out, const char *module, int64_t trainable, int64_t frozen, int64_t adapter, int n_new)
{
    char note[64] = "";
    if (adapter) snprintf(note, sizeof note, "LoRA %lld", (long long)adapter);
    if (n_new) snprintf(note + strlen(note), sizeof note - strlen(note), "%snew %d", adapter ? ", " : "", n_new);
    fprintf(out, "  %-28s %14lld %14lld  %s\n", module, (long long)trainable, (long long)frozen, note);
}

AURDEF int aur_model_print_trainable(const aur_model *m, const aur_load_report *rep, FILE *out)
{
    int n_rows = 0, n_warn = 0;
    aur__train_row *rows = (aur__train_row *)aur__calloc(sizeof *rows * (size_t)(aur_model_count(m) + 1), "the parameter report");
    if (!rows) return AUR_ENOMEM;
    aur__train_row total = {"total", 0, 0, 0, 0, 0};
    for (int i = 0; i < aur_model_count(m); i++) {
        const aur_tensor *p = aur_model_at(m, i);
        if (p->is_buffer) continue;
        aur__train_row *r = aur__train_row_of(rows, &n_rows, p->name);
        int is_new = aur__is_new(p->name, rep);
        *(p->requires_grad ? &r->trainable : &r->frozen) += p->numel;
        if (p->requires_grad && strstr(p->name, ".lora_")) r->adapter += p->numel;
        r->n_new += is_new, r->n_new_frozen += is_new && !p->requires_grad;
    }
    fprintf(out, "  %-28s %14s %14s\n", "module", "trainable", "frozen");
    for (int i = 0; i < n_rows; i++) {
        aur__train_row *r = &rows[i];
        aur__print_train_row(out, r->module, r->trainable, r->frozen, r->adapter, rep ? r->n_new : 0);
        total.trainable += r->trainable, total.frozen += r->frozen, total.adapter += r->adapter, total.n_new += r->n_new;
    }
    aur__print_train_row(out, "total", total.trainable, total.frozen, total.adapter, rep ? total.n_new : 0);
    int64_t all = total.trainable + total.frozen;
    fprintf(out, "  trainable: %lld of %lld parameters (%.2f%%)\n", (long long)total.trainable, (long long)all,
            all ? 100.0 * (double)total.trainable / (double)all : 0.0);
    for (int i = 0; i < aur_model_count(m); i++) { /* a tensor left at its random start and frozen never learns */
        const aur_tensor *p = aur_model_at(m, i);
        if (p->is_buffer || p->requires_grad || !aur__is_new(p->name, rep)) continue;
        fprintf(out, "warning: '%s' is newly initialised (not in the checkpoint) and frozen: it stays random; "
                     "train it (modules_to_save, unfreeze) or load it\n", p->name);
        n_warn++;
    }
    AUR_FREE(rows);
    return n_warn;
}
