#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

/* ==== fine-tuning: the trainer ==== */


#define AUR__MAX_GROUPS 8
#define AUR__MAX_MAPS 8

/* A growable table of doubles, `cols` per row (the training history). */
typedef struct aur__table {
    double *v;
    int rows, cap, cols;
} aur__table;

static int aur__table_add(aur__table *t, const double *row)
{
    if (aur__grow((void **)&t->v, &t->cap, (t->rows + 1) * t->cols, sizeof(double))) return AUR_ENOMEM;
    memcpy(t->v + (size_t)t->rows * t->cols, row, sizeof(double) * (size_t)t->cols);
    t->rows++;
    return 0;
}

typedef struct aur__data {
    char **files;    /* a name of each series, for messages: its file, or its first file and how many more */
    char ***paths;   /* each series' files: one safetensors file, or NetCDF/Zarr files read together */
    int *n_paths;
    int n_files;
    char *renames;   /* data.rename as "file_name=aurora_name,..." (shared by train and val), or NULL */
    aur_window_ref *win; /* every window of the set: its series and first step */
    int n_win;
    aur_series *open;    /* evaluation reads here: the series read last, kept open, and its window buffers */
    int open_id;
    aur_window read;
} aur__data;

/* What a model family other than Aurora plugs into the loop (Surya's is in
   surya.h); Aurora's run uses the built-in windows and rollout (task NULL).
   Everything else, the optimiser and its groups, the schedule, the alarm,
   clipping, metrics.jsonl and TensorBoard, checkpoints and an exact resume,
   is the loop's own. */
#define AUR__MAX_METRICS 12
typedef struct aur__trainer_task {
    aur_tensor *(*train_loss)(aur_trainer *tr, int64_t step);  /* the loss of optimiser step `step` on tr->t (training mode set) */
    int (*eval)(aur_trainer *tr, double *loss, double *metrics); /* validation loss and the n_metrics task metrics */
    int n_metrics;
    const char *metric_names[AUR__MAX_METRICS];                 /* logged as "val/{name}" */
    int (*plot)(aur_trainer *tr);                                /* the task's figures beside curves.png, or NULL */
    int (*save)(const aur_trainer *tr, const char *dir);         /* extra files of a checkpoint being written, or NULL */
    void (*print_data)(const aur_trainer *tr, FILE *out);
    void (*free_ctx)(void *ctx);
} aur__trainer_task;

struct aur_trainer {
    const aur__trainer_task *task; /* NULL: an Aurora run */
    void *task_ctx;                /* the task's own state (owned: task->free_ctx) */
    cJSON *config;
    char run_id[24]; /* written into each checkpoint's state and optimiser files: a resume checks that they belong together */
    char base_dir[1024], out_dir[1024];
    aur_aurora_config mcfg;
    aur_device device; /* "device": where the model, its gradients and the optimiser live */
    aur_model *m;
    aur_optim *o;
    aur_tape *t;
    aur_load_report rep;
    char *new_params; /* the new variables' per-variable parameters, comma-joined */
    char *renames;    /* data.rename, "file_name=aurora_name,..." (NULL: none) */
    /* the model section as read (strings borrowed from config), before the model is built */
    const char *checkpoint, *train_only, *freeze;
    const cJSON *stats;
    int load_mode, zero_new_embeddings;
    /* data */
    aur__data train, val;
    int history, rollout, eval_windows;
    int prefetch;       /* training windows read ahead by the loader's thread (data.prefetch) */
    aur_loader *loader; /* made at the first step, when the step to start from is known */
    aur_check_opts check;
    /* optimisation */
    aur_optim_opts opt;
    double new_vars_lr; /* < 0: the new variables train at the rate of the rest */
    const cJSON *groups;
    int n_groups;
    char group_name[AUR__MAX_GROUPS][32];
    char *group_params[AUR__MAX_GROUPS]; /* owned patterns; group 0 = the rest */
    aur_lr_schedule sched;
    int64_t steps, step;
    uint64_t seed;
    double clip;
    int pure_bf16, autocast, checkpointing, offload;
    aur_grad_alarm alarm;
    /* output */
    int log_every, eval_every, save_every, plot_every, keep_last;
    int overwrite_output_dir; /* a fresh run may clear another run's checkpoints and metrics from output_dir */
    char map_vars[AUR__MAX_MAPS][AUR_NAME_LEN];
    int n_maps;
    double levels[AUR_MAX_LEVELS]; /* the first training series' pressure levels (map_vars are checked against them) */
    int n_levels;
    aur__table hist;     /* step, loss, grad norm, lr, group norms... */
    aur__table val_hist; /* step, loss, the task's metrics */
    int loss_mae;              /* "loss": "aurora_mae" (else the fixtures' MSE) */
    aur_aurora_mae_weights mae;
    aur_scores val_scores; /* the last evaluation's WeatherBench2 scores per variable, level and lead (Aurora) */
    double started, steps_at_start;
};

/* A run's id: 64 random bits in hex (the clock and the process id where
   /dev/urandom cannot be read). */
static void aur__new_run_id(char *id, size_t size)
{
    uint64_t r = 0;
    FILE *fp = fopen("/dev/urandom", "rb");
    if (!fp || fread(&r, sizeof r, 1, fp) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() * 0x9e3779b97f4a7c15ull);
    }
    if (fp) fclose(fp);
    snprintf(id, size, "%016llx", (unsigned long long)r);
}

/* ---- the JSON run config ---- */

/* A config path: relative ones are taken from the config file's directory. */
static int aur__path(const aur_trainer *tr, const char *rel, char *out, size_t size)
{
    int n = rel[0] == '/' || !tr->base_dir[0] ? snprintf(out, size, "%s", rel) : snprintf(out, size, "%s/%s", tr->base_dir, rel);
    return n >= 0 && (size_t)n < size ? 0 : aur__err(AUR_EINVAL, "run config: the path '%s' is too long", rel);
}

/* A copy of a pattern list with "@new_vars" replaced by the new variables'
   parameters (NULL in, NULL out). */
static char *aur__expand_new(const aur_trainer *tr, const char *patterns)
{
    if (!patterns) return NULL;
    const char *at = strstr(patterns, "@new_vars");
    size_t n = strlen(patterns) + strlen(tr->new_params) + 2;
    char *out = (char *)aur__malloc(n, "a pattern list");
    if (!out) return NULL;
    if (!at) snprintf(out, n, "%s", patterns);
    else snprintf(out, n, "%.*s%s%s", (int)(at - patterns), patterns, tr->new_params, at + strlen("@new_vars"));
    return out;
}

/* "model": {preset, kwargs, checkpoint, load, new_embeddings, stats, freeze, train_only}, read */
static int aur__trainer_model_config(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"preset", "kwargs", "checkpoint", "load", "new_embeddings", "stats", "freeze", "train_only",
                                       NULL};
    static const char *const loads[] = {"strict", "non-strict", "filtered", NULL}; /* aur_load_mode's order */
    static const char *const inits[] = {"random", "zero", NULL};
    const char *W = "run config: model", *preset = "aurora-small-pretrained";
    tr->load_mode = AUR_LOAD_NONSTRICT;
    if (!j) return aur__err(AUR_EINVAL, "run config: the 'model' section is required");
    int rc = aur__json_keys(j, W, keys);
    if (!rc) rc = aur__json_str(aur__json_at(j, "preset"), W, &preset);
    if (!rc) rc = aur__json_str(aur__json_at(j, "checkpoint"), W, &tr->checkpoint);
    if (!rc) rc = aur__json_enum(aur__json_at(j, "load"), W, loads, &tr->load_mode);
    if (!rc) rc = aur__json_enum(aur__json_at(j, "new_embeddings"), W, inits, &tr->zero_new_embeddings);
    if (!rc) rc = aur__json_str(aur__json_at(j, "train_only"), W, &tr->train_only);
    if (!rc) rc = aur__json_str(aur__json_at(j, "freeze"), W, &tr->freeze);
    if (!rc) rc = aur__json_pairs(tr->stats = aur__json_at(j, "stats"), W, "[location, scale]");
    /* aur_aurora_set_stats's rule, checked now rather than once the model is built */
    for (const cJSON *s = cJSON_IsObject(tr->stats) ? tr->stats->child : NULL; s && !rc; s = s->next) {
        char key[160];
        snprintf(key, sizeof key, "stats.%s", s->string);
        if (!aur__stats_usable(s->child->valuedouble, s->child->next->valuedouble))
            rc = aur__json_bad(s, W, key, "[location, scale] with a scale > 0");
    }
    if (!rc) rc = aur_aurora_preset(preset, &tr->mcfg);
    const cJSON *kw = aur__json_at(j, "kwargs");
    if (!rc && kw) rc = aur_aurora_config_json(kw, &tr->mcfg);
    if (tr->checkpointing) tr->mcfg.checkpoint = AUR_CHECKPOINT_ALL; /* the reference's default modules (model.kwargs may list others) */
    tr->mcfg.autocast = tr->autocast;
    return rc;
}

/* The model the section describes: built, its statistics set, the checkpoint loaded, what trains chosen. */
static int aur__trainer_model_build(aur_trainer *tr)
{
    int rc = 0, zero = tr->zero_new_embeddings;
    if (!(tr->m = aur_aurora_create(&tr->mcfg, tr->device, tr->seed))) rc = AUR_EINVAL;
    for (const cJSON *s = cJSON_IsObject(tr->stats) ? tr->stats->child : NULL; s && !rc; s = s->next)
        rc = aur_aurora_set_stats(tr->m, s->string, s->child->valuedouble, s->child->next->valuedouble);
    if (!rc && tr->checkpoint) {
        char path[2048];
        rc = aur__path(tr, tr->checkpoint, path, sizeof path);
        if (!rc) rc = aur_aurora_load(tr->m, path, (aur_load_mode)tr->load_mode, &tr->rep);
        if (!rc) tr->new_params = aur_aurora_new_var_params(tr->m, &tr->rep);
        if (!rc && !tr->new_params) rc = AUR_ENOMEM;
        /* the guide: zero new encoder embeddings leave the old variables' predictions unchanged */
        for (int i = 0; !rc && zero && i < aur_model_count(tr->m); i++) {
            const char *name = aur_model_at(tr->m, i)->name;
            if (aur_name_matches(tr->new_params, name) && aur_name_matches("encoder.*_token_embeds.weights.*", name)) {
                int hits = aur_model_fill(tr->m, name, 0);
                rc = hits < 0 ? hits : 0;
            }
        }
    }
    if (!rc && !tr->new_params) rc = (tr->new_params = aur__strdup("")) ? 0 : AUR_ENOMEM;
    char *only = rc ? NULL : aur__expand_new(tr, tr->train_only);
    char *freeze = rc ? NULL : aur__expand_new(tr, tr->freeze);
    if (!rc && only) {
        aur_model_freeze(tr->m, "*");
        rc = aur_model_unfreeze(tr->m, only) < 0 ? AUR_EINVAL : 0;
    }
    if (!rc && freeze) rc = aur_model_freeze(tr->m, freeze) < 0 ? AUR_EINVAL : 0;
    AUR_FREE(only);
    AUR_FREE(freeze);
    return rc;
}

/* One series: a file name, or a non-empty list of the NetCDF/Zarr files read together. */
static int aur__trainer_series(aur_trainer *tr, const cJSON *f, const char *key, aur__data *d, int i)
{
    const char *W = "run config: data";
    int n = cJSON_IsString(f) ? 1 : cJSON_IsArray(f) ? cJSON_GetArraySize(f) : -1;
    if (n < 1) return aur__json_bad(f, W, key, "a file name or a non-empty list of the files of one series");
    if (!(d->paths[i] = (char **)aur__calloc(sizeof(char *) * (size_t)n, "a file list"))) return AUR_ENOMEM;
    for (int k = 0; k < n; k++) {
        const cJSON *e = cJSON_IsString(f) ? f : cJSON_GetArrayItem(f, k);
        char path[2048], where[256];
        if (cJSON_IsString(f)) snprintf(where, sizeof where, "%s", key);
        else snprintf(where, sizeof where, "%s[%d]", key, k);
        if (!cJSON_IsString(e) || !e->valuestring[0]) return aur__json_bad(e, W, where, "a file name");
        if (aur__path(tr, e->valuestring, path, sizeof path)) return AUR_EINVAL;
        if (!(d->paths[i][k] = aur__strdup(path))) return AUR_ENOMEM;
        d->n_paths[i]++;
    }
    char label[2100];
    snprintf(label, sizeof label, n > 1 ? "%.2048s (+%d files)" : "%.2048s", d->paths[i][0], n - 1);
    return (d->files[i] = aur__strdup(label)) ? 0 : AUR_ENOMEM;
}

/* The series of a set: a file name, or a non-empty list of series (each a file name or a list of files). */
static int aur__trainer_files(aur_trainer *tr, const cJSON *v, aur__data *d)
{
    int n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1) return aur__json_bad(v, "run config: data", aur__json_key(v), "a file name or a non-empty list of them");
    d->files = (char **)aur__calloc(sizeof(char *) * (size_t)(n + 1), "a file list");
    d->paths = (char ***)aur__calloc(sizeof(char **) * (size_t)(n + 1), "a file list");
    d->n_paths = (int *)aur__calloc(sizeof(int) * (size_t)(n + 1), "a file list");
    if (!d->files || !d->paths || !d->n_paths) return AUR_ENOMEM;
    d->renames = tr->renames;
    for (int i = 0; i < n; i++, d->n_files++) {
        char key[256];
        snprintf(key, sizeof key, "%s[%d]", aur__json_key(v), i);
        int rc = aur__trainer_series(tr, cJSON_IsString(v) ? v : cJSON_GetArrayItem(v, i), key, d, i);
        if (rc) return d->n_files++, rc; /* this one freed with the rest */
    }
    return 0;
}

/* "rename": {"file_name": "aurora_name", ...} as "file_name=aurora_name,...". */
static int aur__trainer_renames(aur_trainer *tr, const cJSON *j)
{
    const char *W = "run config: data";
    if (!j) return 0;
    if (!cJSON_IsObject(j)) return aur__json_bad(j, W, "rename", "an object of file names to Aurora's names");
    aur__buf b;
    memset(&b, 0, sizeof b);
    for (const cJSON *e = j->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strpbrk(e->valuestring, ",=") || strpbrk(e->string, ",="))
            return AUR_FREE(b.p), aur__json_bad(e, W, "rename", "names (strings without ',' or '=')");
        aur__buf_printf(&b, "%s%s=%s", b.n ? "," : "", e->string, e->valuestring);
    }
    aur__buf_append(&b, "", 1);
    if (b.failed) return AUR_FREE(b.p), AUR_ENOMEM;
    tr->renames = b.p;
    return 0;
}

/* Reads every series once: checks it (refusing bad data with the variable's
   name) and lists its windows of history + rollout steps. */
/* Opens each series of a set (names, grid, levels and times checked), checks
   every value against the model's statistics a chunk at a time, and lists
   its windows; nothing is kept in memory but the list. */
static int aur__trainer_scan(aur_trainer *tr, aur__data *d, const char *what)
{
    int span = tr->history + tr->rollout;
    for (int f = 0; f < d->n_files; f++) {
        aur_series *s = aur_series_open((const char *const *)d->paths[f], d->n_paths[f], d->renames, NULL);
        if (!s) return AUR_EFORMAT;
        aur_check_report rep = {0, 0, 0, NULL};
        int rc = aur_aurora_check_series(tr->m, s, &tr->check, &rep), T = aur_series_length(s);
        double step = aur_series_step_seconds(s);
        if (rc == AUR_EFORMAT && rep.vars) {
            fprintf(stderr, "%s data %s:\n", what, d->files[f]);
            aur_check_report_print(&rep, stderr);
            char msg[1024];
            snprintf(msg, sizeof msg, "%.1000s", aur_last_error());
            rc = aur__err(AUR_EFORMAT, "%s: %s", d->files[f], msg);
        } else if (!rc && step > 0 && fabs(step - tr->mcfg.timestep_seconds) > 1e-3) {
            rc = aur__err(AUR_EFORMAT, "%s: its time steps are %g h apart; the model steps %g h (give the files every %g h)", d->files[f],
                          step / 3600, tr->mcfg.timestep_seconds / 3600, tr->mcfg.timestep_seconds / 3600);
        } else if (!rc && T < span) {
            rc = aur__err(AUR_EFORMAT, "%s: %d time steps; a window needs history %d + rollout %d", d->files[f], T, tr->history, tr->rollout);
        }
        if (!rc && d == &tr->train && f == 0) {
            aur_batch *first = aur_series_read(s, 0, 1, 0);
            rc = first ? 0 : AUR_EFORMAT;
            if (first) tr->n_levels = first->C, memcpy(tr->levels, first->levels, sizeof(double) * (size_t)first->C);
            aur_batch_free(first);
        }
        int n = rc ? 0 : T - span + 1;
        aur_check_report_free(&rep);
        aur_series_close(s);
        if (rc) return rc;
        aur_window_ref *w = (aur_window_ref *)AUR_REALLOC(d->win, sizeof(aur_window_ref) * (size_t)(d->n_win + n));
        if (!w) return aur__err(AUR_ENOMEM, "out of memory listing windows");
        d->win = w;
        for (int i = 0; i < n; i++) d->win[d->n_win].series = f, d->win[d->n_win++].start = i;
    }
    return d->n_files && !d->n_win ? aur__err(AUR_EFORMAT, "%s data: no windows", what) : 0;
}

/* "data": {train, val, rename, history, rollout_steps, eval_windows, nan_ok, outlier_z} */
static int aur__trainer_data(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"train", "val", "rename", "history", "rollout_steps", "eval_windows", "nan_ok", "outlier_z", "prefetch", NULL};
    const char *W = "run config: data";
    if (!j) return aur__err(AUR_EINVAL, "run config: the 'data' section is required");
    tr->history = tr->mcfg.max_history_size, tr->rollout = 1, tr->eval_windows = 8, tr->prefetch = 2;
    tr->check = aur_check_defaults();
    int rc = aur__json_keys(j, W, keys);
    if (!rc) rc = aur__json_int(aur__json_at(j, "history"), W, 1, tr->mcfg.max_history_size, &tr->history);
    if (!rc) rc = aur__json_int(aur__json_at(j, "rollout_steps"), W, 1, AUR_MAX_ROLLOUT, &tr->rollout);
    if (!rc) rc = aur__json_int(aur__json_at(j, "prefetch"), W, 0, 64, &tr->prefetch);
    if (!rc) rc = aur__json_int(aur__json_at(j, "eval_windows"), W, 1, 1e6, &tr->eval_windows);
    if (!rc) rc = aur__json_num(aur__json_at(j, "outlier_z"), W, 1, 1e9, &tr->check.outlier_z);
    if (!rc) rc = aur__json_str(aur__json_at(j, "nan_ok"), W, &tr->check.nan_ok);
    const cJSON *train = aur__json_at(j, "train"), *val = aur__json_at(j, "val");
    if (!rc) rc = aur__trainer_renames(tr, aur__json_at(j, "rename"));
    if (!rc && !train) rc = aur__err(AUR_EINVAL, "run config: data.train is required");
    if (!rc) rc = aur__trainer_files(tr, train, &tr->train);
    if (!rc && val) rc = aur__trainer_files(tr, val, &tr->val);
    return rc;
}

static int aur__trainer_group(aur_trainer *tr, const char *name, const char *params, double lr, double wd)
{
    if (tr->n_groups >= AUR__MAX_GROUPS) return aur__err(AUR_EINVAL, "run config: at most %d parameter groups", AUR__MAX_GROUPS - 1);
    if (!params[0]) return 0; /* e.g. no new variables: no group */
    int g = aur_optim_add_group(tr->o, params, lr, wd);
    if (g < 0) return g;
    snprintf(tr->group_name[tr->n_groups], sizeof tr->group_name[0], "%s", name);
    tr->group_params[tr->n_groups++] = aur__strdup(params);
    return 0;
}

/* One entry of optimizer.groups: {name, params, lr, weight_decay}, read
   (with the optimiser's rate and decay as defaults); add: also made a group. */
static int aur__trainer_group_config(aur_trainer *tr, int i, int add)
{
    static const char *const gkeys[] = {"name", "params", "lr", "weight_decay", NULL};
    const cJSON *g = cJSON_GetArrayItem(tr->groups, i);
    const char *params = NULL, *name = NULL;
    double lr = tr->opt.lr, wd = tr->opt.weight_decay;
    char gw[64];
    snprintf(gw, sizeof gw, "run config: optimizer.groups[%d]", i);
    int rc = aur__json_keys(g, gw, gkeys);
    if (!rc) rc = aur__json_num(aur__json_at(g, "lr"), gw, 0, 10, &lr);
    if (!rc) rc = aur__json_num(aur__json_at(g, "weight_decay"), gw, 0, 10, &wd);
    if (!rc) rc = aur__json_str(aur__json_at(g, "params"), gw, &params);
    if (!rc) rc = aur__json_str(aur__json_at(g, "name"), gw, &name);
    if (!rc && !params) rc = aur__err(AUR_EINVAL, "%s: 'params' (name patterns) is required", gw);
    if (!rc && add) rc = aur__trainer_group(tr, name ? name : params, params, lr, wd);
    return rc;
}

/* "optimizer": {name, lr, weight_decay, betas, eps, offload, new_vars_lr, groups: [{name, params, lr, weight_decay}]}, read */
static int aur__trainer_optim_config(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"name", "lr", "weight_decay", "betas", "eps", "offload", "new_vars_lr", "groups", NULL};
    static const char *const names[] = {"adam", "adamw", "adafactor", NULL}; /* aur_optim_kind's order */
    const char *W = "run config: optimizer";
    int kind = AUR_ADAMW, n = 0, n_groups = 0;
    int rc = j ? aur__json_keys(j, W, keys) : 0;
    if (!rc) rc = aur__json_enum(aur__json_at(j, "name"), W, names, &kind);
    aur_optim_opts o = kind == AUR_ADAM ? aur_adam_defaults() : kind == AUR_ADAFACTOR ? aur_adafactor_defaults() : aur_adamw_defaults();
    if (o.kind != AUR_ADAFACTOR) o.lr = 3e-4; /* the guide's rate for the pretrained weights */
    double betas[2] = {o.beta1, o.beta2};
    tr->new_vars_lr = -1;
    if (!rc) rc = aur__json_num(aur__json_at(j, "lr"), W, 0, 10, &o.lr);
    if (!rc) rc = aur__json_num(aur__json_at(j, "weight_decay"), W, 0, 10, &o.weight_decay);
    if (!rc) rc = aur__json_num(aur__json_at(j, "eps"), W, 0, 1, &o.eps);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "offload"), W, &tr->offload);
    if (!rc) rc = aur__json_nums(aur__json_at(j, "betas"), W, betas, 2, 2, &n);
    if (!rc) rc = aur__json_num(aur__json_at(j, "new_vars_lr"), W, 0, 10, &tr->new_vars_lr);
    tr->groups = aur__json_at(j, "groups");
    if (!rc && tr->groups) rc = aur__json_len(tr->groups, W, 0, AUR__MAX_GROUPS - 1 - (tr->new_vars_lr >= 0), "groups", &n_groups);
    o.beta1 = betas[0], o.beta2 = betas[1];
    o.offload = tr->offload; /* on a GPU: the state in pinned host memory; on the CPU it is there already */
    tr->opt = o;
    for (int i = 0; !rc && i < n_groups; i++) rc = aur__trainer_group_config(tr, i, 0);
    return rc;
}

/* The optimiser: the rest, the new variables' group, the config's groups. */
static int aur__trainer_optim_build(aur_trainer *tr)
{
    int rc = (tr->o = aur_optim_create(tr->m, &tr->opt)) ? 0 : AUR_EINVAL;
    snprintf(tr->group_name[0], sizeof tr->group_name[0], "rest");
    tr->n_groups = 1;
    if (!rc && tr->new_vars_lr >= 0) rc = aur__trainer_group(tr, "new_vars", tr->new_params, tr->new_vars_lr, tr->opt.weight_decay);
    for (int i = 0; !rc && i < cJSON_GetArraySize(tr->groups); i++) rc = aur__trainer_group_config(tr, i, 1);
    return rc;
}

/* "schedule": {kind, warmup_steps, final_factor} over the run's steps */
static int aur__trainer_schedule(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"kind", "warmup_steps", "final_factor", NULL};
    static const char *const kinds[] = {"constant", "linear", "cosine", NULL}; /* aur_lr_kind's order */
    const char *W = "run config: schedule";
    int kind = AUR_LR_CONSTANT;
    tr->sched.total_steps = tr->steps;
    tr->sched.final_factor = 0;
    int rc = j ? aur__json_keys(j, W, keys) : 0;
    if (!rc) rc = aur__json_enum(aur__json_at(j, "kind"), W, kinds, &kind);
    if (!rc) rc = aur__json_i64(aur__json_at(j, "warmup_steps"), W, 0, 1e12, &tr->sched.warmup_steps);
    if (!rc) rc = aur__json_num(aur__json_at(j, "final_factor"), W, 0, 1, &tr->sched.final_factor);
    tr->sched.kind = (aur_lr_kind)kind;
    return rc;
}

/* The top-level keys: run length, numerics, stability and output. */
static int aur__trainer_top(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"model", "data", "optimizer", "schedule", "steps", "seed", "clip_grad_norm",
                                       "activation_checkpointing", "autocast", "pure_bf16", "alarm", "log_every", "eval_every",
                                       "save_every", "plot_every", "keep_last", "output_dir", "overwrite_output_dir", "map_vars", "device",
                                       "loss", NULL};
    static const char *const akeys[] = {"window", "z", "skip", NULL};
    static const char *const devices[] = {"cpu", "cuda", NULL}; /* aur_device's order */
    const char *W = "run config", *A = "run config: alarm", *out = "run-out";
    int64_t seed = 0;
    int window = 50, skip = 1, device = AUR_CPU;
    double z = 6;
    tr->steps = 100, tr->log_every = 1, tr->keep_last = 2;
    int rc = aur__json_keys(j, W, keys);
    if (!rc) rc = aur__json_i64(aur__json_at(j, "steps"), W, 0, 1e12, &tr->steps);
    if (!rc) rc = aur__json_i64(aur__json_at(j, "seed"), W, 0, 9007199254740992.0, &seed);
    if (!rc) rc = aur__json_num(aur__json_at(j, "clip_grad_norm"), W, 0, 1e30, &tr->clip);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "activation_checkpointing"), W, &tr->checkpointing);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "autocast"), W, &tr->autocast);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "pure_bf16"), W, &tr->pure_bf16);
    if (!rc) rc = aur__json_int(aur__json_at(j, "log_every"), W, 1, INT_MAX, &tr->log_every);
    if (!rc) rc = aur__json_int(aur__json_at(j, "eval_every"), W, 0, INT_MAX, &tr->eval_every);
    if (!rc) rc = aur__json_int(aur__json_at(j, "save_every"), W, 0, INT_MAX, &tr->save_every);
    if (!rc) rc = aur__json_int(aur__json_at(j, "plot_every"), W, 0, INT_MAX, &tr->plot_every);
    if (!rc) rc = aur__json_int(aur__json_at(j, "keep_last"), W, 1, 1e6, &tr->keep_last);
    if (!rc) rc = aur__json_str(aur__json_at(j, "output_dir"), W, &out);
    if (!rc && !out[0]) rc = aur__json_bad(aur__json_at(j, "output_dir"), W, "output_dir", "a directory name");
    if (!rc) rc = aur__json_enum(aur__json_at(j, "device"), W, devices, &device);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "overwrite_output_dir"), W, &tr->overwrite_output_dir);
    if (!rc) rc = aur__json_names(aur__json_at(j, "map_vars"), W, tr->map_vars[0], AUR_NAME_LEN, AUR__MAX_MAPS, &tr->n_maps);
    const cJSON *alarm = aur__json_at(j, "alarm");
    if (!rc && alarm) rc = aur__json_keys(alarm, A, akeys);
    if (!rc) rc = aur__json_int(aur__json_at(alarm, "window"), A, 2, AUR_ALARM_WINDOW, &window);
    if (!rc) rc = aur__json_num(aur__json_at(alarm, "z"), A, 0.1, 1e6, &z);
    if (!rc) rc = aur__json_flag(aur__json_at(alarm, "skip"), A, &skip);
    tr->device = (aur_device)device;
    if (!rc && tr->device == AUR_CUDA && !aur_cuda_available())
        rc = aur__err(AUR_EUNSUPPORTED, "run config: device \"cuda\", but %s", aur__cuda_build() ? "no GPU is visible" :
                      "this program was built without CUDA (compile the implementation with nvcc -DAURORA_CUDA)");
    aur_grad_alarm_init(&tr->alarm, window, z, skip);
    if (tr->pure_bf16) tr->autocast = 1;
    tr->seed = (uint64_t)seed;
    if (!rc) rc = aur__path(tr, out, tr->out_dir, sizeof tr->out_dir);
    return rc;
}

static int aur__mkdirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST) return aur__err(AUR_EIO, "cannot create directory %s: %s", path, strerror(errno));
    return 0;
}

/* One group's "surf_weights" / "atmos_weights": {"name": weight, ...} over the defaults. */
static int aur__trainer_mae_weights(const cJSON *j, const char *key, aur_var_list *names, double *weights)
{
    const char *W = "run config: loss";
    const cJSON *o = aur__json_at(j, key);
    if (o && !cJSON_IsObject(o)) return aur__json_bad(o, W, key, "an object of variable names and weights");
    for (const cJSON *e = o ? o->child : NULL; e; e = e->next) {
        char where[AUR_NAME_LEN + 32];
        snprintf(where, sizeof where, "%s.%s", key, e->string);
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0) || !isfinite(e->valuedouble)) return aur__json_bad(e, W, where, "a weight >= 0");
        int i = aur__vl_find(names, e->string);
        if (i < 0 && (strlen(e->string) >= AUR_NAME_LEN || aur__vl_add(names, e->string))) return aur__json_bad(e, W, where, "a variable name");
        weights[i < 0 ? names->n - 1 : i] = e->valuedouble;
    }
    return 0;
}

/* "loss": "mse" (default) or {"name": "aurora_mae", surf_weight, atmos_weight, dataset_weight, latitude_weights,
   surf_weights, atmos_weights}: the paper's loss with its defaults, each of them overridable. */
static int aur__trainer_loss_config(aur_trainer *tr, const cJSON *j)
{
    static const char *const keys[] = {"name", "surf_weight", "atmos_weight", "dataset_weight", "latitude_weights", "surf_weights", "atmos_weights", NULL};
    static const char *const names[] = {"mse", "aurora_mae", NULL};
    const char *W = "run config: loss";
    aur_aurora_mae_defaults(&tr->mae);
    if (!j) return 0;
    int rc = cJSON_IsString(j) ? aur__json_enum(j, "run config", names, &tr->loss_mae) : 0;
    if (cJSON_IsString(j)) return rc;
    if (!cJSON_IsObject(j)) return aur__json_bad(j, "run config", "loss", "\"mse\", \"aurora_mae\" or an object with a name");
    rc = aur__json_keys(j, W, keys);
    if (!rc) rc = aur__json_enum(aur__json_at(j, "name"), W, names, &tr->loss_mae);
    if (!rc) rc = aur__json_num(aur__json_at(j, "surf_weight"), W, 0, 1e6, &tr->mae.surf);
    if (!rc) rc = aur__json_num(aur__json_at(j, "atmos_weight"), W, 0, 1e6, &tr->mae.atmos);
    if (!rc) rc = aur__json_num(aur__json_at(j, "dataset_weight"), W, 0, 1e6, &tr->mae.dataset);
    if (!rc) rc = aur__json_flag(aur__json_at(j, "latitude_weights"), W, &tr->mae.latitude);
    if (!rc) rc = aur__trainer_mae_weights(j, "surf_weights", &tr->mae.surf_names, tr->mae.surf_weight);
    if (!rc) rc = aur__trainer_mae_weights(j, "atmos_weights", &tr->mae.atmos_names, tr->mae.atmos_weight);
    if (!rc && !tr->loss_mae && cJSON_GetArraySize(j) > (aur__json_at(j, "name") != NULL))
        rc = aur__err(AUR_EINVAL, "run config: loss: weights are options of \"name\": \"aurora_mae\"; the MSE takes none");
    return rc;
}

/* Every key of the run config (tr->config), read and checked before
   anything is built or read from disk: a typo in the last section costs
   no time. Files, variables and output_dir are checked next, as the
   trainer is made, all before step 1. */
static int aur__trainer_read_config(aur_trainer *tr)
{
    const cJSON *c = tr->config;
    int rc = aur__json_unique(c, "run config");
    if (!rc) rc = aur__trainer_top(tr, c);
    if (!rc) rc = aur__trainer_model_config(tr, aur__json_at(c, "model"));
    if (!rc) rc = aur__trainer_data(tr, aur__json_at(c, "data"));
    if (!rc) rc = aur__trainer_optim_config(tr, aur__json_at(c, "optimizer"));
    if (!rc) rc = aur__trainer_schedule(tr, aur__json_at(c, "schedule"));
    if (!rc) rc = aur__trainer_loss_config(tr, aur__json_at(c, "loss"));
    if (!rc && tr->loss_mae && tr->check.nan_ok && tr->check.nan_ok[0])
        rc = aur__err(AUR_EINVAL, "run config: loss \"aurora_mae\" needs finite data, but data.nan_ok lets NaN in (%s); the default MSE "
                      "leaves non-finite cells out", tr->check.nan_ok);
    return rc;
}

/* Every map_vars entry names a predicted variable ("2t", or "t@850" at a level
   of the data): a typo must not wait for the last step's plot to fail. */
static int aur__trainer_check_maps(const aur_trainer *tr)
{
    const aur_aurora_config *c = &tr->mcfg;
    for (int i = 0; i < tr->n_maps; i++) {
        char var[AUR_NAME_LEN];
        snprintf(var, sizeof var, "%s", tr->map_vars[i]);
        char *at = strchr(var, '@');
        if (at) *at++ = 0;
        int in_atmos = aur__vl_find(&c->atmos_vars, var) >= 0, ok = at ? in_atmos : in_atmos || aur__vl_find(&c->surf_vars, var) >= 0;
        for (int k = 0, found = 0; ok && at && !found; k++) {
            if (k == tr->n_levels) ok = 0;
            else found = tr->levels[k] == atof(at);
        }
        if (!ok)
            return aur__err(AUR_EINVAL, "run config: map_vars: '%s' is not a predicted variable (a surface variable, or an atmospheric one as 'name@level' "
                            "at a level of the data)", tr->map_vars[i]);
    }
    return 0;
}

/* output_dir is a directory this run can write, before step 1 rather than at the first save. */
static int aur__trainer_check_output(const aur_trainer *tr)
{
    char probe[1100];
    struct stat st;
    int rc = aur__mkdirs(tr->out_dir);
    if (!rc && (stat(tr->out_dir, &st) || !S_ISDIR(st.st_mode))) rc = aur__err(AUR_EINVAL, "run config: output_dir %s is not a directory", tr->out_dir);
    snprintf(probe, sizeof probe, "%s/.write-test", tr->out_dir);
    FILE *fp = rc ? NULL : fopen(probe, "w");
    if (!rc && (!fp || fclose(fp)))
        rc = aur__err(AUR_EIO, "run config: output_dir %s is not writable: %s", tr->out_dir, strerror(errno));
    if (fp) remove(probe);
    return rc;
}

/* A trainer holding a copy of the config and a fresh run id, nothing built yet. */
static aur_trainer *aur__trainer_alloc(const cJSON *config, const char *base_dir)
{
    aur_trainer *tr = (aur_trainer *)aur__calloc(sizeof *tr, "a trainer");
    if (!tr) return NULL;
    snprintf(tr->base_dir, sizeof tr->base_dir, "%s", base_dir ? base_dir : "");
    aur__new_run_id(tr->run_id, sizeof tr->run_id);
    if (!(tr->config = cJSON_Duplicate(config, 1))) {
        AUR_FREE(tr);
        return NULL;
    }
    return tr;
}

/* The last checks and pieces every run needs once its model and optimiser
   are built (rc: how the building went); frees tr and returns NULL on error. */
static aur_trainer *aur__trainer_finish(aur_trainer *tr, int rc)
{
    if (!rc) rc = aur__trainer_check_output(tr);
    if (!rc && !(tr->t = aur_tape_create())) rc = AUR_ENOMEM;
    tr->hist.cols = 4 + tr->n_groups;
    tr->val_hist.cols = 2 + (tr->task ? tr->task->n_metrics : 0);
    if (rc) {
        aur_trainer_free(tr);
        return NULL;
    }
    return tr;
}

AURDEF aur_trainer *aur_trainer_create_json(const cJSON *config, const char *base_dir)
{
    aur_trainer *tr = aur__trainer_alloc(config, base_dir);
    if (!tr) return NULL;
    int rc = aur__trainer_read_config(tr);
    if (!rc) rc = aur__trainer_model_build(tr);
    if (!rc) rc = aur__trainer_scan(tr, &tr->train, "training");
    if (!rc) rc = aur__trainer_scan(tr, &tr->val, "validation");
    if (!rc) rc = aur__trainer_optim_build(tr);
    if (!rc) rc = aur__trainer_check_maps(tr);
    return aur__trainer_finish(tr, rc);
}

/* A config file's directory, for its relative paths. */
static void aur__config_dir(const char *config_path, char *dir, size_t size)
{
    snprintf(dir, size, "%s", config_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else dir[0] = 0;
}

/* A trainer from a config file, its relative paths taken from the file's directory (Aurora's and Surya's creators). */
static aur_trainer *aur__trainer_from_file(const char *config_path, aur_trainer *(*create_json)(const cJSON *, const char *))
{
    cJSON *j = aur_json_load(config_path);
    if (!j) return NULL;
    char dir[1024];
    aur__config_dir(config_path, dir, sizeof dir);
    aur_trainer *tr = create_json(j, dir);
    cJSON_Delete(j);
    return tr;
}

AURDEF aur_trainer *aur_trainer_create(const char *config_path) { return aur__trainer_from_file(config_path, aur_trainer_create_json); }

static void aur__data_free(aur__data *d)
{
    for (int i = 0; i < d->n_files; i++) {
        for (int k = 0; d->paths && k < d->n_paths[i]; k++) AUR_FREE(d->paths[i][k]);
        if (d->paths) AUR_FREE(d->paths[i]);
        AUR_FREE(d->files[i]);
    }
    AUR_FREE(d->files);
    AUR_FREE(d->paths);
    AUR_FREE(d->n_paths);
    AUR_FREE(d->win);
    aur_window_free(&d->read);
    aur_series_close(d->open);
}

AURDEF void aur_trainer_free(aur_trainer *tr)
{
    if (!tr) return;
    aur_loader_free(tr->loader); /* first: its thread reads the training set */
    const aur__trainer_task *task = tr->task;
    tr->task = NULL; /* a task may keep its hooks in its own state */
    if (task && task->free_ctx) task->free_ctx(tr->task_ctx);
    cJSON_Delete(tr->config);
    aur_optim_free(tr->o);
    aur_tape_free(tr->t);
    aur_scores_free(&tr->val_scores);
    aur_model_free(tr->m);
    aur_load_report_free(&tr->rep);
    AUR_FREE(tr->new_params);
    AUR_FREE(tr->renames);
    aur__data_free(&tr->train);
    aur__data_free(&tr->val);
    for (int g = 0; g < tr->n_groups; g++) AUR_FREE(tr->group_params[g]);
    AUR_FREE(tr->hist.v);
    AUR_FREE(tr->val_hist.v);
    AUR_FREE(tr);
}

AURDEF aur_model *aur_trainer_model(const aur_trainer *tr) { return tr ? tr->m : NULL; }
AURDEF int64_t aur_trainer_steps_done(const aur_trainer *tr) { return tr ? tr->step : 0; }
