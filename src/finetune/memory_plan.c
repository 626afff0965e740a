#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

/* ==== fine-tuning: memory planning ==== */

/* Adafactor's state: a row and a column factor for matrices (over the last
   two dims), a full variance for vectors. */
static double aur__adafactor_floats(const aur_tensor *p)
{
    if (p->ndim < 2) return (double)p->numel;
    double r = (double)p->shape[p->ndim - 2], c = (double)p->shape[p->ndim - 1];
    return (double)p->numel / (r * c) * (r + c);
}

static int64_t aur__ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Peak tape floats of a training step of this implementation (fp32), fitted
   by least squares to measured peaks over ten configurations (within 10%);
   tests/test_train.c checks the plan against measurements. */
#define AUR__MEM_PERCEIVERS 29.4 /* encoder + decoder: per grid cell, per D, per (level + variable + latent) */
#define AUR__MEM_BLOCK 80.6      /* backbone block: per token, per channel (norms, window copies, qkv, MLP) */
#define AUR__MEM_ATTN 0.64       /* backbone block: per token, per head, per window token (scores) */
#define AUR__MEM_IO 15.8         /* per input value: normalised copies, predictions, loss terms */

/* Activation floats of the backbone: every block's, or with checkpointing
   the block inputs plus one block recomputed in backward. */
static double aur__backbone_floats(const aur_aurora_config *c, double tokens, int checkpointing)
{
    double total = 0, largest = 0, wvol = (double)c->window_size[0] * c->window_size[1] * c->window_size[2];
    for (int half = 0; half < 2; half++)
        for (int i = 0; i < c->n_stages; i++) {
            int depth = half ? c->decoder_depths[i] : c->encoder_depths[i];
            int heads = half ? c->decoder_num_heads[c->n_stages - 1 - i] : c->encoder_num_heads[i];
            int stage = half ? c->n_stages - 1 - i : i;
            double tok = tokens / (double)((int64_t)1 << (2 * stage)), dim = (double)c->embed_dim * (double)((int64_t)1 << stage);
            double block = tok * (AUR__MEM_BLOCK * dim + AUR__MEM_ATTN * heads * wvol);
            total += depth * (checkpointing ? 2 * tok * dim : block); /* a checkpoint keeps the block's input and output */
            if (block > largest) largest = block;
        }
    return total + (checkpointing ? 2 * largest : 0); /* the recomputed block and its gradients */
}

AURDEF int aur_aurora_memory_plan(const aur_aurora_config *cfg, int B, int T, int C, int H, int W, const aur_memory_choice *ch,
                                  aur_memory_plan *out)
{
    if (B < 1 || T < 1 || C < 0 || H < 1 || W < 1 || !ch || ch->trainable_fraction < 0 || ch->trainable_fraction > 1)
        return aur__err(AUR_EINVAL, "memory plan: sizes B %d T %d C %d H %d W %d and a trainable fraction in [0, 1] are needed", B, T, C,
                        H, W);
    aur_model *m = aur_model_create();
    if (!m) return AUR_ENOMEM;
    int rc = aur_aurora_declare(m, cfg);
    double n = 0, ada = 0;
    for (int i = 0; !rc && i < m->n; i++)
        if (!m->params[i]->is_buffer) n += (double)m->params[i]->numel, ada += aur__adafactor_floats(m->params[i]);
    aur_model_free(m);
    if (rc) return rc;
    double f = ch->trainable_fraction, wbytes = ch->pure_bf16 ? 2 : 4;
    memset(out, 0, sizeof *out);
    out->params = n * wbytes;
    out->grads = n * f * wbytes;
    out->optimiser = (ch->optimiser == AUR_ADAFACTOR ? ada : 2 * n) * f * wbytes;
    double tokens = (double)B * cfg->latent_levels * (double)aur__ceil_div(H, cfg->patch_size) * (double)aur__ceil_div(W, cfg->patch_size);
    double grid = tokens / cfg->latent_levels, vars = (double)(C + cfg->surf_vars.n + cfg->static_vars.n + cfg->latent_levels);
    double backbone = aur__backbone_floats(cfg, tokens, ch->checkpointing);
    /* autocast (and pure BF16) keep the backbone's matrix-product operands in BF16: about 40% less there */
    /* autocast keeps the backbone's matrix-product operands in BF16: assumed 40% less there (the CUDA build's plan) */
    double act = grid * vars * AUR__MEM_PERCEIVERS * cfg->embed_dim + backbone * (ch->autocast || ch->pure_bf16 ? 0.6 : 1);
    act += (double)B * T * H * W * (C * cfg->atmos_vars.n + cfg->surf_vars.n) * AUR__MEM_IO;
    out->activations = act * (ch->pure_bf16 ? 2 : 4);
    if (ch->offload_optimiser) out->host = out->optimiser, out->optimiser = 0;
    out->total = out->params + out->grads + out->optimiser + out->activations;
    return 0;
}
