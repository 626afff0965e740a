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

typedef struct aur__window {
    int file, start;
} aur__window;

typedef struct aur__data {
    char **files;
    int n_files;
    aur__window *win;
    int n_win;
    aur_batch *cache; /* the series file of this set read last (training and evaluation keep one each) */
    int cache_file;
} aur__data;

struct aur_trainer {
    cJSON *config;
    char base_dir[1024], out_dir[1024];
    aur_aurora_config mcfg;
    aur_device device; /* "device": where the model, its gradients and the optimiser live */
    aur_model *m;
    aur_optim *o;
    aur_tape *t;
    aur_load_report rep;
    char *new_params; /* the new variables' per-variable parameters, comma-joined */
    /* data */
    aur__data train, val;
    int history, rollout, eval_windows;
    aur_check_opts check;
    /* optimisation */
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
    char map_vars[AUR__MAX_MAPS][AUR_NAME_LEN];
    int n_maps;
    aur__table hist;     /* step, loss, grad norm, lr, group norms... */
    aur__table val_hist; /* step, loss */
    double started, steps_at_start;
};

static double aur__wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the JSON run config ---- */

/* An unknown key is an error naming it: a typo must not silently fall back to a default. */
static int aur__cfg_keys(const cJSON *obj, const char *section, const char *const *allowed)
{
    if (!cJSON_IsObject(obj)) return aur__err(AUR_EINVAL, "run config: '%s' must be an object", section);
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (int i = 0; allowed[i] && !ok; i++) ok = !strcmp(allowed[i], it->string);
        if (!ok) return aur__err(AUR_EINVAL, "run config: unknown key '%s' in %s", it->string, section);
    }
    return 0;
}

static int aur__cfg_num(const cJSON *obj, const char *key, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return 0;
    if (cJSON_IsBool(v)) *out = cJSON_IsTrue(v);
    else if (cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi) *out = v->valuedouble;
    else return aur__err(AUR_EINVAL, "run config: '%s' must be a number in [%g, %g]", key, lo, hi);
    return 0;
}

static int aur__cfg_int(const cJSON *obj, const char *key, double lo, double hi, int64_t *out)
{
    double d = (double)*out;
    int rc = aur__cfg_num(obj, key, lo, hi, &d);
    if (!rc && d != floor(d)) rc = aur__err(AUR_EINVAL, "run config: '%s' must be a whole number", key);
    *out = (int64_t)d;
    return rc;
}

static int aur__cfg_flag(const cJSON *obj, const char *key, int *out)
{
    int64_t v = *out;
    int rc = aur__cfg_int(obj, key, 0, 1, &v);
    *out = (int)v;
    return rc;
}

static const char *aur__cfg_str(const cJSON *obj, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

static int aur__cfg_is_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return !v || cJSON_IsString(v) ? 0 : aur__err(AUR_EINVAL, "run config: '%s' must be a string", key);
}

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

/* "model": {preset, kwargs, checkpoint, load, new_embeddings, stats, freeze, train_only} */
static int aur__trainer_model(aur_trainer *tr, const cJSON *j)
{
    static const char *keys[] = {"preset", "kwargs", "checkpoint", "load", "new_embeddings", "stats", "freeze", "train_only", NULL};
    if (!j) return aur__err(AUR_EINVAL, "run config: the 'model' section is required");
    int rc = aur__cfg_keys(j, "model", keys);
    for (int i = 0; keys[i] && !rc; i++)
        if (strcmp(keys[i], "kwargs") && strcmp(keys[i], "stats")) rc = aur__cfg_is_str(j, keys[i]);
    if (!rc) rc = aur_aurora_preset(aur__cfg_str(j, "preset", "aurora-small-pretrained"), &tr->mcfg);
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(j, "kwargs");
    if (!rc && kw) rc = aur_aurora_config_json(kw, &tr->mcfg);
    tr->mcfg.checkpoint_blocks = tr->checkpointing;
    tr->mcfg.autocast = tr->autocast;
    if (!rc && !(tr->m = aur_aurora_create(&tr->mcfg, tr->device, tr->seed))) rc = AUR_EINVAL;
    const cJSON *stats = cJSON_GetObjectItemCaseSensitive(j, "stats");
    for (const cJSON *s = stats ? stats->child : NULL; s && !rc; s = s->next) {
        if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(s, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(s, 1)))
            return aur__err(AUR_EINVAL, "run config: stats '%s' must be [location, scale]", s->string);
        rc = aur_aurora_set_stats(tr->m, s->string, cJSON_GetArrayItem(s, 0)->valuedouble, cJSON_GetArrayItem(s, 1)->valuedouble);
    }
    const char *ckpt = aur__cfg_str(j, "checkpoint", NULL), *load = aur__cfg_str(j, "load", "non-strict");
    const char *init = aur__cfg_str(j, "new_embeddings", "random");
    if (!rc && strcmp(init, "random") && strcmp(init, "zero"))
        rc = aur__err(AUR_EINVAL, "run config: new_embeddings is '%s'; use \"random\" or \"zero\"", init);
    aur_load_mode mode = !strcmp(load, "strict") ? AUR_LOAD_STRICT : !strcmp(load, "filtered") ? AUR_LOAD_FILTERED : AUR_LOAD_NONSTRICT;
    if (!rc && mode == AUR_LOAD_NONSTRICT && strcmp(load, "non-strict"))
        rc = aur__err(AUR_EINVAL, "run config: load is '%s'; use \"strict\", \"non-strict\" or \"filtered\"", load);
    if (!rc && ckpt) {
        char path[2048];
        rc = aur__path(tr, ckpt, path, sizeof path);
        if (!rc) rc = aur_aurora_load(tr->m, path, mode, &tr->rep);
        if (!rc) tr->new_params = aur_aurora_new_var_params(tr->m, &tr->rep);
        if (!rc && !tr->new_params) rc = AUR_ENOMEM;
        /* the guide: zero new encoder embeddings leave the old variables' predictions unchanged */
        if (!rc && !strcmp(init, "zero") && tr->new_params[0]) {
            char *embeds = aur__strdup(tr->new_params);
            if (!embeds) return AUR_ENOMEM;
            for (char *tok = strtok(embeds, ","); tok && rc >= 0; tok = strtok(NULL, ","))
                if (aur_name_matches("encoder.*_token_embeds.weights.*", tok)) rc = aur_model_fill(tr->m, tok, 0);
            AUR_FREE(embeds);
            rc = rc < 0 ? rc : 0;
        }
    }
    if (!rc && !tr->new_params) rc = (tr->new_params = aur__strdup("")) ? 0 : AUR_ENOMEM;
    char *only = rc ? NULL : aur__expand_new(tr, aur__cfg_str(j, "train_only", NULL));
    char *freeze = rc ? NULL : aur__expand_new(tr, aur__cfg_str(j, "freeze", NULL));
    if (!rc && only) {
        aur_model_freeze(tr->m, "*");
        rc = aur_model_unfreeze(tr->m, only) < 0 ? AUR_EINVAL : 0;
    }
    if (!rc && freeze) rc = aur_model_freeze(tr->m, freeze) < 0 ? AUR_EINVAL : 0;
    AUR_FREE(only);
    AUR_FREE(freeze);
    return rc;
}

/* A file list: a string or an array of strings. */
static int aur__trainer_files(aur_trainer *tr, const cJSON *v, const char *key, aur__data *d)
{
    int n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 0) return aur__err(AUR_EINVAL, "run config: data.%s must be a file name or a list of them", key);
    d->files = (char **)aur__calloc(sizeof(char *) * (size_t)(n + 1), "a file list");
    if (!d->files) return AUR_ENOMEM;
    for (int i = 0; i < n; i++) {
        const cJSON *f = cJSON_IsString(v) ? v : cJSON_GetArrayItem(v, i);
        if (!cJSON_IsString(f)) return aur__err(AUR_EINVAL, "run config: data.%s[%d] is not a file name", key, i);
        char path[2048];
        if (aur__path(tr, f->valuestring, path, sizeof path)) return AUR_EINVAL;
        if (!(d->files[i] = aur__strdup(path))) return AUR_ENOMEM;
        d->n_files++;
    }
    return 0;
}

/* Reads every series once: checks it (refusing bad data with the variable's
   name) and lists its windows of history + rollout steps. */
static int aur__trainer_scan(aur_trainer *tr, aur__data *d, const char *what)
{
    int span = tr->history + tr->rollout;
    for (int f = 0; f < d->n_files; f++) {
        aur_batch *s = aur_batch_load_unchecked(d->files[f]);
        if (!s) return AUR_EFORMAT;
        aur_check_report rep;
        int rc = aur_aurora_check_batch(tr->m, s, &tr->check, &rep);
        if (rc) {
            fprintf(stderr, "%s data %s:\n", what, d->files[f]);
            aur_check_report_print(&rep, stderr);
            char msg[1024];
            snprintf(msg, sizeof msg, "%.1000s", aur_last_error());
            rc = aur__err(AUR_EFORMAT, "%s: %s", d->files[f], msg);
        } else if (s->T < span) {
            rc = aur__err(AUR_EFORMAT, "%s: %d time steps; a window needs history %d + rollout %d", d->files[f], s->T, tr->history,
                          tr->rollout);
        }
        int n = rc ? 0 : s->T - span + 1;
        aur_check_report_free(&rep);
        aur_batch_free(s);
        if (rc) return rc;
        aur__window *w = (aur__window *)AUR_REALLOC(d->win, sizeof(aur__window) * (size_t)(d->n_win + n));
        if (!w) return aur__err(AUR_ENOMEM, "out of memory listing windows");
        d->win = w;
        for (int i = 0; i < n; i++) d->win[d->n_win].file = f, d->win[d->n_win++].start = i;
    }
    return d->n_files && !d->n_win ? aur__err(AUR_EFORMAT, "%s data: no windows", what) : 0;
}

/* "data": {train, val, history, rollout_steps, eval_windows, nan_ok, outlier_z} */
static int aur__trainer_data(aur_trainer *tr, const cJSON *j)
{
    static const char *keys[] = {"train", "val", "history", "rollout_steps", "eval_windows", "nan_ok", "outlier_z", NULL};
    if (!j) return aur__err(AUR_EINVAL, "run config: the 'data' section is required");
    int64_t hist = tr->mcfg.max_history_size, roll = 1, ev = 8;
    tr->check = aur_check_defaults();
    int rc = aur__cfg_keys(j, "data", keys);
    if (!rc) rc = aur__cfg_int(j, "history", 1, tr->mcfg.max_history_size, &hist);
    if (!rc) rc = aur__cfg_int(j, "rollout_steps", 1, 64, &roll);
    if (!rc) rc = aur__cfg_int(j, "eval_windows", 1, 1e6, &ev);
    if (!rc) rc = aur__cfg_num(j, "outlier_z", 1, 1e9, &tr->check.outlier_z);
    if (!rc) rc = aur__cfg_is_str(j, "nan_ok");
    tr->check.nan_ok = aur__cfg_str(j, "nan_ok", NULL);
    tr->history = (int)hist, tr->rollout = (int)roll, tr->eval_windows = (int)ev;
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(j, "train"), *val = cJSON_GetObjectItemCaseSensitive(j, "val");
    if (!rc && !train) rc = aur__err(AUR_EINVAL, "run config: data.train is required");
    if (!rc) rc = aur__trainer_files(tr, train, "train", &tr->train);
    if (!rc && val) rc = aur__trainer_files(tr, val, "val", &tr->val);
    if (!rc) rc = aur__trainer_scan(tr, &tr->train, "training");
    if (!rc) rc = aur__trainer_scan(tr, &tr->val, "validation");
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

/* "optimizer": {name, lr, weight_decay, betas, eps, offload, new_vars_lr, groups: [{name, params, lr, weight_decay}]} */
static int aur__trainer_optim(aur_trainer *tr, const cJSON *j)
{
    static const char *keys[] = {"name", "lr", "weight_decay", "betas", "eps", "offload", "new_vars_lr", "groups", NULL};
    static const char *gkeys[] = {"name", "params", "lr", "weight_decay", NULL};
    cJSON *empty = cJSON_CreateObject();
    if (!j) j = empty;
    int rc = aur__cfg_keys(j, "optimizer", keys);
    const char *name = aur__cfg_str(j, "name", "adamw");
    aur_optim_opts o = !strcmp(name, "adam") ? aur_adam_defaults() : !strcmp(name, "adafactor") ? aur_adafactor_defaults() : aur_adamw_defaults();
    if (!rc && strcmp(name, "adam") && strcmp(name, "adamw") && strcmp(name, "adafactor"))
        rc = aur__err(AUR_EINVAL, "run config: optimizer '%s'; use \"adam\", \"adamw\" or \"adafactor\"", name);
    if (o.kind != AUR_ADAFACTOR) o.lr = 3e-4; /* the guide's rate for the pretrained weights */
    if (!rc) rc = aur__cfg_num(j, "lr", 0, 10, &o.lr);
    if (!rc) rc = aur__cfg_num(j, "weight_decay", 0, 10, &o.weight_decay);
    if (!rc) rc = aur__cfg_num(j, "eps", 0, 1, &o.eps);
    if (!rc) rc = aur__cfg_flag(j, "offload", &tr->offload);
    const cJSON *betas = cJSON_GetObjectItemCaseSensitive(j, "betas");
    if (!rc && betas) {
        if (cJSON_GetArraySize(betas) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(betas, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(betas, 1)))
            rc = aur__err(AUR_EINVAL, "run config: betas must be [beta1, beta2]");
        else o.beta1 = cJSON_GetArrayItem(betas, 0)->valuedouble, o.beta2 = cJSON_GetArrayItem(betas, 1)->valuedouble;
    }
    o.offload = tr->offload; /* on a GPU: the state in pinned host memory; on the CPU it is there already */
    if (!rc && !(tr->o = aur_optim_create(tr->m, &o))) rc = AUR_EINVAL;
    snprintf(tr->group_name[0], sizeof tr->group_name[0], "rest");
    tr->n_groups = 1;
    double new_lr = -1;
    if (!rc) rc = aur__cfg_num(j, "new_vars_lr", 0, 10, &new_lr);
    if (!rc && new_lr >= 0) rc = aur__trainer_group(tr, "new_vars", tr->new_params, new_lr, o.weight_decay);
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(j, "groups");
    for (int i = 0; !rc && groups && i < cJSON_GetArraySize(groups); i++) {
        const cJSON *g = cJSON_GetArrayItem(groups, i);
        double lr = o.lr, wd = o.weight_decay;
        rc = aur__cfg_keys(g, "optimizer.groups[]", gkeys);
        if (!rc) rc = aur__cfg_num(g, "lr", 0, 10, &lr);
        if (!rc) rc = aur__cfg_num(g, "weight_decay", 0, 10, &wd);
        const char *params = aur__cfg_str(g, "params", NULL);
        if (!rc && !params) rc = aur__err(AUR_EINVAL, "run config: optimizer.groups[%d] needs 'params' (name patterns)", i);
        if (!rc) rc = aur__trainer_group(tr, aur__cfg_str(g, "name", params), params, lr, wd);
    }
    cJSON_Delete(empty);
    return rc;
}

/* "schedule": {kind, warmup_steps, final_factor} over the run's steps */
static int aur__trainer_schedule(aur_trainer *tr, const cJSON *j)
{
    static const char *keys[] = {"kind", "warmup_steps", "final_factor", NULL};
    tr->sched.kind = AUR_LR_CONSTANT;
    tr->sched.total_steps = tr->steps;
    tr->sched.final_factor = 0;
    if (!j) return 0;
    int rc = aur__cfg_keys(j, "schedule", keys);
    const char *kind = aur__cfg_str(j, "kind", "constant");
    tr->sched.kind = !strcmp(kind, "cosine") ? AUR_LR_COSINE : !strcmp(kind, "linear") ? AUR_LR_LINEAR : AUR_LR_CONSTANT;
    if (!rc && tr->sched.kind == AUR_LR_CONSTANT && strcmp(kind, "constant"))
        rc = aur__err(AUR_EINVAL, "run config: schedule kind '%s'; use \"constant\", \"linear\" or \"cosine\"", kind);
    if (!rc) rc = aur__cfg_int(j, "warmup_steps", 0, 1e12, &tr->sched.warmup_steps);
    if (!rc) rc = aur__cfg_num(j, "final_factor", 0, 1, &tr->sched.final_factor);
    return rc;
}

/* The top-level keys: run length, numerics, stability and output. */
static int aur__trainer_top(aur_trainer *tr, const cJSON *j)
{
    static const char *keys[] = {"model", "data", "optimizer", "schedule", "steps", "seed", "clip_grad_norm",
                                 "activation_checkpointing", "autocast", "pure_bf16", "alarm", "log_every", "eval_every",
                                 "save_every", "plot_every", "keep_last", "output_dir", "map_vars", "device", NULL};
    static const char *akeys[] = {"window", "z", "skip", NULL};
    int64_t seed = 0, log_every = 1, eval_every = 0, save_every = 0, plot_every = 0, keep = 2, window = 50;
    double z = 6;
    int skip = 1;
    tr->steps = 100;
    int rc = aur__cfg_keys(j, "the run config", keys);
    if (!rc) rc = aur__cfg_int(j, "steps", 0, 1e12, &tr->steps);
    if (!rc) rc = aur__cfg_int(j, "seed", 0, 9007199254740992.0, &seed);
    if (!rc) rc = aur__cfg_num(j, "clip_grad_norm", 0, 1e30, &tr->clip);
    if (!rc) rc = aur__cfg_flag(j, "activation_checkpointing", &tr->checkpointing);
    if (!rc) rc = aur__cfg_flag(j, "autocast", &tr->autocast);
    if (!rc) rc = aur__cfg_flag(j, "pure_bf16", &tr->pure_bf16);
    if (!rc) rc = aur__cfg_int(j, "log_every", 1, 1e12, &log_every);
    if (!rc) rc = aur__cfg_int(j, "eval_every", 0, 1e12, &eval_every);
    if (!rc) rc = aur__cfg_int(j, "save_every", 0, 1e12, &save_every);
    if (!rc) rc = aur__cfg_int(j, "plot_every", 0, 1e12, &plot_every);
    if (!rc) rc = aur__cfg_int(j, "keep_last", 1, 1e6, &keep);
    if (!rc) rc = aur__cfg_is_str(j, "output_dir");
    if (!rc) rc = aur__cfg_is_str(j, "device");
    const char *device = aur__cfg_str(j, "device", "cpu");
    tr->device = !strcmp(device, "cuda") ? AUR_CUDA : AUR_CPU;
    if (!rc && strcmp(device, "cpu") && strcmp(device, "cuda"))
        rc = aur__err(AUR_EINVAL, "run config: device '%s'; use \"cpu\" or \"cuda\"", device);
    if (!rc && tr->device == AUR_CUDA && !aur_cuda_available())
        rc = aur__err(AUR_EUNSUPPORTED, "run config: device \"cuda\", but %s", aur__cuda_build() ? "no GPU is visible" :
                      "this program was built without CUDA (compile the implementation with nvcc -DAURORA_CUDA)");
    const cJSON *alarm = cJSON_GetObjectItemCaseSensitive(j, "alarm");
    if (!rc && alarm) rc = aur__cfg_keys(alarm, "alarm", akeys);
    if (!rc && alarm) rc = aur__cfg_int(alarm, "window", 2, AUR_ALARM_WINDOW, &window);
    if (!rc && alarm) rc = aur__cfg_num(alarm, "z", 0.1, 1e6, &z);
    if (!rc && alarm) rc = aur__cfg_flag(alarm, "skip", &skip);
    aur_grad_alarm_init(&tr->alarm, (int)window, z, skip);
    if (tr->pure_bf16) tr->autocast = 1;
    tr->seed = (uint64_t)seed;
    tr->log_every = (int)log_every, tr->eval_every = (int)eval_every, tr->save_every = (int)save_every;
    tr->plot_every = (int)plot_every, tr->keep_last = (int)keep;
    if (!rc) rc = aur__path(tr, aur__cfg_str(j, "output_dir", "run-out"), tr->out_dir, sizeof tr->out_dir);
    const cJSON *maps = cJSON_GetObjectItemCaseSensitive(j, "map_vars");
    for (int i = 0; !rc && maps && i < cJSON_GetArraySize(maps) && i < AUR__MAX_MAPS; i++) {
        const cJSON *v = cJSON_GetArrayItem(maps, i);
        if (!cJSON_IsString(v)) rc = aur__err(AUR_EINVAL, "run config: map_vars must list variable names");
        else snprintf(tr->map_vars[tr->n_maps++], AUR_NAME_LEN, "%s", v->valuestring);
    }
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

AURDEF aur_trainer *aur_trainer_create_json(const cJSON *config, const char *base_dir)
{
    aur_trainer *tr = (aur_trainer *)aur__calloc(sizeof *tr, "a trainer");
    if (!tr) return NULL;
    snprintf(tr->base_dir, sizeof tr->base_dir, "%s", base_dir ? base_dir : "");
    tr->config = cJSON_Duplicate(config, 1);
    int rc = tr->config ? aur__trainer_top(tr, config) : AUR_ENOMEM;
    if (!rc) rc = aur__trainer_model(tr, cJSON_GetObjectItemCaseSensitive(config, "model"));
    if (!rc) rc = aur__trainer_data(tr, cJSON_GetObjectItemCaseSensitive(config, "data"));
    if (!rc) rc = aur__trainer_optim(tr, cJSON_GetObjectItemCaseSensitive(config, "optimizer"));
    if (!rc) rc = aur__trainer_schedule(tr, cJSON_GetObjectItemCaseSensitive(config, "schedule"));
    if (!rc && !(tr->t = aur_tape_create())) rc = AUR_ENOMEM;
    tr->hist.cols = 4 + tr->n_groups;
    tr->val_hist.cols = 2;
    if (rc) {
        aur_trainer_free(tr);
        return NULL;
    }
    return tr;
}

AURDEF aur_trainer *aur_trainer_create(const char *config_path)
{
    cJSON *j = aur_json_load(config_path);
    if (!j) return NULL;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", config_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else dir[0] = 0;
    aur_trainer *tr = aur_trainer_create_json(j, dir);
    cJSON_Delete(j);
    return tr;
}

static void aur__data_free(aur__data *d)
{
    for (int i = 0; i < d->n_files; i++) AUR_FREE(d->files[i]);
    AUR_FREE(d->files);
    AUR_FREE(d->win);
    aur_batch_free(d->cache);
}

AURDEF void aur_trainer_free(aur_trainer *tr)
{
    if (!tr) return;
    cJSON_Delete(tr->config);
    aur_optim_free(tr->o);
    aur_tape_free(tr->t);
    aur_model_free(tr->m);
    aur_load_report_free(&tr->rep);
    AUR_FREE(tr->new_params);
    aur__data_free(&tr->train);
    aur__data_free(&tr->val);
    for (int g = 0; g < tr->n_groups; g++) AUR_FREE(tr->group_params[g]);
    AUR_FREE(tr->hist.v);
    AUR_FREE(tr->val_hist.v);
    AUR_FREE(tr);
}

AURDEF aur_model *aur_trainer_model(const aur_trainer *tr) { return tr ? tr->m : NULL; }
AURDEF int64_t aur_trainer_steps_done(const aur_trainer *tr) { return tr ? tr->step : 0; }
