#include "../core/api.h"

/* ==== Aurora ====
   Microsoft's Aurora (microsoft/aurora v1.x): a Perceiver encoder, a 3-D
   Swin U-Net backbone and a Perceiver decoder over (levels, lat, lon).
   The parameter names are the reference's state_dict keys. */

#define AUR_MAX_VARS 64
#define AUR_MAX_STAGES 6
#define AUR_MAX_LEVELS 64
#define AUR_NAME_LEN 48

/* An ordered list of variable names. */
typedef struct aur_var_list {
    int n;
    char name[AUR_MAX_VARS][AUR_NAME_LEN];
} aur_var_list;

typedef enum aur_lora_mode { AUR_LORA_SINGLE = 0, AUR_LORA_FROM_SECOND = 1, AUR_LORA_ALL = 2 } aur_lora_mode;

/* Every constructor keyword of the reference Aurora, with its meaning.
   Start from a preset (aur_aurora_preset) and change what you need. */
typedef struct aur_aurora_config {
    aur_var_list surf_vars, static_vars, atmos_vars; /* variables the model has weights for */
    int window_size[3];                              /* Swin window (levels, lat, lon) */
    int n_stages;                                    /* len(encoder_depths) */
    int encoder_depths[AUR_MAX_STAGES], encoder_num_heads[AUR_MAX_STAGES];
    int decoder_depths[AUR_MAX_STAGES], decoder_num_heads[AUR_MAX_STAGES];
    int latent_levels;        /* Ld: 1 surface latent + Ld-1 atmospheric latents */
    int patch_size, embed_dim, num_heads; /* P, D, Perceiver heads */
    double mlp_ratio, dec_mlp_ratio;
    double drop_path, drop_rate;
    int enc_depth, dec_depth; /* Perceiver layers */
    double perceiver_ln_eps;
    int max_history_size;     /* Tmax */
    double timestep_seconds;  /* lead time of one step */
    int stabilise_level_agg;  /* ln_k/ln_q in the first encoder Perceiver layer */
    int use_lora, lora_steps;
    aur_lora_mode lora_mode;
    int n_surf_stats;         /* surf_stats: (loc, scale) overrides for surface and static variables */
    char surf_stats_name[AUR_MAX_VARS][AUR_NAME_LEN];
    double surf_stats[AUR_MAX_VARS][2];
    int autocast;             /* BF16 matrix products in the backbone */
    int n_level_condition;    /* level_condition: per-level patch embeddings and heads for these levels */
    double level_condition[AUR_MAX_LEVELS];
    int dynamic_vars, atmos_static_vars;
    aur_var_list separate_perceiver, modulation_heads, positive_surf_vars, positive_atmos_vars;
    int clamp_at_first_step, simulate_indexing_bug;
    int air_pollution, wave; /* the AuroraAirPollution / AuroraWave subclasses' extra parameters and hooks */
    unsigned checkpoint;     /* AUR_CHECKPOINT_* modules checkpointed (no numerical effect); see below */
    double band_floats;      /* the encoder and decoder take patch rows in bands of about this many
                                floats of activations (0: 2^23); no numerical effect */
} aur_aurora_config;

/* Activation checkpointing by module, as the reference's
   Aurora.configure_activation_checkpointing(module_names): each module of a
   checked kind keeps only its inputs and output, and is recomputed in
   backward (nested modules are checkpoints again inside the recomputation). */
enum {
    AUR_CHECKPOINT_ENCODER = 1,               /* Perceiver3DEncoder */
    AUR_CHECKPOINT_BACKBONE = 2,              /* Swin3DTransformerBackbone */
    AUR_CHECKPOINT_ENCODER_LAYERS = 4,        /* Basic3DEncoderLayer (its blocks, then its patch merging) */
    AUR_CHECKPOINT_DECODER_LAYERS = 8,        /* Basic3DDecoderLayer (its blocks, then its patch splitting) */
    AUR_CHECKPOINT_BLOCKS = 16,               /* Swin3DTransformerBlock */
    AUR_CHECKPOINT_DECODER = 32,              /* Perceiver3DDecoder */
    AUR_CHECKPOINT_PATCH_RECONSTRUCTION = 64, /* LinearPatchReconstruction (each decoder head) */
    AUR_CHECKPOINT_ALL = 127                  /* the reference's default module_names */
};
/* cfg->checkpoint from the reference's class names, comma-separated (e.g.
   "Swin3DTransformerBlock,Perceiver3DEncoder"); NULL or "" for the default
   (all seven), "none" for none. An unknown name is an error naming it. */
AURDEF int aur_aurora_checkpoint_modules(aur_aurora_config *cfg, const char *names);
/* A model's checkpointed modules from now on (an AUR_CHECKPOINT_* mask), as
   the reference's configure_activation_checkpointing does on a built model. */
AURDEF int aur_aurora_set_checkpoint(aur_model *m, unsigned modules);

/* Presets by name: "aurora-pretrained", "aurora-small-pretrained",
   "aurora-0.25-finetuned" (the reference's default Aurora), "aurora-12h-pretrained",
   "aurora-highres", "aurora-air-pollution", "aurora-wave"; or by the
   reference's class name ("AuroraSmallPretrained", ...). */
AURDEF int aur_aurora_preset(const char *name, aur_aurora_config *cfg);
/* The list of preset names, NULL-terminated. */
AURDEF const char *const *aur_aurora_preset_names(void);
/* Applies constructor keywords from a JSON object (the reference's Aurora(...)
   keyword arguments, e.g. {"embed_dim": 256, "use_lora": false}) on top of cfg; an unknown key or a bad value is an error naming it. */
AURDEF int aur_aurora_config_json(const struct cJSON *kwargs, aur_aurora_config *cfg);

/* Declares the parameter table of a configuration into an empty model,
   without allocating any data (for listing a 1.3 B model's table). */
AURDEF int aur_aurora_declare(aur_model *m, const aur_aurora_config *cfg);
/* An Aurora model with freshly initialised weights (the reference's
   initialisation, from seed) on a device. Owned: aur_model_free. */
AURDEF aur_model *aur_aurora_create(const aur_aurora_config *cfg, aur_device device, uint64_t seed);
/* The parameter table and statistics of cfg without any weights (listing a
   1.3 B model, checking data, planning memory). Owned: aur_model_free. */
AURDEF aur_model *aur_aurora_declare_model(const aur_aurora_config *cfg);
AURDEF const aur_aurora_config *aur_aurora_config_of(const aur_model *m);
/* Re-initialises the weights (from seed) by the reference's rules. */
AURDEF int aur_aurora_init_weights(aur_model *m, uint64_t seed);
/* Loads a checkpoint by name after the reference's adaptations: the old
   fused-head layout of pretrained files, the Wave renames, and zero-padding
   of the patch-embedding history to max_history_size. */
AURDEF int aur_aurora_load(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep);

/* ---- normalisation statistics ----
   Aurora normalises every variable with a location and scale: surface and
   static variables by name ("2t"), atmospheric ones per level ("z_500").
   Every model starts with the reference's full table; register new ones. */
AURDEF int aur_aurora_set_stats(aur_model *m, const char *key, double loc, double scale);
AURDEF int aur_aurora_get_stats(const aur_model *m, const char *key, double *loc, double *scale);
/* "850" for 850, "0_5" for 0.5: the key suffix of a level. */
AURDEF void aur_level_to_str(double level, char *buf, size_t size);

/* ---- batches ----
   Physical units. The order of the variables is the order of the model's
   inputs and outputs. A loaded or created batch owns its tensors, and
   aur_batch_free frees them with it. A prediction belongs to the tape that
   made it and lives until aur_tape_reset (the next step reuses it, so a
   step allocates nothing once the first has run); aur_batch_free on it does
   nothing, and may be called before or after the reset, but not after
   aur_tape_free. */
typedef struct aur_batch {
    int B, T, C, H, W;
    aur_var_list surf_names, static_names, atmos_names;
    aur_tensor *surf[AUR_MAX_VARS];    /* (B, T, H, W), oldest step first */
    aur_tensor *statics[AUR_MAX_VARS]; /* (H, W) */
    aur_tensor *atmos[AUR_MAX_VARS];   /* (B, T, C, H, W) */
    float *lat, *lon;                  /* (H) and (W), or (H, W) each when lat_2d / lon_2d */
    int lat_2d, lon_2d;
    double levels[AUR_MAX_LEVELS];     /* hPa, C of them */
    double *time;                      /* B UTC Unix seconds: the time of the last history step */
    double step_seconds;               /* a series' spacing of its steps, when its file says (0: the model's timestep) */
    int rollout_step;
    int owns_tensors;                  /* loaded or created batches free their tensors; predictions do not */
    int on_tape;                       /* a prediction: the tape owns all of it */
} aur_batch;

/* A batch from a safetensors file: surf/{v} (B,T,H,W), static/{v} (H,W),
   atmos/{v} (B,T,C,H,W), meta/lat, meta/lon, meta/levels, and metadata
   keys surf_vars, static_vars, atmos_vars (comma lists giving the order),
   time_unix (comma list, B values) and rollout_step. Refuses NaN/Inf,
   missing or misshapen tensors with a message naming them. Owned. */
AURDEF aur_batch *aur_batch_load(const char *path);
/* The same, keeping NaN/Inf values (AuroraWave's wave variables, or data
   that aur_aurora_check_batch should report on). */
AURDEF aur_batch *aur_batch_load_unchecked(const char *path);
AURDEF int aur_batch_save(const aur_batch *b, const char *path);

/* Weather files as one series (B = 1, every time step in time order):
   NetCDF (classic or NetCDF-4, ERA5/HRES/CAMS as the Copernicus stores
   deliver them: packed shorts or floats, time or valid_time) and local
   Zarr v2 stores (WeatherBench2), through libnetcdf (-DAUR_NETCDF,
   -lnetcdf); GRIB 1/2 on regular grids (HRES, MARS retrievals) through
   ecCodes (also -DAUR_GRIB, -leccodes), each parameter and level type a
   variable, over its valid times, levels in decreasing pressure as cfgrib
   orders them. Several files make one series: surface, atmospheric and
   static files, or consecutive times, in any mix of these formats. Every variable on the latitude-
   longitude grid is taken, renamed to Aurora's (t2m -> 2t, u10 -> 10u,
   v10 -> 10v, WeatherBench2's long names; renames "file_name=aurora,..."
   first), grouped (a level dimension: atmospheric; no time dimension, or
   z, lsm, slt: static, its first step), checked (units, one grid, one set
   of levels, evenly spaced times, each once) and put into the reference's
   conventions: latitudes decreasing, longitudes in [0, 360), levels in
   hPa. step_seconds is set. NaN (fill values) are kept. log: a summary of
   what was read, or NULL. Owned. */
AURDEF aur_batch *aur_weather_load(const char *const *paths, int n, const char *renames, FILE *log);
/* A safetensors batch or series (one file), or weather files as above. */
AURDEF aur_batch *aur_batch_load_files(const char *const *paths, int n, const char *renames, FILE *log);

/* A series opened for reading window by window: one safetensors series, or
   weather files as aur_weather_load reads them (the same names, checks and
   conventions). Opening reads and checks the names, grid, levels and times
   and reads the static fields; a window reads only its own steps. Every
   call may come from any thread (the file libraries are serialised inside).
   log: aur_weather_load's summary, or NULL. Close with aur_series_close. */
typedef struct aur_series aur_series;
AURDEF aur_series *aur_series_open(const char *const *paths, int n, const char *renames, FILE *log);
AURDEF void aur_series_close(aur_series *s);
AURDEF int aur_series_length(const aur_series *s);          /* time steps */
AURDEF double aur_series_step_seconds(const aur_series *s); /* 0: the file does not say */
AURDEF const char *aur_series_path(const aur_series *s);    /* the first file, for messages */
/* Steps [start, start + steps) as a new batch: equal, bit for bit, to
   aur_batch_window(whole series, start, steps, step_seconds). Owned. */
AURDEF aur_batch *aur_series_read(aur_series *s, int start, int steps, double step_seconds);
/* The same into a buffer from aur_series_window_alloc (of any series with
   this one's variables and grid), w->T steps: no allocation per window;
   pinned: in page-locked memory the GPU copies from directly (CUDA builds). */
AURDEF aur_batch *aur_series_window_alloc(const aur_series *s, int steps, int pinned);
AURDEF int aur_series_read_into(aur_series *s, int start, double step_seconds, aur_batch *w);
/* An empty batch of the given sizes with zero-filled owned tensors for the listed variables. */
AURDEF aur_batch *aur_batch_create(int B, int T, int C, int H, int W, const aur_var_list *surf, const aur_var_list *statics,
                                   const aur_var_list *atmos);
AURDEF void aur_batch_free(aur_batch *b);
/* Variable lookup (NULL if absent, no error). */
AURDEF aur_tensor *aur_batch_surf(const aur_batch *b, const char *name);
AURDEF aur_tensor *aur_batch_atmos(const aur_batch *b, const char *name);
AURDEF aur_tensor *aur_batch_static(const aur_batch *b, const char *name);

/* ---- running the model ---- */

/* One forward step: normalise, crop, encode, backbone, decode, unnormalise.
   The prediction (B, 1, ...) lives on the tape (see batches above). */
AURDEF aur_batch *aur_aurora_forward(aur_model *m, aur_tape *t, const aur_batch *b);
/* Autoregressive rollout: preds[s] for s < steps, each fed back as the
   newest history step (gradients flow through the whole rollout). */
AURDEF int aur_aurora_rollout(aur_model *m, aur_tape *t, const aur_batch *b, int steps, aur_batch **preds);
/* A forecast: the same predictions without gradients, each handed to fn
   (step 0 first; pred lives until fn returns; a non-zero return stops the
   forecast and is returned), holding only the input history and one step
   in memory, however many steps. */
typedef int (*aur_forecast_fn)(void *ctx, int step, const aur_batch *pred);
AURDEF int aur_aurora_forecast(aur_model *m, const aur_batch *b, int steps, aur_forecast_fn fn, void *ctx);

/* A forecast as a CF-1.8 NetCDF-4 file that xarray opens with Aurora's
   names: time (valid times, "hours since" the initial time), level (hPa),
   latitude, longitude; forecast_reference_time and forecast_period; CF
   units and standard names; the static fields without time (static z as
   geopotential_at_surface, as its name z is the atmosphere's). Each
   aur_forecast_nc_add appends one prediction (B 1, T 1, host F32) and
   flushes it, so a long forecast is on disk as it goes. -DAUR_NETCDF. */
typedef struct aur_forecast_nc aur_forecast_nc;
AURDEF aur_forecast_nc *aur_forecast_nc_create(const char *path, double init_time);
AURDEF int aur_forecast_nc_add(aur_forecast_nc *f, const aur_batch *pred);
AURDEF int aur_forecast_nc_close(aur_forecast_nc *f);

/* ---- scores, as WeatherBench2 computes them (weatherbench2/metrics.py) ---- */

/* Latitude weights: each row's cell area on the sphere, divided by their mean (latitudes monotonic, any direction). */
AURDEF int aur_lat_weights(const float *lat, int H, double *w);
/* One variable (and level) at one lead time, over the forecasts added. */
typedef struct aur_score {
    char var[AUR_NAME_LEN];
    int atmos;                /* on pressure levels: level is set */
    double level, lead_hours; /* hPa; hours */
    int n, n_acc;             /* forecasts in the RMSE and in the ACC */
    double sum_mse, sum_acc;  /* running sums */
    double rmse, acc;         /* after aur_scores_finish; acc NaN without a climatology */
} aur_score;
typedef struct aur_scores {
    aur_score *rows;
    int n;
} aur_scores; /* zero-initialise; aur_scores_free */
/* Adds a prediction (B 1, T 1) against step t_truth of a truth series (the
   same grid, or one row taller: the crop's last row is left out) and, for
   ACC, step t_clim of a climatology (NULL: RMSE only). Per variable and
   level: the latitude-weighted spatial mean of the squared error and the
   anomaly correlation, over the cells where all values are finite. */
AURDEF int aur_scores_add(aur_scores *s, double lead_hours, const aur_batch *pred, const aur_batch *truth, int t_truth, const aur_batch *clim,
                          int t_clim);
/* rmse = sqrt(mean of the spatial MSEs), acc = mean of the ACCs. */
AURDEF void aur_scores_finish(aur_scores *s);
/* One JSON object per line: variable, level (atmospheric), lead_hours, n, rmse, acc (with a climatology). */
AURDEF int aur_scores_write_jsonl(const aur_scores *s, const char *path);
AURDEF void aur_scores_free(aur_scores *s);
/* The step of a series at time t (Unix seconds; -1 if none), and a
   climatology's step for valid time t: its only step, or the one with t's
   month, day and time of day in any year (-1 if none). */
AURDEF int aur_series_step_at(const aur_batch *series, double t);
AURDEF int aur_climatology_step(const aur_batch *clim, double t);
/* The fine-tuning loss (the one the golden cases were made with): the mean over variables (surface,
   then atmospheric) of the MSE of normalised prediction and target, over
   the cells where both are finite (AuroraWave predicts NaN where there are
   no waves; everywhere else this is the plain MSE). */
AURDEF aur_tensor *aur_aurora_loss(aur_model *m, aur_tape *t, const aur_batch *pred, const aur_batch *target);
/* The Aurora paper's loss (Bodnar et al. 2025, training objective): a mean
   absolute error of the normalised fields, weighted per variable and by
   latitude (WeatherBench2's cell areas), the surface and the atmosphere
   weighted against each other, scaled by the dataset's weight, over the
   number of variables. Defaults (aur_aurora_mae_defaults), the paper's:
   surface 1/4, atmosphere 1, dataset 1; 2t 3.0, 10u 0.77, 10v 0.66,
   msl 1.5; z 2.8, q 0.78, t 1.7, u 0.87, v 0.6; any other variable 1.
   The data must be finite (it is no loss for AuroraWave's masked seas). */
typedef struct aur_aurora_mae_weights {
    double surf, atmos, dataset; /* the paper's alpha, beta, gamma */
    int latitude;                /* weight each MAE by latitude */
    aur_var_list surf_names, atmos_names;
    double surf_weight[AUR_MAX_VARS], atmos_weight[AUR_MAX_VARS];
} aur_aurora_mae_weights;
AURDEF void aur_aurora_mae_defaults(aur_aurora_mae_weights *w);
AURDEF aur_tensor *aur_aurora_loss_mae(aur_model *m, aur_tape *t, const aur_batch *pred, const aur_batch *target, const aur_aurora_mae_weights *w);

/* Test hooks. A probe sees every named intermediate ("encoder_out",
   "backbone/enc0_blocks_out", "encoder/pos_encode", ...) as it is made,
   with the rollout step of the input batch. */
typedef void (*aur_probe_fn)(void *ctx, const char *name, int step, const aur_tensor *x);
AURDEF void aur_aurora_set_probe(aur_model *m, aur_probe_fn fn, void *ctx);
/* Use these position and scale encodings (L x D floats each, copied) instead
   of computing them: the scale encoding is chaotic (its phases reach 1e8
   rad), so fidelity tests inject the reference's. NULL stops overriding. */
AURDEF int aur_aurora_override_encodings(aur_model *m, const float *pos, const float *scale, int64_t L);
