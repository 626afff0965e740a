#include "api.h"
#include "../core/platform.h"

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
