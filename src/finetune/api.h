#include "../core/api.h"
#include "../aurora/api.h"

/* ==== Fine-tuning ====
   Every step of the reference's fine-tuning guide as one call here, or one
   key of a JSON run config (aur_trainer): checking the data, new variables
   with their statistics, parameter groups, watching the gradients, planning
   memory, and a training loop with metrics, plots and atomic checkpoints
   that resume bit for bit. */

/* ---- data checks ("triple check your fine-tuning data") ---- */
typedef struct aur_check_opts {
    double outlier_z;        /* |x - loc| / scale above this counts as an outlier (default 10) */
    double max_outlier_frac; /* a larger fraction of outliers is an error, a smaller one a warning (1e-3) */
    double max_abs_mean;     /* |mean| of the normalised data beyond this: the statistics do not fit (warning, 3) */
    double min_std, max_std; /* normalised std outside [min_std, max_std]: warning (0.1, 10) */
    const char *nan_ok;      /* patterns of variables where NaN is data (AuroraWave's waves over land), or NULL */
    int chunk_steps;         /* aur_aurora_check_series: steps read at a time (0: as many as fit in 256 MiB) */
} aur_check_opts;
AURDEF aur_check_opts aur_check_defaults(void);

typedef enum aur_severity { AUR_CHECK_OK = 0, AUR_CHECK_WARNING = 1, AUR_CHECK_ERROR = 2 } aur_severity;

/* One variable's findings; atmospheric variables are checked level by level
   (each with its own statistics) and summarised here. */
typedef struct aur_var_check {
    char name[AUR_NAME_LEN];
    const char *kind;              /* "surf", "static", "atmos" */
    int present;                   /* in the batch */
    int used;                      /* the model has weights for it */
    int64_t count, nonfinite, outliers;
    int zero_fields, fields;       /* 2-D fields (one time, level, sample) that are entirely zero, of all */
    double mean, std, max_abs_z;   /* normalised units, over the finite values (the worst level for atmos) */
    aur_severity severity;
    char message[200];             /* what is wrong, or "" */
} aur_var_check;

typedef struct aur_check_report {
    int n, errors, warnings;
    aur_var_check *vars; /* owned: aur_check_report_free */
} aur_check_report;

/* Checks a batch (physical units) against the model's variables and
   statistics: missing variables, NaN/Inf, all-zero fields (errors; a static
   field of zeros, a land-sea mask over open sea, is a warning), outliers,
   and whether the statistics fit. Returns 0, or AUR_EFORMAT with
   aur_last_error() naming the first variable in error. rep may be NULL. */
AURDEF int aur_aurora_check_batch(const aur_model *m, const aur_batch *b, const aur_check_opts *opts, aur_check_report *rep);
/* The same over every step of an open series, read a chunk of steps at a
   time (opts->chunk_steps): the report of the whole, without holding it in memory. */
AURDEF int aur_aurora_check_series(const aur_model *m, aur_series *s, const aur_check_opts *opts, aur_check_report *rep);
AURDEF void aur_check_report_print(const aur_check_report *rep, FILE *out);
AURDEF void aur_check_report_free(aur_check_report *rep);

/* ---- new variables, groups, freezing ---- */

/* Sets every element of the parameters matching patterns (e.g. zero for new
   encoder patch embeddings, so that new variables leave the old predictions
   unchanged). Returns how many tensors matched. */
AURDEF int aur_model_fill(aur_model *m, const char *patterns, double value);
/* Comma-joined names of the parameters a load did not fill that carry a new
   variable (encoder patch embeddings and decoder heads): the guide's
   separate-learning-rate group. "" if none. Owned: free(). */
AURDEF char *aur_aurora_new_var_params(const aur_model *m, const aur_load_report *rep);

/* ---- exploding gradients ---- */
#define AUR_ALARM_GROUPS 16
#define AUR_ALARM_WINDOW 256

/* Watches the total and per-group gradient norms: a non-finite norm, or a
   log-norm more than z standard deviations above its recent window, raises
   the alarm, naming the group whose norm jumped first (most). */
typedef struct aur_grad_alarm {
    int window;   /* recent steps compared against (default 50, at most AUR_ALARM_WINDOW) */
    double z;     /* threshold in standard deviations of log-norm (default 6) */
    int min_history; /* steps before z-scores are trusted (default 10) */
    int skip;     /* 1: an alarm skips the update */
    int n_groups;
    int count[AUR_ALARM_GROUPS + 1];
    double hist[AUR_ALARM_GROUPS + 1][AUR_ALARM_WINDOW]; /* [0]: the total */
    int64_t alarms;
} aur_grad_alarm;
AURDEF void aur_grad_alarm_init(aur_grad_alarm *a, int window, double z, int skip);
/* 0: normal; 1: alarm (msg says why and where); the norms of alarming steps
   are kept out of the window. */
AURDEF int aur_grad_alarm_check(aur_grad_alarm *a, double total, const double *group_norms, const char *const *group_names,
                                int n_groups, char *msg, size_t size);

/* ---- memory planning ---- */
typedef struct aur_memory_choice {
    aur_optim_kind optimiser;
    unsigned checkpoint; /* the AUR_CHECKPOINT_* modules checkpointed, as aur_aurora_config.checkpoint (0: none) */
    int autocast, pure_bf16, offload_optimiser;
    double trainable_fraction; /* 1 = full fine-tuning; LoRA: the adapters' share */
} aur_memory_choice;
typedef struct aur_memory_plan {
    double params, grads, optimiser, activations, total; /* bytes on the device */
    double host;                                          /* bytes moved to the host (offload) */
} aur_memory_plan;
/* What a training step of cfg on B samples of T history steps, C levels and
   an H x W grid needs on its device: the weights, gradients and optimiser
   state from the parameter table, and the activations as the peak of the
   tape (saved tensors, gradients, workspaces) in that very step, run on the
   meta device (a second or two at 0.25 degrees). The host's share of the
   tape (its structs, a CPU run's matrix-product packing) is not included. */
AURDEF int aur_aurora_memory_plan(const aur_aurora_config *cfg, int B, int T, int C, int H, int W, const aur_memory_choice *ch,
                                  aur_memory_plan *out);

/* ---- series and windows ----
   A series is a batch file with many time steps (T) of one trajectory, one
   model step apart; its time_unix is the time of the last step. */
/* The input window of `history` steps starting at step `start`, or the
   target at step `start` (history 1). Owned. */
AURDEF aur_batch *aur_batch_window(const aur_batch *series, int start, int history, double step_seconds);

/* A window as the rollout uses it: the input's history steps and each
   rollout step's target, read from an open series (aur_series_open). */
#define AUR_MAX_ROLLOUT 64
typedef struct aur_window_ref {
    int series, start; /* which series, and the window's first step */
} aur_window_ref;
typedef struct aur_window {
    aur_window_ref ref;
    aur_batch *input;                    /* history steps, as aur_batch_window(series, start, history) */
    aur_batch *target[AUR_MAX_ROLLOUT];  /* one step each: aur_batch_window(series, start + history + k, 1) */
    int rollout;
} aur_window;
/* Reads a window into w (zeroed at first; its buffers are reused when they
   fit, in pinned host memory when asked). */
AURDEF int aur_window_read(aur_series *s, aur_window_ref ref, int history, int rollout, double step_seconds, int pinned, aur_window *w);
AURDEF void aur_window_free(aur_window *w);

/* ---- a loader that reads ahead ----
   Windows in the order order(ctx, i) gives for i = 0, 1, ... (a pure
   function: the trainer's is its shuffle of seed and epoch), read `depth`
   windows ahead by a background thread while the caller computes (depth 0:
   read when asked, on the caller's thread). order is called from that
   thread. paths[i] (n_paths[i] files) are series i's files, kept by the
   caller while the loader lives; a few series stay open at a time. */
typedef aur_window_ref (*aur_window_order)(void *ctx, int64_t i);
typedef struct aur_loader_opts {
    int history, rollout;  /* steps of each window's input, and targets */
    double step_seconds;   /* the model's step (the windows' times, as aur_batch_window) */
    int depth;             /* windows read ahead, 0..64 */
    int pinned;            /* windows in pinned host memory (a CUDA build, a model on the GPU) */
    const char *renames;   /* weather files' renames, as aur_weather_load's, or NULL */
} aur_loader_opts;
typedef struct aur_loader_stats {
    int64_t windows_read, windows_taken;
    double read_seconds;   /* spent reading (on the thread, beside the steps) */
    double wait_seconds;   /* the caller spent waiting for windows: what the loader costs the run */
} aur_loader_stats;
typedef struct aur_loader aur_loader;
AURDEF aur_loader *aur_loader_create(char **const *paths, const int *n_paths, int n_series, aur_window_order order, void *ctx,
                                     const aur_loader_opts *o);
/* Window i of the order, waiting for it if it is not read yet; valid until
   the next call. Asking for i out of sequence (a resumed run) starts reading
   there. NULL on error, with aur_last_error() naming the file and step. */
AURDEF const aur_window *aur_loader_get(aur_loader *ld, int64_t i);
AURDEF void aur_loader_stats_get(aur_loader *ld, aur_loader_stats *st);
AURDEF void aur_loader_free(aur_loader *ld);

/* ---- TensorBoard event files ---- */
/* Scalars in TensorBoard's event file format (what tf.summary and
   torch.utils.tensorboard write), which TensorBoard shows and Weights &
   Biases (`wandb sync --sync-tensorboard`) and MLflow import. A file's name
   must contain "tfevents" for TensorBoard to find it; runs to compare go in
   sibling directories of one log directory. */
AURDEF int aur_events_create(const char *path, double wall_time); /* a new file (truncated): the version record */
AURDEF int aur_events_scalar(const char *path, double wall_time, int64_t step, const char *tag, double value);
/* Every number of a metrics.jsonl line but "step" as a scalar at that step. */
AURDEF int aur_events_from_json(const char *path, double wall_time, const char *json_line);

/* ---- plots (PNG, through stb_image_write) ---- */
/* One line of a line chart. */
typedef struct aur_plot_series {
    const char *label;   /* legend text */
    const double *x, *y; /* n points; non-finite y values are skipped (gaps) */
    int n;
} aur_plot_series;

/* A line chart PNG (width x height pixels): title, axes with tick labels, a
   legend, up to 8 series. log_y: logarithmic y axis (points <= 0 skipped). */
AURDEF int aur_plot_lines(const char *path, int width, int height, const char *title, const char *xlabel,
                          const aur_plot_series *s, int n_series, int log_y);

/* Several charts stacked vertically in one PNG (loss, grad norm, lr). */
typedef struct aur_plot_panel {
    const char *title;
    const aur_plot_series *series;
    int n_series;
    int log_y;
} aur_plot_panel;
AURDEF int aur_plot_panels(const char *path, int width, int panel_height, const char *xlabel, const aur_plot_panel *p,
                           int n_panels);

/* Several runs' curves on one figure (choosing a learning rate; LoRA against
   full fine-tuning): one panel per metric (names as in metrics.jsonl: "loss",
   "val_loss", "val/tss"; n_metrics 0: loss, val_loss and every val/ metric the
   runs logged), one line per run directory (up to 8), labelled by its name. */
AURDEF int aur_plot_runs(const char *png, const char *const *run_dirs, int n_runs, const char *const *metrics, int n_metrics);

/* Maps side by side: n_maps fields of H x W floats (row 0 at the top), each
   `scale` pixels per cell with a title, on one colour scale (vmin..vmax, or
   from the finite values when vmin >= vmax) shown as a colour bar; NaN is
   grey. diverging: blue-white-red about 0 (errors); else viridis-like. */
AURDEF int aur_plot_maps(const char *path, const float *const *maps, const char *const *titles, int n_maps, int H, int W,
                         int scale, double vmin, double vmax, int diverging, const char *title);

/* A predicted field beside its truth on one colour scale (STEM.png), and
   their difference on a diverging scale (STEM_error.png, titled
   "pred_name - truth_name"); truth NULL: the prediction alone. H x W each. */
AURDEF int aur_plot_versus(const char *stem, const float *pred, const float *truth, int H, int W, const char *pred_name, const char *truth_name,
                           const char *title);
/* Scores against lead time: per variable, prefix + "rmse_VAR.png" (surface)
   or "rmse_VAR_levels.png" (a line per level, up to 8 spread over them). */
AURDEF int aur_scores_plot(const aur_scores *s, const char *prefix);

/* ---- the trainer ----
   A whole run from a JSON config; see README "Fine-tuning" for every key.
   Writes to its output_dir: metrics.jsonl, curves.png, maps_{var}.png,
   checkpoint-{step}/ (model.safetensors, optimizer.safetensors,
   trainer_state.json) and a file "latest" naming the newest checkpoint.
   A checkpoint directory is written under a temporary name and renamed
   when complete, so an abort never leaves a partial one or touches an old one. */
typedef struct aur_trainer aur_trainer;

typedef struct aur_step_info {
    int64_t step;          /* steps done, after this one */
    double loss, grad_norm, lr, seconds;
    double data_seconds;   /* of seconds, the time spent waiting for the step's window (the loader is behind when this grows) */
    int alarm, skipped;
    char alarm_msg[256];
} aur_step_info;

AURDEF aur_trainer *aur_trainer_create(const char *config_path);
/* From a parsed config; relative paths are taken from base_dir (NULL: "."). */
AURDEF aur_trainer *aur_trainer_create_json(const struct cJSON *config, const char *base_dir);
AURDEF void aur_trainer_free(aur_trainer *tr);
/* Continues from a checkpoint directory (NULL: the output_dir's latest). */
AURDEF int aur_trainer_resume(aur_trainer *tr, const char *checkpoint_dir);
/* One optimiser step (forward over rollout_steps, loss, backward, norms,
   alarm, clipping, update). */
AURDEF int aur_trainer_step(aur_trainer *tr, aur_step_info *info);
/* Mean loss over the validation windows (the training ones if none). */
AURDEF int aur_trainer_eval(aur_trainer *tr, double *loss);
/* Writes checkpoint-{step} and points "latest" at it. */
AURDEF int aur_trainer_save(aur_trainer *tr);
/* curves.png and maps_{var}.png for the configured map variables. */
AURDEF int aur_trainer_plot(aur_trainer *tr);
/* The loop: steps to the configured count with progress line, metrics,
   evaluation, plots and checkpoints; then a final save and plots. */
AURDEF int aur_trainer_run(aur_trainer *tr);
AURDEF aur_model *aur_trainer_model(const aur_trainer *tr);
/* What the run will do: the load report (what is new), trainable/frozen/new
   counts, groups and data. aur_trainer_run prints it when it starts. */
AURDEF void aur_trainer_print_setup(const aur_trainer *tr, FILE *out);
AURDEF int64_t aur_trainer_steps_done(const aur_trainer *tr);
