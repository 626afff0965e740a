#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

/* ==== fine-tuning: memory planning ====
   The activations are not estimated: the plan runs the training step itself
   on the meta device (shapes only, nothing computed), where the tape keeps
   the same account it keeps on a GPU, so the figure is the step's own peak,
   to the byte, for any architecture, grid and checkpointing choice. */

/* Adafactor's state: a row and a column factor for matrices (over the last
   two dims), a full variance for vectors. */
static double aur__adafactor_floats(const aur_tensor *p)
{
    if (p->ndim < 2) return (double)p->numel;
    double r = (double)p->shape[p->ndim - 2], c = (double)p->shape[p->ndim - 1];
    return (double)p->numel / (r * c) * (r + c);
}

/* A batch of the given sizes on the meta device, on a regular global grid
   (the coordinates shape the encodings' values, never their sizes). */
static aur_batch *aur__plan_batch(const aur_aurora_config *c, int B, int T, int C, int H, int W)
{
    aur_batch *b = aur__batch_create_on(AUR_META, B, T, C, H, W, &c->surf_vars, &c->static_vars, &c->atmos_vars);
    if (!b) return NULL;
    for (int i = 0; i < H; i++) b->lat[i] = (float)(90.0 - 180.0 * i / (H > 1 ? H - 1 : 1));
    for (int j = 0; j < W; j++) b->lon[j] = (float)(360.0 * j / W);
    for (int k = 0; k < C; k++) b->levels[k] = 1000.0 - 950.0 * k / (C > 1 ? C - 1 : 1);
    for (int i = 0; i < B; i++) b->time[i] = 1577836800.0; /* 2020-01-01 00 UTC */
    return b;
}

/* Statistics of loc 0 and scale 1 where the model has none (a new variable,
   an unusual level): the meta device computes nothing, so only their
   presence matters, and the plan never fails for want of them. */
static int aur__plan_stats(aur_model *m, const aur_aurora_config *c, const aur_batch *b)
{
    const aur_var_list *sets[3] = {&c->surf_vars, &c->static_vars, &c->atmos_vars};
    char key[AUR_NAME_LEN + 32], lv[32];
    double loc, scale;
    int rc = 0;
    for (int s = 0; s < 3 && !rc; s++)
        for (int v = 0; v < sets[s]->n && !rc; v++)
            for (int k = 0; k < (s == 2 ? b->C : 1) && !rc; k++) {
                snprintf(key, sizeof key, "%s", sets[s]->name[v]);
                if (s == 2) aur_level_to_str(b->levels[k], lv, sizeof lv), snprintf(key, sizeof key, "%s_%s", sets[s]->name[v], lv);
                if (aur_aurora_get_stats(m, key, &loc, &scale)) rc = aur_aurora_set_stats(m, key, 0, 1);
            }
    return rc;
}

/* The device bytes of one training step (forward, loss, backward) of m at these sizes. */
static int aur__plan_step(aur_model *m, const aur_aurora_config *c, int B, int T, int C, int H, int W, double *bytes)
{
    aur_batch *in = aur__plan_batch(c, B, T, C, H, W), *target = aur__plan_batch(c, B, 1, C, H, W);
    aur_tape *t = aur_tape_create();
    int rc = in && target && t ? 0 : AUR_ENOMEM;
    if (!rc) rc = aur__plan_stats(m, c, in);
    if (!rc) {
        aur_batch *pred = aur_aurora_forward(m, t, in);
        rc = pred ? aur_backward(t, aur_aurora_loss(m, t, pred, target)) : AUR_EINVAL;
        *bytes = (double)t->device_peak[AUR_META];
    }
    if (rc) aur__err(rc, "memory plan: the step at B %d T %d C %d %d x %d failed: %s", B, T, C, H, W, aur__errmsg);
    aur_tape_free(t);
    aur_batch_free(in);
    aur_batch_free(target);
    return rc;
}

AURDEF int aur_aurora_memory_plan(const aur_aurora_config *cfg, int B, int T, int C, int H, int W, const aur_memory_choice *ch,
                                  aur_memory_plan *out)
{
    if (B < 1 || T < 1 || C < 0 || C > AUR_MAX_LEVELS || H < 1 || W < 1 || !ch || ch->trainable_fraction < 0 || ch->trainable_fraction > 1)
        return aur__err(AUR_EINVAL, "memory plan: sizes B %d T %d C %d (at most %d) H %d W %d and a trainable fraction in [0, 1] are needed", B,
                        T, C, AUR_MAX_LEVELS, H, W);
    aur_aurora_config c = *cfg;
    c.checkpoint = ch->checkpoint;
    c.autocast = ch->autocast || ch->pure_bf16; /* the backbone's products, as the trainer runs them */
    aur_model *m = aur_aurora_create(&c, AUR_META, 1);
    if (!m) return AUR_EINVAL; /* the reason is in aur_last_error() */
    double n = 0, ada = 0, act = 0;
    for (int i = 0; i < m->n; i++)
        if (!m->params[i]->is_buffer) n += (double)m->params[i]->numel, ada += aur__adafactor_floats(m->params[i]);
    /* every parameter trains here: LoRA's adapters on every linear layer keep the same activations */
    int rc = aur__plan_step(m, &c, B, T, C, H, W, &act);
    aur_model_free(m);
    if (rc) return rc;
    double f = ch->trainable_fraction, wbytes = sizeof(aur_real); /* pure BF16 rounds F32 weights: still 4 bytes each */
    memset(out, 0, sizeof *out);
    out->params = n * wbytes;
    out->grads = n * f * wbytes;
    out->optimiser = (ch->optimiser == AUR_ADAFACTOR ? ada : 2 * n) * f * wbytes;
    out->activations = act;
    if (ch->offload_optimiser) out->host = out->optimiser, out->optimiser = 0;
    out->total = out->params + out->grads + out->optimiser + out->activations;
    return 0;
}
