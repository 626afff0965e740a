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
