/* test_surya_train.c - Surya fine-tuning runs from the reference's
   downstream config.yaml keys: the task metrics against counts done by
   hand, sample sets, a flare LoRA run that resumes bit for bit and leaves
   its adapter in PEFT's format, the wind, EUV and AR heads, and the errors
   a config can hold, each before step 1. */
#define AURORA_IMPLEMENTATION
#include "../surya.h"
#include "aur_test.h"

static void test_metrics(void)
{
    /* 10 samples: tp 3, fn 1, fp 2, tn 4 */
    const aur_real prob[10] = {0.9f, 0.8f, 0.7f, 0.2f, 0.6f, 0.55f, 0.1f, 0.3f, 0.4f, 0.5f};
    const aur_real label[10] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    double s[AUR_BINARY_SCORES];
    aur_binary_scores(prob, label, 10, s);
    double tp = 3, fn = 1, fp = 2, tn = 4;
    double want[6] = {0.7, 3.0 / 5, 3.0 / 4, 2 * tp / (2 * tp + fp + fn), 3.0 / 4 - 2.0 / 6,
                      2 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))};
    AUR_CHECK(aur_test_close("binary scores (0.5 itself is a negative)", s, want, 6, 1e-12), "accuracy, precision, recall, F1, TSS, HSS");
    const aur_real pred[4] = {1, 2, 3, 5}, y[4] = {1, 3, 3, 3};
    double r[AUR_REGRESSION_SCORES], rw[3] = {0.75, sqrt(5.0 / 4), 1 - (5.0 / 4) / 0.75};
    aur_regression_scores(pred, y, 4, r);
    AUR_CHECK(aur_test_close("regression scores", r, rw, 3, 1e-12), "MAE, RMSE, R^2 as the reference's evaluate_model");
    const aur_real flat[2] = {2, 2};
    aur_regression_scores(flat, flat, 2, r);
    AUR_CHECK(isnan(r[2]) && r[0] == 0, "R^2 of a constant target is NaN, as the reference's");
    const aur_real mp[6] = {0.9f, 0.9f, 0.1f, 0.6f, 0.2f, 0.3f}, mm[6] = {1, 1, 1, 0, 0, 0};
    double g[AUR_SEGMENTATION_SCORES], gw[2] = {2.0 / 4, 4.0 / 6};
    aur_segmentation_scores(mp, mm, 6, g);
    AUR_CHECK(aur_test_close("segmentation scores", g, gw, 2, 1e-12), "IoU 2/4 and Dice 4/6 of tp 2, fp 1, fn 1");
}

/* A sample set for a task: n samples, C 13, T times, S x S; a signal the heads can learn (the mean of the left half). */
static void write_set(const char *task, const char *path, int n, int T, int S, int K)
{
    aur_surya_samples s;
    memset(&s, 0, sizeof s);
    s.n = n, s.C = 13, s.T = T, s.H = s.W = S;
    int64_t per = 13LL * T * S * S;
    int ar = !strcmp(task, "ar");
    s.target_ndim = ar ? 3 : !strcmp(task, "flare") ? 0 : 1;
    s.target_shape[0] = ar ? 1 : K, s.target_shape[1] = S, s.target_shape[2] = S;
    s.target_size = ar ? (int64_t)S * S : s.target_ndim ? K : 1;
    s.ts = (aur_real *)malloc(sizeof(aur_real) * (size_t)(n * per));
    s.target = (aur_real *)malloc(sizeof(aur_real) * (size_t)(n * s.target_size));
    aur_test_rng = 17;
    for (int i = 0; i < n; i++) {
        double amp = (i * 37 % 11) / 10.0;
        for (int64_t k = 0; k < per; k++) s.ts[i * per + k] = (aur_real)(0.3 * aur_test_normal() + amp * (k % S < S / 2));
        for (int64_t k = 0; k < s.target_size; k++)
            s.target[i * s.target_size + k] = ar ? (aur_real)(k % S < S / 2 && amp > 0.5) : !strcmp(task, "flare") ? (aur_real)(amp > 0.5)
                                                                                                                 : (aur_real)(amp + 0.1 * k);
    }
    AUR_CHECK(!aur_surya_samples_save(&s, path), "writing the sample set %s: %s", path, aur_last_error());
    aur_surya_samples_free(&s);
}

/* The reference's solar_flare_forcasting/config.yaml, every key, at a small architecture. */
static const char *flare_config =
    "{\"job_id\": \"solar_flare_forcasting\", \"task\": \"flare\","
    " \"data\": {\"train_data_path\": \"flare_train.safetensors\", \"valid_data_path\": \"flare_val.safetensors\","
    "  \"flare_data_path\": \"./assets/surya-bench-flare-forecasting/flare_cls_p1_1h.csv\","
    "  \"channels\": [\"aia94\", \"aia131\", \"aia171\", \"aia193\", \"aia211\", \"aia304\", \"aia335\", \"aia1600\", \"hmi_m\", \"hmi_bx\","
    "   \"hmi_by\", \"hmi_bz\", \"hmi_v\"],"
    "  \"time_delta_input_minutes\": [-60, 0], \"time_delta_target_minutes\": 60, \"n_input_timestamps\": 2, \"batch_size\": 4,"
    "  \"num_data_workers\": 4, \"prefetch_factor\": 2, \"pooling\": 1, \"random_vert_flip\": false,"
    "  \"scalers_path\": \"../../data/Surya-1.0/scalers.yaml\"},"
    " \"model\": {\"model_type\": \"spectformer\", \"img_size\": 16, \"patch_size\": 4, \"in_channels\": 13,"
    "  \"time_embedding\": {\"type\": \"linear\", \"n_queries\": null, \"time_dim\": 2},"
    "  \"unet_embed_dim\": null, \"unet_blocks\": null, \"unet_concat_activations\": false,"
    "  \"embed_dim\": 16, \"depth\": 2, \"spectral_blocks\": 1, \"num_heads\": 2, \"mlp_ratio\": 4.0, \"rpe\": false, \"drop_rate\": 0.0,"
    "  \"window_size\": 2, \"dp_rank\": 2, \"learned_flow\": false, \"epochs_to_learn_flow\": 0, \"init_weights\": false,"
    "  \"checkpoint_layers\": [0, 1], \"ensemble\": null, \"finetune\": true, \"nglo\": 1,"
    "  \"global_average_pooling\": false, \"global_max_pooling\": false, \"attention_pooling\": false, \"transformer_pooling\": false,"
    "  \"global_class_token\": true, \"penultimate_linear_layer\": true, \"freeze_backbone\": false, \"dropout\": 0.2,"
    "  \"use_lora\": true, \"lora_config\": {\"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"qkv\", \"proj\", \"fc1\", \"fc2\"],"
    "   \"lora_dropout\": 0.1, \"bias\": \"none\", \"modules_to_save\": [\"linear\", \"unembed\"]}},"
    " \"classifier_metrics\": {\"task\": \"binary\", \"num_classes\": 2, \"average\": \"macro\"},"
    " \"optimizer\": {\"warm_up_steps\": 0, \"max_epochs\": 3, \"learning_rate\": 0.001, \"min_lr\": 0.00001, \"head_lr_multiplier\": 10},"
    " \"use_latitude_in_learned_flow\": false, \"pretrained_path\": \"%s\", \"loss_weights\": [], \"rollout_steps\": 0,"
    " \"num_mask_aia_channels\": 0, \"drop_hmi_probability\": 0.0, \"validate_after_epoch\": 1, \"wandb_log_train_after\": 100,"
    " \"wandb_project\": \"helio-fm\", \"visualization_samples\": 3, \"save_wt_after_iter\": 1000, \"path_experiment\": \"%s\","
    " \"iters_per_epoch_train\": 2000, \"iters_per_epoch_valid\": 200, \"iters_grad_accum\": 1, \"dtype\": \"float32\","
    " \"parallelism\": \"ddp\", \"keep_last\": 10, \"seed\": 3}";

static aur_trainer *flare_trainer(const char *out, const char *pretrained)
{
    char text[8192];
    snprintf(text, sizeof text, flare_config, pretrained, out);
    cJSON *j = cJSON_Parse(text);
    AUR_CHECK(j != NULL, "the flare config parses");
    aur_trainer *tr = aur_surya_trainer_create_json(j, aur_test_tmp(""));
    AUR_CHECK(tr != NULL, "the flare config makes a run: %s", tr ? "" : aur_last_error());
    cJSON_Delete(j);
    return tr;
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb, ca = 0, cb = 0;
    while (same && (ca = fgetc(fa)) == (cb = fgetc(fb)) && ca != EOF) {}
    same = same && ca == cb;
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* The pretrained backbone: a forecasting model's weights (its decoder does not fit the head: the filtered load leaves it out). */
static void write_backbone(const char *path)
{
    aur_surya_config c;
    aur_surya_preset("surya-tiny", &c);
    c.img_size = 16, c.patch_size = 4, c.embed_dim = 16, c.depth = 2, c.n_spectral_blocks = 1, c.num_heads = 2, c.dp_rank = 2, c.nglo = 1;
    aur_model *m = aur_surya_create(&c, AUR_CPU, 41);
    AUR_CHECK(m && !aur_save_safetensors(m, path), "writing the backbone: %s", aur_last_error());
    aur_model_free(m);
}

static void test_flare_run_resume_adapter(void)
{
    write_set("flare", aur_test_tmp("flare_train.safetensors"), 24, 2, 16, 1);
    write_set("flare", aur_test_tmp("flare_val.safetensors"), 8, 2, 16, 1);
    char backbone[512], a[512], b[512], pa[1200], pb[1200];
    snprintf(backbone, sizeof backbone, "%s", aur_test_tmp("backbone.safetensors"));
    write_backbone(backbone);
    snprintf(a, sizeof a, "%s", aur_test_tmp("flare_a"));
    snprintf(b, sizeof b, "%s", aur_test_tmp("flare_b"));
    /* uninterrupted: 3 epochs of 6 steps */
    aur_trainer *tr = flare_trainer(a, backbone);
    if (!tr) return;
    AUR_CHECK(tr->rep.n_loaded > 0 && aur_model_param(tr->m, "backbone.blocks_attention.0.attn.qkv.lora_A.default.weight") != NULL,
              "the backbone is loaded (%d tensors) and qkv is adapted", tr->rep.n_loaded);
    AUR_CHECK(aur_model_param(tr->m, "cls_token")->requires_grad && aur_model_param(tr->m, "unembed.weight")->requires_grad &&
                  !aur_model_param(tr->m, "backbone.blocks_attention.0.attn.qkv.weight")->requires_grad,
              "LoRA freezing: the base is frozen; the class token and modules_to_save train");
    AUR_CHECK(tr->n_groups == 2 && fabs(aur_optim_group_lr(tr->o, 1) - 0.01) < 1e-12, "the head's group trains at 10x the rate");
    AUR_CHECK(!aur_trainer_run(tr) && aur_trainer_steps_done(tr) == 18, "the run does its 18 steps: %s", aur_last_error());
    aur_trainer_free(tr);
    /* stopped after epoch 1 (its checkpoint), then resumed in a fresh process's place */
    tr = flare_trainer(b, backbone);
    for (int s = 0; tr && s < 6; s++) AUR_CHECK(!aur_trainer_step(tr, NULL), "step %d", s + 1);
    double val = 0;
    if (tr) AUR_CHECK(!aur_trainer_eval(tr, &val) && !aur_trainer_save(tr), "a checkpoint at step 6: %s", aur_last_error());
    aur_trainer_free(tr);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/checkpoint-000006", b);
    tr = flare_trainer(b, backbone);
    AUR_CHECK(tr && !aur_trainer_resume(tr, dir) && aur_trainer_steps_done(tr) == 6, "resumed at step 6: %s", aur_last_error());
    if (tr) AUR_CHECK(!aur_trainer_run(tr), "the resumed run finishes: %s", aur_last_error());
    aur_trainer_free(tr);
    snprintf(pa, sizeof pa, "%s/checkpoint-000018/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/checkpoint-000018/model.safetensors", b);
    AUR_CHECK(same_file(pa, pb), "the resumed run's weights equal the uninterrupted run's, bit for bit");
    snprintf(pa, sizeof pa, "%s/checkpoint-000018/adapter_model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/checkpoint-000018/adapter_model.safetensors", b);
    AUR_CHECK(same_file(pa, pb), "and so does the adapter");
    /* metrics: every evaluation has the task's metrics */
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", a);
    FILE *fp = fopen(pa, "r");
    char line[4096];
    int evals = 0, lines = 0;
    while (fp && fgets(line, sizeof line, fp)) {
        lines++;
        evals += strstr(line, "\"val_loss\"") && strstr(line, "\"val/tss\"") && strstr(line, "\"val/hss\"") && strstr(line, "\"val/f1\"") &&
                 strstr(line, "\"val/accuracy\"") && strstr(line, "\"val/precision\"") && strstr(line, "\"val/recall\"");
    }
    if (fp) fclose(fp);
    AUR_CHECK(lines == 18 && evals == 3, "metrics.jsonl: 18 steps, 3 evaluations with accuracy..HSS (%d, %d)", lines, evals);
    snprintf(pa, sizeof pa, "%s/curves.png", a);
    snprintf(pb, sizeof pb, "%s/events.out.tfevents.aurora", a);
    AUR_CHECK(access(pa, R_OK) == 0 && access(pb, R_OK) == 0, "curves.png and the TensorBoard events are written");
    /* the adapter directory is PEFT's: it loads into a model declared from its own config */
    aur_lora_config lc;
    snprintf(dir, sizeof dir, "%s/checkpoint-000018", a);
    int rc = aur_lora_load_config(dir, &lc, NULL);
    aur_surya_config c;
    aur_surya_preset("surya-tiny", &c);
    cJSON *j = cJSON_Parse("{\"img_size\": 16, \"patch_size\": 4, \"in_channels\": 13, \"embed_dim\": 16, \"depth\": 2,"
                           " \"spectral_blocks\": 1, \"num_heads\": 2, \"dp_rank\": 2, \"nglo\": 1, \"dropout\": 0.2,"
                           " \"time_embedding\": {\"type\": \"linear\", \"time_dim\": 2}, \"global_class_token\": true}");
    if (!rc) rc = aur_surya_config_yaml(j, "flare", &c);
    cJSON_Delete(j);
    aur_model *m = rc ? NULL : aur_surya_declare_model(&c);
    if (m) rc = aur_lora_declare(m, &lc, NULL) || aur_model_alloc(m, AUR_CPU) || aur_lora_load(m, dir);
    AUR_CHECK(m && !rc && lc.r == 4 && lc.n_modules_to_save == 2, "the checkpoint's adapter loads back with its config: %s",
              rc ? aur_last_error() : "");
    aur_model_free(m);
}

/* A small run of another task: its metrics in the last metrics line. */
static void run_task(const char *task, const char *model_extra, const char *metric, int K)
{
    char train[64], val[64], out[64], text[4096], path[400], line[4096] = "";
    snprintf(train, sizeof train, "%s_train.safetensors", task);
    snprintf(val, sizeof val, "%s_val.safetensors", task);
    write_set(task, aur_test_tmp(train), 8, 1, 16, K);
    write_set(task, aur_test_tmp(val), 4, 1, 16, K);
    snprintf(out, sizeof out, "%s_out", task);
    snprintf(text, sizeof text,
             "{\"task\": \"%s\", \"data\": {\"train_data_path\": \"%s\", \"valid_data_path\": \"%s\", \"batch_size\": 2,"
             " \"time_delta_input_minutes\": [0], \"n_input_timestamps\": 1},"
             " \"model\": {\"model_type\": \"spectformer_lora\", \"img_size\": 16, \"patch_size\": 4, \"in_channels\": 13, \"embed_dim\": 16,"
             " \"depth\": 2, \"spectral_blocks\": 1, \"num_heads\": 2, \"dp_rank\": 2, \"time_embedding\": {\"type\": \"linear\", \"time_dim\": 1}%s},"
             " \"optimizer\": {\"max_epochs\": 2, \"learning_rate\": 0.003, \"scheduler\": \"cosine\", \"min_lr\": 0.0001},"
             " \"path_experiment\": \"%s\", \"dtype\": \"bfloat16\"}",
             task, train, val, model_extra, out);
    cJSON *j = cJSON_Parse(text);
    aur_trainer *tr = j ? aur_surya_trainer_create_json(j, aur_test_tmp("")) : NULL;
    cJSON_Delete(j);
    AUR_CHECK(tr != NULL, "a %s run: %s", task, tr ? "" : aur_last_error());
    if (!tr) return;
    AUR_CHECK(!aur_trainer_run(tr) && aur_trainer_steps_done(tr) == 8, "the %s run does 2 epochs of 4 steps: %s", task, aur_last_error());
    aur_trainer_free(tr);
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", aur_test_dir, out);
    FILE *fp = fopen(path, "r");
    while (fp && fgets(line, sizeof line, fp)) {}
    if (fp) fclose(fp);
    AUR_CHECK(strstr(line, metric) != NULL, "the %s run logs %s: %.200s", task, metric, line);
}

static void test_other_tasks(void)
{
    run_task("wind", ", \"global_average_pooling\": true, \"penultimate_linear_layer\": true, \"dropout\": 0.0", "\"val/r2\"", 1);
    run_task("euv", ", \"global_max_pooling\": true, \"penultimate_linear_layer\": false", "\"val/rmse\"", 5);
    run_task("ar", ", \"ft_unembedding_type\": \"linear\", \"ft_out_chans\": 1, \"use_lora\": true, \"select\": \"bce\","
                   " \"lora_config\": {\"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"fc1\", \"fc2\"], \"modules_to_save\": [\"unembed\"]}",
             "\"val/iou\"", 1);
    char path[400];
    snprintf(path, sizeof path, "%s/ar_out/ar_masks.png", aur_test_dir);
    AUR_CHECK(access(path, R_OK) == 0, "the AR run draws its masks");
}

/* A PNG's size from its IHDR chunk (bytes 16..23, big-endian). */
static int png_size(const char *path, int *w, int *h)
{
    unsigned char b[24];
    FILE *fp = fopen(path, "rb");
    int ok = fp && fread(b, 1, 24, fp) == 24 && !memcmp(b + 1, "PNG", 3);
    if (fp) fclose(fp);
    *w = ok ? (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19] : 0;
    *h = ok ? (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23] : 0;
    return ok;
}

/* Several runs on one figure: one 240 px panel per metric. */
static void test_compare_runs(void)
{
    char a[400], wind[400], bad[400], png[400];
    snprintf(a, sizeof a, "%s/flare_a", aur_test_dir);
    snprintf(wind, sizeof wind, "%s/wind_out/", aur_test_dir);
    snprintf(png, sizeof png, "%s", aur_test_tmp("compare.png"));
    const char *runs[9] = {a, wind, a, a, a, a, a, a, a};
    int w = 0, h = 0;
    AUR_CHECK(!aur_plot_runs(png, runs, 2, NULL, 0) && png_size(png, &w, &h) && w == 900 && h == 11 * 240,
              "all metrics found: loss, val_loss, 6 flare and 3 wind scores -> 11 panels (%d x %d): %s", w, h, aur_last_error());
    const char *two[2] = {"val_loss", "val/tss"};
    AUR_CHECK(!aur_plot_runs(png, runs, 2, two, 2) && png_size(png, &w, &h) && h == 2 * 240, "two metrics named -> 2 panels (%d)", h);
    const char *none[1] = {"val/nope"};
    AUR_CHECK(aur_plot_runs(png, runs, 2, none, 1) && strstr(aur_last_error(), "val/nope"), "a metric no run logged is named: %s", aur_last_error());
    AUR_CHECK(aur_plot_runs(png, runs, 9, NULL, 0) && strstr(aur_last_error(), "1 to 8"), "9 runs are refused: %s", aur_last_error());
    snprintf(bad, sizeof bad, "%s/no_such_run", aur_test_dir);
    runs[1] = bad;
    AUR_CHECK(aur_plot_runs(png, runs, 2, NULL, 0) && strstr(aur_last_error(), "no_such_run/metrics.jsonl"), "a missing run is named: %s", aur_last_error());
    snprintf(bad, sizeof bad, "%s", aur_test_tmp("torn_run"));
    mkdir(bad, 0755);
    FILE *fp = fopen(aur_test_tmp("torn_run/metrics.jsonl"), "w");
    if (fp) fputs("{\"step\": 1, \"loss\": 0.5}\n{\"step\": 2, \"lo", fp), fclose(fp);
    AUR_CHECK(aur_plot_runs(png, runs, 2, NULL, 0) && strstr(aur_last_error(), "metrics.jsonl:2"), "a torn line is named by number: %s", aur_last_error());
}

/* Each bad config: refused at creation with a message naming what. */
static void test_config_errors(void)
{
    static const struct {
        const char *from, *to, *says;
    } cases[] = {
        {"\"task\": \"flare\",", "", "'task' is required"},
        {"\"task\": \"flare\"", "\"task\": \"flares\"", "task"},
        {"\"dtype\": \"float32\"", "\"dtype\": \"float16\"", "dtype"},
        {"\"rollout_steps\": 0", "\"rollout_steps\": 2", "rollout_steps"},
        {"\"iters_grad_accum\": 1", "\"iters_grad_accum\": 4", "iters_grad_accum"},
        {"\"wandb_project\"", "\"wandb_projekt\"", "wandb_projekt"},
        {"\"dropout\": 0.2", "\"dropuot\": 0.2", "model.dropuot"},
        {"\"model_type\": \"spectformer\"", "\"model_type\": \"resnet18\"", "resnet18"},
        {"\"global_class_token\": true", "\"global_class_token\": false", "pooling flag"},
        {"\"n_input_timestamps\": 2", "\"n_input_timestamps\": 3", "n_input_timestamps"},
        {"\"time_delta_input_minutes\": [-60, 0]", "\"time_delta_input_minutes\": [0]", "time_delta_input_minutes"},
        {"\"hmi_v\"]", "\"hmi_v\", \"extra\"]", "data.channels"},
        {"\"batch_size\": 4", "\"batch_size\": 40", "batch_size 40"},
        {"\"flare_train.safetensors\"", "\"train_index.csv\"", "scalers.yaml: cannot open"}, /* an index CSV reads the scalers first */
        {"\"flare_val.safetensors\"", "\"no_such.safetensors\"", "no_such.safetensors"},
        {"\"img_size\": 16", "\"img_size\": 32", "img_size"},
        {"\"random_vert_flip\": false", "\"random_vert_flip\": true", "random_vert_flip"},
        {"\"learning_rate\": 0.001", "\"learning_rate\": \"fast\"", "learning_rate"},
        {"\"modules_to_save\": [\"linear\", \"unembed\"]", "\"modules_to_save\": [\"linear\", \"decoder\"]", "decoder"},
        {"\"target_modules\": [\"qkv\", \"proj\", \"fc1\", \"fc2\"]", "\"target_modules\": [\"q_proj\", \"v_proj\"]", "q_proj"},
        {"\"pretrained_path\": \"%s\"", "\"pretrained_path\": \"%s.missing\"", ".missing"},
        {"\"loss_weights\": []", "\"loss_weights\": [1, 2]", "loss_weights"},
        {"\"seed\": 3}", "\"seed\": 3, \"from_checkpoint\": \"x\"}", "--resume"},
    };
    char backbone[512];
    snprintf(backbone, sizeof backbone, "%s", aur_test_tmp("backbone.safetensors"));
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char fmt[8192], text[8192];
        const char *at = strstr(flare_config, cases[k].from);
        if (!at) {
            AUR_CHECK(0, "case %zu: '%s' is in the config", k, cases[k].from);
            continue;
        }
        snprintf(fmt, sizeof fmt, "%.*s%s%s", (int)(at - flare_config), flare_config, cases[k].to, at + strlen(cases[k].from));
        snprintf(text, sizeof text, fmt, backbone, aur_test_tmp("bad_out"));
        cJSON *j = cJSON_Parse(text);
        aur_trainer *tr = j ? aur_surya_trainer_create_json(j, aur_test_tmp("")) : NULL;
        AUR_CHECK(j && !tr && strstr(aur_last_error(), cases[k].says), "%s -> refused naming '%s': %s", cases[k].to[0] ? cases[k].to : "(removed)",
                  cases[k].says, aur_last_error());
        aur_trainer_free(tr);
        cJSON_Delete(j);
    }
    /* a target of the wrong shape for the task, and a label outside [0, 1] */
    write_set("wind", aur_test_tmp("wrong_target.safetensors"), 8, 2, 16, 3);
    char fmt[8192], text[8192];
    const char *at = strstr(flare_config, "\"flare_train.safetensors\"");
    snprintf(fmt, sizeof fmt, "%.*s\"wrong_target.safetensors\"%s", (int)(at - flare_config), flare_config, at + strlen("\"flare_train.safetensors\""));
    snprintf(text, sizeof text, fmt, backbone, aur_test_tmp("bad_out"));
    cJSON *j = cJSON_Parse(text);
    aur_trainer *tr = aur_surya_trainer_create_json(j, aur_test_tmp(""));
    AUR_CHECK(!tr && strstr(aur_last_error(), "wrong_target.safetensors") && strstr(aur_last_error(), "3 values per sample"),
              "a wind target for the flare task: %s", aur_last_error());
    aur_trainer_free(tr);
    cJSON_Delete(j);
    cJSON *surya = cJSON_Parse("{\"model\": {\"model_type\": \"spectformer\"}}");
    cJSON *aurora = cJSON_Parse("{\"model\": {\"preset\": \"aurora-small-pretrained\"}}");
    AUR_CHECK(aur_surya_is_run_config(surya) && !aur_surya_is_run_config(aurora), "a Surya config is told from an Aurora one by model.model_type");
    cJSON_Delete(surya);
    cJSON_Delete(aurora);
}

int main(void)
{
    aur_test_tmpdir_begin("surya_train");
    test_metrics();
    test_flare_run_resume_adapter();
    test_other_tasks();
    test_compare_runs();
    test_config_errors();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
