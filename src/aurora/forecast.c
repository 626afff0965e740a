#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: forecasts (a rollout without gradients) ====
   aurora/rollout.py: rollout under torch.inference_mode, as the reference's
   examples make forecasts. aur_aurora_rollout keeps every step on one tape
   so that gradients can flow through all of them; a forecast of many steps
   needs none of that: each prediction is handed to the caller as it is
   made, the next input (the history shifted by one, the prediction
   appended) is copied out, and the tape is reset. So only the input
   history and one step's activations are ever held, whatever the number
   of steps, and the numbers are those of aur_aurora_rollout. */

/* A batch on the tape as an owned host batch (the next step's input, which must outlive a tape reset). */
static aur_batch *aur__batch_owned_copy(aur_tape *t, const aur_batch *src)
{
    if (src->lat_2d || src->lon_2d) return aur__err(AUR_EUNSUPPORTED, "forecast: 2-D latitude or longitude grids are not supported"), (aur_batch *)NULL;
    aur_batch *b = aur_batch_create(src->B, src->T, src->C, src->H, src->W, &src->surf_names, &src->static_names, &src->atmos_names);
    if (!b) return NULL;
    memcpy(b->lat, src->lat, sizeof(float) * (size_t)src->H);
    memcpy(b->lon, src->lon, sizeof(float) * (size_t)src->W);
    memcpy(b->time, src->time, sizeof(double) * (size_t)src->B);
    memcpy(b->levels, src->levels, sizeof b->levels);
    b->rollout_step = src->rollout_step, b->step_seconds = src->step_seconds;
    aur_tensor *const *from[3] = {src->surf, src->statics, src->atmos}, *const *to[3] = {b->surf, b->statics, b->atmos};
    const int n[3] = {src->surf_names.n, src->static_names.n, src->atmos_names.n};
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < n[g]; i++) {
            aur_real *x = aur_tensor_f32(aur_to_device(t, from[g][i], AUR_CPU));
            if (!x) return aur_batch_free(b), (aur_batch *)NULL;
            memcpy(aur_tensor_f32(to[g][i]), x, sizeof(aur_real) * (size_t)to[g][i]->numel);
        }
    return b;
}

AURDEF int aur_aurora_forecast(aur_model *m, const aur_batch *b, int steps, aur_forecast_fn fn, void *ctx)
{
    aur__aurora *A = aur__A(m);
    if (!A || !b || !fn) return aur__err(AUR_EINVAL, "aur_aurora_forecast: a model, a batch and a callback are needed");
    if (steps < 1) return aur__err(AUR_EINVAL, "forecast: %d steps", steps);
    if (b->lat_2d || b->lon_2d) return aur__err(AUR_EUNSUPPORTED, "forecast: 2-D latitude or longitude grids are not supported");
    aur_tape *t = aur_tape_create();
    if (!t) return AUR_ENOMEM;
    aur_tape_set_grad(t, 0);
    aur_tape_set_training(t, 0);
    aur_batch *cur = NULL; /* the owned input of steps after the first */
    int rc = 0;
    for (int s = 0; s < steps && !rc; s++) {
        aur_tape_reset(t);
        const aur_batch *in = cur;
        if (!s) { /* as the rollout: crop to whole patches, and AuroraWave's transform, before the first step */
            aur_batch *c = aur__cropped_input(A, t, b);
            rc = !c ? AUR_EINVAL : A->cfg.wave ? aur__wave_transform(t, c) : 0;
            in = c;
        }
        aur_batch *pred = rc ? NULL : aur_aurora_forward(m, t, in);
        if (!rc && !pred) rc = AUR_EINVAL;
        if (!rc) rc = fn(ctx, s, pred);
        if (!rc && s + 1 < steps) {
            aur_batch *next = aur__next_input(t, in, pred);
            aur_batch *owned = next ? aur__batch_owned_copy(t, next) : NULL;
            if (!owned) rc = AUR_EINVAL; /* the message says what */
            aur_batch_free(cur);
            cur = owned;
        }
    }
    aur_batch_free(cur);
    aur_tape_free(t);
    return rc;
}
