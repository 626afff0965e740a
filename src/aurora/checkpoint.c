#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: checkpoint adaptation ====
   What aurora/model/aurora.py: Aurora.load_checkpoint_local does to a released
   checkpoint before loading it: _adapt_checkpoint (aurora/model/compat.py) and
   adapt_checkpoint_max_history_size. */

/* Replaces the fused tensor `fused` (channel axis `axis`, n = names) by one entry per name. */
static int aur__split_fused(aur__ckpt *ck, const char *fused, const char *prefix, const char *suffix, const char *const *names, int n,
                            int head_layout)
{
    aur__ckpt_entry *e = aur__ckpt_find(ck, fused);
    if (!e) return 0;
    float *all = aur__ckpt_read_f32(ck, e);
    if (!all) return AUR_EINVAL;
    int64_t shape[AUR_ST_MAX_DIMS], total = aur__ckpt_numel(e);
    int ndim = e->ndim, rc = 0;
    memcpy(shape, e->shape, sizeof shape);
    char name[256];
    for (int i = 0; i < n && !rc; i++) {
        int64_t s2[AUR_ST_MAX_DIMS];
        memcpy(s2, shape, sizeof s2);
        float *out;
        if (!head_layout) { /* encoder kernels (D, n, T, P, P): channel i, keeping the singleton axis */
            int64_t inner = total / (shape[0] * shape[1]);
            s2[1] = 1;
            out = (float *)aur__malloc(sizeof(float) * (size_t)(shape[0] * inner), "a split kernel");
            for (int64_t d = 0; out && d < shape[0]; d++)
                memcpy(out + d * inner, all + (d * shape[1] + i) * inner, sizeof(float) * (size_t)inner);
        } else { /* fused heads: row k*n + i of (n*P^2, E) or of the bias (n*P^2) */
            int64_t rows = shape[0] / n, cols = ndim > 1 ? shape[1] : 1;
            s2[0] = rows;
            out = (float *)aur__malloc(sizeof(float) * (size_t)(rows * cols), "a split head");
            for (int64_t k = 0; out && k < rows; k++) memcpy(out + k * cols, all + (k * n + i) * cols, sizeof(float) * (size_t)cols);
        }
        snprintf(name, sizeof name, "%s%s%s", prefix, names[i], suffix);
        rc = out ? aur__ckpt_add(ck, name, ndim, s2, NULL, out) : AUR_ENOMEM;
    }
    AUR_FREE(all);
    if (!rc) {
        e = aur__ckpt_find(ck, fused);
        AUR_FREE(e->name);
        AUR_FREE(e->data);
        *e = ck->e[--ck->n];
        aur__ckpt_sort(ck);
    }
    return rc;
}

/* Renames every key: strip a leading "net.", and the Wave renames. */
static int aur__rename_keys(aur__ckpt *ck)
{
    char buf[512];
    for (int i = 0; i < ck->n; i++) {
        const char *s = ck->e[i].name;
        snprintf(buf, sizeof buf, "%s", !strncmp(s, "net.", 4) ? s + 4 : s);
        for (char *q; (q = strstr(buf, ".k_ln.")) || (q = strstr(buf, ".q_ln."));) memcpy(q, q[1] == 'k' ? ".ln_k." : ".ln_q.", 6);
        if (strcmp(buf, s)) {
            char *n = aur__strdup(buf);
            if (!n) return AUR_ENOMEM;
            AUR_FREE(ck->e[i].name);
            ck->e[i].name = n;
        }
    }
    aur__ckpt_sort(ck);
    return 0;
}

/* Pads every patch-embedding kernel's history axis to max_history_size with zeros. */
static int aur__pad_history(aur__aurora *A, aur__ckpt *ck)
{
    aur__ckpt_entry *ref = aur__ckpt_find(ck, "encoder.surf_token_embeds.weights.2t");
    int64_t Tmax = A->cfg.max_history_size;
    if (!ref || ref->ndim != 5 || ref->shape[2] == Tmax) return 0;
    int64_t n = ref->shape[2];
    if (n > Tmax)
        return aur__err(AUR_ESHAPE, "%s: the checkpoint's history %lld is longer than max_history_size %lld", ck->f->path,
                        (long long)n, (long long)Tmax);
    for (int i = 0; i < ck->n; i++) {
        aur__ckpt_entry *e = &ck->e[i];
        if ((strncmp(e->name, "encoder.surf_token_embeds.weights.", 34) && strncmp(e->name, "encoder.atmos_token_embeds.weights.", 35)) ||
            e->ndim != 5 || e->shape[2] != n)
            continue;
        float *old = aur__ckpt_read_f32(ck, e);
        int64_t D = e->shape[0], PP = e->shape[3] * e->shape[4];
        float *nw = (float *)aur__calloc(sizeof(float) * (size_t)(D * Tmax * PP), "a padded kernel");
        if (!old || !nw) {
            AUR_FREE(old);
            AUR_FREE(nw);
            return AUR_ENOMEM;
        }
        for (int64_t d = 0; d < D; d++) memcpy(nw + d * Tmax * PP, old + d * n * PP, sizeof(float) * (size_t)(n * PP));
        AUR_FREE(old);
        AUR_FREE(e->data);
        e->data = nw;
        e->src = NULL;
        e->shape[2] = Tmax;
    }
    return 0;
}

static int aur__aurora_adapt(aur_model *m, aur__ckpt *ck)
{
    aur__aurora *A = aur__A(m);
    static const char *const surf7[7] = {"2t", "10u", "10v", "msl", "lsm", "z", "slt"}, *const atmos5[5] = {"z", "u", "v", "t", "q"};
    int rc = aur__rename_keys(ck);
    /* the pretrained files' fused embeddings and heads (compat.py: _adapt_checkpoint_pretrained) */
    if (!rc) rc = aur__split_fused(ck, "encoder.surf_token_embeds.weight", "encoder.surf_token_embeds.weights.", "", surf7, 7, 0);
    if (!rc) rc = aur__split_fused(ck, "encoder.atmos_token_embeds.weight", "encoder.atmos_token_embeds.weights.", "", atmos5, 5, 0);
    if (!rc) rc = aur__split_fused(ck, "decoder.surf_head.weight", "decoder.surf_heads.", ".weight", surf7, 4, 1);
    if (!rc) rc = aur__split_fused(ck, "decoder.surf_head.bias", "decoder.surf_heads.", ".bias", surf7, 4, 1);
    if (!rc) rc = aur__split_fused(ck, "decoder.atmos_head.weight", "decoder.atmos_heads.", ".weight", atmos5, 5, 1);
    if (!rc) rc = aur__split_fused(ck, "decoder.atmos_head.bias", "decoder.atmos_heads.", ".bias", atmos5, 5, 1);
    if (!rc) rc = aur__pad_history(A, ck);
    return rc;
}

AURDEF int aur_aurora_load(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep)
{
    if (!aur__A(m)) return AUR_EINVAL;
    return aur__load_file(m, path, mode, rep, aur__aurora_adapt);
}
