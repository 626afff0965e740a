/* surya.h - GENERATED from src/ by `make headers` (tools/make_headers.sh; src/manifest
   lists its files in order). Do not edit it: edit src/, run make headers, commit both. */
/* surya.h - NASA-IMPACT's Surya (HelioSpectFormer) and its fine-tuning heads,
   on aurora.h's core. MIT licence.

   Surya forecasts the Sun: 13 channels of SDO images (AIA EUV and HMI
   magnetograms) at a few input times go in, the channels one lead time later
   come out. Its backbone is a ViT over 16x16 patches: spectral-gating blocks
   (a learned filter in the 2-D Fourier domain of the token grid) followed by
   long-short attention blocks (each token attends to its neighbourhood
   window, to a few learned summaries of the whole image, and to global
   tokens). The downstream heads reuse the backbone for scalar targets (flare
   classification, solar-wind speed, EUV spectra: HelioSpectformer1D) and
   for images (active-region masks: HelioSpectformer2D).

   USAGE: as aurora.h (#define AURORA_IMPLEMENTATION in one file, then
   #include "surya.h"; it includes aurora.h). Parameter names are the
   reference's state_dict keys. To read SDO data in the reference's layout
   (NetCDF files through an index CSV, scalers.yaml: aur_sdo_open), compile
   that file with -DAUR_NETCDF and link -lnetcdf -lyaml; without it those
   calls return AUR_EUNSUPPORTED.

       aur_surya_config cfg;
       aur_surya_preset("surya-1.0", &cfg);
       aur_model *m = aur_surya_create(&cfg, AUR_CPU, 0);     (or declare, add LoRA (lora.h), allocate)
       aur_tensor *y = aur_surya_forward(m, tape, ts);         ts (B, C, T, H, W), normalised

   The 2-D FFT of the spectral filter is a DFT written as four real matrix
   products per axis (cos/sin tables computed once in double precision): it
   reuses the tuned GEMM and its autograd on the CPU and cuBLAS on the GPU,
   costs O(G) per token where G is the grid side (256 for Surya-1.0: a small
   fraction of the attention blocks' work), and needs no FFT library. */

#ifndef AUR__SURYA_H
#define AUR__SURYA_H

#include "aurora.h"
#include "lora.h" /* the fine-tuning runs' LoRA */

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
/* The scalers of channels[0..C) from a scalers.yaml file (Surya-1.0's: channel ->
   StandardScaler fields, numbers as strings). Needs AUR_NETCDF (libyaml). */
AURDEF int aur_surya_scalers_load(const char *path, const char *const *channels, int C, aur_surya_scaler *out);

/* ---- data: SDO files in the reference's layout ----
   surya/datasets/helio.py: HelioNetCDFDataset and, with a label table,
   solar_flare_forcasting/dataset.py: SolarFlareDataset. An index CSV
   (",path,timestep,present") names one NetCDF file per time, a 2-D variable
   per channel; a sample at reference time t reads the files at t + each
   input time and t + k * time_delta_target_minutes (k = 1 .. rollout_steps + 1),
   pools them (block means) and scales them. A time is a sample when all its
   files are present (and, with labels, when it and the times it reads have a
   label: the reference loads its files from the label-joined index). Needs
   the implementation compiled with -DAUR_NETCDF, linked with -lnetcdf -lyaml;
   compressed files need their HDF5 filter plugins installed. */
#define AUR_SDO_MAX_CHANNELS 64
typedef struct aur_sdo_options {
    const char *index_path;            /* the index CSV */
    const char *data_root;             /* sdo_data_root_path: joined to the index's relative paths (NULL: as they are) */
    const char *scalers_path;          /* scalers.yaml */
    const char *label_path;            /* flare_data_path: CSV "timestamp,...,<label_column>"; NULL: no labels */
    const char *label_column;          /* NULL: "label_max" */
    const char *const *channels;       /* the variables to read, in order */
    int n_channels;
    const int *time_delta_input_minutes; /* any order (sorted, as the reference) */
    int n_inputs;                      /* how many input times (the reference's n_input_timestamps equals it) */
    int time_delta_target_minutes, rollout_steps, pooling; /* pooling 1: none */
} aur_sdo_options;
typedef struct aur_sdo_dataset aur_sdo_dataset;
typedef struct aur_sdo_info {
    int64_t n;       /* samples */
    int C, T, L;     /* channels, input times, lead times (rollout_steps + 1) */
    int H, W;        /* after pooling */
    int labelled;
    int64_t files;   /* distinct files the samples read (each checked when opened) */
} aur_sdo_info;
/* Reads the tables and the scalers, and checks every file the samples need
   (it opens, has the channels, one shape, readable filters) before it returns. */
AURDEF int aur_sdo_open(const aur_sdo_options *o, aur_sdo_dataset **out);
AURDEF aur_sdo_info aur_sdo_describe(const aur_sdo_dataset *d);
/* Sample i, as the reference's __getitem__: any output may be NULL.
   ts (C, T, H, W) and forecast (C, L, H, W) scaled; time_delta_input (T) and
   lead_time_delta (L) in hours before the last input time; times (T + L) in ns
   since 1970; label (with a label table). */
typedef struct aur_sdo_sample {
    float *ts, *forecast, *time_delta_input, *lead_time_delta;
    int64_t *times;
    double label;
} aur_sdo_sample;
AURDEF int aur_sdo_read(aur_sdo_dataset *d, int64_t i, aur_sdo_sample *out);
AURDEF void aur_sdo_close(aur_sdo_dataset *d);

/* SDO's 13 channel names in Surya's order (aia94 ... hmi_v). */
AURDEF const char *const *aur_surya_channel_names(void);
/* The fine-tuning guide's data checks on normalised solar images ts
   (B, C, T, H, W), channel by channel: NaN/Inf and all-zero frames are
   errors; values beyond opts->outlier_z and a normalised mean or std far
   from (0, 1) (the scalers do not fit) are warnings. names: C channel names
   or NULL (SDO's). Returns 0 or AUR_EFORMAT naming the first bad channel. */
AURDEF int aur_surya_check_batch(const aur_tensor *ts, const char *const *names, const aur_check_opts *opts, aur_check_report *rep);

/* ---- fine-tuning: data, metrics, runs ---- */

/* The reference's downstream config.yaml "model" section (as JSON: the
   same keys) on top of cfg: the keywords its finetune.py scripts pass to
   HelioSpectformer1D/2D (in_channels, spectral_blocks, ... and the pooling
   flags through config=config). task: "flare", "wind", "euv" (1D heads) or
   "ar" (2D). Keys of other parts of the run (use_lora, lora_config,
   freeze_backbone, model_type, ...) are left to the caller; unknown keys
   are errors. */
AURDEF int aur_surya_config_yaml(const struct cJSON *model, const char *task, aur_surya_config *cfg);

/* A fine-tuning set in one safetensors file: "ts" (N, C, T, H, W) the
   normalised inputs (the reference's batch["ts"]) and "target" (N, ...) the
   labels: flare (N), wind speed (N, 1), EUV spectra (N, K), AR masks (N, 1, H, W). */
typedef struct aur_surya_samples {
    int64_t n;
    int C, T, H, W;
    aur_real *ts;                        /* n x C x T x H x W */
    int target_ndim;                     /* of one sample's target */
    int64_t target_shape[AUR_MAX_DIMS - 1], target_size;
    aur_real *target;                    /* n x target_size */
    aur_sdo_dataset *sdo;                /* when set, ts is NULL: batches are read from these files */
} aur_surya_samples;
AURDEF int aur_surya_samples_load(const char *path, aur_surya_samples *s);
AURDEF int aur_surya_samples_save(const aur_surya_samples *s, const char *path);
AURDEF void aur_surya_samples_free(aur_surya_samples *s);
/* A labelled sample set read from SDO files as batches are drawn: the
   targets are the labels (flare: N), the inputs stay in the files. */
AURDEF int aur_surya_samples_from_sdo(const aur_sdo_options *o, aur_surya_samples *s);

/* The downstream tasks' metrics over a whole set. Binary (flare; prob is
   the predicted probability, a positive above 0.5): accuracy, precision,
   recall, F1, TSS, HSS. Regression (wind, EUV): MAE, RMSE, R^2. Segmentation
   (AR masks, a pixel positive above 0.5): IoU, Dice of the positive class. */
#define AUR_BINARY_SCORES 6
#define AUR_REGRESSION_SCORES 3
#define AUR_SEGMENTATION_SCORES 2
AURDEF void aur_binary_scores(const aur_real *prob, const aur_real *label, int64_t n, double out[AUR_BINARY_SCORES]);
AURDEF void aur_regression_scores(const aur_real *pred, const aur_real *target, int64_t n, double out[AUR_REGRESSION_SCORES]);
AURDEF void aur_segmentation_scores(const aur_real *prob, const aur_real *mask, int64_t n, double out[AUR_SEGMENTATION_SCORES]);

/* A Surya fine-tuning run from a JSON config whose keys are the reference's
   downstream config.yaml (README "Fine-tuning Surya" lists them and the few
   added here), run by aur_trainer_run/_resume/_free as an Aurora run is:
   metrics.jsonl with the task's metrics per evaluation, TensorBoard events,
   curves.png, atomic checkpoints (with the LoRA adapter in PEFT's format)
   that resume bit for bit. */
AURDEF aur_trainer *aur_surya_trainer_create(const char *config_path);
AURDEF aur_trainer *aur_surya_trainer_create_json(const struct cJSON *config, const char *base_dir);
/* 1 if a parsed run config is a Surya one (its model section has the reference's model_type). */
AURDEF int aur_surya_is_run_config(const struct cJSON *config);

#endif /* AUR__SURYA_H */

/* ======================================================================== */
/*                            IMPLEMENTATION                                */
/* ======================================================================== */

#if defined(AURORA_IMPLEMENTATION) && !defined(AUR__SURYA_IMPL_DONE)
#define AUR__SURYA_IMPL_DONE

/* ==== Surya: configuration ==== */

AURDEF int aur_surya_preset(const char *name, aur_surya_config *c)
{
    memset(c, 0, sizeof *c);
    c->img_size = 4096, c->patch_size = 16, c->in_chans = 13, c->embed_dim = 1280, c->time_dim = 2;
    c->depth = 10, c->n_spectral_blocks = 2, c->num_heads = 16, c->mlp_ratio = 4.0;
    c->window_size = 2, c->dp_rank = 4, c->head = AUR_SURYA_FORECAST;
    c->num_outputs = 1, c->out_chans = 1, c->penultimate_linear = 1;
    if (!strcmp(name, "surya-1.0") || !strcmp(name, "Surya-1.0")) return 0;
    if (!strcmp(name, "surya-tiny")) {
        c->img_size = 64, c->patch_size = 4, c->embed_dim = 64, c->depth = 4, c->num_heads = 4;
        return 0;
    }
    return aur__err(AUR_EINVAL, "unknown Surya preset '%s' (surya-1.0, surya-tiny)", name);
}

/* Surya's configs write null for "the default": it keeps the preset's value. */
static const cJSON *aur__sj(const cJSON *v) { return cJSON_IsNull(v) ? NULL : v; }

/* The heads' config.model section: pooling flags, penultimate linear, dropout, decoder. */
static int aur__surya_head_json(const cJSON *model, aur_surya_config *c)
{
    static const char *const pools[] = {"global_class_token", "global_average_pooling", "global_max_pooling", "attention_pooling",
                                        "transformer_pooling"};
    static const char *const decoders[] = {"linear", "perceiver", NULL};
    const char *W = "Surya config.model";
    int set = 0, rc = model && !cJSON_IsObject(model) ? aur__json_bad(model, "Surya keyword 'config'", "model", "an object") : 0;
    for (const cJSON *it = cJSON_IsObject(model) ? model->child : NULL; it && !rc; it = it->next) {
        const char *k = it->string;
        int flag = 0, known = 0;
        for (int p = 0; p < 5 && !known; p++)
            if (!strcmp(k, pools[p])) {
                known = 1;
                rc = aur__json_bool(aur__sj(it), W, &flag);
                if (flag) c->pooling = (aur_surya_pool)p, set++;
            }
        if (known) continue;
        if (!strcmp(k, "penultimate_linear_layer")) rc = aur__json_bool(aur__sj(it), W, &c->penultimate_linear);
        else if (!strcmp(k, "dropout")) rc = aur__json_num(aur__sj(it), W, -HUGE_VAL, HUGE_VAL, &c->head_dropout);
        else if (!strcmp(k, "ft_out_chans")) rc = aur__json_int(aur__sj(it), W, INT_MIN, INT_MAX, &c->out_chans);
        else if (!strcmp(k, "ft_unembedding_type")) rc = aur__json_enum(it, W, decoders, &c->perceiver_decoder);
        else return aur__err(AUR_EINVAL, "Surya head keyword '%s' is unknown", k);
    }
    if (!rc && c->head == AUR_SURYA_1D && set != 1)
        return aur__err(AUR_EINVAL, "Surya 1D head: exactly one pooling flag must be true (%d are)", set);
    return rc;
}

static int aur__surya_time_json(const cJSON *v, aur_surya_config *c)
{
    static const char *const kinds[] = {"linear", "perceiver", NULL};
    const char *W = "Surya time_embedding";
    const cJSON *type = aur__json_at(v, "type");
    int rc = type ? aur__json_enum(type, W, kinds, &c->perceiver_time)
                  : aur__json_bad(v, "Surya keyword", "time_embedding", "{\"type\", \"time_dim\", \"n_queries\"}");
    if (!rc) rc = aur__json_int(aur__sj(aur__json_at(v, "time_dim")), W, INT_MIN, INT_MAX, &c->time_dim);
    if (!rc) rc = aur__json_int(aur__sj(aur__json_at(v, "n_queries")), W, INT_MIN, INT_MAX, &c->n_queries);
    return rc;
}

/* One top-level keyword. */
static int aur__surya_key(const cJSON *it, aur_surya_config *c)
{
    const char *k = it->string, *W = "Surya keyword";
    const cJSON *v = aur__sj(it);
    struct { const char *key; int *dst; } ints[] = {
        {"img_size", &c->img_size}, {"patch_size", &c->patch_size}, {"in_chans", &c->in_chans}, {"embed_dim", &c->embed_dim},
        {"depth", &c->depth}, {"n_spectral_blocks", &c->n_spectral_blocks}, {"num_heads", &c->num_heads},
        {"window_size", &c->window_size}, {"dp_rank", &c->dp_rank}, {"nglo", &c->nglo}, {"num_outputs", &c->num_outputs},
        {"num_penultimate_transformer_layers", &c->penult_layers}, {"num_penultimate_heads", &c->penult_heads},
        {"ensemble", &c->ensemble}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(k, ints[i].key)) return aur__json_int(v, W, INT_MIN, INT_MAX, ints[i].dst);
    if (!strcmp(k, "mlp_ratio")) return aur__json_num(v, W, -HUGE_VAL, HUGE_VAL, &c->mlp_ratio);
    if (!strcmp(k, "drop_rate")) return aur__json_num(v, W, -HUGE_VAL, HUGE_VAL, &c->drop_rate);
    if (!strcmp(k, "dropout")) return aur__json_num(v, W, -HUGE_VAL, HUGE_VAL, &c->head_dropout); /* the pooling modules' dropout */
    if (!strcmp(k, "time_embedding")) return aur__surya_time_json(it, c);
    if (!strcmp(k, "learned_flow")) return aur__json_bool(v, W, &c->learned_flow);
    if (!strcmp(k, "rpe")) return aur__json_bool(v, W, &c->rpe);
    if (!strcmp(k, "use_latitude_in_learned_flow")) return aur__json_bool(v, W, &c->flow_latitude);
    if (!strcmp(k, "finetune")) {
        int ft = 0, rc = aur__json_bool(v, W, &ft);
        if (c->head == AUR_SURYA_FORECAST || c->head == AUR_SURYA_TOKENS) c->head = ft ? AUR_SURYA_TOKENS : AUR_SURYA_FORECAST;
        return rc;
    }
    if (!strcmp(k, "checkpoint_layers")) { /* the reference's list of blocks to checkpoint: here all or none */
        if (!cJSON_IsNull(it) && !cJSON_IsArray(it)) return aur__json_bad(it, W, k, "a list of block indices or null");
        c->checkpoint_blocks = cJSON_GetArraySize(it) > 0;
        return 0;
    }
    if (!strcmp(k, "config")) {
        if (!cJSON_IsObject(it)) return aur__json_bad(it, W, k, "an object (the downstream config, with its model section)");
        return aur__surya_head_json(aur__sj(aur__json_at(it, "model")), c);
    }
    /* init_weights only changes a fresh model's initialisation; dtype is ignored by the reference too */
    if (!strcmp(k, "init_weights") || !strcmp(k, "dtype")) return 0;
    return aur__err(AUR_EINVAL, "Surya keyword '%s' is unknown", k);
}

AURDEF int aur_surya_config_json(const cJSON *kwargs, const char *cls, const char *task, aur_surya_config *c)
{
    if (cls && !strcmp(cls, "HelioSpectformer1D")) c->head = AUR_SURYA_1D;
    else if (cls && !strcmp(cls, "HelioSpectformer2D")) c->head = AUR_SURYA_2D;
    else if (cls && strcmp(cls, "HelioSpectFormer")) return aur__err(AUR_EINVAL, "unknown Surya class '%s'", cls);
    if (c->head == AUR_SURYA_1D) {
        c->squeeze_output = !task || !strcmp(task, "flare") || !strcmp(task, "euv");
        c->sigmoid_output = task && !strcmp(task, "euv");
    }
    if (!cJSON_IsObject(kwargs)) return aur__err(AUR_EINVAL, "Surya keywords: expected an object");
    if (aur__json_unique(kwargs, "Surya keywords")) return AUR_EINVAL;
    for (const cJSON *it = kwargs->child; it; it = it->next)
        if (aur__surya_key(it, c)) return AUR_EINVAL;
    return 0;
}

/* ---- the downstream configs' model section ---- */

/* What finetune.py does with each key of config.yaml's model section: a
   constructor keyword under another name, the head's config.model, or
   nothing the model sees. */
static const char *const aur__yaml_renamed[][2] = {{"in_channels", "in_chans"}, {"spectral_blocks", "n_spectral_blocks"}};
static const char *const aur__yaml_kwargs[] = {"img_size", "patch_size", "embed_dim", "time_embedding", "depth", "num_heads",
                                               "mlp_ratio", "drop_rate", "window_size", "dp_rank", "learned_flow", "init_weights",
                                               "checkpoint_layers", "rpe", "ensemble", "finetune", "nglo", "dropout", "num_outputs",
                                               NULL};
static const char *const aur__yaml_head[] = {"global_average_pooling", "global_max_pooling", "attention_pooling", "transformer_pooling",
                                             "global_class_token", "penultimate_linear_layer", "ft_unembedding_type", "ft_out_chans",
                                             NULL};
/* model_type, freeze_backbone, use_lora and lora_config are the run's; the
   UNet baseline's keys and epochs_to_learn_flow are read by no Surya model;
   AR's loss keys (select, bce, dice, iou): its script trains with BCE whatever they say */
static const char *const aur__yaml_run[] = {"model_type", "freeze_backbone", "use_lora", "lora_config", "unet_embed_dim", "unet_blocks",
                                            "unet_concat_activations", "epochs_to_learn_flow", "select", "bce", "dice", "iou", NULL};

static int aur__in_list(const char *const *list, const char *k)
{
    for (; *list; list++)
        if (!strcmp(*list, k)) return 1;
    return 0;
}

AURDEF int aur_surya_config_yaml(const cJSON *model, const char *task, aur_surya_config *c)
{
    static const char *const tasks[] = {"flare", "wind", "euv", "ar", NULL};
    if (!cJSON_IsObject(model)) return aur__err(AUR_EINVAL, "Surya run config: 'model' must be an object");
    if (!task || !aur__in_list(tasks, task)) return aur__err(AUR_EINVAL, "Surya run config: task '%s' is not flare, wind, euv or ar", task ? task : "");
    int ar = !strcmp(task, "ar"), rc = aur__json_unique(model, "Surya run config: model");
    cJSON *kw = cJSON_CreateObject(), *cfg = cJSON_AddObjectToObject(kw, "config"), *head = cJSON_AddObjectToObject(cfg, "model");
    for (const cJSON *it = model->child; it && !rc; it = it->next) {
        const char *k = it->string, *as = NULL;
        for (size_t i = 0; i < sizeof aur__yaml_renamed / sizeof aur__yaml_renamed[0]; i++)
            if (!strcmp(k, aur__yaml_renamed[i][0])) as = aur__yaml_renamed[i][1];
        /* finetune.py passes nglo, ensemble and dropout to the 1D head only */
        int for_2d = strcmp(k, "nglo") && strcmp(k, "ensemble") && strcmp(k, "dropout");
        if (as || aur__in_list(aur__yaml_kwargs, k)) {
            if (!ar || for_2d) cJSON_AddItemToObject(kw, as ? as : k, cJSON_Duplicate(it, 1));
        } else if (aur__in_list(aur__yaml_head, k)) {
            cJSON_AddItemToObject(head, k, cJSON_Duplicate(it, 1));
        } else if (!aur__in_list(aur__yaml_run, k)) {
            rc = aur__err(AUR_EINVAL, "Surya run config: model.%s is not a key of the reference's downstream configs", k);
        }
    }
    if (!rc) rc = aur_surya_config_json(kw, ar ? "HelioSpectformer2D" : "HelioSpectformer1D", ar ? NULL : task, c);
    cJSON_Delete(kw);
    return rc;
}

/* ==== Surya: the parameter table ==== */

typedef struct aur__surya {
    aur_surya_config cfg;
    aur_model *m;
    aur_probe_fn probe;
    void *probe_ctx;
    /* the long-short attention's windows, as row-gather tables (built once) */
    aur_index q_group, q_ungroup, k_window;
    aur_real *window_mask; /* (ng^2, 1, kw^2): -inf where a window slot falls outside the image */
    aur_index rpe_index; /* (w^2 * kw^2) rows of the relative-position bias table */
    aur__rng noise_rng;  /* the ensembles' noise, or */
    float *noise;        /* noise given by aur_surya_set_noise (fidelity tests inject the reference's) */
    int64_t noise_n;
    float *latitude;     /* forecast latitudes for the learned flow, one per sample */
    int64_t n_latitude;
    /* DFT tables of the spectral filter (a = b = G) */
    aur_real *dft_fc, *dft_fs, *dft_ac, *dft_as, *dft_ic, *dft_is;
} aur__surya;

static void aur__surya_free(void *p)
{
    aur__surya *S = (aur__surya *)p;
    if (!S) return;
    AUR_FREE(S->q_group.idx);
    AUR_FREE(S->q_ungroup.idx);
    AUR_FREE(S->k_window.idx);
    AUR_FREE(S->window_mask);
    AUR_FREE(S->rpe_index.idx);
    AUR_FREE(S->noise);
    AUR_FREE(S->latitude);
    aur_real *tabs[6] = {S->dft_fc, S->dft_fs, S->dft_ac, S->dft_as, S->dft_ic, S->dft_is};
    for (int i = 0; i < 6; i++) AUR_FREE(tabs[i]);
    AUR_FREE(S);
}

static aur__surya *aur__S(const aur_model *m)
{
    if (!m || !m->impl || m->impl_free != aur__surya_free) {
        aur__err(AUR_EINVAL, "not a Surya model (make it with aur_surya_create)");
        return NULL;
    }
    return (aur__surya *)m->impl;
}

AURDEF const aur_surya_config *aur_surya_config_of(const aur_model *m)
{
    aur__surya *S = aur__S(m);
    return S ? &S->cfg : NULL;
}

AURDEF int aur_surya_set_noise(aur_model *m, const float *noise, int64_t n)
{
    aur__surya *S = aur__S(m);
    if (!S) return AUR_EINVAL;
    AUR_FREE(S->noise);
    S->noise = NULL, S->noise_n = 0;
    if (!noise) return 0;
    if (!(S->noise = (float *)aur__malloc(sizeof(float) * (size_t)n, "ensemble noise"))) return AUR_ENOMEM;
    memcpy(S->noise, noise, sizeof(float) * (size_t)n);
    S->noise_n = n;
    return 0;
}

AURDEF int aur_surya_set_latitude(aur_model *m, const float *latitude, int64_t B)
{
    aur__surya *S = aur__S(m);
    if (!S || B < 0) return AUR_EINVAL;
    AUR_FREE(S->latitude);
    S->latitude = NULL, S->n_latitude = 0;
    if (!latitude || !B) return 0;
    if (!(S->latitude = (float *)aur__malloc(sizeof(float) * (size_t)B, "latitudes"))) return AUR_ENOMEM;
    memcpy(S->latitude, latitude, sizeof(float) * (size_t)B);
    S->n_latitude = B;
    return 0;
}

AURDEF void aur_surya_set_probe(aur_model *m, aur_probe_fn fn, void *ctx)
{
    aur__surya *S = aur__S(m);
    if (S) S->probe = fn, S->probe_ctx = ctx;
}

/* Declares name (printf-style) with a shape; keeps the first error. */
static void aur__sdecl(aur_model *m, int *rc, int is_buffer, aur_shape s, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (!*rc && !aur_model_add(m, name, s, is_buffer)) *rc = AUR_EINVAL;
}

static void aur__sdecl_linear(aur_model *m, int *rc, const char *prefix, int64_t out, int64_t in, int bias)
{
    aur__sdecl(m, rc, 0, aur_shape2(out, in), "%s.weight", prefix);
    if (bias) aur__sdecl(m, rc, 0, aur_shape1(out), "%s.bias", prefix);
}

static void aur__sdecl_norm(aur_model *m, int *rc, const char *prefix, int64_t d)
{
    aur__sdecl(m, rc, 0, aur_shape1(d), "%s.weight", prefix);
    aur__sdecl(m, rc, 0, aur_shape1(d), "%s.bias", prefix);
}

static void aur__sdecl_mlp(aur_model *m, int *rc, const char *block, int64_t D, int64_t hidden)
{
    char p[200];
    snprintf(p, sizeof p, "%s.mlp.fc1", block);
    aur__sdecl_linear(m, rc, p, hidden, D, 1);
    snprintf(p, sizeof p, "%s.mlp.fc2", block);
    aur__sdecl_linear(m, rc, p, D, hidden, 1);
}

/* nn.MultiheadAttention's parameters. */
static void aur__sdecl_mha(aur_model *m, int *rc, const char *prefix, int64_t D)
{
    char p[200];
    aur__sdecl(m, rc, 0, aur_shape2(3 * D, D), "%s.in_proj_weight", prefix);
    aur__sdecl(m, rc, 0, aur_shape1(3 * D), "%s.in_proj_bias", prefix);
    snprintf(p, sizeof p, "%s.out_proj", prefix);
    aur__sdecl_linear(m, rc, p, D, D, 1);
}

static void aur__sdecl_backbone(aur_model *m, int *rc, const aur_surya_config *c)
{
    int64_t D = c->embed_dim, G = c->img_size / c->patch_size, hidden = (int64_t)(D * c->mlp_ratio);
    char b[160], p[200];
    for (int i = 0; i < c->n_spectral_blocks; i++) {
        snprintf(b, sizeof b, "backbone.blocks_spectral_gating.%d", i);
        snprintf(p, sizeof p, "%s.norm1", b);
        aur__sdecl_norm(m, rc, p, D);
        aur__sdecl(m, rc, 0, aur_shape4(G, G / 2 + 1, D, 2), "%s.filter.complex_weight", b);
        snprintf(p, sizeof p, "%s.norm2", b);
        aur__sdecl_norm(m, rc, p, D);
        aur__sdecl_mlp(m, rc, b, D, hidden);
    }
    for (int j = 0; j < c->depth - c->n_spectral_blocks; j++) {
        snprintf(b, sizeof b, "backbone.blocks_attention.%d", j);
        snprintf(p, sizeof p, "%s.norm1", b);
        aur__sdecl_norm(m, rc, p, D);
        snprintf(p, sizeof p, "%s.norm2", b);
        aur__sdecl_norm(m, rc, p, D);
        aur__sdecl_mlp(m, rc, b, D, hidden);
        snprintf(p, sizeof p, "%s.attn.qkv", b);
        aur__sdecl_linear(m, rc, p, 3 * D, D, 0);
        snprintf(p, sizeof p, "%s.attn.proj", b);
        aur__sdecl_linear(m, rc, p, D, D, 1);
        if (c->dp_rank > 0) {
            snprintf(p, sizeof p, "%s.attn.to_dynamic_projection", b);
            aur__sdecl_linear(m, rc, p, (int64_t)c->dp_rank * c->num_heads, D, 1);
        }
        snprintf(p, sizeof p, "%s.attn.dual_ln_dp", b); /* the reference makes it even without a projection */
        aur__sdecl_norm(m, rc, p, D);
        if (c->ensemble > 0) { /* adaLN: noise -> Linear -> GELU -> Linear to six modulations */
            snprintf(p, sizeof p, "%s.adaLN_modulation.0", b);
            aur__sdecl_linear(m, rc, p, D, D, 1);
            snprintf(p, sizeof p, "%s.adaLN_modulation.2", b);
            aur__sdecl_linear(m, rc, p, 6 * D, D, 1);
        }
        snprintf(p, sizeof p, "%s.attn.dual_ln_full", b);
        aur__sdecl_norm(m, rc, p, D);
        if (c->rpe) {
            int64_t w = c->window_size, wp = w / 2, kw = w + 2 * wp;
            aur__sdecl(m, rc, 0, aur_shape2(2 * (w + wp - 1) * (2 * wp + w + 1) + 1, c->num_heads), "%s.attn.local_relative_position_bias_table", b);
            aur__sdecl(m, rc, 1, aur_shape2(w * w, kw * kw), "%s.attn.relative_position_index", b);
        }
    }
}

/* A one-layer PerceiverResampler (16 heads of D/16) under `prefix`.perceiver. */
static void aur__sdecl_resampler(aur_model *m, int *rc, const char *prefix, int64_t D)
{
    int64_t inner = (D / 16) * 16;
    static const char *const parts[] = {"0.0.to_q", "0.0.to_kv", "0.0.to_out", "0.1.net.0", "0.1.net.2"};
    int64_t shapes[5][2] = {{inner, D}, {2 * inner, D}, {D, inner}, {4 * D, D}, {D, 4 * D}};
    char p[200];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s.perceiver.layers.%s", prefix, parts[i]);
        aur__sdecl_linear(m, rc, p, shapes[i][0], shapes[i][1], i >= 3);
    }
    snprintf(p, sizeof p, "%s.perceiver.layers.0.2", prefix);
    aur__sdecl_norm(m, rc, p, D);
    snprintf(p, sizeof p, "%s.perceiver.layers.0.3", prefix);
    aur__sdecl_norm(m, rc, p, D);
}

/* The Perceiver decoder (the 2-D head's, or the forecast decoder with the perceiver embedding). */
static void aur__sdecl_perceiver_decoder(aur_model *m, int *rc, const aur_surya_config *c, int64_t Co)
{
    int64_t D = c->embed_dim, p2 = (int64_t)c->patch_size * c->patch_size;
    aur__sdecl(m, rc, 0, aur_shape3(1, Co, D), "unembed.latent_queries");
    aur__sdecl_resampler(m, rc, "unembed", D);
    aur__sdecl(m, rc, 0, aur_shape4(Co * p2, D, 1, 1), "unembed.proj.weight");
    aur__sdecl(m, rc, 0, aur_shape1(Co * p2), "unembed.proj.bias");
}

/* PerceiverChannelEmbedding: a grouped patch convolution per channel, a learned
   position embedding, and n_queries latents per token attending over the channels. */
static void aur__sdecl_perceiver_embedding(aur_model *m, int *rc, const aur_surya_config *c)
{
    int64_t D = c->embed_dim, C = c->in_chans, p = c->patch_size, G = c->img_size / p;
    aur__sdecl(m, rc, 0, aur_shape4(C * D, c->time_dim, p, p), "embedding.proj.weight");
    aur__sdecl(m, rc, 0, aur_shape1(C * D), "embedding.proj.bias");
    aur__sdecl(m, rc, 0, aur_shape3(1, D, G * G), "embedding.pos_embed");
    aur__sdecl(m, rc, 0, aur_shape3(1, c->n_queries, D), "embedding.latent_queries");
    aur__sdecl_resampler(m, rc, "embedding", D);
    aur__sdecl_linear(m, rc, "embedding.latent_aggregation", D, (int64_t)c->n_queries * D, 1);
}

static void aur__sdecl_head1d(aur_model *m, int *rc, const aur_surya_config *c)
{
    int64_t D = c->embed_dim;
    char p[200];
    if (c->pooling == AUR_POOL_ATTENTION) aur__sdecl_mha(m, rc, "attention", D);
    for (int l = 0; c->pooling == AUR_POOL_TRANSFORMER && l < c->penult_layers; l++) {
        snprintf(p, sizeof p, "downstream_transformer.layers.%d.self_attn", l);
        aur__sdecl_mha(m, rc, p, D);
        snprintf(p, sizeof p, "downstream_transformer.layers.%d.linear1", l);
        aur__sdecl_linear(m, rc, p, D, D, 1);
        snprintf(p, sizeof p, "downstream_transformer.layers.%d.linear2", l);
        aur__sdecl_linear(m, rc, p, D, D, 1);
        snprintf(p, sizeof p, "downstream_transformer.layers.%d.norm1", l);
        aur__sdecl_norm(m, rc, p, D);
        snprintf(p, sizeof p, "downstream_transformer.layers.%d.norm2", l);
        aur__sdecl_norm(m, rc, p, D);
    }
    if (c->penultimate_linear) aur__sdecl_linear(m, rc, "linear", D, D, 1);
    aur__sdecl_linear(m, rc, "unembed", c->num_outputs, D, 1);
}

static int aur__surya_check(const aur_surya_config *c)
{
    if (c->learned_flow && c->perceiver_time)
        return aur__err(AUR_EUNSUPPORTED, "Surya: learned_flow with the perceiver embedding (the reference's shapes do not fit either)");
    if (c->ensemble < 0 || (c->ensemble > 0 && c->head == AUR_SURYA_1D && c->pooling == AUR_POOL_CLASS_TOKEN))
        return aur__err(AUR_EINVAL, "Surya: ensemble %d (a class-token head has no ensembles, as in the reference)", c->ensemble);
    if (c->perceiver_time && (c->n_queries < 1 || c->embed_dim % 16))
        return aur__err(AUR_EINVAL, "Surya perceiver time embedding: n_queries %d >= 1 and embed_dim %d a multiple of 16", c->n_queries,
                        c->embed_dim);
    if (c->rpe && c->window_size < 2) return aur__err(AUR_EINVAL, "Surya: rpe needs window_size >= 2 (it is %d)", c->window_size);
    int G = c->patch_size > 0 ? c->img_size / c->patch_size : 0;
    if (c->patch_size < 1 || c->img_size % c->patch_size || c->embed_dim % 4 || c->num_heads < 1 || c->embed_dim % c->num_heads ||
        c->depth < c->n_spectral_blocks || c->n_spectral_blocks < 0 || c->in_chans < 1 || c->time_dim < 1 ||
        (c->depth > c->n_spectral_blocks && (c->window_size < 1 || G % c->window_size)) || c->nglo < 0 || c->dp_rank < 0)
        return aur__err(AUR_EINVAL,
                        "Surya config: img_size %d must be a multiple of patch_size %d, the grid %d of window_size %d, embed_dim %d of 4 "
                        "and of num_heads %d; depth %d >= n_spectral_blocks %d",
                        c->img_size, c->patch_size, G, c->window_size, c->embed_dim, c->num_heads, c->depth, c->n_spectral_blocks);
    if (c->head == AUR_SURYA_1D && c->pooling == AUR_POOL_CLASS_TOKEN && c->nglo != 1)
        return aur__err(AUR_EINVAL, "Surya class-token head: the backbone needs nglo = 1 (it is %d)", c->nglo);
    if (c->head == AUR_SURYA_1D && (c->pooling == AUR_POOL_ATTENTION || c->pooling == AUR_POOL_TRANSFORMER) &&
        (c->penult_heads < 1 || c->embed_dim % c->penult_heads || (c->pooling == AUR_POOL_TRANSFORMER && c->penult_layers < 1)))
        return aur__err(AUR_EINVAL, "Surya %s pooling: num_penultimate_heads %d must divide embed_dim (and layers %d >= 1)",
                        c->pooling == AUR_POOL_ATTENTION ? "attention" : "transformer", c->penult_heads, c->penult_layers);
    return 0;
}

static int aur__surya_declare(aur_model *m, const aur_surya_config *c)
{
    int rc = aur__surya_check(c);
    int64_t D = c->embed_dim, G = c->img_size / c->patch_size, p = c->patch_size;
    int64_t cls = c->head == AUR_SURYA_1D && (c->pooling == AUR_POOL_CLASS_TOKEN || c->pooling == AUR_POOL_TRANSFORMER);
    if (cls) aur__sdecl(m, &rc, 0, aur_shape3(1, 1, D), "cls_token");
    if (c->learned_flow) {
        int64_t img = c->img_size;
        aur__sdecl(m, &rc, 1, aur_shape4(1, img, img, 2), "learned_flow_model.grid");
        aur__sdecl(m, &rc, 1, aur_shape4(1, img, img, 2 + c->flow_latitude), "learned_flow_model.higher_modes");
        aur__sdecl_linear(m, &rc, "learned_flow_model.flow_generator.0", 128, 2 + c->flow_latitude, 1);
        aur__sdecl_linear(m, &rc, "learned_flow_model.flow_generator.2", 2, 128, 1);
    }
    if (c->perceiver_time) aur__sdecl_perceiver_embedding(m, &rc, c);
    else { /* the learned flow's frame joins the inputs */
        aur__sdecl(m, &rc, 1, aur_shape3(1, G * G, D), "embedding.pos_embed"); /* state_dict order: the buffer first */
        aur__sdecl(m, &rc, 0, aur_shape4(D, (int64_t)c->in_chans * (c->time_dim + c->learned_flow), p, p), "embedding.patch_embed.proj.weight");
        aur__sdecl(m, &rc, 0, aur_shape1(D), "embedding.patch_embed.proj.bias");
    }
    if (c->head == AUR_SURYA_FORECAST && c->perceiver_time) aur__sdecl_perceiver_decoder(m, &rc, c, c->in_chans);
    else if (c->head == AUR_SURYA_FORECAST) {
        aur__sdecl(m, &rc, 0, aur_shape4(p * p * c->in_chans, D, 1, 1), "unembed.unembed.0.weight");
        aur__sdecl(m, &rc, 0, aur_shape1(p * p * c->in_chans), "unembed.unembed.0.bias");
    }
    aur__sdecl_backbone(m, &rc, c);
    if (c->head == AUR_SURYA_1D) aur__sdecl_head1d(m, &rc, c);
    if (c->head == AUR_SURYA_2D && c->perceiver_decoder) aur__sdecl_perceiver_decoder(m, &rc, c, c->out_chans);
    if (c->head == AUR_SURYA_2D && !c->perceiver_decoder) {
        aur__sdecl(m, &rc, 0, aur_shape4(p * p * c->out_chans, D, 1, 1), "unembed.unembed.0.weight");
        aur__sdecl(m, &rc, 0, aur_shape1(p * p * c->out_chans), "unembed.unembed.0.bias");
    }
    return rc;
}

/* ---- the attention windows and DFT tables ---- */

/* The relative-position index of the window bias (the reference's
   relative_position_index buffer): query (qh, qw) in the w x w window, key
   (kh, kw) in the padded window starting at -w/2; the row of the table is
   (qh - kh + w/2 + w - 1) * (2 (w/2) + w) + (qw - kw + w/2 + w - 1). */
static int64_t aur__rpe_row(int64_t w, int64_t qi, int64_t ki)
{
    int64_t wp = w / 2, side = w + 2 * wp, qh = qi / w, qw = qi % w, kh = ki / side - wp, kww = ki % side - wp;
    return (qh - kh + wp + w - 1) * (2 * wp + w) + (qw - kww + wp + w - 1);
}

static int aur__surya_rpe_index(aur__surya *S)
{
    int64_t w = S->cfg.window_size, kw = w + 2 * (w / 2), n = w * w * kw * kw;
    S->rpe_index.idx = (int64_t *)aur__malloc(sizeof(int64_t) * (size_t)n, "the relative-position index");
    if (!S->rpe_index.idx) return AUR_ENOMEM;
    for (int64_t qi = 0; qi < w * w; qi++)
        for (int64_t ki = 0; ki < kw * kw; ki++) S->rpe_index.idx[qi * kw * kw + ki] = aur__rpe_row(w, qi, ki);
    S->rpe_index.n_out = n, S->rpe_index.n_in = 2 * (w + w / 2 - 1) * (2 * (w / 2) + w + 1) + 1, S->rpe_index.injective = 0;
    return 0;
}

/* Window tables of the long-short attention on a G x G grid (window w, halo s):
   queries regrouped window by window, and each window's kw x kw keys from
   the zero-padded grid (-1 = padding). */
static int aur__surya_windows(aur__surya *S)
{
    const aur_surya_config *c = &S->cfg;
    int64_t G = c->img_size / c->patch_size, w = c->window_size, s = w / 2 > 1 ? w / 2 : 1, kw = w + 2 * s, ng = G / w;
    int64_t N = G * G, nk = ng * ng * kw * kw;
    S->q_group.idx = (int64_t *)aur__malloc(sizeof(int64_t) * (size_t)N, "window tables");
    S->q_ungroup.idx = (int64_t *)aur__malloc(sizeof(int64_t) * (size_t)N, "window tables");
    S->k_window.idx = (int64_t *)aur__malloc(sizeof(int64_t) * (size_t)nk, "window tables");
    S->window_mask = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(ng * ng * kw * kw), "window tables");
    if (!S->q_group.idx || !S->q_ungroup.idx || !S->k_window.idx || !S->window_mask) return AUR_ENOMEM;
    int64_t q = 0, k = 0;
    for (int64_t gi = 0; gi < ng; gi++)
        for (int64_t gj = 0; gj < ng; gj++) {
            for (int64_t u = 0; u < w; u++)
                for (int64_t v = 0; v < w; v++) {
                    int64_t row = (gi * w + u) * G + gj * w + v;
                    S->q_ungroup.idx[row] = q;
                    S->q_group.idx[q++] = row;
                }
            for (int64_t u = 0; u < kw; u++)
                for (int64_t v = 0; v < kw; v++, k++) {
                    int64_t r = gi * w - s + u, cc = gj * w - s + v;
                    int inside = r >= 0 && r < G && cc >= 0 && cc < G;
                    S->k_window.idx[k] = inside ? r * G + cc : -1;
                    S->window_mask[k] = inside ? 0 : (aur_real)-INFINITY;
                }
        }
    S->q_group.n_out = S->q_group.n_in = S->q_ungroup.n_out = S->q_ungroup.n_in = N;
    S->q_group.injective = S->q_ungroup.injective = 1;
    S->k_window.n_out = nk, S->k_window.n_in = N, S->k_window.injective = 0;
    return c->rpe ? aur__surya_rpe_index(S) : 0;
}

/* cos/sin tables (double precision, stored as float) of the orthonormal DFTs:
   forward real->half spectrum along b, complex along a, and the inverse
   half spectrum->real along b (weights 1, 2, .., 2, 1: Hermitian symmetry). */
static int aur__surya_dft(aur__surya *S)
{
    int64_t a = S->cfg.img_size / S->cfg.patch_size, b = a, K = b / 2 + 1;
    aur_real **tabs[6] = {&S->dft_fc, &S->dft_fs, &S->dft_ac, &S->dft_as, &S->dft_ic, &S->dft_is};
    size_t sizes[6] = {(size_t)(K * b), (size_t)(K * b), (size_t)(a * a), (size_t)(a * a), (size_t)(b * K), (size_t)(b * K)};
    for (int i = 0; i < 6; i++)
        if (!(*tabs[i] = (aur_real *)aur__malloc(sizeof(aur_real) * sizes[i], "DFT tables"))) return AUR_ENOMEM;
    const double two_pi = 6.283185307179586476925;
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < b; n++) {
            double ph = two_pi * (double)((k * n) % b) / (double)b, sb = sqrt((double)b);
            double weight = (k == 0 || (b % 2 == 0 && k == b / 2)) ? 1.0 : 2.0;
            S->dft_fc[k * b + n] = (aur_real)(cos(ph) / sb), S->dft_fs[k * b + n] = (aur_real)(sin(ph) / sb);
            S->dft_ic[n * K + k] = (aur_real)(weight * cos(ph) / sb), S->dft_is[n * K + k] = (aur_real)(weight * sin(ph) / sb);
        }
    for (int64_t m = 0; m < a; m++)
        for (int64_t j = 0; j < a; j++) {
            double ph = two_pi * (double)((m * j) % a) / (double)a, sa = sqrt((double)a);
            S->dft_ac[m * a + j] = (aur_real)(cos(ph) / sa), S->dft_as[m * a + j] = (aur_real)(sin(ph) / sa);
        }
    return 0;
}

AURDEF aur_model *aur_surya_declare_model(const aur_surya_config *cfg)
{
    aur_model *m = aur__model_with_impl(sizeof(aur__surya), aur__surya_free, "a Surya model");
    if (!m) return NULL;
    aur__surya *S = (aur__surya *)m->impl;
    S->cfg = *cfg;
    S->m = m;
    int rc = aur__surya_declare(m, cfg);
    if (!rc && cfg->depth > cfg->n_spectral_blocks && cfg->window_size > 0) rc = aur__surya_windows(S);
    if (!rc && cfg->n_spectral_blocks > 0) rc = aur__surya_dft(S);
    if (rc) {
        aur_model_free(m);
        return NULL;
    }
    return m;
}

/* ---- initialisation (SpectFormer's _init_weights and the modules' defaults) ---- */

/* The fixed sin/cos position embedding of the token grid (a buffer). */
static void aur__surya_pos_embed(const aur_surya_config *c, aur_real *out)
{
    int64_t G = c->img_size / c->patch_size, D = c->embed_dim, F = D / 4;
    for (int64_t h = 0; h < G; h++)
        for (int64_t w = 0; w < G; w++)
            for (int64_t i = 0; i < F; i++) {
                double f = F > 1 ? 1.0 + (G / 2.0 - 1.0) * (double)i / (double)(F - 1) : 1.0;
                double X = G > 1 ? (double)w / (double)(G - 1) : 0, Y = G > 1 ? (double)h / (double)(G - 1) : 0;
                aur_real *o = out + (h * G + w) * D + 4 * i;
                o[0] = (aur_real)cos(6.283185307179586 * f * X), o[1] = (aur_real)sin(6.283185307179586 * f * X);
                o[2] = (aur_real)cos(6.283185307179586 * f * Y), o[3] = (aur_real)sin(6.283185307179586 * f * Y);
            }
}

/* fan_in of a Linear or Conv2d weight: every dimension but the first. */
static double aur__fan_in(const aur_tensor *w) { return (double)(w->numel / w->shape[0]); }

static double aur__surya_init_value(const aur_tensor *p, aur__rng *r)
{
    const char *n = p->name;
    if (aur__ends_with(n, ".lora_B.default.weight")) return 0;
    if (aur__ends_with(n, ".lora_A.default.weight")) return (2 * aur__rng_uniform(r) - 1) / sqrt(aur__fan_in(p)); /* PEFT: kaiming_uniform(a=sqrt 5) */
    if (strstr(n, "local_relative_position_bias_table")) return 0.02 * aur__rng_normal(r);
    if (!strcmp(n, "cls_token")) return 0;
    if (strstr(n, "complex_weight") || strstr(n, "latent_queries")) return 0.02 * aur__rng_normal(r);
    if (p->ndim == 4) return (2 * aur__rng_uniform(r) - 1) / sqrt(aur__fan_in(p)); /* convolutions: torch's default bound */
    if (p->ndim == 1) return aur__ends_with(n, ".weight") ? 1 : 0; /* every 1-D weight is a LayerNorm's; biases 0 */
    return 0.02 * aur__rng_normal(r); /* Linear weights: trunc_normal(std 0.02) */
}

/* The fine-tuning heads (HelioSpectformer1D's linear and unembed,
   HelioSpectformer2D's decoder in the downstream examples' models.py) are built
   after HelioSpectFormer.__init__ ran _init_weights, so they keep torch's
   module defaults: Linear and Conv2d weights and biases uniform in
   +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)), LayerNorm 1 and 0,
   the Perceiver decoder's latent queries zeros. */
static double aur__surya_head_value(const aur_model *m, const aur_tensor *p, aur__rng *r)
{
    if (strstr(p->name, "latent_queries")) return 0;
    if (p->ndim >= 2) return (2 * aur__rng_uniform(r) - 1) / sqrt(aur__fan_in(p));
    if (!aur__ends_with(p->name, ".bias")) return 1; /* a LayerNorm's weight */
    size_t module = strlen(p->name) - 5;
    for (int i = 0; i < aur_model_count(m); i++) { /* a bias takes its weight's fan_in; a LayerNorm's is 0 */
        const aur_tensor *w = aur_model_at(m, i);
        if (w->ndim >= 2 && !strncmp(w->name, p->name, module) && !strcmp(w->name + module, ".weight"))
            return (2 * aur__rng_uniform(r) - 1) / sqrt(aur__fan_in(w));
    }
    return 0;
}

static int aur__surya_is_head(const aur__surya *S, const char *name)
{
    return S->cfg.head != AUR_SURYA_FORECAST && (!strncmp(name, "linear.", 7) || !strncmp(name, "unembed.", 8));
}

typedef struct aur__surya_init {
    const aur__surya *S;
    aur__rng r;
} aur__surya_init;

/* One tensor's initial values: the fixed buffers computed, the rest drawn. */
static void aur__surya_fill(void *ctx, const aur_tensor *p, aur_real *v)
{
    aur__surya_init *in = (aur__surya_init *)ctx;
    const aur__surya *S = in->S;
    if (!strcmp(p->name, "embedding.pos_embed")) aur__surya_pos_embed(&S->cfg, v);
    else if (!strcmp(p->name, "learned_flow_model.grid") || !strcmp(p->name, "learned_flow_model.higher_modes"))
        for (int64_t h = 0, n = S->cfg.img_size, k = p->shape[3]; h < n; h++) /* (u[w], v[h] [, 1]), u = v = linspace(-1, 1, n) */
            for (int64_t w = 0; w < n; w++) {
                v[(h * n + w) * k] = (aur_real)(n > 1 ? -1 + 2.0 * (double)w / (double)(n - 1) : -1);
                v[(h * n + w) * k + 1] = (aur_real)(n > 1 ? -1 + 2.0 * (double)h / (double)(n - 1) : -1);
                if (k == 3) v[(h * n + w) * k + 2] = 1;
            }
    else if (aur__ends_with(p->name, ".relative_position_index"))
        for (int64_t k = 0; k < p->numel; k++) v[k] = (aur_real)S->rpe_index.idx[k];
    else if (aur__surya_is_head(S, p->name))
        for (int64_t k = 0; k < p->numel; k++) v[k] = (aur_real)aur__surya_head_value(S->m, p, &in->r);
    else
        for (int64_t k = 0; k < p->numel; k++) v[k] = (aur_real)aur__surya_init_value(p, &in->r);
}

AURDEF int aur_surya_init_weights(aur_model *m, uint64_t seed)
{
    aur__surya *S = aur__S(m);
    if (!S) return AUR_EINVAL;
    S->noise_rng.s = seed * 0xD1B54A32D192ED03ull + 11;
    aur__surya_init in = {S, {seed * 0x9E3779B97F4A7C15ull + 7}};
    return aur__init_params(m, aur__surya_fill, &in);
}

AURDEF aur_model *aur_surya_create(const aur_surya_config *cfg, aur_device device, uint64_t seed)
{
    aur_model *m = aur_surya_declare_model(cfg);
    if (m && (aur_model_alloc(m, device) || aur_surya_init_weights(m, seed))) {
        aur_model_free(m);
        return NULL;
    }
    return m;
}

/* ==== Surya: forward ==== */

typedef struct aur__sfwd {
    aur__surya *S;
    aur_tape *t;
    const aur_surya_config *c;
} aur__sfwd;

static void aur__sprobe(const aur__sfwd *F, const char *name, const aur_tensor *x)
{
    if (F->S->probe && x) F->S->probe(F->S->probe_ctx, name, 0, x);
}

static aur_tensor *aur__slin(const aur__sfwd *F, aur_tensor *x, const char *prefix, int bias)
{
    return aur_model_linear(F->t, F->S->m, prefix, x, bias);
}

static aur_tensor *aur__sln(const aur__sfwd *F, aur_tensor *x, const char *prefix)
{
    return aur_layernorm(F->t, x, aur__paramf(F->S->m, "%s.weight", prefix), aur__paramf(F->S->m, "%s.bias", prefix), 1e-5);
}

/* Mlp: fc2(GELU(fc1(x))) (dropout off in eval and at drop_rate 0). */
static aur_tensor *aur__smlp(const aur__sfwd *F, aur_tensor *x, const char *block)
{
    char p1[200], p2[200];
    snprintf(p1, sizeof p1, "%s.mlp.fc1", block);
    snprintf(p2, sizeof p2, "%s.mlp.fc2", block);
    aur_tensor *h = aur_dropout(F->t, aur_gelu(F->t, aur__slin(F, x, p1, 1)), F->c->drop_rate);
    return aur_dropout(F->t, aur__slin(F, h, p2, 1), F->c->drop_rate);
}

/* The Perceiver embedding's and decoder's convolutions are grouped (one
   group per channel): an adapter declared on one is refused, not ignored. */
static int aur__grouped_conv_adapter(const aur__sfwd *F, const char *module)
{
    if (!aur__find_adapter(F->S->m, module)) return 0;
    aur__err(AUR_EUNSUPPORTED, "LoRA on %s: a grouped Conv2d (one group per channel) is not supported; leave it out of target_modules", module);
    return 1;
}

/* The linear time embedding: T frames stacked as input channels (c*T + t)
   of a p x p, stride p convolution, as one matrix product over patches. */
static aur_tensor *aur__surya_embed(const aur__sfwd *F, aur_tensor *ts)
{
    const aur_surya_config *c = F->c;
    int64_t B = ts->shape[0], CT = (int64_t)c->in_chans * ts->shape[2], p = c->patch_size, G = c->img_size / p;
    static const int perm[6] = {0, 2, 4, 1, 3, 5};
    int64_t six[6] = {B, CT, G, p, G, p};
    aur_tensor *patches = aur_reshape(F->t, aur_permute(F->t, aur_reshape(F->t, ts, aur_shapev(6, six)), perm), aur_shape3(B, G * G, CT * p * p));
    aur_tensor *x = aur_model_linear(F->t, F->S->m, "embedding.patch_embed.proj", patches, 1); /* with PEFT's Conv2d adapter, if any */
    return aur_dropout(F->t, aur_add(F->t, x, aur__paramf(F->S->m, "embedding.pos_embed")), c->drop_rate);
}

static aur_tensor *aur__resampler(const aur__sfwd *F, const char *prefix, aur_tensor *lat, aur_tensor *ctx);

/* PerceiverChannelEmbedding: channel c's T frames through its own p x p
   convolution (groups = C) to D values per token, plus a learned position
   embedding; then n_queries latents per token attend over the C channel
   tokens and are joined by a linear layer. (The time deltas are unused, as
   in the reference.) */
static aur_tensor *aur__surya_perceiver_embed(const aur__sfwd *F, aur_tensor *ts)
{
    aur_tape *t = F->t;
    const aur_surya_config *c = F->c;
    int64_t B = ts->shape[0], C = c->in_chans, T = c->time_dim, p = c->patch_size, G = c->img_size / p, N = G * G, D = c->embed_dim;
    int64_t K = T * p * p, NQ = c->n_queries;
    static const int patch_perm[6] = {0, 2, 4, 1, 3, 5}, cfirst[4] = {1, 0, 2, 3}, tok[4] = {1, 2, 0, 3}, nd[3] = {0, 2, 1};
    int64_t six[6] = {B * C, T, G, p, G, p};
    aur_tensor *patches = aur_reshape(t, aur_permute(t, aur_reshape(t, ts, aur_shapev(6, six)), patch_perm), aur_shape4(B, C, N, K));
    patches = aur_reshape(t, aur_permute(t, patches, cfirst), aur_shape3(C, B * N, K));
    if (aur__grouped_conv_adapter(F, "embedding.proj")) return NULL;
    aur_tensor *w = aur_reshape(t, aur__paramf(F->S->m, "embedding.proj.weight"), aur_shape3(C, D, K));
    aur_tensor *z = aur_matmul(t, patches, w, 0, 1); /* (C, B*N, D) */
    z = aur_add(t, z, aur_reshape(t, aur__paramf(F->S->m, "embedding.proj.bias"), aur_shape3(C, 1, D)));
    aur_tensor *pos = aur_reshape(t, aur_permute(t, aur__paramf(F->S->m, "embedding.pos_embed"), nd), aur_shape3(1, N, D)); /* (1, N, D) */
    z = aur_add(t, aur_reshape(t, z, aur_shape4(C, B, N, D)), aur_reshape(t, pos, aur_shape4(1, 1, N, D)));
    aur_tensor *ctx = aur_reshape(t, aur_permute(t, z, tok), aur_shape3(B * N, C, D)); /* each token's C channel tokens */
    aur_tensor *lat = aur_expand(t, aur__paramf(F->S->m, "embedding.latent_queries"), aur_shape3(B * N, NQ, D));
    lat = aur_reshape(t, aur__resampler(F, "embedding", lat, ctx), aur_shape3(B, N, NQ * D));
    return aur_dropout(t, aur__slin(F, lat, "embedding.latent_aggregation", 1), c->drop_rate);
}

static aur_tensor *aur__sconst(const aur__sfwd *F, const float *v, aur_shape s) { return aur__const(F->t, F->S->m->device, s, v); }

/* A table the model keeps (DFT matrices, window masks): viewed, not copied, each step. */
static aur_tensor *aur__stable(const aur__sfwd *F, const aur_real *v, aur_shape s) { return aur__const_view(F->t, F->S->m, s, v); }

/* HelioFlowModel: the last frame (or the mean of the last two) warped along
   grid + MLP(grid): a learned, time-independent flow field (bilinear, border). */
static aur_tensor *aur__learned_flow(const aur__sfwd *F, aur_tensor *ts, int *pretraining)
{
    aur_tape *t = F->t;
    int64_t B = ts->shape[0], C = ts->shape[1], T = ts->shape[2], H = ts->shape[3], W = ts->shape[4];
    static const int tlast[5] = {0, 2, 1, 3, 4};
    aur_tensor *frames = aur_permute(t, ts, tlast); /* (B, T, C, H, W) */
    aur_tensor *last = aur_reshape(t, aur_slice(t, frames, 1, T - 1, 1), aur_shape4(B, C, H, W));
    if (T > 1) last = aur_scale(t, aur_add(t, last, aur_reshape(t, aur_slice(t, frames, 1, T - 2, 1), aur_shape4(B, C, H, W))), 0.5);
    aur_tensor *hm = aur__paramf(F->S->m, "learned_flow_model.higher_modes");
    if (F->c->flow_latitude) { /* (u, v, 1) * (1, 1, latitude / 7) per sample */
        if (!F->S->latitude || F->S->n_latitude != B) {
            aur__err(AUR_EINVAL, "Surya learned flow with latitude: give %lld forecast latitudes (aur_surya_set_latitude)", (long long)B);
            return NULL;
        }
        aur_tensor *scale = aur_tensor_new(t, AUR_CPU, aur_shape4(B, 1, 1, 3));
        for (int64_t b = 0; scale && b < B; b++)
            aur__wr(scale)[3 * b] = aur__wr(scale)[3 * b + 1] = 1, aur__wr(scale)[3 * b + 2] = (aur_real)(F->S->latitude[b] / 7.0f);
        hm = aur_mul(t, hm, aur__on(t, scale, F->S->m->device));
    }
    aur_tensor *shift = aur__slin(F, aur_gelu(t, aur__slin(F, hm, "learned_flow_model.flow_generator.0", 1)), "learned_flow_model.flow_generator.2", 1);
    aur_tensor *field = aur_add(t, aur__paramf(F->S->m, "learned_flow_model.grid"), shift);
    if (field && field->shape[0] != B) field = aur_expand(t, field, aur_shape4(B, H, W, 2));
    *pretraining = 0;
    for (int i = 0; i < F->S->m->n; i++)
        if (!strncmp(F->S->m->params[i]->name, "learned_flow_model.flow_generator", 33)) *pretraining |= F->S->m->params[i]->requires_grad;
    return aur_grid_sample(t, last, field);
}

/* Along the last dim: x @ M^T for a table M (rows x cols). */
static aur_tensor *aur__dft(const aur__sfwd *F, aur_tensor *x, const aur_real *tab, int64_t rows, int64_t cols)
{
    return aur_linear(F->t, x, aur__stable(F, tab, aur_shape2(rows, cols)), NULL);
}

/* SpectralGatingNetwork: rfft2 (ortho) over the token grid, times the learned
   complex weight, irfft2 back, as real matrix products along each axis. */
static aur_tensor *aur__spectral_filter(const aur__sfwd *F, aur_tensor *x, const char *block)
{
    aur_tape *t = F->t;
    aur__surya *S = F->S;
    int64_t B = x->shape[0], a = (int64_t)sqrt((double)x->shape[1]), b = a, D = x->shape[2], K = b / 2 + 1;
    static const int to_bd[4] = {0, 1, 3, 2}, to_ka[4] = {0, 2, 3, 1}, back_a[4] = {0, 3, 1, 2}, w_perm[3] = {2, 1, 0};
    aur_tensor *X = aur_permute(t, aur_reshape(t, x, aur_shape4(B, a, b, D)), to_bd); /* (B, a, D, b) */
    /* along b: the half spectrum, X_k = sum_n x_n e^{-2 pi i k n / b} */
    aur_tensor *re = aur_permute(t, aur__dft(F, X, S->dft_fc, K, b), to_ka);                   /* (B, D, K, a) */
    aur_tensor *im = aur_permute(t, aur_scale(t, aur__dft(F, X, S->dft_fs, K, b), -1.0), to_ka);
    /* along a: the full complex DFT */
    aur_tensor *yr = aur_add(t, aur__dft(F, re, S->dft_ac, a, a), aur__dft(F, im, S->dft_as, a, a));
    aur_tensor *yi = aur_sub(t, aur__dft(F, im, S->dft_ac, a, a), aur__dft(F, re, S->dft_as, a, a));
    /* times the complex weight (a, K, D, 2), laid out as (D, K, a) */
    aur_tensor *cw = aur__paramf(F->S->m, "%s.filter.complex_weight", block);
    aur_tensor *wr = aur_permute(t, aur_reshape(t, aur_slice(t, cw, 3, 0, 1), aur_shape3(a, K, D)), w_perm);
    aur_tensor *wi = aur_permute(t, aur_reshape(t, aur_slice(t, cw, 3, 1, 1), aur_shape3(a, K, D)), w_perm);
    aur_tensor *zr = aur_sub(t, aur_mul(t, yr, wr), aur_mul(t, yi, wi));
    aur_tensor *zi = aur_add(t, aur_mul(t, yr, wi), aur_mul(t, yi, wr));
    /* inverse along a, then the half spectrum back to b real values */
    aur_tensor *ur = aur_permute(t, aur_sub(t, aur__dft(F, zr, S->dft_ac, a, a), aur__dft(F, zi, S->dft_as, a, a)), back_a);
    aur_tensor *ui = aur_permute(t, aur_add(t, aur__dft(F, zi, S->dft_ac, a, a), aur__dft(F, zr, S->dft_as, a, a)), back_a);
    aur_tensor *y = aur_sub(t, aur__dft(F, ur, S->dft_ic, b, K), aur__dft(F, ui, S->dft_is, b, K)); /* (B, a, D, b) */
    return aur_reshape(t, aur_permute(t, y, to_bd), aur_shape3(B, a * b, D));
}

/* BlockSpectralGating: x + MLP(LN2(filter(LN1(x)))). */
static aur_tensor *aur__spectral_block(const aur__sfwd *F, aur_tensor *x, int i)
{
    char b[160], n1[200], n2[200];
    snprintf(b, sizeof b, "backbone.blocks_spectral_gating.%d", i);
    snprintf(n1, sizeof n1, "%s.norm1", b);
    snprintf(n2, sizeof n2, "%s.norm2", b);
    aur_tensor *y = aur__sln(F, aur__spectral_filter(F, aur__sln(F, x, n1), b), n2);
    return aur_add(F->t, x, aur__smlp(F, y, b));
}

/* (B, n, D) -> (B*nh, n, hd) and back. */
static aur_tensor *aur__sheads(aur_tape *t, aur_tensor *x, int nh)
{
    aur_tensor *h = aur__split_heads(t, x, nh);
    return h ? aur_reshape(t, h, aur_shape3(h->shape[0] * nh, h->shape[2], h->shape[3])) : NULL;
}

static aur_tensor *aur__sunheads(aur_tape *t, aur_tensor *x, int64_t B, int nh)
{
    return x ? aur__merge_heads(t, aur_reshape(t, x, aur_shape4(B, nh, x->shape[1], x->shape[2]))) : NULL;
}

/* The dynamic projection's keys and values: r learned mixtures of all tokens,
   layer-normalised over the full width (k_lms, v_lms as (B*nh, r, hd)). */
static void aur__ls_dynamic(const aur__sfwd *F, const char *prefix, aur_tensor *xf, aur_tensor *k, aur_tensor *v, int64_t B,
                            aur_tensor **k_lms, aur_tensor **v_lms)
{
    aur_tape *t = F->t;
    int nh = F->c->num_heads, r = F->c->dp_rank;
    int64_t Nf = xf->shape[1], D = xf->shape[2], hd = D / nh;
    static const int cs_perm[4] = {0, 2, 3, 1}, rh[4] = {0, 2, 1, 3};
    char p[320], ln[320];
    snprintf(p, sizeof p, "%s.to_dynamic_projection", prefix);
    snprintf(ln, sizeof ln, "%s.dual_ln_dp", prefix);
    aur_tensor *cs = aur_reshape(t, aur__slin(F, xf, p, 1), aur_shape4(B, Nf, nh, r));
    cs = aur_reshape(t, aur_softmax(t, aur_permute(t, cs, cs_perm)), aur_shape3(B * nh, r, Nf)); /* over the tokens */
    aur_tensor *both[2] = {aur_matmul(t, cs, k, 0, 0), aur_matmul(t, cs, v, 0, 0)};           /* (B*nh, r, hd) */
    for (int i = 0; i < 2; i++) {
        aur_tensor *full = aur_reshape(t, aur_permute(t, aur_reshape(t, both[i], aur_shape4(B, nh, r, hd)), rh), aur_shape3(B, r, D));
        both[i] = aur__sheads(t, aur__sln(F, full, ln), nh);
    }
    *k_lms = both[0], *v_lms = both[1];
}

/* AttentionLS (transformer_ls.py): each feature token attends jointly (one
   softmax) to r dynamic-projection summaries, its window's kw x kw keys, and
   the global tokens; global tokens attend to everything except the summaries. */
static aur_tensor *aur__attention_ls(const aur__sfwd *F, aur_tensor *x, const char *prefix)
{
    aur_tape *t = F->t;
    aur__surya *S = F->S;
    const aur_surya_config *c = F->c;
    int nh = c->num_heads, ng_lo = c->nglo, r = c->dp_rank;
    int64_t B = x->shape[0], Ntot = x->shape[1], D = x->shape[2], hd = D / nh, Nf = Ntot - ng_lo;
    int64_t w = c->window_size, s = w / 2 > 1 ? w / 2 : 1, kw = w + 2 * s, G = c->img_size / c->patch_size, ng = G / w;
    char p[320];
    snprintf(p, sizeof p, "%s.qkv", prefix);
    aur_tensor *qkv = aur__slin(F, x, p, 0), *parts[3];
    int64_t sizes[3] = {D, D, D};
    if (aur_split(t, qkv, 2, 3, sizes, parts)) return NULL;
    snprintf(p, sizeof p, "%s.dual_ln_full", prefix);
    aur_tensor *q = aur_scale(t, parts[0], 1.0 / sqrt((double)hd)), *k = aur__sln(F, parts[1], p), *v = aur__sln(F, parts[2], p);
    aur_tensor *qf = aur__sheads(t, aur_slice(t, q, 1, ng_lo, Nf), nh), *kf = aur__sheads(t, aur_slice(t, k, 1, ng_lo, Nf), nh);
    aur_tensor *vf = aur__sheads(t, aur_slice(t, v, 1, ng_lo, Nf), nh); /* (B*nh, Nf, hd) */
    /* scores of each query, window by window: [dynamic (r) | window slots (kw^2) | global (nglo)] */
    int64_t BH = B * nh, nq = w * w, nk = kw * kw;
    aur_tensor *qg = aur__model_gather(t, S->m, qf, BH, hd, &S->q_group, aur_shape4(BH, ng * ng, nq, hd));
    aur_tensor *kwin = aur__model_gather(t, S->m, kf, BH, hd, &S->k_window, aur_shape4(BH, ng * ng, nk, hd));
    aur_tensor *vwin = aur__model_gather(t, S->m, vf, BH, hd, &S->k_window, aur_shape4(BH, ng * ng, nk, hd));
    aur_tensor *mask = aur__stable(F, S->window_mask, aur_shape3(ng * ng, 1, nk));
    aur_tensor *win = aur_add(t, aur_matmul(t, qg, kwin, 0, 1), mask);
    if (c->rpe) { /* table[index] as (nh, w^2, kw^2), added to every window of every sample */
        snprintf(p, sizeof p, "%s.local_relative_position_bias_table", prefix);
        static const int hfirst[3] = {2, 0, 1};
        aur_tensor *tab = aur__paramf(F->S->m, "%s", p);
        aur_tensor *bias = aur__model_gather(t, S->m, tab, 1, nh, &S->rpe_index, aur_shape3(nq, nk, nh));
        bias = aur_reshape(t, aur_permute(t, bias, hfirst), aur_shape5(1, nh, 1, nq, nk));
        win = aur_reshape(t, aur_add(t, aur_reshape(t, win, aur_shape5(B, nh, ng * ng, nq, nk)), bias), aur_shape4(BH, ng * ng, nq, nk));
    }
    aur_tensor *scores[3] = {NULL, win, NULL}, *k_lms = NULL, *v_lms = NULL, *kc = NULL, *vc = NULL;
    int n_parts = 0, first = 1;
    if (r > 0) {
        aur__ls_dynamic(F, prefix, aur_slice(t, x, 1, ng_lo, Nf), kf, vf, B, &k_lms, &v_lms);
        scores[0] = aur_reshape(t, aur_matmul(t, aur_reshape(t, qg, aur_shape3(BH, ng * ng * nq, hd)), k_lms, 0, 1),
                                aur_shape4(BH, ng * ng, nq, r));
        first = 0;
    }
    if (ng_lo > 0) {
        kc = aur__sheads(t, aur_slice(t, k, 1, 0, ng_lo), nh), vc = aur__sheads(t, aur_slice(t, v, 1, 0, ng_lo), nh);
        scores[2] = aur_reshape(t, aur_matmul(t, aur_reshape(t, qg, aur_shape3(BH, ng * ng * nq, hd)), kc, 0, 1),
                                aur_shape4(BH, ng * ng, nq, ng_lo));
    }
    aur_tensor *cat[3];
    for (int i = first; i < 3; i++)
        if (scores[i]) cat[n_parts++] = scores[i];
    aur_tensor *attn = aur_softmax(t, aur_concat(t, cat, n_parts, 3)), *pieces[3];
    int64_t widths[3] = {r, nk, ng_lo}, cut[3];
    int n_cut = 0;
    for (int i = first; i < 3; i++)
        if (scores[i]) cut[n_cut++] = widths[i];
    if (aur_split(t, attn, 3, n_cut, cut, pieces)) return NULL;
    aur_tensor *a_dp = r > 0 ? pieces[0] : NULL, *a_win = pieces[r > 0 ? 1 : 0], *a_glo = ng_lo > 0 ? pieces[n_cut - 1] : NULL;
    /* the reference's order: window, then + dynamic, then + global */
    aur_tensor *out = aur_reshape(t, aur_matmul(t, a_win, vwin, 0, 0), aur_shape3(BH, ng * ng * nq, hd));
    if (a_dp) out = aur_add(t, out, aur_matmul(t, aur_reshape(t, a_dp, aur_shape3(BH, ng * ng * nq, r)), v_lms, 0, 0));
    if (a_glo) out = aur_add(t, out, aur_matmul(t, aur_reshape(t, a_glo, aur_shape3(BH, ng * ng * nq, ng_lo)), vc, 0, 0));
    out = aur__model_gather(t, S->m, out, BH, hd, &S->q_ungroup, aur_shape3(BH, Nf, hd)); /* back to token order */
    if (ng_lo > 0) {                                                           /* the global tokens see every token */
        aur_tensor *qc = aur__sheads(t, aur_slice(t, q, 1, 0, ng_lo), nh), *kk[2] = {kc, kf}, *vv[2] = {vc, vf};
        aur_tensor *cd = aur_softmax(t, aur_matmul(t, qc, aur_concat(t, kk, 2, 1), 0, 1));
        aur_tensor *cls_next = aur_matmul(t, cd, aur_concat(t, vv, 2, 1), 0, 0);
        aur_tensor *both[2] = {cls_next, out};
        out = aur_concat(t, both, 2, 1);
    }
    snprintf(p, sizeof p, "%s.proj", prefix);
    return aur__slin(F, aur__sunheads(t, out, B, nh), p, 1);
}

static const float aur__one = 1.0f;

/* BlockAttention: x + gate * Attn(LN1(x) * scale + shift), then the same for
   the MLP, with the six modulations from the noise (ensembles) or, without
   ensembles, all 1.0: x + Attn(LN1(x) + 1) (the +1 is the reference's). */
static aur_tensor *aur__attention_block(const aur__sfwd *F, aur_tensor *x, aur_tensor *noise, int j)
{
    aur_tape *t = F->t;
    char b[160], p[200];
    snprintf(b, sizeof b, "backbone.blocks_attention.%d", j);
    aur_tensor *one = aur__sconst(F, &aur__one, aur_shape1(1)), *mod[6] = {one, one, one, one, one, one};
    if (noise) { /* shift, scale, gate of the attention, then of the MLP */
        char p0[200], p2[200];
        snprintf(p0, sizeof p0, "%s.adaLN_modulation.0", b);
        snprintf(p2, sizeof p2, "%s.adaLN_modulation.2", b);
        int64_t D = x->shape[2], six[6] = {D, D, D, D, D, D};
        if (aur_split(t, aur__slin(F, aur_gelu(t, aur__slin(F, noise, p0, 1)), p2, 1), 2, 6, six, mod)) return NULL;
    }
    snprintf(p, sizeof p, "%s.norm1", b);
    aur_tensor *h = aur_add(t, aur_mul(t, aur__sln(F, x, p), mod[1]), mod[0]);
    snprintf(p, sizeof p, "%s.attn", b);
    x = aur_add(t, x, aur_mul(t, mod[2], aur__attention_ls(F, h, p)));
    snprintf(p, sizeof p, "%s.norm2", b);
    h = aur_add(t, aur_mul(t, aur__sln(F, x, p), mod[4]), mod[3]);
    return aur_add(t, x, aur_mul(t, mod[5], aur__smlp(F, h, b)));
}

/* One backbone block as a checkpointable segment. */
typedef struct aur__sblock_ctx {
    aur__sfwd F; /* a copy: backward recomputes the block after the forward has returned */
    int index;
} aur__sblock_ctx;

static aur_tensor *aur__sblock_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    const aur__sblock_ctx *b = (const aur__sblock_ctx *)ctx;
    aur__sfwd F = b->F;
    F.t = t;
    int ns = F.c->n_spectral_blocks;
    return b->index < ns ? aur__spectral_block(&F, in[0], b->index) : aur__attention_block(&F, in[0], n_in > 1 ? in[1] : NULL, b->index - ns);
}

/* Embedding, then the blocks; a class token joins before the first attention block. */
/* The ensembles' noise (B*E, N, D): given, or drawn from the model's stream. */
static aur_tensor *aur__surya_noise(const aur__sfwd *F, aur_shape s)
{
    aur__surya *S = F->S;
    aur_tensor *z = aur_tensor_new(F->t, AUR_CPU, s);
    if (!z) return NULL;
    if (S->noise && S->noise_n != z->numel) {
        aur__err(AUR_ESHAPE, "Surya ensemble noise: %lld values given, %lld needed", (long long)S->noise_n, (long long)z->numel);
        return NULL;
    }
    for (int64_t i = 0; i < z->numel; i++) aur_tensor_f32(z)[i] = S->noise ? (aur_real)S->noise[i] : (aur_real)aur__rng_normal(&S->noise_rng);
    return aur__on(F->t, z, S->m->device);
}

static aur_tensor *aur__surya_backbone(const aur__sfwd *F, aur_tensor *x, int class_token)
{
    char name[32];
    aur_tensor *in[2] = {x, NULL};
    int n_in = 1;
    if (F->c->ensemble > 0 && x) { /* E copies of every sample (b0e0, b0e1, ...), one noise draw for all blocks */
        int64_t B = x->shape[0], N = x->shape[1], D = x->shape[2], E = F->c->ensemble;
        x = aur_reshape(F->t, aur_expand(F->t, aur_reshape(F->t, x, aur_shape4(B, 1, N, D)), aur_shape4(B, E, N, D)), aur_shape3(B * E, N, D));
        in[1] = aur__surya_noise(F, aur_shape3(B * E, N, D));
        n_in = 2;
        if (!in[1]) return NULL;
    }
    aur_scope s = aur_scope_begin(F->t); /* ended after each block: its temporaries and its input go (backward holds what it reads) */
    for (int i = 0; i < F->c->depth && x; i++) {
        if (class_token && i == F->c->n_spectral_blocks) {
            aur_tensor *cls = aur_expand(F->t, aur__paramf(F->S->m, "cls_token"), aur_shape3(x->shape[0], 1, x->shape[2])), *both[2] = {cls, x};
            x = aur_concat(F->t, both, 2, 1);
        }
        aur__sblock_ctx *ctx = (aur__sblock_ctx *)aur_tape_alloc(F->t, sizeof *ctx); /* lives until backward */
        if (!ctx) return NULL;
        ctx->F = *F, ctx->index = i;
        in[0] = x;
        x = F->c->checkpoint_blocks ? aur_checkpoint(F->t, aur__sblock_segment, ctx, in, n_in) : aur__sblock_segment(F->t, ctx, in, n_in);
        aur_scope_end(F->t, s, &x, 1);
        snprintf(name, sizeof name, "block%d_out", i);
        aur__sprobe(F, name, x);
    }
    return x;
}

/* LinearDecoder: a per-token linear to p^2 C values, then PixelShuffle(p). */
static aur_tensor *aur__pixel_decoder(const aur__sfwd *F, aur_tensor *z, int64_t Co)
{
    aur_tape *t = F->t;
    int64_t B = z->shape[0], G = (int64_t)sqrt((double)z->shape[1]), p = F->c->patch_size;
    static const int perm[6] = {0, 3, 1, 4, 2, 5};
    int64_t six[6] = {B, G, G, Co, p, p};
    return aur_reshape(t, aur_permute(t, aur_reshape(t, z, aur_shapev(6, six)), perm), aur_shape4(B, Co, G * p, G * p));
}

static aur_tensor *aur__linear_decoder(const aur__sfwd *F, aur_tensor *x, int64_t Co)
{
    return aur__pixel_decoder(F, aur_model_linear(F->t, F->S->m, "unembed.unembed.0", x, 1), Co); /* a 1x1 Conv2d on each token */
}

/* PerceiverResampler, one layer, residual_latent off: latents (N, Lq, D)
   attend to context (N, Lc, D) with 16 heads, then a post-norm MLP. */
static aur_tensor *aur__resampler(const aur__sfwd *F, const char *prefix, aur_tensor *lat, aur_tensor *ctx)
{
    aur_tape *t = F->t;
    int64_t D = lat->shape[2], hd = D / 16;
    char pre[160], n[200];
    snprintf(pre, sizeof pre, "%s.perceiver.layers.0", prefix);
    snprintf(n, sizeof n, "%s.0.to_q", pre);
    aur_tensor *q = aur__split_heads(t, aur__slin(F, lat, n, 0), 16);
    snprintf(n, sizeof n, "%s.0.to_kv", pre);
    aur_tensor *kv = aur__slin(F, ctx, n, 0), *k = aur__split_heads(t, aur_slice(t, kv, 2, 0, 16 * hd), 16);
    aur_tensor *v = aur__split_heads(t, aur_slice(t, kv, 2, 16 * hd, 16 * hd), 16);
    snprintf(n, sizeof n, "%s.0.to_out", pre);
    aur_tensor *a = aur__slin(F, aur__merge_heads(t, aur_sdpa(t, q, k, v, NULL, 0)), n, 0);
    snprintf(n, sizeof n, "%s.2", pre);
    a = aur__sln(F, a, n); /* residual_latent is off: the latents are replaced */
    char f1[200], f2[200];
    snprintf(f1, sizeof f1, "%s.1.net.0", pre);
    snprintf(f2, sizeof f2, "%s.1.net.2", pre);
    snprintf(n, sizeof n, "%s.3", pre);
    aur_tensor *ff = aur__slin(F, aur_gelu(t, aur__slin(F, a, f1, 1)), f2, 1);
    return aur_add(t, aur__sln(F, ff, n), a);
}

/* PerceiverDecoder: every token is the single context of Co latent queries
   (so the attention weights are exactly 1), then a grouped 1x1 conv and PixelShuffle. */
static aur_tensor *aur__perceiver_decoder(const aur__sfwd *F, aur_tensor *x, int64_t Co)
{
    aur_tape *t = F->t;
    int64_t B = x->shape[0], L = x->shape[1], D = x->shape[2], p = F->c->patch_size;
    aur_tensor *ctx = aur_reshape(t, x, aur_shape3(B * L, 1, D));
    aur_tensor *lat = aur__resampler(F, "unembed", aur_expand(t, aur__paramf(F->S->m, "unembed.latent_queries"), aur_shape3(B * L, Co, D)), ctx);
    /* grouped 1x1 conv: latent c's D values -> p^2 outputs of channel c */
    if (aur__grouped_conv_adapter(F, "unembed.proj")) return NULL;
    aur_tensor *w = aur_reshape(t, aur__paramf(F->S->m, "unembed.proj.weight"), aur_shape3(Co, p * p, D));
    static const int cfirst[3] = {1, 0, 2};
    aur_tensor *z = aur_matmul(t, aur_permute(t, lat, cfirst), w, 0, 1); /* (Co, B*L, p^2) */
    z = aur_reshape(t, aur_permute(t, z, cfirst), aur_shape3(B, L, Co * p * p));
    z = aur_add(t, z, aur__paramf(F->S->m, "unembed.proj.bias"));
    return aur__pixel_decoder(F, z, Co);
}

/* nn.MultiheadAttention self-attention on (B, L, D) (batch-first here). */
static aur_tensor *aur__mha(const aur__sfwd *F, aur_tensor *x, const char *prefix, int heads)
{
    aur_tape *t = F->t;
    int64_t D = x->shape[2];
    aur_tensor *qkv = aur_linear(t, x, aur__paramf(F->S->m, "%s.in_proj_weight", prefix), aur__paramf(F->S->m, "%s.in_proj_bias", prefix)), *p3[3];
    int64_t sizes[3] = {D, D, D};
    if (aur_split(t, qkv, 2, 3, sizes, p3)) return NULL;
    aur_tensor *o = aur__merge_heads(t, aur_sdpa(t, aur__split_heads(t, p3[0], heads), aur__split_heads(t, p3[1], heads),
                                                 aur__split_heads(t, p3[2], heads), NULL, 0));
    /* out_proj's weight is read directly, as torch does: a PEFT adapter on it has no effect there either */
    return aur_linear(t, o, aur__paramf(F->S->m, "%s.out_proj.weight", prefix), aur__paramf(F->S->m, "%s.out_proj.bias", prefix));
}

/* TransformerEncoderLayer (post-norm, ReLU, feed-forward width D). */
static aur_tensor *aur__encoder_layer(const aur__sfwd *F, aur_tensor *s, int l)
{
    char p[200], q[200];
    snprintf(p, sizeof p, "downstream_transformer.layers.%d.self_attn", l);
    snprintf(q, sizeof q, "downstream_transformer.layers.%d.norm1", l);
    s = aur__sln(F, aur_add(F->t, s, aur_dropout(F->t, aur__mha(F, s, p, F->c->penult_heads), F->c->head_dropout)), q);
    snprintf(p, sizeof p, "downstream_transformer.layers.%d.linear1", l);
    snprintf(q, sizeof q, "downstream_transformer.layers.%d.linear2", l);
    aur_tensor *h = aur_dropout(F->t, aur_clamp(F->t, aur__slin(F, s, p, 1), 0, INFINITY), F->c->head_dropout);
    h = aur_dropout(F->t, aur__slin(F, h, q, 1), F->c->head_dropout);
    snprintf(q, sizeof q, "downstream_transformer.layers.%d.norm2", l);
    return aur__sln(F, aur_add(F->t, s, h), q);
}

/* HelioSpectformer1D after the backbone: (penultimate linear), pooling, unembed. */
static aur_tensor *aur__head1d(const aur__sfwd *F, aur_tensor *tokens)
{
    aur_tape *t = F->t;
    const aur_surya_config *c = F->c;
    int64_t B = tokens->shape[0], D = tokens->shape[2];
    aur_tensor *x = aur_dropout(t, tokens, c->head_dropout), *agg = NULL;
    if (c->penultimate_linear) x = aur__slin(F, x, "linear", 1);
    switch (c->pooling) {
    case AUR_POOL_CLASS_TOKEN: agg = aur_reshape(t, x, aur_shape2(B, D)); break;
    case AUR_POOL_AVERAGE: agg = aur_mean(t, x, 1, 0); break;
    case AUR_POOL_MAX: agg = aur_max(t, x, 1, 0); break;
    case AUR_POOL_ATTENTION: agg = aur_sum(t, aur__mha(F, x, "attention", c->penult_heads), 1, 0); break; /* a sum, as the reference */
    case AUR_POOL_TRANSFORMER: {
        aur_tensor *cls = aur_expand(t, aur__paramf(F->S->m, "cls_token"), aur_shape3(B, 1, D)), *both[2] = {cls, x};
        aur_tensor *s = aur_concat(t, both, 2, 1);
        for (int l = 0; l < c->penult_layers; l++) s = aur__encoder_layer(F, s, l);
        agg = aur_reshape(t, aur_slice(t, s, 1, 0, 1), aur_shape2(B, D));
        break;
    }
    }
    aur__sprobe(F, "unembed_in", agg);
    aur_tensor *out = aur__slin(F, agg, "unembed", 1); /* the reference drops out agg and then discards the result */
    if (c->sigmoid_output) out = aur_sigmoid(t, out);
    if (c->squeeze_output && c->num_outputs == 1) out = aur_reshape(t, out, aur_shape1(B));
    return out;
}

static aur_tensor *aur__surya_run(aur_model *m, aur_tape *t, aur_tensor *ts);

AURDEF aur_tensor *aur_surya_forward(aur_model *m, aur_tape *t, aur_tensor *ts)
{
    aur_scope s = aur_scope_begin(t); /* what the forward made goes at its end, but the output and what backward reads */
    aur_tensor *y = aur__surya_run(m, t, ts);
    aur_scope_end(t, s, &y, 1);
    return y;
}

static aur_tensor *aur__surya_run(aur_model *m, aur_tape *t, aur_tensor *ts)
{
    aur__surya *S = aur__S(m);
    if (!S || !ts) return NULL;
    const aur_surya_config *c = &S->cfg;
    if (ts->ndim != 5 || ts->shape[1] != c->in_chans || ts->shape[2] != c->time_dim || ts->shape[3] != c->img_size ||
        ts->shape[4] != c->img_size) {
        char s1[64];
        aur__err(AUR_ESHAPE, "Surya input ts %s: expected (B, %d, %d, %d, %d)", aur_shape_str(ts->shape, ts->ndim, s1, sizeof s1),
                 c->in_chans, c->time_dim, c->img_size, c->img_size);
        return NULL;
    }
    aur__sfwd F = {S, t, c};
    ts = aur__on(t, ts, m->device); /* the images come to the model's device */
    aur_tensor *flow = NULL;
    if (c->learned_flow) {
        int pretraining = 0;
        flow = aur__learned_flow(&F, ts, &pretraining);
        if (!flow || pretraining) return flow; /* flow parameters trainable: the flow alone is trained (the reference's phase 1) */
        aur_tensor *frames[2] = {ts, aur_reshape(t, flow, aur_shape5(ts->shape[0], c->in_chans, 1, c->img_size, c->img_size))};
        ts = aur_concat(t, frames, 2, 2);
    }
    aur_tensor *x = c->perceiver_time ? aur__surya_perceiver_embed(&F, ts) : aur__surya_embed(&F, ts);
    aur__sprobe(&F, "embedding_out", x);
    int class_token = c->head == AUR_SURYA_1D && c->pooling == AUR_POOL_CLASS_TOKEN;
    x = aur__surya_backbone(&F, x, class_token);
    if (!x) return NULL;
    if (class_token) x = aur_slice(t, x, 1, 0, 1);
    if (c->head != AUR_SURYA_1D) aur__sprobe(&F, "unembed_in", x);
    switch (c->head) {
    case AUR_SURYA_FORECAST: {
        aur_tensor *y = c->perceiver_time ? aur__perceiver_decoder(&F, x, c->in_chans) : aur__linear_decoder(&F, x, c->in_chans);
        if (y && flow && c->ensemble > 0) { /* the flow forecast, once per member */
            int64_t B = flow->shape[0], rest = flow->numel / B;
            flow = aur_reshape(t, aur_expand(t, aur_reshape(t, flow, aur_shape3(B, 1, rest)), aur_shape3(B, c->ensemble, rest)), aur_tensor_shape(y));
        }
        if (y && flow) y = aur_add(t, y, flow); /* the network forecasts the residual of the flow */
        if (y && c->ensemble > 0) /* (B*E, C, H, W) -> (B, E, C, H, W) */
            y = aur_reshape(t, y, aur_shape5(ts->shape[0], c->ensemble, c->in_chans, c->img_size, c->img_size));
        return y;
    }
    case AUR_SURYA_TOKENS: return x;
    case AUR_SURYA_1D: return aur__head1d(&F, x);
    case AUR_SURYA_2D: return c->perceiver_decoder ? aur__perceiver_decoder(&F, x, c->out_chans) : aur__linear_decoder(&F, x, c->out_chans);
    }
    return NULL;
}

/* ==== Surya: scalers ==== */

/* 1 if text is one whole finite number (strtod's forms), into *v. */
static int aur__text_number(const char *text, double *v)
{
    char *end = NULL;
    *v = strtod(text, &end);
    return end != text && !*end && isfinite(*v);
}

/* helio.py transform() of one value in float32: signum-log of x * sl, then (. - mean) / den. */
static float aur__surya_scale_f32(float x, float sl, float mean, float den)
{
    float y = x * sl;
    y = y >= 0 ? log1pf(y) : -log1pf(-y);
    return (y - mean) / den;
}

AURDEF int aur_surya_normalise(aur_tensor *x, const aur_surya_scaler *s, int C, int inverse)
{
    if (!x || x->ndim < 2 || x->shape[1] != C || x->device != AUR_CPU)
        return aur__err(AUR_EINVAL, "aur_surya_normalise: x must be a CPU tensor (B, %d, ...)", C);
    int64_t inner = x->numel / (x->shape[0] * C);
    aur_real *v = aur_tensor_f32(x);
    for (int64_t b = 0; b < x->shape[0]; b++)
        for (int c = 0; c < C; c++) {
            float scale = (float)s[c].sl_scale_factor, mean = (float)s[c].mean, den = (float)s[c].std + (float)s[c].epsilon;
            aur_real *p = v + (b * C + c) * inner;
            for (int64_t i = 0; i < inner; i++) {
                if (!inverse) {
                    p[i] = (aur_real)aur__surya_scale_f32((float)p[i], scale, mean, den);
                } else {
                    float y = (float)p[i] * den + mean;
                    p[i] = (aur_real)((y >= 0 ? expm1f(y) : -expm1f(-y)) / scale);
                }
            }
        }
    return 0;
}

static const char *const aur__sdo_channels[] = {"aia94", "aia131", "aia171", "aia193", "aia211", "aia304", "aia335",
                                                 "aia1600", "hmi_m", "hmi_bx", "hmi_by", "hmi_bz", "hmi_v", NULL};

AURDEF const char *const *aur_surya_channel_names(void) { return aur__sdo_channels; }

AURDEF int aur_surya_check_batch(const aur_tensor *ts, const char *const *names, const aur_check_opts *opts, aur_check_report *rep)
{
    if (!ts || ts->ndim != 5 || ts->device != AUR_CPU)
        return aur__err(AUR_EINVAL, "aur_surya_check_batch: ts must be a CPU tensor (B, C, T, H, W)");
    aur_check_opts o = opts ? *opts : aur_check_defaults();
    int64_t B = ts->shape[0], C = ts->shape[1], T = ts->shape[2], hw = ts->shape[3] * ts->shape[4];
    if (!names && C > 13) return aur__err(AUR_EINVAL, "aur_surya_check_batch: %lld channels; give their names", (long long)C);
    aur_check_report r = {(int)C, 0, 0, (aur_var_check *)aur__calloc(sizeof(aur_var_check) * (size_t)C, "a data-check report")};
    if (!r.vars) return AUR_ENOMEM;
    const aur_real *x = (const aur_real *)ts->data;
    int first = -1;
    for (int64_t c = 0; c < C; c++) {
        aur_var_check *v = &r.vars[c];
        snprintf(v->name, sizeof v->name, "%s", names ? names[c] : aur__sdo_channels[c]);
        v->kind = "channel", v->present = v->used = 1;
        aur__moments s = {0, 0, 0, 0, 0, 0};
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++) { /* the data is normalised already: location 0, scale 1 */
                const aur_real *f = x + ((b * C + c) * T + t) * hw;
                aur__moments_add(&s, f, hw, 0, 1, o.outlier_z);
                v->zero_fields += aur__field_is_zero(f, hw), v->fields++;
            }
        v->count = s.count, v->nonfinite = s.nonfinite, v->outliers = s.outliers;
        v->mean = aur__moments_mean(&s), v->std = aur__moments_std(&s), v->max_abs_z = s.max_abs_z;
        aur__grade(v, &o, o.nan_ok && aur_name_matches(o.nan_ok, v->name));
        r.errors += v->severity == AUR_CHECK_ERROR, r.warnings += v->severity == AUR_CHECK_WARNING;
        if (v->severity == AUR_CHECK_ERROR && first < 0) first = (int)c;
    }
    int rc = first < 0 ? 0 : aur__err(AUR_EFORMAT, "data check: channel '%s': %s", r.vars[first].name, r.vars[first].message);
    if (rep) *rep = r;
    else AUR_FREE(r.vars);
    return rc;
}

/* ---- the scalers file ----
   Surya-1.0's scalers.yaml: channel -> the StandardScaler.to_dict() of
   surya/datasets/transformations.py (base, class, epsilon, mean, std, min,
   max, sl_scale_factor, is_fitted; numbers written as strings), read by
   surya/utils/data.py: build_scalers, which keeps each as np.float32. */

#ifdef AUR_NETCDF
#include <yaml.h>

/* The parser's error, naming the line. */
static int aur__yaml_error(const yaml_parser_t *p, const char *path)
{
    return aur__err(AUR_EFORMAT, "%s line %zu: %s", path, p->problem_mark.line + 1, p->problem ? p->problem : "not YAML");
}

/* A scaler field's value: a number, quoted or not. */
static int aur__scaler_number(const char *path, const char *channel, const char *key, const char *text, double *v)
{
    if (!aur__text_number(text, v))
        return aur__err(AUR_EFORMAT, "%s: %s.%s is '%s', not a number (is the scaler fitted?)", path, channel, key, text);
    return 0;
}

/* One channel's mapping (the parser just past its MAPPING_START): its fields into s. */
static int aur__scaler_fields(yaml_parser_t *p, const char *path, const char *channel, aur_surya_scaler *s, int *have)
{
    char key[64] = "";
    for (int want_key = 1;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(p, &e)) return aur__yaml_error(p, path);
        int type = e.type, rc = 0;
        const char *text = type == YAML_SCALAR_EVENT ? (const char *)e.data.scalar.value : "";
        if (type == YAML_MAPPING_END_EVENT) { yaml_event_delete(&e); return 0; }
        if (type != YAML_SCALAR_EVENT) rc = aur__err(AUR_EFORMAT, "%s: %s.%s: expected a single value", path, channel, want_key ? "(a key)" : key);
        else if (want_key) snprintf(key, sizeof key, "%s", text);
        else if (!strcmp(key, "class") && strcmp(text, "StandardScaler"))
            rc = aur__err(AUR_EUNSUPPORTED, "%s: %s is a %s; Surya's data are scaled by StandardScaler", path, channel, text);
        else {
            static const char *const names[] = {"mean", "std", "epsilon", "sl_scale_factor"};
            double *slot[] = {&s->mean, &s->std, &s->epsilon, &s->sl_scale_factor};
            for (int k = 0; k < 4 && !rc; k++)
                if (!strcmp(key, names[k])) rc = aur__scaler_number(path, channel, key, text, slot[k]), *have |= 1 << k;
        }
        want_key = !want_key;
        yaml_event_delete(&e);
        if (rc) return rc;
    }
}

/* Skips one node (the parser just read its first event e). */
static int aur__yaml_skip(yaml_parser_t *p, yaml_event_type_t first, const char *path)
{
    int depth = first == YAML_MAPPING_START_EVENT || first == YAML_SEQUENCE_START_EVENT;
    while (depth > 0) {
        yaml_event_t e;
        if (!yaml_parser_parse(p, &e)) return aur__yaml_error(p, path);
        depth += (e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT) -
                 (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT);
        yaml_event_delete(&e);
    }
    return 0;
}

/* The top-level mapping: each wanted channel's scaler; the others skipped. */
static int aur__scalers_walk(yaml_parser_t *p, const char *path, const char *const *channels, int C, aur_surya_scaler *out, int *have)
{
    int depth = 0, rc = 0;
    for (int done = 0; !done && !rc;) {
        yaml_event_t e;
        if (!yaml_parser_parse(p, &e)) return aur__yaml_error(p, path);
        if (e.type == YAML_STREAM_END_EVENT) done = 1;
        else if (e.type == YAML_MAPPING_START_EVENT && depth == 0) depth = 1;
        else if (e.type == YAML_MAPPING_END_EVENT && depth == 1) depth = 0;
        else if (depth == 1 && e.type == YAML_SCALAR_EVENT) {
            int c = 0;
            while (c < C && strcmp(channels[c], (const char *)e.data.scalar.value)) c++;
            yaml_event_t v;
            if (!yaml_parser_parse(p, &v)) rc = aur__yaml_error(p, path);
            else {
                if (c < C && v.type != YAML_MAPPING_START_EVENT)
                    rc = aur__err(AUR_EFORMAT, "%s: %s: expected a mapping of the scaler's fields", path, channels[c]);
                else if (c < C) rc = aur__scaler_fields(p, path, channels[c], &out[c], &have[c]);
                else rc = aur__yaml_skip(p, v.type, path);
                yaml_event_delete(&v);
            }
        } else if (depth == 1) rc = aur__err(AUR_EFORMAT, "%s: expected channel names as the top-level keys", path);
        yaml_event_delete(&e);
    }
    return rc;
}

AURDEF int aur_surya_scalers_load(const char *path, const char *const *channels, int C, aur_surya_scaler *out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno));
    yaml_parser_t p;
    int have[AUR_SDO_MAX_CHANNELS] = {0}, rc = C < 1 || C > AUR_SDO_MAX_CHANNELS ? aur__err(AUR_EINVAL, "aur_surya_scalers_load: 1 to %d channels",
                                                                                               AUR_SDO_MAX_CHANNELS) : 0;
    if (!rc && !yaml_parser_initialize(&p)) rc = aur__err(AUR_ENOMEM, "%s: cannot start the YAML parser", path);
    if (!rc) {
        yaml_parser_set_input_file(&p, fp);
        memset(out, 0, sizeof *out * (size_t)C);
        rc = aur__scalers_walk(&p, path, channels, C, out, have);
        yaml_parser_delete(&p);
    }
    fclose(fp);
    for (int c = 0; c < C && !rc; c++)
        if (have[c] != 15)
            rc = aur__err(AUR_EFORMAT, "%s: %s: %s", path, channels[c], have[c] ? "needs mean, std, epsilon and sl_scale_factor" : "no scaler for this channel");
    return rc;
}

#else
AURDEF int aur_surya_scalers_load(const char *path, const char *const *channels, int C, aur_surya_scaler *out)
{
    (void)channels, (void)C, (void)out;
    return aur__err(AUR_EUNSUPPORTED, "%s: reading a scalers YAML file needs the implementation compiled with -DAUR_NETCDF and linked with "
                    "-lyaml (Debian: libyaml-dev)", path);
}
#endif

/* ==== Surya: the SDO index and label tables ====
   surya/datasets/helio.py: HelioNetCDFDataset reads an index CSV with
   pandas (",path,timestep,present": one NetCDF file per time), keeps the
   rows with present == 1 and sorts them by time;
   solar_flare_forcasting/dataset.py: SolarFlareDataset inner-joins a label
   CSV ("timestamp,...,label_max") on the time. Times here are nanoseconds
   since 1970, pandas' datetime64[ns]. */

#define AUR__CSV_MAX_FIELDS 64

typedef struct aur__sdo_row {
    int64_t time;
    char *path;   /* as the index has it; owned */
    double label; /* of the joined label table */
    int line;     /* in its CSV, for messages */
} aur__sdo_row;

/* "YYYY-MM-DD", then optionally " HH:MM[:SS[.fraction]]" (or "T" between): the
   forms pandas.to_datetime reads in the reference's CSV files. */
static int aur__parse_time(const char *s, int64_t *ns)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
    long long frac_ns = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3) return AUR_EFORMAT;
    s += used;
    if (*s == ' ' || *s == 'T') {
        if (sscanf(s + 1, "%2d:%2d%n", &h, &mi, &used) != 2) return AUR_EFORMAT;
        s += 1 + used;
        if (*s == ':') {
            if (sscanf(s + 1, "%2d%n", &sec, &used) != 1) return AUR_EFORMAT;
            s += 1 + used;
            if (*s == '.') {
                long long scale = 100000000;
                for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10) frac_ns += scale * (*s - '0');
            }
        }
    }
    /* pandas' datetime64[ns] spans 1677-09-21 to 2262-04-11 */
    static const int days_in[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (*s || y < 1678 || y > 2261 || mo < 1 || mo > 12 || d < 1 || d > days_in[mo - 1] - (mo == 2 && !leap) || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || sec < 0 || sec > 59)
        return AUR_EFORMAT;
    *ns = ((aur__days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 * 1000000000LL + sec * 1000000000LL + frac_ns;
    return 0;
}

/* Splits one CSV record in place (RFC 4180: quoted fields, "" inside them).
   Returns the number of fields, or -1 for an unclosed quote or too many fields. */
static int aur__csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return -1;
        char *out = p;
        fields[n++] = p;
        if (*p == '"') {
            for (p++;; p++) {
                if (!*p) return -1;
                if (*p == '"' && p[1] == '"') *out++ = '"', p++;
                else if (*p == '"') { p++; break; }
                else *out++ = *p;
            }
        }
        while (*p && *p != ',') *out++ = *p++;
        int more = *p == ',';
        *out = 0;
        if (!more) return n;
        p++;
    }
}

/* The column named `name` in a header's fields, or -1. */
static int aur__csv_column(char **head, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(head[i], name)) return i;
    return -1;
}

/* Reads a CSV: calls row(ctx, fields, n, line) for each record after the
   header, whose columns `want` (NULL-ended) are found first into cols. */
typedef int (*aur__csv_row_fn)(void *ctx, char **fields, int n, int line, const int *cols, const char *path);
static int aur__csv_read(const char *path, const char *const *want, aur__csv_row_fn row, void *ctx)
{
    size_t size = 0;
    char *text = aur__read_text_file(path, (size_t)1 << 30, "a CSV file", &size);
    if (!text) return AUR_EIO;
    size_t nul = strlen(text);
    if (nul != size) {
        AUR_FREE(text);
        return aur__err(AUR_EFORMAT, "%s: a NUL byte at byte %zu; a CSV file is text", path, nul);
    }
    char *fields[AUR__CSV_MAX_FIELDS], *next = NULL;
    int cols[8], rc = 0, line = 0, header = 1;
    char *start = !strncmp(text, "\xef\xbb\xbf", 3) ? text + 3 : text; /* a UTF-8 byte-order mark, as pandas skips it */
    for (char *ln = start; ln && !rc; ln = next) {
        if ((next = strchr(ln, '\n'))) *next++ = 0;
        line++;
        size_t len = strlen(ln);
        if (len && ln[len - 1] == '\r') ln[--len] = 0;
        if (!len) continue;
        int n = aur__csv_split(ln, fields, AUR__CSV_MAX_FIELDS);
        if (n < 0) rc = aur__err(AUR_EFORMAT, "%s line %d: an unclosed quote or more than %d fields", path, line, AUR__CSV_MAX_FIELDS);
        else if (header) {
            for (int k = 0; want[k] && !rc; k++)
                if ((cols[k] = aur__csv_column(fields, n, want[k])) < 0)
                    rc = aur__err(AUR_EFORMAT, "%s: no column '%s' in its header line", path, want[k]);
            header = 0;
        } else rc = row(ctx, fields, n, line, cols, path);
    }
    if (!rc && header) rc = aur__err(AUR_EFORMAT, "%s: empty (a header line and rows were expected)", path);
    AUR_FREE(text);
    return rc;
}

typedef struct aur__sdo_table {
    aur__sdo_row *rows;
    int n, cap;
} aur__sdo_table;

static void aur__sdo_table_free(aur__sdo_table *t)
{
    for (int i = 0; t && i < t->n; i++) AUR_FREE(t->rows[i].path);
    if (t) AUR_FREE(t->rows), memset(t, 0, sizeof *t);
}

/* A field of a row as a number (pandas reads the column as numbers). */
static int aur__csv_number(char **f, int n, int col, int line, const char *path, const char *what, double *v)
{
    *v = 0;
    if (col >= n || !aur__text_number(f[col], v))
        return aur__err(AUR_EFORMAT, "%s line %d: %s '%s' is not a finite number", path, line, what, col < n ? f[col] : "");
    return 0;
}

static int aur__csv_time(char **f, int n, int col, int line, const char *path, int64_t *t)
{
    if (col < n && !aur__parse_time(f[col], t)) return 0;
    return aur__err(AUR_EFORMAT, "%s line %d: '%s' is not a time (YYYY-MM-DD HH:MM:SS, years 1678 to 2261)", path, line, col < n ? f[col] : "");
}

/* One index row: kept when present == 1, as the reference's filter. */
static int aur__sdo_index_row(void *ctx, char **f, int n, int line, const int *cols, const char *path)
{
    aur__sdo_table *t = (aur__sdo_table *)ctx;
    double present;
    int64_t time;
    if (cols[2] < n && !f[cols[2]][0]) return 0; /* pandas reads an empty field as NaN, which is not 1 */
    int rc = aur__csv_number(f, n, cols[2], line, path, "present", &present);
    if (rc || present != 1) return rc;
    rc = aur__csv_time(f, n, cols[1], line, path, &time);
    if (rc) return rc;
    if (cols[0] >= n || !f[cols[0]][0]) return aur__err(AUR_EFORMAT, "%s line %d: the path is empty", path, line);
    if (aur__grow((void **)&t->rows, &t->cap, t->n + 1, sizeof *t->rows)) return AUR_ENOMEM;
    aur__sdo_row *r = &t->rows[t->n];
    if (!(r->path = aur__strdup(f[cols[0]]))) return AUR_ENOMEM;
    r->time = time, r->label = 0, r->line = line, t->n++;
    return 0;
}

/* One label row: its time and the label column. */
static int aur__sdo_label_row(void *ctx, char **f, int n, int line, const int *cols, const char *path)
{
    aur__sdo_table *t = (aur__sdo_table *)ctx;
    if (aur__grow((void **)&t->rows, &t->cap, t->n + 1, sizeof *t->rows)) return AUR_ENOMEM;
    aur__sdo_row *r = &t->rows[t->n];
    memset(r, 0, sizeof *r);
    int rc = aur__csv_time(f, n, cols[0], line, path, &r->time);
    if (!rc) rc = aur__csv_number(f, n, cols[1], line, path, "the label", &r->label);
    if (!rc) r->line = line, t->n++;
    return rc;
}

static int aur__sdo_row_cmp(const void *a, const void *b)
{
    int64_t x = ((const aur__sdo_row *)a)->time, y = ((const aur__sdo_row *)b)->time;
    return (x > y) - (x < y);
}

/* Sorted by time; a time twice is an error (the reference's .loc lookups, and its
   one-to-one join, fail on it). */
static int aur__sdo_table_sort(aur__sdo_table *t, const char *path)
{
    if (t->n > 1) qsort(t->rows, (size_t)t->n, sizeof *t->rows, aur__sdo_row_cmp);
    for (int i = 1; i < t->n; i++)
        if (t->rows[i].time == t->rows[i - 1].time) {
            char when[64];
            return aur__err(AUR_EFORMAT, "%s: time %s is on lines %d and %d; one row per time", path,
                            aur__format_time(t->rows[i].time, when, sizeof when), t->rows[i - 1].line, t->rows[i].line);
        }
    return 0;
}

/* The row at time t of a sorted table, or NULL. */
static aur__sdo_row *aur__sdo_find(const aur__sdo_table *t, int64_t time)
{
    int lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (t->rows[mid].time == time) return &t->rows[mid];
        if (t->rows[mid].time < time) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

static int aur__sdo_read_index(const char *path, aur__sdo_table *t)
{
    static const char *const want[] = {"path", "timestep", "present", NULL};
    memset(t, 0, sizeof *t);
    int rc = aur__csv_read(path, want, aur__sdo_index_row, t);
    if (!rc) rc = aur__sdo_table_sort(t, path);
    if (!rc && !t->n) rc = aur__err(AUR_EFORMAT, "%s: no row has present == 1", path);
    if (rc) aur__sdo_table_free(t);
    return rc;
}

/* The inner join on the time with a label table (column `column`): index rows
   without a label are dropped, as SolarFlareDataset's join. */
static int aur__sdo_join_labels(aur__sdo_table *index, const char *path, const char *column)
{
    const char *const want[] = {"timestamp", column, NULL};
    aur__sdo_table labels = {NULL, 0, 0};
    int rc = aur__csv_read(path, want, aur__sdo_label_row, &labels), kept = 0;
    if (!rc) rc = aur__sdo_table_sort(&labels, path);
    for (int i = 0; !rc && i < index->n; i++) {
        const aur__sdo_row *l = aur__sdo_find(&labels, index->rows[i].time);
        if (!l) { AUR_FREE(index->rows[i].path); continue; }
        index->rows[kept] = index->rows[i];
        index->rows[kept++].label = l->label;
    }
    if (!rc) index->n = kept;
    if (!rc && !kept) rc = aur__err(AUR_EFORMAT, "%s: none of its times is in the index", path);
    aur__sdo_table_free(&labels);
    return rc;
}

/* ==== Surya: one SDO NetCDF file ====
   HelioNetCDFDataset.load_nc_data opens a file with xarray (engine
   "h5netcdf") and stacks the channels' 2-D variables into (C, H, W), CF
   decoded; transform_data pools it with skimage.measure.block_reduce(mean)
   and applies the signum-log scalers. Done here with libnetcdf (HDF5 and the
   HDF5 filter plugins the files were compressed with), in the precision
   numpy would use: float32 unless a channel decodes to float64. */

#ifdef AUR_NETCDF
#include <netcdf.h>

/* A channel's variable: 2-D, numeric, its CF attributes read. */
static int aur__cf_inspect(int nc, const char *path, const char *name, aur__cf_var *v)
{
    int dims[NC_MAX_VAR_DIMS], ndims = 0, nvars = 0;
    memset(v, 0, sizeof *v);
    if (nc_inq_varid(nc, name, &v->id) != NC_NOERR) {
        char list[256] = "", var[NC_MAX_NAME + 1];
        nc_inq_nvars(nc, &nvars);
        for (int i = 0; i < nvars && strlen(list) < 200; i++)
            if (nc_inq_varname(nc, i, var) == NC_NOERR) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.40s", i ? ", " : "", var);
        return aur__err(AUR_EFORMAT, "%s: no variable '%s' (it has: %s)", path, name, list);
    }
    int st = nc_inq_var(nc, v->id, NULL, &v->type, &ndims, dims, NULL);
    if (st != NC_NOERR) return aur__nc_err(st, path, name);
    if (ndims != 2) return aur__err(AUR_EFORMAT, "%s: variable '%s' has %d dimensions; a channel is 2-D (y, x)", path, name, ndims);
    if (v->type == NC_CHAR || v->type == NC_STRING || v->type > NC_STRING)
        return aur__err(AUR_EFORMAT, "%s: variable '%s' is not numeric", path, name);
    if (nc_inq_dimlen(nc, dims[0], &v->H) != NC_NOERR || nc_inq_dimlen(nc, dims[1], &v->W) != NC_NOERR || !v->H || !v->W) return aur__err(AUR_EFORMAT, "%s: variable '%s' is empty (%zu x %zu)", path, name, v->H, v->W);
    return aur__cf_attributes(nc, path, name, v);
}

/* The stacked array's dtype (numpy promotion over the channels). */
static int aur__stack_dtype(const aur__cf_var *v, int C)
{
    int f64 = 0, f32 = 0, big = 0;
    for (int c = 0; c < C; c++) f64 |= v[c].dtype == AUR__DT_F64, f32 |= v[c].dtype == AUR__DT_F32, big |= v[c].dtype == AUR__DT_BIGINT;
    return f64 || (f32 && big) ? AUR__DT_F64 : f32 ? AUR__DT_F32 : big ? AUR__DT_BIGINT : AUR__DT_SMALLINT;
}

/* Opens a file and inspects its channels; all must have one shape. */
static int aur__sdo_open_file(const char *path, const char *const *names, int C, int *nc, aur__cf_var *v)
{
    int st = nc_open(path, NC_NOWRITE, nc);
    if (st != NC_NOERR) return aur__nc_err(st, path, "cannot open as NetCDF");
    int rc = 0;
    for (int c = 0; c < C && !rc; c++) {
        rc = aur__cf_inspect(*nc, path, names[c], &v[c]);
        if (!rc && (v[c].H != v[0].H || v[c].W != v[0].W))
            rc = aur__err(AUR_EFORMAT, "%s: variable '%s' is %zu x %zu but '%s' is %zu x %zu", path, names[c], v[c].H, v[c].W, names[0],
                          v[0].H, v[0].W);
    }
    if (rc) nc_close(*nc);
    return rc;
}

/* numpy's pairwise summation of a contiguous run (umath loops: 8 partial
   sums below 128 values, halves above), each addition rounded as numpy's. */
static double aur__np_sum(const double *a, int n, int f32)
{
    if (n < 8) {
        double s = 0;
        for (int i = 0; i < n; i++) s = aur__rnd(s + a[i], f32);
        return s;
    }
    if (n <= 128) {
        double r[8];
        int i;
        for (i = 0; i < 8; i++) r[i] = a[i];
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] = aur__rnd(r[j] + a[i + j], f32);
        double s = aur__rnd(aur__rnd(aur__rnd(r[0] + r[1], f32) + aur__rnd(r[2] + r[3], f32), f32) +
                                aur__rnd(aur__rnd(r[4] + r[5], f32) + aur__rnd(r[6] + r[7], f32), f32), f32);
        for (; i < n; i++) s = aur__rnd(s + a[i], f32);
        return s;
    }
    int half = n / 2;
    half -= half % 8;
    return aur__rnd(aur__np_sum(a, half, f32) + aur__np_sum(a + half, n - half, f32), f32);
}

/* skimage.measure.block_reduce(x, (p, p), np.mean) in place: zero padding to
   a multiple of p, each block's rows summed pairwise then added in order
   (numpy's reduction over the block axes), divided by p*p. When the padded
   width is p, a block's rows follow each other in memory and numpy's
   iterator sums the block as one pairwise run of p*p. */
static int aur__block_mean(double *x, int H, int W, int p, int f32)
{
    int Hp = (H + p - 1) / p, Wp = (W + p - 1) / p, one_run = Wp == 1;
    double *run = (double *)aur__malloc(sizeof *run * (size_t)p * (one_run ? p : 1), "a pooling block");
    if (!run) return AUR_ENOMEM;
    for (int i = 0; i < Hp; i++)
        for (int j = 0; j < Wp; j++) {
            double s = 0;
            for (int r = 0; r < p; r++) {
                double *row = run + (one_run ? (size_t)r * p : 0);
                for (int c = 0; c < p; c++) {
                    int y = i * p + r, xx = j * p + c;
                    row[c] = y < H && xx < W ? x[(size_t)y * W + xx] : 0;
                }
                if (!one_run) s = aur__rnd(s + aur__np_sum(row, p, f32), f32);
            }
            if (one_run) s = aur__np_sum(run, p * p, f32);
            x[(size_t)i * Wp + j] = aur__rnd(s / ((double)p * p), f32); /* in place: block (i, j) was read before it is written */
        }
    AUR_FREE(run);
    return 0;
}

/* helio.py transform(): signum-log, then standardise, in float32 or float64 as numpy's promotion
   gives (the scalers are float32 numbers). Writes floats; counts values that are not finite. */
static int64_t aur__sdo_transform(const double *x, size_t n, const aur_surya_scaler *s, int f64, float *out)
{
    float sl = (float)s->sl_scale_factor, mean = (float)s->mean, den = (float)s->std + (float)s->epsilon;
    int64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (f64) {
            double y = x[i] * sl;
            y = y >= 0 ? log1p(y) : -log1p(-y);
            out[i] = (float)((y - mean) / den);
        } else {
            out[i] = aur__surya_scale_f32((float)x[i], sl, mean, den);
        }
        bad += !isfinite(out[i]);
    }
    return bad;
}

/* The shape of a file's channels (and that it can be read: variables, types, filters). */
static int aur__sdo_file_shape(const char *path, const char *const *names, int C, int *H, int *W)
{
    aur__cf_var v[AUR_SDO_MAX_CHANNELS];
    int nc, rc = C > AUR_SDO_MAX_CHANNELS ? aur__err(AUR_EINVAL, "at most %d channels", AUR_SDO_MAX_CHANNELS)
                                          : aur__sdo_open_file(path, names, C, &nc, v);
    if (rc) return rc;
    nc_close(nc);
    if (v[0].H > INT_MAX / 2 || v[0].W > INT_MAX / 2 || v[0].H * v[0].W > ((size_t)1 << 31))
        return aur__err(AUR_EFORMAT, "%s: channels of %zu x %zu are too large", path, v[0].H, v[0].W);
    *H = (int)v[0].H, *W = (int)v[0].W;
    return 0;
}

/* Reads a file's C channels, pooled by p and scaled, into out + c * stride (Hp x Wp floats each).
   work: H x W doubles. */
static int aur__sdo_file_read(const char *path, const char *const *names, int C, int p, const aur_surya_scaler *s, int H, int W,
                              double *work, float *out, size_t stride)
{
    aur__cf_var v[AUR_SDO_MAX_CHANNELS];
    int nc, rc = aur__sdo_open_file(path, names, C, &nc, v);
    if (rc) return rc;
    if (v[0].H != (size_t)H || v[0].W != (size_t)W) {
        nc_close(nc);
        return aur__err(AUR_EFORMAT, "%s: channels of %zu x %zu now, %d x %d when the data were opened (was the file replaced?)", path, v[0].H,
                        v[0].W, H, W);
    }
    int stacked = aur__stack_dtype(v, C);
    int pooled = p > 1 && stacked <= AUR__DT_BIGINT ? AUR__DT_F64 : stacked; /* np.mean of integers is float64 */
    int f64 = pooled == AUR__DT_F64 || pooled == AUR__DT_BIGINT; /* small integers times float32 scalers stay float32 */
    size_t n = (size_t)((H + p - 1) / p) * ((W + p - 1) / p);
    for (int c = 0; c < C && !rc; c++) {
        int st = nc_get_var_double(nc, v[c].id, work);
        if (st != NC_NOERR) { rc = aur__nc_err(st, path, names[c]); break; }
        aur__cf_decode(&v[c], work, (size_t)H * W);
        if (p > 1 && (rc = aur__block_mean(work, H, W, p, pooled == AUR__DT_F32))) break;
        int64_t bad = aur__sdo_transform(work, n, &s[c], f64, out + (size_t)c * stride);
        if (bad) rc = aur__err(AUR_EFORMAT, "%s: channel '%s' has %lld values that are NaN (a _FillValue) or infinite after scaling", path,
                               names[c], (long long)bad);
    }
    nc_close(nc);
    return rc;
}

#else /* built without libnetcdf */

static int aur__sdo_no_netcdf(const char *path)
{
    return aur__err(AUR_EUNSUPPORTED, "%s: reading NetCDF needs the implementation compiled with -DAUR_NETCDF and linked with "
                    "-lnetcdf -lyaml (Debian: libnetcdf-dev libyaml-dev)", path);
}
static int aur__sdo_file_shape(const char *path, const char *const *names, int C, int *H, int *W)
{
    (void)names, (void)C, (void)H, (void)W;
    return aur__sdo_no_netcdf(path);
}
static int aur__sdo_file_read(const char *path, const char *const *names, int C, int p, const aur_surya_scaler *s, int H, int W,
                              double *work, float *out, size_t stride)
{
    (void)names, (void)C, (void)p, (void)s, (void)H, (void)W, (void)work, (void)out, (void)stride;
    return aur__sdo_no_netcdf(path);
}
#endif

/* ==== Surya: SDO samples ====
   surya/datasets/helio.py: HelioNetCDFDataset.filter_valid_indices and
   _get_index_data over the index (sdo_index.c) and the files (sdo_netcdf.c). */

#define AUR__SDO_MAX_TIMES 64
#define AUR__MINUTE_NS (60 * 1000000000LL)

struct aur_sdo_dataset {
    aur__sdo_table index;                /* present rows, by time (label-joined when labelled) */
    int labelled, C, T, L, pooling, H0, W0, H, W;
    char root[1024];
    char (*names)[AUR_NAME_LEN];
    const char *name_of[AUR_SDO_MAX_CHANNELS];
    aur_surya_scaler scalers[AUR_SDO_MAX_CHANNELS];
    int64_t deltas[AUR__SDO_MAX_TIMES];  /* the T sorted input times, then the L targets, in ns */
    int64_t *valid, n, files;            /* index rows of the samples' reference times */
    double *work;                        /* one raw channel */
};

AURDEF void aur_sdo_close(aur_sdo_dataset *d)
{
    if (!d) return;
    aur__sdo_table_free(&d->index);
    AUR_FREE(d->names);
    AUR_FREE(d->valid);
    AUR_FREE(d->work);
    AUR_FREE(d);
}

static int aur__int_cmp(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

/* The options, checked; the reference's times as offsets in ns. */
static int aur__sdo_options(const aur_sdo_options *o, aur_sdo_dataset *d)
{
    const char *E = "SDO data";
    if (!o || !o->index_path || !o->scalers_path || !o->channels) return aur__err(AUR_EINVAL, "%s: index_path, scalers_path and channels are required", E);
    if (o->n_channels < 1 || o->n_channels > AUR_SDO_MAX_CHANNELS) return aur__err(AUR_EINVAL, "%s: 1 to %d channels, not %d", E, AUR_SDO_MAX_CHANNELS, o->n_channels);
    if (o->n_inputs < 1 || o->rollout_steps < 0 || o->n_inputs > AUR__SDO_MAX_TIMES - 1 || o->rollout_steps > AUR__SDO_MAX_TIMES - 1 - o->n_inputs)
        return aur__err(AUR_EINVAL, "%s: input times and rollout_steps + 1 lead times: %d in all at most, not %d and %d", E, AUR__SDO_MAX_TIMES,
                        o->n_inputs, o->rollout_steps + 1);
    if (!o->time_delta_input_minutes)
        return aur__err(AUR_EINVAL, "%s: time_delta_input_minutes is required", E);
    /* ten years each way keeps t + every offset inside int64 nanoseconds */
    int64_t far = 10LL * 366 * 24 * 60;
    for (int k = 0; k < o->n_inputs; k++)
        if (llabs((long long)o->time_delta_input_minutes[k]) > far)
            return aur__err(AUR_EINVAL, "%s: time_delta_input_minutes %d is more than ten years", E, o->time_delta_input_minutes[k]);
    if (llabs((long long)o->time_delta_target_minutes) * (o->rollout_steps + 1) > far)
        return aur__err(AUR_EINVAL, "%s: time_delta_target_minutes %d x %d lead times is more than ten years", E, o->time_delta_target_minutes,
                        o->rollout_steps + 1);
    if (o->pooling < 1 || o->pooling > 1024) return aur__err(AUR_EINVAL, "%s: pooling must be 1 to 1024, not %d", E, o->pooling);
    d->C = o->n_channels, d->T = o->n_inputs, d->L = o->rollout_steps + 1, d->pooling = o->pooling;
    int in[AUR__SDO_MAX_TIMES];
    memcpy(in, o->time_delta_input_minutes, sizeof *in * (size_t)d->T);
    qsort(in, (size_t)d->T, sizeof *in, aur__int_cmp);
    for (int k = 0; k < d->T; k++) d->deltas[k] = in[k] * AUR__MINUTE_NS;
    for (int k = 1; k <= d->L; k++) d->deltas[d->T + k - 1] = (int64_t)k * o->time_delta_target_minutes * AUR__MINUTE_NS;
    d->names = (char(*)[AUR_NAME_LEN])aur__calloc(sizeof *d->names * (size_t)d->C, "channel names");
    if (!d->names) return AUR_ENOMEM;
    for (int c = 0; c < d->C; c++) {
        if (!o->channels[c] || !o->channels[c][0] || strlen(o->channels[c]) >= AUR_NAME_LEN)
            return aur__err(AUR_EINVAL, "%s: channel %d has no name or one too long", E, c);
        snprintf(d->names[c], AUR_NAME_LEN, "%s", o->channels[c]);
        d->name_of[c] = d->names[c];
    }
    if (o->data_root && strlen(o->data_root) >= sizeof d->root) return aur__err(AUR_EINVAL, "%s: data_root is longer than %zu bytes", E, sizeof d->root - 1);
    snprintf(d->root, sizeof d->root, "%s", o->data_root ? o->data_root : "");
    return 0;
}

/* A row's file: the index's path, joined to the data root when relative (load_nc_data). */
static int aur__sdo_path(const aur_sdo_dataset *d, const aur__sdo_row *r, char *path, size_t size)
{
    int n = d->root[0] && r->path[0] != '/' ? snprintf(path, size, "%s/%s", d->root, r->path) : snprintf(path, size, "%s", r->path);
    if (n < 0 || (size_t)n >= size) return aur__err(AUR_EINVAL, "line %d of the index: the path %s is longer than %zu bytes", r->line, r->path, size - 1);
    return 0;
}

/* The rows a reference time reads, or 0 if one is missing. */
static int aur__sdo_rows(const aur_sdo_dataset *d, int64_t t, const aur__sdo_row **rows)
{
    for (int k = 0; k < d->T + d->L; k++)
        if (!(rows[k] = aur__sdo_find(&d->index, t + d->deltas[k]))) return 0;
    return 1;
}

/* filter_valid_indices: the times whose every file is present. */
static int aur__sdo_valid(aur_sdo_dataset *d)
{
    const aur__sdo_row *rows[AUR__SDO_MAX_TIMES];
    d->valid = (int64_t *)aur__malloc(sizeof *d->valid * (size_t)(d->index.n ? d->index.n : 1), "the sample times");
    if (!d->valid) return AUR_ENOMEM;
    for (int i = 0; i < d->index.n; i++)
        if (aur__sdo_rows(d, d->index.rows[i].time, rows)) d->valid[d->n++] = i;
    return 0;
}

/* Every file a sample reads: opened, its channels and shape checked (before any step). */
static int aur__sdo_check_files(aur_sdo_dataset *d)
{
    const aur__sdo_row *rows[AUR__SDO_MAX_TIMES];
    char *seen = (char *)aur__calloc((size_t)d->index.n, "the file checks"), path[2048];
    if (!seen) return AUR_ENOMEM;
    int rc = 0;
    for (int64_t i = 0; i < d->n && !rc; i++) {
        aur__sdo_rows(d, d->index.rows[d->valid[i]].time, rows);
        for (int k = 0; k < d->T + d->L && !rc; k++) {
            int row = (int)(rows[k] - d->index.rows), H = 0, W = 0;
            if (seen[row]) continue;
            seen[row] = 1, d->files++;
            rc = aur__sdo_path(d, rows[k], path, sizeof path);
            if (!rc) rc = aur__sdo_file_shape(path, d->name_of, d->C, &H, &W);
            if (!rc && !d->H0) d->H0 = H, d->W0 = W;
            else if (!rc && (H != d->H0 || W != d->W0))
                rc = aur__err(AUR_EFORMAT, "%s: channels of %d x %d, but the first file's are %d x %d", path, H, W, d->H0, d->W0);
        }
    }
    AUR_FREE(seen);
    return rc;
}

AURDEF int aur_sdo_open(const aur_sdo_options *o, aur_sdo_dataset **out)
{
    *out = NULL;
    aur_sdo_dataset *d = (aur_sdo_dataset *)aur__calloc(sizeof *d, "an SDO dataset");
    if (!d) return AUR_ENOMEM;
    int rc = aur__sdo_options(o, d);
    if (!rc) rc = aur_surya_scalers_load(o->scalers_path, d->name_of, d->C, d->scalers);
    if (!rc) rc = aur__sdo_read_index(o->index_path, &d->index);
    if (!rc && o->label_path) rc = aur__sdo_join_labels(&d->index, o->label_path, o->label_column ? o->label_column : "label_max");
    d->labelled = o && o->label_path;
    if (!rc) rc = aur__sdo_valid(d);
    if (!rc && !d->n)
        rc = aur__err(AUR_EINVAL, "%s: no time has all the files its inputs and targets need (%d input times, %d lead times%s)", o->index_path, d->T,
                      d->L, d->labelled ? ", labelled" : "");
    if (!rc) rc = aur__sdo_check_files(d);
    if (!rc) {
        d->H = (d->H0 + d->pooling - 1) / d->pooling, d->W = (d->W0 + d->pooling - 1) / d->pooling;
        d->work = (double *)aur__malloc(sizeof *d->work * (size_t)d->H0 * (size_t)d->W0, "an SDO channel");
        if (!d->work) rc = AUR_ENOMEM;
    }
    if (rc) aur_sdo_close(d);
    else *out = d;
    return rc;
}

AURDEF aur_sdo_info aur_sdo_describe(const aur_sdo_dataset *d)
{
    aur_sdo_info i = {d->n, d->C, d->T, d->L, d->H, d->W, d->labelled, d->files};
    return i;
}

/* The files of sample i into ts (C, T, H, W) and forecast (C, L, H, W). */
static int aur__sdo_read_files(aur_sdo_dataset *d, const aur__sdo_row **rows, float *ts, float *forecast)
{
    size_t hw = (size_t)d->H * d->W;
    char path[2048];
    for (int k = 0; k < d->T + d->L; k++) {
        int input = k < d->T, slot = input ? k : k - d->T, times = input ? d->T : d->L;
        float *out = input ? ts : forecast;
        if (!out) continue;
        int rc = aur__sdo_path(d, rows[k], path, sizeof path);
        if (!rc) rc = aur__sdo_file_read(path, d->name_of, d->C, d->pooling, d->scalers, d->H0, d->W0, d->work, out + slot * hw, (size_t)times * hw);
        if (rc) return rc;
    }
    return 0;
}

AURDEF int aur_sdo_read(aur_sdo_dataset *d, int64_t i, aur_sdo_sample *out)
{
    if (!d || !out || i < 0 || i >= d->n) return aur__err(AUR_EINVAL, "aur_sdo_read: sample %lld of %lld", (long long)i, (long long)(d ? d->n : 0));
    const aur__sdo_row *rows[AUR__SDO_MAX_TIMES];
    const aur__sdo_row *ref = &d->index.rows[d->valid[i]];
    aur__sdo_rows(d, ref->time, rows);
    int64_t last = d->deltas[d->T - 1];
    for (int k = 0; k < d->T + d->L; k++) {
        float hours = (float)((double)(last - d->deltas[k]) / (60.0 * AUR__MINUTE_NS)); /* (t_last - t_k) / np.timedelta64(1, "h") */
        if (k < d->T && out->time_delta_input) out->time_delta_input[k] = hours;
        if (k >= d->T && out->lead_time_delta) out->lead_time_delta[k - d->T] = hours;
        if (out->times) out->times[k] = ref->time + d->deltas[k];
    }
    out->label = ref->label;
    return aur__sdo_read_files(d, rows, out->ts, out->forecast);
}

/* ==== Surya: the downstream tasks' metrics ====
   As the reference's downstream examples report them, from counts and sums
   over a whole validation set (not averages of per-batch values). A ratio
   with a zero denominator is 0 here (torch gives NaN, which JSON cannot
   carry), except R^2 of a constant target, NaN as in the reference. */

AURDEF void aur_binary_scores(const aur_real *prob, const aur_real *label, int64_t n, double out[AUR_BINARY_SCORES])
{
    double tp = 0, tn = 0, fp = 0, fn = 0;
    for (int64_t i = 0; i < n; i++) {
        /* solar_flare_forcasting/metrics.py: prediction > threshold, target cast to int.
           Its script compares the logits with 0.5; here the probability is compared (logit > 0). */
        int p = prob[i] > 0.5f, y = (int)label[i] != 0;
        tp += p && y, tn += !p && !y, fp += p && !y, fn += !p && y;
    }
    double tpr = tp + fn > 0 ? tp / (tp + fn) : 0, fpr = fp + tn > 0 ? fp / (fp + tn) : 0;
    double hss_den = (tp + fn) * (fn + tn) + (tp + fp) * (tn + fp);
    out[0] = n > 0 ? (tp + tn) / (double)n : 0;                      /* accuracy */
    out[1] = tp + fp > 0 ? tp / (tp + fp) : 0;                       /* precision */
    out[2] = tpr;                                                    /* recall */
    out[3] = 2 * tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 0; /* F1 */
    out[4] = tpr - fpr;                                              /* TSS, the true skill statistic */
    out[5] = hss_den > 0 ? 2 * (tp * tn - fn * fp) / hss_den : 0;    /* HSS, the Heidke skill score */
}

AURDEF void aur_regression_scores(const aur_real *pred, const aur_real *target, int64_t n, double out[AUR_REGRESSION_SCORES])
{
    /* solar_wind_forcasting/finetune.py evaluate_model: sums of |d|, d^2, y, y^2 */
    double abs_sum = 0, sq_sum = 0, y_sum = 0, y_sq = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)pred[i] - target[i];
        abs_sum += fabs(d), sq_sum += d * d, y_sum += target[i], y_sq += (double)target[i] * target[i];
    }
    double mse = n ? sq_sum / (double)n : 0, var_y = n ? (y_sq - y_sum * y_sum / (double)n) / (double)n : 0;
    out[0] = n ? abs_sum / (double)n : 0; /* MAE */
    out[1] = sqrt(mse);                   /* RMSE */
    out[2] = var_y == 0 ? NAN : 1 - mse / var_y; /* R^2 */
}

AURDEF void aur_segmentation_scores(const aur_real *prob, const aur_real *mask, int64_t n, double out[AUR_SEGMENTATION_SCORES])
{
    double tp = 0, fp = 0, fn = 0;
    for (int64_t i = 0; i < n; i++) {
        int p = prob[i] > 0.5f, y = mask[i] > 0.5f;
        tp += p && y, fp += p && !y, fn += !p && y;
    }
    out[0] = tp + fp + fn > 0 ? tp / (tp + fp + fn) : 1;         /* IoU of the positive class (both empty: a perfect 1) */
    out[1] = tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 1; /* Dice */
}

/* ==== Surya: sample sets ====
   A fine-tuning set as one safetensors file: "ts" (N, C, T, H, W), the
   normalised input stacks the reference's datasets return as batch["ts"],
   and "target" (N, ...), batch["label"] or batch["forecast"] of each sample:
   a flare label, a wind speed, an EUV spectrum, an AR mask. Or read from
   SDO files in the reference's layout (sdo_dataset.c) batch by batch. */

AURDEF void aur_surya_samples_free(aur_surya_samples *s)
{
    if (!s) return;
    AUR_FREE(s->ts);
    AUR_FREE(s->target);
    aur_sdo_close(s->sdo);
    memset(s, 0, sizeof *s);
}

AURDEF int aur_surya_samples_from_sdo(const aur_sdo_options *o, aur_surya_samples *s)
{
    memset(s, 0, sizeof *s);
    if (!o || !o->label_path) return aur__err(AUR_EINVAL, "aur_surya_samples_from_sdo: a label table (label_path) gives the targets");
    int rc = aur_sdo_open(o, &s->sdo);
    if (rc) return rc;
    aur_sdo_info in = aur_sdo_describe(s->sdo);
    s->n = in.n, s->C = in.C, s->T = in.T, s->H = in.H, s->W = in.W, s->target_ndim = 0, s->target_size = 1;
    s->target = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)in.n, "the labels");
    for (int64_t i = 0; s->target && i < in.n; i++) {
        aur_sdo_sample one = {NULL, NULL, NULL, NULL, NULL, 0};
        aur_sdo_read(s->sdo, i, &one); /* no outputs: only the label, no file read */
        s->target[i] = (aur_real)one.label;
    }
    if (!s->target) aur_surya_samples_free(s), rc = AUR_ENOMEM;
    return rc;
}

/* One F32 entry of the file into a new host buffer. */
static int aur__samples_read(const aur_st_file *f, const aur_st_tensor *e, aur_real **out)
{
    *out = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(e->numel ? e->numel : 1), "a sample set");
    if (!*out) return AUR_ENOMEM;
    return aur_st_read(f, e, AUR_F32, *out);
}

AURDEF int aur_surya_samples_load(const char *path, aur_surya_samples *s)
{
    memset(s, 0, sizeof *s);
    aur_st_file *f = aur_st_open(path);
    if (!f) return AUR_EFORMAT;
    const aur_st_tensor *ts = aur_st_find(f, "ts"), *y = aur_st_find(f, "target");
    int rc = 0;
    if (!ts || ts->ndim != 5 || ts->shape[0] < 1)
        rc = aur__err(AUR_EFORMAT, "%s: tensor 'ts' must be (N, C, T, H, W) with N >= 1 (%s)", path, ts ? "another shape" : "missing");
    else if (!y || y->ndim < 1 || y->shape[0] != ts->shape[0])
        rc = aur__err(AUR_EFORMAT, "%s: tensor 'target' must be (N, ...) with N = %lld, as 'ts' (%s)", path, (long long)ts->shape[0],
                      y ? "another first dimension" : "missing");
    if (!rc) {
        s->n = ts->shape[0], s->C = (int)ts->shape[1], s->T = (int)ts->shape[2], s->H = (int)ts->shape[3], s->W = (int)ts->shape[4];
        s->target_ndim = y->ndim - 1;
        for (int d = 1; d < y->ndim; d++) s->target_shape[d - 1] = y->shape[d];
        s->target_size = y->numel / s->n;
        rc = aur__samples_read(f, ts, &s->ts);
    }
    if (!rc) rc = aur__samples_read(f, y, &s->target);
    for (int64_t i = 0; !rc && i < s->n * s->C * s->T * (int64_t)s->H * s->W; i++)
        if (!isfinite(s->ts[i])) rc = aur__err(AUR_EFORMAT, "%s: 'ts' holds a non-finite value (sample %lld)", path,
                                               (long long)(i / ((int64_t)s->C * s->T * s->H * s->W)));
    for (int64_t i = 0; !rc && i < s->n * s->target_size; i++)
        if (!isfinite(s->target[i])) rc = aur__err(AUR_EFORMAT, "%s: 'target' holds a non-finite value (sample %lld)", path,
                                                   (long long)(i / s->target_size));
    aur_st_close(f);
    if (rc) aur_surya_samples_free(s);
    return rc;
}

AURDEF int aur_surya_samples_save(const aur_surya_samples *s, const char *path)
{
    if (!s->ts) return aur__err(AUR_EINVAL, "%s: a sample set read from SDO files is not held in memory; nothing to save", path);
    int64_t ts_shape[5] = {s->n, s->C, s->T, s->H, s->W}, y_shape[AUR_MAX_DIMS] = {s->n};
    for (int d = 0; d < s->target_ndim; d++) y_shape[d + 1] = s->target_shape[d];
    aur_tensor ts, y; /* views of the buffers, for the writer */
    memset(&ts, 0, sizeof ts);
    memset(&y, 0, sizeof y);
    ts.ndim = 5, ts.numel = s->n * ts_shape[1] * ts_shape[2] * ts_shape[3] * ts_shape[4], ts.data = s->ts;
    y.ndim = 1 + s->target_ndim, y.numel = s->n * s->target_size, y.data = s->target;
    memcpy(ts.shape, ts_shape, sizeof ts_shape);
    memcpy(y.shape, y_shape, sizeof y_shape);
    aur_st_writer *w = aur_st_writer_create();
    int rc = w ? aur_st_writer_add(w, "ts", &ts) : AUR_ENOMEM;
    if (!rc) rc = aur_st_writer_add(w, "target", &y);
    if (!rc) rc = aur_st_writer_write(w, path);
    aur_st_writer_free(w);
    return rc;
}

/* Sample i's inputs from its files, straight into out (through a float buffer when aur_real is double). */
static int aur__samples_read_sdo(const aur_surya_samples *s, int64_t i, aur_real *out, int64_t per)
{
    int direct = sizeof(aur_real) == sizeof(float);
    float *buf = direct ? (float *)(void *)out : (float *)aur__malloc(sizeof(float) * (size_t)per, "an SDO sample");
    if (!buf) return AUR_ENOMEM;
    aur_sdo_sample one = {buf, NULL, NULL, NULL, NULL, 0};
    int rc = aur_sdo_read(s->sdo, i, &one);
    if (!direct) {
        for (int64_t k = 0; !rc && k < per; k++) out[k] = (aur_real)buf[k];
        AUR_FREE(buf);
    }
    return rc;
}

/* Stacks samples idx[0..B) into ts (B, C, T, H, W) and target (B, ...) on the tape. */
static int aur__samples_batch(aur_tape *t, const aur_surya_samples *s, const int64_t *idx, int B, aur_tensor **ts, aur_tensor **target)
{
    int64_t per = (int64_t)s->C * s->T * s->H * s->W, y_shape[AUR_MAX_DIMS] = {B};
    for (int d = 0; d < s->target_ndim; d++) y_shape[d + 1] = s->target_shape[d];
    *ts = aur_tensor_new(t, AUR_CPU, aur_shape5(B, s->C, s->T, s->H, s->W));
    *target = aur_tensor_new(t, AUR_CPU, aur_shapev(1 + s->target_ndim, y_shape));
    if (!*ts || !*target) return AUR_ENOMEM;
    for (int b = 0; b < B; b++) {
        aur_real *at = aur_tensor_f32(*ts) + b * per;
        if (!s->sdo) memcpy(at, s->ts + idx[b] * per, sizeof(aur_real) * (size_t)per);
        else {
            int rc = aur__samples_read_sdo(s, idx[b], at, per);
            if (rc) return rc;
        }
        memcpy(aur_tensor_f32(*target) + b * s->target_size, s->target + idx[b] * s->target_size, sizeof(aur_real) * (size_t)s->target_size);
    }
    return 0;
}

/* ==== Surya: a run's config ====
   The keys of the reference's downstream config.yaml files, as JSON, each
   read and checked before anything is built; keys the reference reads that
   change nothing here (W&B, data workers, DDP) are accepted and said at the
   start. Added here: task, seed, device, clip_grad_norm, keep_last,
   overwrite_output_dir, alarm, lora_config.modules_to_save (PEFT's key),
   optimizer.{name, weight_decay, scheduler, head_lr_multiplier}. */

#define AUR__SURYA_MAX_BATCH 512
#define AUR__SURYA_MAX_CHANNELS 64

enum { AUR__SURYA_FLARE = 0, AUR__SURYA_WIND = 1, AUR__SURYA_EUV = 2, AUR__SURYA_AR = 3 };
static const char *const aur__surya_task_names[] = {"flare", "wind", "euv", "ar", NULL};

typedef struct aur__surya_tune {
    int task;
    aur_surya_config cfg;
    int use_lora, freeze_backbone, autocast;
    aur_lora_config lora;
    aur_lora_report lora_rep;
    aur_surya_samples train, val; /* val.n == 0: evaluated on the training set */
    char train_path[1024], val_path[1024], pretrained[1024];
    int batch, iters_train, iters_valid, epochs, validate_every, save_every;
    double head_lr_multiplier;
    int64_t steps_per_epoch;
    char unused[512]; /* keys of the reference read here but without effect, said at the start */
    aur__trainer_task hooks; /* the trainer's task (aur__surya_hooks) */
} aur__surya_tune;

static aur__surya_tune *aur__surya_tune_of(const aur_trainer *tr) { return (aur__surya_tune *)tr->task_ctx; }

static void aur__surya_tune_free(void *ctx)
{
    aur__surya_tune *r = (aur__surya_tune *)ctx;
    if (!r) return;
    aur_surya_samples_free(&r->train);
    aur_surya_samples_free(&r->val);
    aur_lora_report_free(&r->lora_rep);
    AUR_FREE(r);
}

/* Notes a key that is read but changes nothing here. */
static void aur__surya_unused(aur__surya_tune *r, const char *key)
{
    size_t n = strlen(r->unused);
    if (n + strlen(key) + 3 < sizeof r->unused) snprintf(r->unused + n, sizeof r->unused - n, "%s%s", n ? ", " : "", key);
}


/* A key whose only value here is `only` (what finetune.py does otherwise is not done here: refused, not ignored). */
static int aur__surya_only(const cJSON *j, const char *key, double only, const char *why)
{
    const cJSON *v = aur__json_at(j, key);
    if (!v || (cJSON_IsNumber(v) && v->valuedouble == only)) return 0;
    char found[64];
    return aur__err(AUR_EUNSUPPORTED, "Surya run config: %s is %s; only %g here: %s", key, aur__json_found(v, found, sizeof found), only, why);
}

/* The top-level keys: the run's length, output and numerics. */
static int aur__surya_top(aur_trainer *tr, aur__surya_tune *r, const cJSON *j)
{
    static const char *const keys[] = {"job_id", "task", "data", "model", "optimizer", "classifier_metrics", "metrics", "pretrained_path",
                                       "from_checkpoint", "use_latitude_in_learned_flow", "loss_weights", "rollout_steps",
                                       "num_mask_aia_channels", "drop_hmi_probability", "drop_hmi_probablity", "validate_after_epoch",
                                       "wandb_log_train_after", "wandb_project", "visualization_samples", "save_wt_after_iter",
                                       "path_experiment", "iters_per_epoch_train", "iters_per_epoch_valid", "iters_grad_accum", "dtype",
                                       "parallelism", "freeze_backbone", "seed", "device", "clip_grad_norm", "keep_last",
                                       "overwrite_output_dir", "alarm", NULL};
    static const char *const dtypes[] = {"float32", "bfloat16", NULL};
    static const char *const akeys[] = {"window", "z", "skip", NULL};
    static const char *const devices[] = {"cpu", "cuda", NULL};
    /* W&B, the metrics lists (every metric of the task is logged) and DDP */
    static const char *const reference_only[] = {"job_id", "classifier_metrics", "metrics", "wandb_project", "visualization_samples",
                                                 "parallelism", NULL};
    const char *W = "Surya run config", *task = NULL, *out = "checkpoints", *pre = NULL, *A = "Surya run config: alarm";
    int64_t seed = 0;
    int rc = aur__json_keys(j, W, keys), window = 50, skip = 1, device = AUR_CPU, lat = 0, n = 0;
    double z = 6;
    r->iters_train = r->iters_valid = INT_MAX, r->validate_every = 1, r->save_every = INT_MAX;
    tr->log_every = 1, tr->keep_last = 2;
    if (!rc) rc = aur__json_str(aur__json_at(j, "task"), W, &task);
    if (!rc && !task) rc = aur__err(AUR_EINVAL, "Surya run config: 'task' is required: flare, wind, euv or ar (the reference picks it by "
                                    "the finetune.py script run)");
    if (!rc) rc = aur__json_enum(aur__json_at(j, "task"), W, aur__surya_task_names, &r->task);
    if (!rc) rc = aur__json_str(aur__sj(aur__json_at(j, "pretrained_path")), W, &pre);
    if (!rc) rc = aur__json_str(aur__json_at(j, "path_experiment"), W, &out);
    if (!rc) rc = aur__json_int(aur__json_at(j, "iters_per_epoch_train"), W, 1, INT_MAX, &r->iters_train);
    if (!rc) rc = aur__json_int(aur__json_at(j, "iters_per_epoch_valid"), W, 1, INT_MAX, &r->iters_valid);
    if (!rc) rc = aur__json_int(aur__json_at(j, "validate_after_epoch"), W, 1, INT_MAX, &r->validate_every);
    if (!rc) rc = aur__json_int(aur__json_at(j, "save_wt_after_iter"), W, 1, INT_MAX, &r->save_every);
    if (!rc) rc = aur__json_int(aur__json_at(j, "wandb_log_train_after"), W, 1, INT_MAX, &tr->log_every);
    if (!rc) rc = aur__json_enum(aur__json_at(j, "dtype"), W, dtypes, &r->autocast);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "use_latitude_in_learned_flow"), W, &lat);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "freeze_backbone"), W, &r->freeze_backbone);
    /* what finetune.py would do differently: refused rather than silently not done */
    if (!rc) rc = aur__surya_only(j, "rollout_steps", 0, "the downstream heads predict one lead time");
    if (!rc) rc = aur__surya_only(j, "num_mask_aia_channels", 0, "channels are not masked");
    if (!rc) rc = aur__surya_only(j, "drop_hmi_probability", 0, "HMI channels are not dropped");
    if (!rc) rc = aur__surya_only(j, "drop_hmi_probablity", 0, "HMI channels are not dropped");
    if (!rc) rc = aur__surya_only(j, "iters_grad_accum", 1, "gradient accumulation is not built yet (raise data.batch_size)");
    if (!rc && aur__json_at(j, "loss_weights")) rc = aur__json_len(aur__json_at(j, "loss_weights"), W, 0, 0, "loss_weights (per-channel weights are not used by the downstream heads)", &n);
    if (!rc && aur__sj(aur__json_at(j, "from_checkpoint")))
        rc = aur__err(AUR_EUNSUPPORTED, "Surya run config: from_checkpoint: continue a run with aurora-train CONFIG --resume [CHECKPOINT_DIR]");
    /* added here */
    if (!rc) rc = aur__json_i64(aur__json_at(j, "seed"), W, 0, 9007199254740992.0, &seed);
    if (!rc) rc = aur__json_enum(aur__json_at(j, "device"), W, devices, &device);
    if (!rc) rc = aur__json_num(aur__json_at(j, "clip_grad_norm"), W, 0, 1e30, &tr->clip);
    if (!rc) rc = aur__json_int(aur__json_at(j, "keep_last"), W, 1, 1e6, &tr->keep_last);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "overwrite_output_dir"), W, &tr->overwrite_output_dir);
    const cJSON *alarm = aur__json_at(j, "alarm");
    if (!rc && alarm) rc = aur__json_keys(alarm, A, akeys);
    if (!rc) rc = aur__json_int(aur__json_at(alarm, "window"), A, 2, AUR_ALARM_WINDOW, &window);
    if (!rc) rc = aur__json_num(aur__json_at(alarm, "z"), A, 0.1, 1e6, &z);
    if (!rc) rc = aur__json_flag(aur__json_at(alarm, "skip"), A, &skip);
    if (!rc && device == AUR_CUDA && !aur_cuda_available())
        rc = aur__err(AUR_EUNSUPPORTED, "Surya run config: device \"cuda\", but no GPU is visible or the program was built without CUDA");
    for (int k = 0; reference_only[k]; k++)
        if (aur__json_at(j, reference_only[k])) aur__surya_unused(r, reference_only[k]);
    if (!rc && !out[0]) rc = aur__json_bad(aur__json_at(j, "path_experiment"), W, "path_experiment", "a directory name");
    if (!rc) rc = aur__path(tr, out, tr->out_dir, sizeof tr->out_dir);
    if (!rc && pre) rc = aur__path(tr, pre, r->pretrained, sizeof r->pretrained);
    r->cfg.flow_latitude = lat;
    tr->device = (aur_device)device, tr->seed = (uint64_t)seed;
    aur_grad_alarm_init(&tr->alarm, window, z, skip);
    return rc;
}

/* "model": the architecture (aur_surya_config_yaml), freeze_backbone, use_lora, lora_config. */
static int aur__surya_model_config(aur__surya_tune *r, const cJSON *j)
{
    const char *W = "Surya run config: model", *type = NULL;
    int freeze = 0;
    if (!j) return aur__err(AUR_EINVAL, "Surya run config: the 'model' section is required");
    aur_surya_preset("surya-1.0", &r->cfg);
    int lat = r->cfg.flow_latitude, rc = aur__json_str(aur__json_at(j, "model_type"), W, &type);
    if (!rc && type && strcmp(type, "spectformer") && strcmp(type, "spectformer_lora"))
        rc = aur__err(AUR_EUNSUPPORTED, "Surya run config: model.model_type '%s': only the Surya models (spectformer, spectformer_lora), "
                      "not the reference's CNN and UNet baselines", type);
    if (!rc) rc = aur_surya_config_yaml(j, aur__surya_task_names[r->task], &r->cfg);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "freeze_backbone"), W, &freeze);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "use_lora"), W, &r->use_lora);
    r->freeze_backbone |= freeze;
    r->cfg.flow_latitude = lat;
    r->lora = aur_lora_defaults();
    const cJSON *lc = aur__json_at(j, "lora_config");
    char *warnings = NULL;
    if (!rc && r->use_lora && !lc) rc = aur__err(AUR_EINVAL, "Surya run config: use_lora is true but model.lora_config is missing");
    if (!rc && r->use_lora) rc = aur_lora_config_json(lc, &r->lora, &warnings);
    if (warnings && warnings[0]) fprintf(stderr, "warning: Surya run config: model.lora_config: %s\n", warnings);
    AUR_FREE(warnings);
    return rc;
}

/* The reference's own data: an index CSV of SDO NetCDF files (scaled by
   scalers_path, files under sdo_data_root_path), labelled by flare_data_path,
   as its finetune.py builds SolarFlareDataset. */
typedef struct aur__surya_sdo_keys {
    const char *const *channels;
    int n_channels, deltas[64], n_deltas;
} aur__surya_sdo_keys;

static int aur__surya_sdo_set(aur_trainer *tr, const aur__surya_tune *r, const cJSON *j, const char *index, const aur__surya_sdo_keys *k,
                              aur_surya_samples *s)
{
    const char *W = "Surya run config: data", *scalers = NULL, *labels = NULL, *root = NULL;
    char scalers_p[1024], labels_p[1024], root_p[1024];
    int target = 0, pooling = 1;
    if (r->task != AUR__SURYA_FLARE)
        return aur__err(AUR_EUNSUPPORTED, "Surya run config: data: %s is an index CSV of SDO files; of the reference's label tables only the "
                        "flare one (flare_data_path) is read here, not task %s's: give a sample set (.safetensors with 'ts' and 'target')",
                        index, aur__surya_task_names[r->task]);
    int rc = aur__json_str(aur__json_at(j, "scalers_path"), W, &scalers);
    if (!rc) rc = aur__json_str(aur__json_at(j, "flare_data_path"), W, &labels);
    if (!rc) rc = aur__json_str(aur__sj(aur__json_at(j, "sdo_data_root_path")), W, &root);
    if (!rc && (!scalers || !labels || k->n_deltas < 1 || !aur__json_at(j, "time_delta_target_minutes")))
        rc = aur__err(AUR_EINVAL, "Surya run config: data: reading the index CSV %s needs scalers_path, flare_data_path, time_delta_input_minutes "
                      "and time_delta_target_minutes", index);
    if (!rc) rc = aur__json_int(aur__json_at(j, "time_delta_target_minutes"), W, -100000000, 100000000, &target);
    if (!rc) rc = aur__json_int(aur__json_at(j, "pooling"), W, 1, 1024, &pooling);
    if (!rc) rc = aur__path(tr, scalers, scalers_p, sizeof scalers_p);
    if (!rc) rc = aur__path(tr, labels, labels_p, sizeof labels_p);
    if (!rc && root) rc = aur__path(tr, root, root_p, sizeof root_p);
    if (rc) return rc;
    aur_sdo_options o = {index, root ? root_p : NULL, scalers_p, labels_p, "label_max", k->channels, k->n_channels, k->deltas, k->n_deltas,
                         target, 0, pooling};
    return aur_surya_samples_from_sdo(&o, s);
}

/* The data keys an index CSV reads. */
static int aur__surya_sdo_key(const char *key)
{
    static const char *const used[] = {"scalers_path", "sdo_data_root_path", "flare_data_path", "pooling", NULL};
    for (int k = 0; used[k]; k++)
        if (!strcmp(key, used[k])) return 1;
    return 0;
}

static int aur__is_csv(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && !strcmp(path + n - 4, ".csv");
}

/* One sample set: a safetensors file of "ts" and "target", or the reference's index CSV. */
static int aur__surya_data_file(aur_trainer *tr, const aur__surya_tune *r, const cJSON *j, const cJSON *v, const aur__surya_sdo_keys *k,
                                char *path, size_t size, aur_surya_samples *s)
{
    const char *W = "Surya run config: data", *name = NULL;
    int rc = aur__json_str(v, W, &name);
    if (!rc && (!name || !name[0])) rc = aur__json_bad(v, W, aur__json_key(v), "a sample set file (.safetensors) or an index CSV");
    if (!rc) rc = aur__path(tr, name, path, size);
    if (rc) return rc;
    return aur__is_csv(path) ? aur__surya_sdo_set(tr, r, j, path, k, s) : aur_surya_samples_load(path, s);
}

/* A sample set fits the model: channels, times, image size, and the target's shape for the task. */
static int aur__surya_check_set(const aur__surya_tune *r, const aur_surya_samples *s, const char *path)
{
    const aur_surya_config *c = &r->cfg;
    if (s->C != c->in_chans || s->T != c->time_dim || s->H != c->img_size || s->W != c->img_size)
        return aur__err(AUR_EFORMAT, "%s: 'ts' is (N, %d, %d, %d, %d) but the model takes (N, in_channels %d, time_dim %d, img_size %d, %d)", path,
                        s->C, s->T, s->H, s->W, c->in_chans, c->time_dim, c->img_size, c->img_size);
    int64_t want = r->task == AUR__SURYA_AR ? (int64_t)c->out_chans * s->H * s->W : r->task == AUR__SURYA_EUV ? c->num_outputs : 1;
    if (s->target_size != want)
        return aur__err(AUR_EFORMAT, "%s: 'target' has %lld values per sample; task %s needs %lld", path, (long long)s->target_size,
                        aur__surya_task_names[r->task], (long long)want);
    if (r->task == AUR__SURYA_FLARE || r->task == AUR__SURYA_AR)
        for (int64_t i = 0; i < s->n * s->target_size; i++)
            if (s->target[i] < 0 || s->target[i] > 1)
                return aur__err(AUR_EFORMAT, "%s: 'target' of sample %lld is %g; a %s target lies in [0, 1]", path, (long long)(i / s->target_size),
                                (double)s->target[i], r->task == AUR__SURYA_AR ? "mask" : "flare label");
    return 0;
}

/* "data": the sample sets and the batch; the reference's time and channel keys must agree with the model. */
static int aur__surya_data(aur_trainer *tr, aur__surya_tune *r, const cJSON *j)
{
    static const char *const keys[] = {"train_data_path", "valid_data_path", "batch_size", "channels", "time_delta_input_minutes",
                                       "time_delta_target_minutes", "n_input_timestamps", "num_data_workers", "prefetch_factor",
                                       "pooling", "random_vert_flip", "scalers_path", "sdo_data_root_path", "flare_data_path",
                                       "solarwind_train_index", "solarwind_valid_index", "train_solar_data_path", "valid_solar_data_path",
                                       "ar_index_train", "ar_index_valid", "ar_index_test", "ds_match_direction", "ds_normalize",
                                       "ds_scaler", "ds_time_column", "ds_time_delta_in_out", "ds_time_tolerance", NULL};
    static const char *const index_keys[] = {"scalers_path", "sdo_data_root_path", "flare_data_path", "solarwind_train_index",
                                             "solarwind_valid_index", "train_solar_data_path", "valid_solar_data_path", "ar_index_train",
                                             "ar_index_valid", "ar_index_test", "ds_match_direction", "ds_normalize", "ds_scaler",
                                             "ds_time_column", "ds_time_delta_in_out", "ds_time_tolerance", "num_data_workers",
                                             "prefetch_factor", "pooling", NULL};
    /* helio.py's channels when the config names none */
    static const char *const default_channels[] = {"0094", "0131", "0171", "0193", "0211", "0304", "0335", "hmi"};
    const char *W = "Surya run config: data";
    char names[AUR__SURYA_MAX_CHANNELS][AUR_NAME_LEN];
    const char *name_of[AUR__SURYA_MAX_CHANNELS];
    double deltas[64];
    int flip = 0, n_names = -1, n_deltas = -1, n_times = -1;
    r->batch = 1;
    if (!j) return aur__err(AUR_EINVAL, "Surya run config: the 'data' section is required");
    int rc = aur__json_keys(j, W, keys);
    if (!rc) rc = aur__json_int(aur__json_at(j, "batch_size"), W, 1, AUR__SURYA_MAX_BATCH, &r->batch);
    if (!rc) rc = aur__json_names(aur__json_at(j, "channels"), W, names[0], AUR_NAME_LEN, AUR__SURYA_MAX_CHANNELS, &n_names);
    if (!rc) rc = aur__json_nums(aur__json_at(j, "time_delta_input_minutes"), W, deltas, 1, 64, &n_deltas);
    if (!rc) rc = aur__json_int(aur__json_at(j, "n_input_timestamps"), W, 1, 64, &n_times);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "random_vert_flip"), W, &flip);
    if (!rc && flip) rc = aur__err(AUR_EUNSUPPORTED, "Surya run config: data.random_vert_flip: flipping is not done here; set it false");
    const aur_surya_config *c = &r->cfg;
    if (!rc && aur__json_at(j, "channels") && n_names != c->in_chans)
        rc = aur__err(AUR_EINVAL, "Surya run config: data.channels lists %d channels but model.in_channels is %d", n_names, c->in_chans);
    if (!rc && aur__json_at(j, "time_delta_input_minutes") && n_deltas != c->time_dim)
        rc = aur__err(AUR_EINVAL, "Surya run config: data.time_delta_input_minutes has %d times but model.time_embedding.time_dim is %d", n_deltas,
                      c->time_dim);
    if (!rc && aur__json_at(j, "n_input_timestamps") && n_times != c->time_dim)
        rc = aur__err(AUR_EINVAL, "Surya run config: data.n_input_timestamps is %d but model.time_embedding.time_dim is %d", n_times, c->time_dim);
    const cJSON *train = aur__json_at(j, "train_data_path"), *val = aur__json_at(j, "valid_data_path");
    if (!rc && !train) rc = aur__err(AUR_EINVAL, "Surya run config: data.train_data_path is required");
    const char *tname = cJSON_IsString(train) ? train->valuestring : "", *vname = cJSON_IsString(val) ? val->valuestring : "";
    int sdo = aur__is_csv(tname) || aur__is_csv(vname);
    for (int k = 0; !rc && index_keys[k]; k++)
        if (aur__json_at(j, index_keys[k]) && !(sdo && aur__surya_sdo_key(index_keys[k]))) {
            char key[64];
            snprintf(key, sizeof key, "data.%s", index_keys[k]);
            aur__surya_unused(r, key); /* a sample set holds normalised inputs and targets */
        }
    aur__surya_sdo_keys keys_sdo = {name_of, n_names > 0 ? n_names : 8, {0}, n_deltas > 0 ? n_deltas : 0};
    for (int c = 0; c < AUR__SURYA_MAX_CHANNELS; c++) name_of[c] = n_names > 0 ? names[c] : c < 8 ? default_channels[c] : NULL;
    for (int k = 0; !rc && sdo && k < keys_sdo.n_deltas; k++) /* the index's times are whole minutes */
        if (deltas[k] != floor(deltas[k]) || fabs(deltas[k]) > 1e8) rc = aur__err(AUR_EINVAL, "Surya run config: data.time_delta_input_minutes: %g is not whole minutes", deltas[k]);
        else keys_sdo.deltas[k] = (int)deltas[k];
    if (!rc && sdo && n_names < 0 && c->in_chans != 8)
        rc = aur__err(AUR_EINVAL, "Surya run config: data.channels is not given, so the reference's 8 (0094 ... hmi) are read, but "
                      "model.in_channels is %d", c->in_chans);
    if (!rc) rc = aur__surya_data_file(tr, r, j, train, &keys_sdo, r->train_path, sizeof r->train_path, &r->train);
    if (!rc && val) rc = aur__surya_data_file(tr, r, j, val, &keys_sdo, r->val_path, sizeof r->val_path, &r->val);
    return rc;
}

/* "optimizer": torch.optim.AdamW(lr=learning_rate) as finetune.py; the
   scripts read warm_up_steps and min_lr but schedule nothing, so the rate is
   constant unless scheduler is "cosine" (warm-up, then cosine to min_lr). */
static int aur__surya_optim_config(aur_trainer *tr, aur__surya_tune *r, const cJSON *j)
{
    static const char *const keys[] = {"learning_rate", "max_epochs", "warm_up_steps", "min_lr", "max_steps", "name", "weight_decay",
                                       "betas", "eps", "scheduler", "head_lr_multiplier", NULL};
    static const char *const names[] = {"adam", "adamw", "adafactor", NULL};
    static const char *const kinds[] = {"constant", "linear", "cosine", NULL};
    const char *W = "Surya run config: optimizer";
    int kind = AUR_ADAMW, sched = AUR_LR_CONSTANT, nb = 0;
    double min_lr = 0;
    r->epochs = 1, r->head_lr_multiplier = 1;
    int rc = j ? aur__json_keys(j, W, keys) : 0;
    if (!rc) rc = aur__json_enum(aur__json_at(j, "name"), W, names, &kind);
    aur_optim_opts o = kind == AUR_ADAM ? aur_adam_defaults() : kind == AUR_ADAFACTOR ? aur_adafactor_defaults() : aur_adamw_defaults();
    double betas[2] = {o.beta1, o.beta2};
    if (!rc) rc = aur__json_num(aur__json_at(j, "learning_rate"), W, 0, 10, &o.lr);
    if (!rc) rc = aur__json_int(aur__json_at(j, "max_epochs"), W, 1, INT_MAX, &r->epochs);
    if (!rc) rc = aur__json_i64(aur__json_at(j, "warm_up_steps"), W, 0, 1e12, &tr->sched.warmup_steps);
    if (!rc) rc = aur__json_num(aur__json_at(j, "min_lr"), W, 0, 10, &min_lr);
    if (!rc) rc = aur__json_i64(aur__json_at(j, "max_steps"), W, 1, 1e12, &tr->steps);
    if (!rc) rc = aur__json_num(aur__json_at(j, "weight_decay"), W, 0, 10, &o.weight_decay);
    if (!rc) rc = aur__json_num(aur__json_at(j, "eps"), W, 0, 1, &o.eps);
    if (!rc) rc = aur__json_nums(aur__json_at(j, "betas"), W, betas, 2, 2, &nb);
    if (!rc) rc = aur__json_enum(aur__json_at(j, "scheduler"), W, kinds, &sched);
    if (!rc) rc = aur__json_num(aur__json_at(j, "head_lr_multiplier"), W, 1e-6, 1e6, &r->head_lr_multiplier);
    o.beta1 = betas[0], o.beta2 = betas[1];
    tr->opt = o;
    tr->sched.kind = (aur_lr_kind)sched;
    tr->sched.final_factor = o.lr > 0 ? fmin(1, min_lr / o.lr) : 0;
    return rc;
}

/* The run's length and rhythm from the epochs and the training set:
   an epoch is min(iters_per_epoch_train, N / batch_size) steps (drop_last). */
static int aur__surya_schedule(aur_trainer *tr, aur__surya_tune *r)
{
    int64_t batches = r->train.n / r->batch;
    if (batches < 1)
        return aur__err(AUR_EINVAL, "Surya run config: data.batch_size %d is larger than the %lld training samples of %s", r->batch,
                        (long long)r->train.n, r->train_path);
    if (r->val.n && r->val.n < r->batch)
        return aur__err(AUR_EINVAL, "Surya run config: data.batch_size %d is larger than the %lld validation samples of %s", r->batch,
                        (long long)r->val.n, r->val_path);
    r->steps_per_epoch = batches < r->iters_train ? batches : r->iters_train;
    if (!tr->steps) tr->steps = r->steps_per_epoch * r->epochs; /* optimizer.max_steps (added here) overrides */
    else r->epochs = (int)((tr->steps + r->steps_per_epoch - 1) / r->steps_per_epoch);
    int64_t every = r->steps_per_epoch * r->validate_every;
    tr->eval_every = tr->plot_every = every < INT_MAX ? (int)every : INT_MAX;
    tr->save_every = r->steps_per_epoch < r->save_every ? (int)r->steps_per_epoch : r->save_every; /* each epoch, as finetune.py */
    tr->sched.total_steps = tr->steps;
    return 0;
}

/* ==== Surya: fine-tuning runs ====
   The reference's downstream_examples/{task}/finetune.py as one config-driven
   run on aurora.h's trainer loop: the same config.yaml keys (as JSON), the
   same model construction, filtered load of the pretrained weights,
   freeze_backbone and PEFT LoRA, AdamW at learning_rate, an epoch of
   min(iters_per_epoch_train, batches) steps, evaluation every
   validate_after_epoch epochs with the task's metrics. The loop, its
   checkpoints, exact resume, metrics.jsonl and TensorBoard events are the
   trainer's (src/finetune/trainer.c). */

/* The reference's configs list q_proj, k_proj, v_proj and out_proj, which name no Surya module. */
static const char *const aur__surya_lora_names = "Surya's attention modules are qkv, proj and to_dynamic_projection; its MLPs fc1 and fc2";

/* ---- one step and an evaluation ---- */

/* The samples of batch `b` of a set: training batches follow the epoch's
   shuffle (a function of seed and epoch), evaluation batches the file's order. */
static void aur__surya_batch_index(const aur_trainer *tr, int64_t step, int64_t *idx)
{
    const aur__surya_tune *r = aur__surya_tune_of(tr);
    int64_t epoch = step / r->steps_per_epoch, first = (step % r->steps_per_epoch) * r->batch;
    aur__shuffled(tr->seed, epoch, (int)r->train.n, (int)first, r->batch, idx); /* one permutation for the whole batch */
}

/* The task's loss of the model's output against the targets (reshaped to the output's shape). */
static aur_tensor *aur__surya_loss(aur_trainer *tr, aur_tensor *out, aur_tensor *target)
{
    const aur__surya_tune *r = aur__surya_tune_of(tr);
    if (!out || !target) return NULL;
    if (out->numel != target->numel) {
        char a[64], b[64];
        aur__err(AUR_EFORMAT, "Surya run: the model's output %s does not fit the targets %s", aur_shape_str(out->shape, out->ndim, a, sizeof a),
                 aur_shape_str(target->shape, target->ndim, b, sizeof b));
        return NULL;
    }
    target = aur_reshape(tr->t, target, aur_tensor_shape(out));
    /* finetune.py: BCEWithLogitsLoss for flares and AR masks, MSELoss for wind and EUV spectra */
    if (r->task == AUR__SURYA_FLARE || r->task == AUR__SURYA_AR) return aur_bce_logits_loss(tr->t, out, target, NULL);
    return aur_mse_loss(tr->t, out, target);
}

static aur_tensor *aur__surya_forward_loss(aur_trainer *tr, const aur_surya_samples *s, const int64_t *idx, int B, aur_tensor **out)
{
    const aur__surya_tune *r = aur__surya_tune_of(tr);
    aur_tensor *ts = NULL, *target = NULL;
    if (aur__samples_batch(tr->t, s, idx, B, &ts, &target)) return NULL;
    aur_tape_set_autocast(tr->t, r->autocast); /* dtype bfloat16: the reference's autocast around the whole model */
    aur_tensor *y = aur_surya_forward(tr->m, tr->t, ts);
    aur_tape_set_autocast(tr->t, 0);
    if (out) *out = y;
    return aur__surya_loss(tr, y, target);
}

static aur_tensor *aur__surya_train_loss(aur_trainer *tr, int64_t step)
{
    int64_t idx[512];
    aur__surya_batch_index(tr, step, idx);
    return aur__surya_forward_loss(tr, &aur__surya_tune_of(tr)->train, idx, aur__surya_tune_of(tr)->batch, NULL);
}

/* The evaluation set's batches as finetune.py's evaluate_model sees them:
   whole batches (drop_last), at most iters_per_epoch_valid of them. */
static int64_t aur__surya_eval_batches(const aur__surya_tune *r, const aur_surya_samples *s)
{
    int64_t n = s->n / r->batch;
    return n < r->iters_valid ? n : r->iters_valid;
}

static int aur__surya_eval(aur_trainer *tr, double *loss, double *metrics)
{
    aur__surya_tune *r = aur__surya_tune_of(tr);
    const aur_surya_samples *s = r->val.n ? &r->val : &r->train;
    int64_t nb = aur__surya_eval_batches(r, s), per = s->target_size, n = nb * r->batch * per;
    aur_real *pred = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(2 * n), "the evaluation's predictions"), *y = pred ? pred + n : NULL;
    if (!pred) return AUR_ENOMEM;
    double sum = 0;
    int rc = 0;
    for (int64_t b = 0; b < nb && !rc; b++) {
        int64_t idx[512];
        for (int k = 0; k < r->batch; k++) idx[k] = b * r->batch + k;
        aur_tape_reset(tr->t);
        aur_tensor *out = NULL, *l = aur__surya_forward_loss(tr, s, idx, r->batch, &out);
        if (!l) {
            rc = AUR_EINVAL;
            break;
        }
        sum += aur__value(l);
        int probability = r->task == AUR__SURYA_FLARE || r->task == AUR__SURYA_AR;
        aur_tensor *p = probability ? aur_sigmoid(tr->t, out) : out;
        rc = p ? aur_tensor_get(p, pred + b * r->batch * per, r->batch * per) : AUR_EINVAL;
        memcpy(y + b * r->batch * per, s->target + idx[0] * per, sizeof(aur_real) * (size_t)(r->batch * per));
    }
    *loss = nb ? sum / (double)nb : NAN;
    if (!rc && r->task == AUR__SURYA_FLARE) aur_binary_scores(pred, y, n, metrics);
    else if (!rc && r->task == AUR__SURYA_AR) aur_segmentation_scores(pred, y, n, metrics);
    else if (!rc) aur_regression_scores(pred, y, n, metrics);
    AUR_FREE(pred);
    return rc;
}

/* ---- what a run shows and keeps ---- */

/* ar_masks.png: the first evaluation samples' target masks beside the predicted probabilities. */
static int aur__surya_plot(aur_trainer *tr)
{
    aur__surya_tune *r = aur__surya_tune_of(tr);
    if (r->task != AUR__SURYA_AR) return 0;
    const aur_surya_samples *s = r->val.n ? &r->val : &r->train;
    int n = s->n < 3 ? (int)s->n : 3, H = s->H, W = s->W;
    int64_t hw = (int64_t)H * W;
    float *buf = (float *)aur__malloc(sizeof(float) * (size_t)(2 * n * hw), "the mask figure");
    if (!buf) return AUR_ENOMEM;
    const float *maps[6];
    const char *titles[6] = {"target 0", "predicted 0", "target 1", "predicted 1", "target 2", "predicted 2"};
    int rc = 0;
    aur_tape_reset(tr->t);
    aur_tape_set_grad(tr->t, 0);
    aur_tape_set_training(tr->t, 0);
    for (int i = 0; i < n && !rc; i++) {
        int64_t idx = i;
        aur_tensor *out = NULL;
        aur_tensor *l = aur__surya_forward_loss(tr, s, &idx, 1, &out);
        aur_tensor *p = l ? aur_sigmoid(tr->t, out) : NULL;
        aur_real *v = p ? aur_tensor_f32(p) : NULL;
        if (!v) rc = AUR_EINVAL;
        for (int64_t k = 0; v && k < hw; k++) buf[(2 * i) * hw + k] = (float)s->target[i * s->target_size + k], buf[(2 * i + 1) * hw + k] = (float)v[k];
        maps[2 * i] = buf + 2 * i * hw, maps[2 * i + 1] = buf + (2 * i + 1) * hw;
    }
    aur_tape_reset(tr->t);
    char path[1100], title[160];
    snprintf(path, sizeof path, "%s/ar_masks.png", tr->out_dir);
    snprintf(title, sizeof title, "active-region masks after %lld steps (evaluation samples 0-%d)", (long long)tr->step, n - 1);
    int scale = W >= 256 ? 1 : 256 / W;
    if (!rc) rc = aur_plot_maps(path, maps, titles, 2 * n, H, W, scale, 0, 1, 0, title);
    AUR_FREE(buf);
    return rc;
}

/* A checkpoint of a LoRA run also holds the adapter in PEFT's format
   (adapter_config.json, adapter_model.safetensors): PeftModel.from_pretrained
   reads the checkpoint directory as it is. */
static int aur__surya_save(const aur_trainer *tr, const char *dir)
{
    const aur__surya_tune *r = aur__surya_tune_of(tr);
    return r->use_lora ? aur_lora_save(tr->m, &r->lora, dir) : 0;
}

static void aur__surya_print_data(const aur_trainer *tr, FILE *out)
{
    const aur__surya_tune *r = aur__surya_tune_of(tr);
    const aur_surya_samples *s = &r->train;
    fprintf(out, "task %s: %lld training samples (%d channels, %d times, %dx%d) from %s", aur__surya_task_names[r->task],
            (long long)s->n, s->C, s->T, s->H, s->W, r->train_path);
    if (s->sdo) fprintf(out, " (%lld SDO files, each checked)", (long long)aur_sdo_describe(s->sdo).files);
    fprintf(out, "; ");
    if (r->val.n) fprintf(out, "%lld validation samples from %s\n", (long long)r->val.n, r->val_path);
    else fprintf(out, "no validation set: evaluated on the training samples\n");
    fprintf(out, "batch %d, %lld steps per epoch, %d epochs (%lld steps); evaluation every %d epoch%s on %lld batches\n", r->batch,
            (long long)r->steps_per_epoch, r->epochs, (long long)tr->steps, r->validate_every, r->validate_every > 1 ? "s" : "",
            (long long)aur__surya_eval_batches(r, r->val.n ? &r->val : &r->train));
    if (r->unused[0]) fprintf(out, "read but without effect here: %s\n", r->unused);
    if (r->use_lora) aur_lora_report_print(&r->lora_rep, out);
    if (r->use_lora && r->lora_rep.n_unmatched) fprintf(out, "LoRA: %s\n", aur__surya_lora_names);
}

/* The loop's hooks, the same for every task but for the metrics it logs (aur__surya_eval's order). */
static const char *const aur__surya_metrics[4][AUR__MAX_METRICS] = {
    {"accuracy", "precision", "recall", "f1", "tss", "hss"}, {"mae", "rmse", "r2"}, {"mae", "rmse", "r2"}, {"iou", "dice"}};

static void aur__surya_hooks(aur__surya_tune *r)
{
    aur__trainer_task h = {aur__surya_train_loss, aur__surya_eval, 0, {0}, aur__surya_plot, aur__surya_save, aur__surya_print_data,
                           aur__surya_tune_free};
    while (h.n_metrics < AUR__MAX_METRICS && aur__surya_metrics[r->task][h.n_metrics])
        h.metric_names[h.n_metrics] = aur__surya_metrics[r->task][h.n_metrics], h.n_metrics++;
    r->hooks = h;
}

/* ---- building the run ---- */

/* The head's parameters, its own optimiser group at head_lr_multiplier x
   the rate: the class token and every lora_config.modules_to_save module
   (the name as a whole component of the parameter's, PEFT's rule). */
static char *aur__surya_head_patterns(const aur__surya_tune *r)
{
    aur__buf b;
    memset(&b, 0, sizeof b);
    aur__buf_printf(&b, "cls_token");
    for (int i = 0; i < r->lora.n_modules_to_save; i++)
        aur__buf_printf(&b, ",%s.*,*.%s.*", r->lora.modules_to_save[i], r->lora.modules_to_save[i]);
    if (b.failed) AUR_FREE(b.p);
    return b.failed ? NULL : b.p;
}

/* finetune.py's get_model and apply_peft_lora: the model, the pretrained
   weights loaded where names and shapes match, freeze_backbone ("embedding"
   or "backbone" in a name), then PEFT's freezing (the adapters and
   modules_to_save train). The class token is a bare parameter, which
   modules_to_save cannot name: it trains with the head. */
static int aur__surya_build(aur_trainer *tr, aur__surya_tune *r)
{
    if (!(tr->m = aur_surya_declare_model(&r->cfg))) return AUR_EINVAL;
    int rc = r->use_lora ? aur_lora_declare(tr->m, &r->lora, &r->lora_rep) : 0;
    if (rc) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", aur_last_error());
        return aur__err(rc, "%s (%s)", msg, aur__surya_lora_names);
    }
    if (!rc) rc = aur_model_alloc(tr->m, tr->device);
    if (!rc) rc = aur_surya_init_weights(tr->m, tr->seed);
    if (!rc && r->pretrained[0]) rc = aur_load_safetensors(tr->m, r->pretrained, AUR_LOAD_FILTERED, &tr->rep);
    if (!rc && r->freeze_backbone) rc = aur_model_freeze(tr->m, "*embedding*,*backbone*") < 0 ? AUR_EINVAL : 0;
    if (!rc && r->use_lora) rc = aur_lora_freeze_base(tr->m, &r->lora);
    if (!rc && (r->use_lora || r->freeze_backbone) && aur_model_param(tr->m, "cls_token")) rc = aur_model_unfreeze(tr->m, "cls_token") < 0;
    return rc;
}

/* The optimiser over what trains: the rest, and the head at its multiple of the rate. */
static int aur__surya_optim_build(aur_trainer *tr, aur__surya_tune *r)
{
    int rc = (tr->o = aur_optim_create(tr->m, &tr->opt)) ? 0 : AUR_EINVAL;
    snprintf(tr->group_name[0], sizeof tr->group_name[0], "rest");
    tr->n_groups = 1;
    if (rc || r->head_lr_multiplier == 1) return rc;
    char *head = aur__surya_head_patterns(r);
    rc = head ? aur__trainer_group(tr, "head", head, tr->opt.lr * r->head_lr_multiplier, tr->opt.weight_decay) : AUR_ENOMEM;
    AUR_FREE(head);
    return rc;
}

AURDEF aur_trainer *aur_surya_trainer_create_json(const cJSON *config, const char *base_dir)
{
    aur_trainer *tr = aur__trainer_alloc(config, base_dir);
    aur__surya_tune *r = tr ? (aur__surya_tune *)aur__calloc(sizeof *r, "a Surya run") : NULL;
    if (!r) {
        aur_trainer_free(tr);
        return NULL;
    }
    tr->task_ctx = r;
    const cJSON *c = tr->config;
    int rc = aur__json_unique(c, "Surya run config");
    if (!rc) rc = aur__surya_top(tr, r, c);
    aur__surya_hooks(r);
    tr->task = &r->hooks;
    if (!rc) rc = aur__surya_model_config(r, aur__json_at(c, "model"));
    if (!rc) rc = aur__surya_optim_config(tr, r, aur__json_at(c, "optimizer"));
    if (!rc) rc = aur__surya_data(tr, r, aur__json_at(c, "data"));
    /* the EUV head's width is the spectra's (the reference hard-codes its 1343) */
    if (!rc && r->task == AUR__SURYA_EUV && !aur__json_at(aur__json_at(c, "model"), "num_outputs")) r->cfg.num_outputs = (int)r->train.target_size;
    if (!rc) rc = aur__surya_check_set(r, &r->train, r->train_path);
    if (!rc && r->val.n) rc = aur__surya_check_set(r, &r->val, r->val_path);
    if (!rc) rc = aur__surya_schedule(tr, r);
    if (!rc) rc = aur__surya_build(tr, r);
    if (!rc) rc = aur__surya_optim_build(tr, r);
    return aur__trainer_finish(tr, rc);
}

AURDEF aur_trainer *aur_surya_trainer_create(const char *config_path)
{
    return aur__trainer_from_file(config_path, aur_surya_trainer_create_json);
}

AURDEF int aur_surya_is_run_config(const cJSON *config)
{
    return cJSON_IsString(aur__json_at(aur__json_at(config, "model"), "model_type"));
}

#endif /* AUR__SURYA_IMPL_DONE */
