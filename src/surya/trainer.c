#include "api.h"
#include "../core/platform.h"

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
