#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: the loss and the rollout (aurora/rollout.py) ==== */

/* A target on the prediction's device and grid: a 721-row target of a
   720-row prediction loses its last latitude, as aurora/batch.py: Batch.crop
   does to the model's input (any other mismatch is the loss's error). */
static aur_tensor *aur__target_like(aur_tape *t, aur_tensor *y, const aur_tensor *pred)
{
    y = aur__on(t, y, pred->device);
    int rows = y ? y->ndim - 2 : 0;
    if (y && y->ndim == pred->ndim && y->shape[rows] == pred->shape[rows] + 1) y = aur_slice(t, y, rows, 0, pred->shape[rows]);
    return y;
}

/* The fine-tuning loss: the mean over variables of the normalised MSE over finite cells. */
AURDEF aur_tensor *aur_aurora_loss(aur_model *m, aur_tape *t, const aur_batch *pred, const aur_batch *target)
{
    aur__aurora *A = aur__A(m);
    if (!A || !pred || !target) return NULL;
    aur__fwd F;
    memset(&F, 0, sizeof F);
    F.A = A, F.t = t, F.c = &A->cfg, F.C = pred->C;
    memcpy(F.levels, pred->levels, sizeof F.levels);
    aur_tensor *terms[2 * AUR_MAX_VARS];
    int n = 0;
    for (int i = 0; i < pred->surf_names.n; i++, n++) {
        const char *v = pred->surf_names.name[i];
        aur_tensor *y = aur_batch_surf(target, v);
        if (!y) return aur__err(AUR_EINVAL, "loss: the target has no surface variable '%s'", v), (aur_tensor *)NULL;
        y = aur__target_like(t, y, pred->surf[i]);
        terms[n] = aur_mse_loss_finite(t, aur__norm_surf(&F, pred->surf[i], v, 0), aur__norm_surf(&F, y, v, 0));
    }
    for (int i = 0; i < pred->atmos_names.n; i++, n++) {
        const char *v = pred->atmos_names.name[i];
        aur_tensor *y = aur_batch_atmos(target, v);
        if (!y) return aur__err(AUR_EINVAL, "loss: the target has no atmospheric variable '%s'", v), (aur_tensor *)NULL;
        y = aur__target_like(t, y, pred->atmos[i]);
        terms[n] = aur_mse_loss_finite(t, aur__norm_atmos(&F, pred->atmos[i], v, 0), aur__norm_atmos(&F, y, v, 0));
    }
    if (!n) return aur__err(AUR_EINVAL, "loss: the prediction has no variables"), (aur_tensor *)NULL;
    return aur_mean_all(t, aur_concat(t, terms, n, 0));
}

/* A variable's next history (B, T, ...): its last T - 1 steps, then the prediction (B, 1, ...). */
static aur_tensor *aur__shift_history(aur_tape *t, aur_tensor *cur, aur_tensor *pred, int T)
{
    if (T == 1) return pred;
    aur_tensor *parts[2] = {aur_slice(t, aur__on(t, cur, pred->device), 1, 1, T - 1), pred};
    return aur_concat(t, parts, 2, 1);
}

/* The next step's input, as aurora/rollout.py: rollout builds it: the history
   shifted by one, with the prediction appended. */
static aur_batch *aur__next_input(aur_tape *t, const aur_batch *cur, const aur_batch *pred)
{
    aur_batch *nx = aur__batch_like(t, pred, cur->T, pred->H);
    if (!nx) return NULL;
    int ok = 1;
    for (int i = 0; i < pred->surf_names.n && ok; i++) {
        ok = (nx->surf[i] = aur__shift_history(t, aur_batch_surf(cur, pred->surf_names.name[i]), pred->surf[i], cur->T)) != NULL;
    }
    for (int i = 0; i < pred->atmos_names.n && ok; i++) {
        ok = (nx->atmos[i] = aur__shift_history(t, aur_batch_atmos(cur, pred->atmos_names.name[i]), pred->atmos[i], cur->T)) != NULL;
    }
    for (int i = 0; i < pred->static_names.n; i++) nx->statics[i] = pred->statics[i];
    return ok ? nx : NULL;
}

/* The input batch cropped to whole patches, as rollout() does before stepping. */
static aur_batch *aur__cropped_input(aur__aurora *A, aur_tape *t, const aur_batch *b)
{
    int P = A->cfg.patch_size, H = b->H - (b->H % P == 1);
    if (b->H % P > 1) return aur__err(AUR_ESHAPE, "batch: height %d is more than one row off a multiple of %d", b->H, P), (aur_batch *)NULL;
    aur_batch *c = aur__batch_like(t, b, b->T, H);
    if (!c) return NULL;
    int ok = 1;
    for (int i = 0; i < b->surf_names.n && ok; i++) ok = (c->surf[i] = aur__crop_rows(t, b->surf[i], H)) != NULL;
    for (int i = 0; i < b->static_names.n && ok; i++) ok = (c->statics[i] = aur__crop_rows(t, b->statics[i], H)) != NULL;
    for (int i = 0; i < b->atmos_names.n && ok; i++) ok = (c->atmos[i] = aur__crop_rows(t, b->atmos[i], H)) != NULL;
    return ok ? c : NULL;
}

AURDEF int aur_aurora_rollout(aur_model *m, aur_tape *t, const aur_batch *b, int steps, aur_batch **preds)
{
    aur__aurora *A = aur__A(m);
    if (!A) return AUR_EINVAL;
    if (steps < 1) return aur__err(AUR_EINVAL, "rollout: %d steps", steps);
    for (int s = 0; s < steps; s++) preds[s] = NULL;
    aur_batch *cur = aur__cropped_input(A, t, b); /* every batch here lives on the tape */
    int rc = cur ? 0 : AUR_EINVAL;
    if (!rc && A->cfg.wave) rc = aur__wave_transform(t, cur); /* as the reference's rollout, before the first step */
    for (int s = 0; s < steps && !rc; s++) {
        preds[s] = aur_aurora_forward(m, t, cur);
        cur = preds[s] && s + 1 < steps ? aur__next_input(t, cur, preds[s]) : NULL;
        if (!preds[s] || (s + 1 < steps && !cur)) rc = AUR_EINVAL;
    }
    for (int s = 0; rc && s < steps; s++) preds[s] = NULL;
    return rc;
}
