#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: Swin3DTransformerBackbone (aurora/model/swin3d.py) ====
   A U-Net of 3-D Swin transformer stages over the (Ld, h, w) token grid,
   conditioned on the lead time: encoder stages of Swin3DTransformerBlocks,
   each followed (but the last) by a PatchMerging3D that halves h and w and
   doubles the width; decoder stages mirror them with PatchSplitting3D, adding
   the encoder's outputs as skips, and the first stage's output is
   concatenated at the end: (B, Ld L, D) -> (B, Ld L, 2 D). Under autocast
   only the backbone runs with BF16 products, as the reference runs only the
   backbone inside torch.autocast. */

static aur_tensor *aur__basic_layer3d(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                                      const int64_t *res, int64_t d, const double *dpr);
static aur_tensor *aur__patch_merging3d(const aur__fwd *F, aur_tensor *x, const int64_t *res, const char *prefix);
static aur_tensor *aur__patch_splitting3d(const aur__fwd *F, aur_tensor *x, const int64_t *res, int64_t cH, int64_t cW, const char *prefix);

static aur_tensor *aur__stage_blocks(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                                     const int64_t *res, int64_t d, const double *dpr, unsigned checkpoint);
static aur_tensor *aur__stage_resample(const aur__fwd *F, aur_tensor *x, const int64_t *res, int64_t cH, int64_t cW, const char *prefix,
                                       int split, unsigned checkpoint);
static aur_tensor *aur__backbone_run(aur__fwd *F, aur_tensor *x);

static aur_tensor *aur__backbone_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    (void)t, (void)n_in;
    return aur__backbone_run((aur__fwd *)ctx, in[0]);
}

static aur_tensor *aur__swin3d_backbone(aur__fwd *F, aur_tensor *x)
{
    if (!(F->c->checkpoint & AUR_CHECKPOINT_BACKBONE)) return aur__backbone_run(F, x);
    return aur_checkpoint(F->t, aur__backbone_segment, F, &x, 1);
}

static aur_tensor *aur__backbone_run(aur__fwd *F, aur_tensor *x)
{
    const aur_aurora_config *c = F->c;
    aur_tape *t = F->t;
    const int S = c->n_stages, D = F->D;
    char name[96], layer[96];
    /* the lead time conditions every block's adaptive layer norms */
    aur_tensor *lead = aur__const(t, F->A->m->device, aur_shape2(F->B, D), F->lead_enc);
    aur_tensor *cond = aur__lin(F, aur_silu(t, aur__lin(F, lead, "backbone.time_mlp.0", 1)), "backbone.time_mlp.2", 1);
    aur__probe(F, "backbone/time_cond", cond);
    /* each stage's resolution (levels, lat, lon); the merges pad odd h and w, the level axis stays */
    int64_t res[AUR_MAX_STAGES][3], pad[AUR_MAX_STAGES][3];
    res[0][0] = F->Ld, res[0][1] = F->h, res[0][2] = F->w;
    for (int i = 1; i < S; i++) {
        pad[i - 1][0] = 0, pad[i - 1][1] = res[i - 1][1] % 2, pad[i - 1][2] = res[i - 1][2] % 2;
        res[i][0] = res[i - 1][0];
        res[i][1] = (res[i - 1][1] + pad[i - 1][1]) / 2;
        res[i][2] = (res[i - 1][2] + pad[i - 1][2]) / 2;
    }
    /* stochastic depth: linspace(0, drop_path) over the encoder's blocks; a decoder stage indexes it by the decoder's depths */
    int total = 0;
    for (int i = 0; i < S; i++) total += c->encoder_depths[i];
    double *dpr = (double *)aur_tape_alloc(t, sizeof(double) * (size_t)(total + 1));
    if (!dpr) return NULL;
    for (int i = 0; i < total; i++) dpr[i] = total > 1 ? c->drop_path * i / (total - 1) : 0;
    int saved_autocast = t->autocast;
    t->autocast = c->autocast; /* the reference runs only the backbone inside torch.autocast */
    aur_tensor *skips[AUR_MAX_STAGES] = {0};
    for (int i = 0, first = 0; i < S; first += c->encoder_depths[i], i++) {
        snprintf(layer, sizeof layer, "backbone.encoder_layers.%d", i);
        x = aur__stage_blocks(F, x, cond, layer, c->encoder_depths[i], c->encoder_num_heads[i], res[i], (int64_t)D << i, dpr + first,
                              c->checkpoint & AUR_CHECKPOINT_ENCODER_LAYERS);
        skips[i] = x;
        snprintf(name, sizeof name, i < S - 1 ? "backbone/enc%d_blocks_out" : "backbone/enc%d_out", i);
        aur__probe(F, name, x);
        if (i == S - 1) break;
        snprintf(layer, sizeof layer, "backbone.encoder_layers.%d.downsample", i);
        x = aur__stage_resample(F, x, res[i], 0, 0, layer, 0, c->checkpoint & AUR_CHECKPOINT_ENCODER_LAYERS);
        snprintf(name, sizeof name, "backbone/enc%d_resampled", i);
        aur__probe(F, name, x);
    }
    for (int i = 0, first = 0; i < S; first += c->decoder_depths[i], i++) {
        int k = S - 1 - i;
        snprintf(layer, sizeof layer, "backbone.decoder_layers.%d", i);
        x = aur__stage_blocks(F, x, cond, layer, c->decoder_depths[i], c->decoder_num_heads[i], res[k], (int64_t)D << k, dpr + first,
                              c->checkpoint & AUR_CHECKPOINT_DECODER_LAYERS);
        snprintf(name, sizeof name, i < S - 1 ? "backbone/dec%d_blocks_out" : "backbone/dec%d_out", i);
        aur__probe(F, name, x);
        if (i < S - 1) {
            snprintf(layer, sizeof layer, "backbone.decoder_layers.%d.upsample", i);
            x = aur__stage_resample(F, x, res[k], pad[k - 1][1], pad[k - 1][2], layer, 1, c->checkpoint & AUR_CHECKPOINT_DECODER_LAYERS);
            snprintf(name, sizeof name, "backbone/dec%d_resampled", i);
            aur__probe(F, name, x);
        }
        if (i > 0 && i < S - 1) x = aur_add(t, x, skips[k - 1]);
        if (i == S - 1) {
            aur_tensor *cat[2] = {x, skips[0]};
            x = aur_concat(t, cat, 2, -1);
        }
    }
    t->autocast = saved_autocast;
    aur__probe(F, "backbone_out", x);
    return x;
}

/* ---- a stage: BasicLayer3D (its blocks, then its patch merging or splitting) ---- */

/* A checkpointed stage: its blocks as one segment and its resampling as another (the
   reference's layer returns both outputs, the skip and the resampled tokens). */
typedef struct aur__stage_ctx {
    const aur__fwd *F;
    char layer[96];
    int depth, heads, split;
    int64_t res[3], d, crop[2];
    const double *dpr;
} aur__stage_ctx;

static aur_tensor *aur__basic_layer3d(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                                      const int64_t *res, int64_t d, const double *dpr);

static aur_tensor *aur__stage_blocks_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__stage_ctx *k = (const aur__stage_ctx *)ctx;
    (void)t, (void)n_in;
    return aur__basic_layer3d(k->F, in[0], in[1], k->layer, k->depth, k->heads, k->res, k->d, k->dpr);
}

static aur_tensor *aur__stage_resample_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__stage_ctx *k = (const aur__stage_ctx *)ctx;
    (void)t, (void)n_in;
    return k->split ? aur__patch_splitting3d(k->F, in[0], k->res, k->crop[0], k->crop[1], k->layer)
                    : aur__patch_merging3d(k->F, in[0], k->res, k->layer);
}

static aur__stage_ctx *aur__stage_ctx_new(const aur__fwd *F, const char *layer, const int64_t *res)
{
    aur__stage_ctx *k = (aur__stage_ctx *)aur_tape_alloc(F->t, sizeof *k); /* lives until backward */
    if (!k) return NULL;
    memset(k, 0, sizeof *k);
    k->F = F;
    snprintf(k->layer, sizeof k->layer, "%s", layer);
    memcpy(k->res, res, sizeof k->res);
    return k;
}

static aur_tensor *aur__stage_blocks(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                                     const int64_t *res, int64_t d, const double *dpr, unsigned checkpoint)
{
    if (!checkpoint) return aur__basic_layer3d(F, x, c, layer, depth, heads, res, d, dpr);
    aur__stage_ctx *k = aur__stage_ctx_new(F, layer, res);
    if (!k) return NULL;
    k->depth = depth, k->heads = heads, k->d = d, k->dpr = dpr;
    aur_tensor *in[2] = {x, c};
    return aur_checkpoint(F->t, aur__stage_blocks_segment, k, in, 2);
}

static aur_tensor *aur__stage_resample(const aur__fwd *F, aur_tensor *x, const int64_t *res, int64_t cH, int64_t cW, const char *prefix,
                                       int split, unsigned checkpoint)
{
    if (!checkpoint)
        return split ? aur__patch_splitting3d(F, x, res, cH, cW, prefix) : aur__patch_merging3d(F, x, res, prefix);
    aur__stage_ctx *k = aur__stage_ctx_new(F, prefix, res);
    if (!k) return NULL;
    k->split = split, k->crop[0] = cH, k->crop[1] = cW;
    return aur_checkpoint(F->t, aur__stage_resample_segment, k, &x, 1);
}

/* Everything a Swin block needs; in the arena, so that a checkpointed block
   can be recomputed during backward. */
typedef struct aur__block_ctx {
    const aur__fwd *F;
    char prefix[96];  /* "backbone.encoder_layers.{i}.blocks.{j}" */
    int64_t res[3], d; /* the stage's token grid and width */
    int heads, shifted, lora_set;
    double drop_path;
} aur__block_ctx;

static aur_tensor *aur__swin3d_block(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in);

/* BasicLayer3D's blocks: depth of them, every second one with shifted windows;
   each checkpointed (aur_checkpoint) when configured. */
static aur_tensor *aur__basic_layer3d(const aur__fwd *F, aur_tensor *x, aur_tensor *c, const char *layer, int depth, int heads,
                                      const int64_t *res, int64_t d, const double *dpr)
{
    aur_tape *t = F->t;
    /* one scope for all blocks, ended after each: a block's temporaries go at
       its end, and so does its input once the next block has its output (a
       recorded backward still holds what it reads) */
    aur_scope s = aur_scope_begin(t);
    for (int j = 0; j < depth && x; j++) {
        aur__block_ctx *k = (aur__block_ctx *)aur_tape_alloc(t, sizeof *k);
        if (!k) return NULL;
        memset(k, 0, sizeof *k);
        k->F = F;
        snprintf(k->prefix, sizeof k->prefix, "%s.blocks.%d", layer, j);
        memcpy(k->res, res, sizeof k->res);
        k->d = d;
        k->heads = heads;
        k->shifted = j % 2;
        k->lora_set = F->lora_set;
        k->drop_path = dpr[j];
        aur_tensor *in[2] = {x, c};
        x = F->c->checkpoint & AUR_CHECKPOINT_BLOCKS ? aur_checkpoint(t, aur__swin3d_block, k, in, 2) : aur__swin3d_block(t, k, in, 2);
        aur_scope_end(t, s, &x, 1);
    }
    return x;
}

/* aurora/model/film.py: AdaptiveLayerNorm. LN(y) * scale + shift, with
   (shift, scale) = Linear(SiLU(c)): the lead time modulates each branch. */
static aur_tensor *aur__adaptive_layer_norm(const aur__fwd *F, aur_tensor *y, aur_tensor *c, const char *prefix, int64_t d)
{
    aur_tape *t = F->t;
    aur_tensor *m = aur__lin(F, aur_silu(t, c), prefix, 1);
    int64_t B = c ? c->shape[0] : 0;
    aur_tensor *shift = aur_reshape(t, aur_slice(t, m, -1, 0, d), aur_shape3(B, 1, d));
    aur_tensor *scale = aur_reshape(t, aur_slice(t, m, -1, d, d), aur_shape3(B, 1, d));
    return aur_add(t, aur_mul(t, aur_layernorm(t, y, NULL, NULL, 1e-5), scale), shift);
}

/* A linear layer with the step's LoRA (aurora/model/lora.py: LoRARollout):
   x W^T + b + (x A^T) B^T (scaling alpha / r = 1), or the plain layer when set < 0. */
static aur_tensor *aur__lora_linear(const aur__fwd *F, aur_tensor *x, const char *prefix, const char *lora, int set)
{
    aur_tensor *y = aur__lin(F, x, prefix, 1);
    if (set < 0) return y;
    aur_tensor *a = aur__paramf(F->A->m, "%s.loras.%d.lora_A", lora, set), *b = aur__paramf(F->A->m, "%s.loras.%d.lora_B", lora, set);
    if (!a || !b) return NULL;
    return aur_add(F->t, y, aur_linear(F->t, aur_linear(F->t, x, a, NULL), b, NULL));
}

/* Stochastic depth (DropPath): each sample's branch is dropped with probability p. */
static aur_tensor *aur__drop_path(aur_tape *t, aur_tensor *x, double p)
{
    if (!x || p == 0 || !t->training) return x;
    aur_tensor *ones = aur_tensor_new(t, AUR_CPU, aur_shape3(x->shape[0], 1, 1));
    if (!ones) return NULL;
    for (int64_t i = 0; i < ones->numel; i++) aur__wr(ones)[i] = 1;
    return aur_mul(t, x, aur_dropout(t, aur__on(t, ones, x->device), p));
}

/* aurora/model/swin3d.py: Swin3DTransformerBlock, in[0] = x (B, N, d) and
   in[1] = the time condition (B, D). Window attention (WindowAttention: roll
   by half a window when shifted, pad, partition; qkv, attention with the
   shift mask, proj; reverse) and the MLP, each branch through its adaptive
   layer norm and stochastic depth into the residual stream (res-post-norm). */
static aur_tensor *aur__swin3d_block(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__block_ctx *k = (const aur__block_ctx *)ctx;
    const aur__fwd *F = k->F;
    aur_tensor *x = in[0], *c = in[1];
    char p[160], lora[160];
    (void)n_in;
    aur__layout *lay = aur__windows(F->A, k->res, F->c->window_size, k->shifted);
    if (!x || !lay) return NULL;
    const int64_t B = x->shape[0], N = x->shape[1], d = k->d, nh = k->heads, hd = d / nh, nw = lay->nwin, n = lay->n;
    aur_scope attn = aur_scope_begin(t); /* the windows, q, k, v and the heads' outputs go once back on the grid */
    aur_tensor *xw = aur__model_gather(t, F->A->m, x, B, d, &lay->fwd, aur_shape3(B * nw, n, d)); /* roll, pad, partition */
    snprintf(p, sizeof p, "%s.attn.qkv", k->prefix);
    snprintf(lora, sizeof lora, "%s.attn.lora_qkv", k->prefix);
    aur_scope heads = aur_scope_begin(t); /* the layer's output goes once its heads are apart */
    aur_tensor *qkv = aur__lora_linear(F, xw, p, lora, k->lora_set);
    static const int split[6] = {3, 0, 1, 4, 2, 5}; /* (B, nW, n, 3, nh, hd) -> (3, B, nW, nh, n, hd) */
    int64_t s6[6] = {B, nw, n, 3, nh, hd};
    qkv = aur_permute(t, aur_reshape(t, qkv, aur_shapev(6, s6)), split);
    aur_scope_end(t, heads, &qkv, 1);
    aur_shape hs = aur_shape5(B, nw, nh, n, hd);
    aur_tensor *q = aur_reshape(t, aur_slice(t, qkv, 0, 0, 1), hs), *kk = aur_reshape(t, aur_slice(t, qkv, 0, 1, 1), hs);
    aur_tensor *v = aur_reshape(t, aur_slice(t, qkv, 0, 2, 1), hs);
    aur_tensor *mask = lay->mask ? aur__const_view(t, F->A->m, aur_shape4(nw, 1, n, n), lay->mask) : NULL; /* shared by the heads */
    aur_tensor *o = aur_sdpa(t, q, kk, v, mask, 0);
    static const int merge[5] = {0, 1, 3, 2, 4};
    o = aur_reshape(t, aur_permute(t, o, merge), aur_shape3(B * nw, n, d));
    snprintf(p, sizeof p, "%s.attn.proj", k->prefix);
    snprintf(lora, sizeof lora, "%s.attn.lora_proj", k->prefix);
    o = aur_dropout(t, aur__lora_linear(F, o, p, lora, k->lora_set), F->c->drop_rate);
    aur_tensor *a = aur__model_gather(t, F->A->m, o, B, d, &lay->back, aur_shape3(B, N, d)); /* reverse, crop, roll back */
    aur_scope_end(t, attn, &a, 1);
    snprintf(p, sizeof p, "%s.norm1.ln_modulation.1", k->prefix);
    x = aur_add(t, x, aur__drop_path(t, aur__adaptive_layer_norm(F, a, c, p, d), k->drop_path));
    char fc2[160];
    snprintf(p, sizeof p, "%s.mlp.fc1", k->prefix);
    snprintf(fc2, sizeof fc2, "%s.mlp.fc2", k->prefix);
    aur_tensor *h = aur__mlp(F, x, p, fc2, 1);
    snprintf(p, sizeof p, "%s.norm2.ln_modulation.1", k->prefix);
    return aur_add(t, x, aur__drop_path(t, aur__adaptive_layer_norm(F, h, c, p, d), k->drop_path));
}

/* ---- resampling between stages ---- */

/* aurora/model/swin3d.py: PatchMerging3D. Each 2 x 2 group of tokens (odd
   sides zero-padded) is concatenated (4 d), normalised and reduced to 2 d. */
static aur_tensor *aur__patch_merging3d(const aur__fwd *F, aur_tensor *x, const int64_t *res, const char *prefix)
{
    aur__layout *lay = aur__merge_layout(F->A, res);
    char p[160];
    if (!x || !lay) return NULL;
    int64_t B = x->shape[0], d = x->shape[2], n2 = lay->fwd.n_out / 4;
    aur_tensor *y = aur__model_gather(F->t, F->A->m, x, B, d, &lay->fwd, aur_shape3(B, n2, 4 * d));
    snprintf(p, sizeof p, "%s.norm", prefix);
    y = aur__ln(F, y, p, 1e-5);
    snprintf(p, sizeof p, "%s.reduction", prefix);
    return aur__lin(F, y, p, 0);
}

/* aurora/model/swin3d.py: PatchSplitting3D, the reverse: each token of width
   d becomes 2 x 2 tokens of width d / 2, cropping cH rows and cW columns
   (the padding the merge added), then a norm and a linear layer. */
static aur_tensor *aur__patch_splitting3d(const aur__fwd *F, aur_tensor *x, const int64_t *res, int64_t cH, int64_t cW, const char *prefix)
{
    aur__layout *lay = aur__split_layout(F->A, res, cH, cW);
    char p[160];
    if (!x || !lay) return NULL;
    int64_t B = x->shape[0], d = x->shape[2];
    snprintf(p, sizeof p, "%s.lin1", prefix);
    aur_tensor *y = aur_reshape(F->t, aur__lin(F, x, p, 0), aur_shape3(B, x->shape[1] * 4, d / 2));
    y = aur__model_gather(F->t, F->A->m, y, B, d / 2, &lay->fwd, aur_shape3(B, lay->fwd.n_out, d / 2));
    snprintf(p, sizeof p, "%s.norm", prefix);
    y = aur__ln(F, y, p, 1e-5);
    snprintf(p, sizeof p, "%s.lin2", prefix);
    return aur__lin(F, y, p, 0);
}
