#include "aurora.h"

typedef enum aur_surya_head {
    AUR_SURYA_FORECAST = 0, /* HelioSpectFormer, finetune=False: the linear decoder + pixel shuffle -> (B, C, H, W) */
    AUR_SURYA_TOKENS = 1,   /* HelioSpectFormer, finetune=True: the backbone tokens (B, N, D) */
    AUR_SURYA_1D = 2,       /* HelioSpectformer1D: pooled features -> num_outputs */
    AUR_SURYA_2D = 3        /* HelioSpectformer2D: a decoder back to (B, out_chans, H, W) */
} aur_surya_head;

typedef enum aur_surya_pool {
    AUR_POOL_CLASS_TOKEN = 0, /* a class token as the attention blocks' global token */
    AUR_POOL_AVERAGE = 1,
    AUR_POOL_MAX = 2,
    AUR_POOL_ATTENTION = 3,   /* multi-head self-attention, then the sum over tokens */
    AUR_POOL_TRANSFORMER = 4  /* a class token and a post-norm transformer encoder */
} aur_surya_pool;

/* Every constructor keyword of the reference, with its meaning. */
typedef struct aur_surya_config {
    int img_size, patch_size, in_chans, embed_dim;
    int time_dim;                   /* input times T (linear time embedding: stacked as conv channels) */
    int perceiver_time, n_queries;  /* time_embedding type "perceiver": n_queries latents per token over the channels */
    int depth, n_spectral_blocks, num_heads;
    double mlp_ratio, drop_rate;
    int window_size, dp_rank, nglo; /* long-short attention: window w, dynamic-projection rank r, global tokens */
    int rpe;                        /* a learned relative-position bias on the window scores */
    int ensemble;                   /* E > 0: E members per sample, each block modulated by noise (adaLN) */
    int learned_flow;               /* a learned flow field warps the last frame: an extra input frame and a forecast residual */
    int flow_latitude;              /* use_latitude_in_learned_flow: the flow also sees each sample's latitude (aur_surya_set_latitude) */
    int checkpoint_blocks;          /* activation checkpointing of every backbone block (no numerical effect) */
    aur_surya_head head;
    /* HelioSpectformer1D */
    aur_surya_pool pooling;
    int penultimate_linear, num_outputs, penult_heads, penult_layers;
    double head_dropout;            /* config.model.dropout (before pooling) and the pooling modules' dropout */
    int squeeze_output, sigmoid_output; /* flare: (B) logits; EUV: sigmoid; wind: (B, 1) */
    /* HelioSpectformer2D */
    int perceiver_decoder, out_chans;
} aur_surya_config;

/* "surya-1.0" (366 M parameters) or "surya-tiny" (the fixture's). */
AURDEF int aur_surya_preset(const char *name, aur_surya_config *cfg);
/* Applies the reference's constructor keywords (as the fixtures' model.kwargs,
   including the heads' "config": {"model": {...}}) on top of cfg; the class
   name ("HelioSpectFormer", "HelioSpectformer1D", "HelioSpectformer2D") and
   task ("flare", "wind", "euv", or NULL) pick the head. Unknown keys are errors. */
AURDEF int aur_surya_config_json(const struct cJSON *kwargs, const char *cls, const char *task, aur_surya_config *cfg);
/* The parameter table of cfg without weights: add LoRA adapters (lora.h) to
   it, then aur_model_alloc and aur_surya_init_weights. Owned. */
AURDEF aur_model *aur_surya_declare_model(const aur_surya_config *cfg);
AURDEF int aur_surya_init_weights(aur_model *m, uint64_t seed);
/* declare + allocate + initialise. Owned. */
AURDEF aur_model *aur_surya_create(const aur_surya_config *cfg, aur_device device, uint64_t seed);
AURDEF const aur_surya_config *aur_surya_config_of(const aur_model *m);
/* The model's output for ts (B, C, T, H, W): see aur_surya_head. */
AURDEF aur_tensor *aur_surya_forward(aur_model *m, aur_tape *t, aur_tensor *ts);
/* A probe sees "embedding_out", "block{i}_out", "unembed_in". */
AURDEF void aur_surya_set_probe(aur_model *m, aur_probe_fn fn, void *ctx);
/* Ensembles draw N(0, 1) noise (B*E, N, D) per forward from the model's own
   stream (seeded by aur_surya_init_weights). This uses the given values (n
   floats, copied) instead; NULL goes back to drawing. */
AURDEF int aur_surya_set_noise(aur_model *m, const float *noise, int64_t n);
/* use_latitude_in_learned_flow: the forecast latitude of each of the next
   batch's B samples (copied; the reference's batch["forecast_latitude"]). */
AURDEF int aur_surya_set_latitude(aur_model *m, const float *latitude, int64_t B);

/* ---- data: Surya's per-channel scalers ----
   z = (signum_log(x * sl_scale) - mean) / (std + eps), signum_log(y) = sign(y) log1p(|y|);
   and back. One entry per channel. */
typedef struct aur_surya_scaler {
    double mean, std, epsilon, sl_scale_factor;
} aur_surya_scaler;
/* In place over x (B, C, ...) with C scalers. */
AURDEF int aur_surya_normalise(aur_tensor *x, const aur_surya_scaler *s, int C, int inverse);
/* SDO's 13 channel names in Surya's order (aia94 ... hmi_v). */
AURDEF const char *const *aur_surya_channel_names(void);
/* The fine-tuning guide's data checks on normalised solar images ts
   (B, C, T, H, W), channel by channel: NaN/Inf and all-zero frames are
   errors; values beyond opts->outlier_z and a normalised mean or std far
   from (0, 1) (the scalers do not fit) are warnings. names: C channel names
   or NULL (SDO's). Returns 0 or AUR_EFORMAT naming the first bad channel. */
AURDEF int aur_surya_check_batch(const aur_tensor *ts, const char *const *names, const aur_check_opts *opts, aur_check_report *rep);
