/* surya_demo.h - shared pieces of the Surya fine-tuning examples: a small
   synthetic Sun (NOT real SDO data), the run config, a tiny pretrained
   backbone, training with LoRA, a linear baseline, metrics and plots.

   The synthetic Sun: a 32 x 32 image of a limb-darkened disk in 13 channels
   named as SDO's (8 AIA EUV/UV channels, 5 HMI magnetic/velocity ones), with
   one to three active regions (a bright EUV blob over a bipolar magnetic
   pair) and sometimes a coronal hole (dark in the hot AIA channels). The
   disk rotates from one frame to the next. Labels are functions of what is
   visible, plus a little noise:
     flare (binary)  - a compact, strong bipolar region is present;
     solar wind      - speed grows with the coronal hole's area;
     AR mask (2D)    - pixels where |B_z| is strong.
   Raw values go through Surya's scalers (signum-log, standardise) as the
   reference pipeline does. */
#ifndef SURYA_DEMO_H
#define SURYA_DEMO_H

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#define SUN 32 /* image side */
#define SUN_C 13

typedef struct sun_sample {
    float x[SUN_C][SUN][SUN];  /* normalised image at the current time */
    float prev[SUN_C][SUN][SUN]; /* one step earlier */
    float mask[SUN][SUN];      /* active-region mask */
    float flare, wind;         /* labels: 0/1, and speed scaled to [0, 1] */
} sun_sample;

static uint64_t sun_rng_state = 1;
static double sun_uniform(void)
{
    sun_rng_state = sun_rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(sun_rng_state >> 11) / 9007199254740992.0;
}

/* Surya's scalers for the synthetic channels (AIA: counts; HMI: gauss). */
static void sun_scalers(aur_surya_scaler *s)
{
    for (int c = 0; c < SUN_C; c++) {
        s[c].sl_scale_factor = c < 8 ? 0.01 : 0.05;
        s[c].mean = c < 8 ? 1.2 : 0.0;
        s[c].std = c < 8 ? 0.6 : 0.8;
        s[c].epsilon = 1e-6;
    }
}

typedef struct sun_region {
    double lat, lon, strength, sep;
} sun_region;

/* Raw channel values of the disk at a rotation phase. */
static void sun_render(float out[SUN_C][SUN][SUN], const sun_region *r, int nr, double hole, double phase)
{
    for (int i = 0; i < SUN; i++)
        for (int j = 0; j < SUN; j++) {
            double y = (i - SUN / 2 + 0.5) / (SUN / 2 - 2), x = (j - SUN / 2 + 0.5) / (SUN / 2 - 2), rho = sqrt(x * x + y * y);
            double mu = rho < 1 ? sqrt(1 - rho * rho) : 0, bz = 0, glow = 0, dark = 0;
            for (int k = 0; k < nr; k++) {
                double cx = sin(r[k].lon + phase) * cos(r[k].lat), cy = -sin(r[k].lat), dx = x - cx, dy = y - cy;
                double w = r[k].lon + phase < 1.4 && r[k].lon + phase > -1.4 ? 1 : 0; /* on the visible side */
                double s2 = 0.02 + 0.01 * r[k].sep;
                bz += w * r[k].strength * (exp(-((dx - r[k].sep) * (dx - r[k].sep) + dy * dy) / s2) -
                                           exp(-((dx + r[k].sep) * (dx + r[k].sep) + dy * dy) / s2));
                glow += w * r[k].strength * exp(-(dx * dx + dy * dy) / (3 * s2));
            }
            if (hole > 0) dark = exp(-((x - 0.1) * (x - 0.1) + (y + 0.2) * (y + 0.2)) / (hole * hole));
            for (int c = 0; c < SUN_C; c++) {
                double v;
                if (c < 8) v = rho < 1 ? (200 + 40 * c) * (0.4 + 0.6 * mu) * (1 + 3 * glow) * (1 - (c >= 2 && c <= 4 ? 0.8 * dark : 0)) : 5;
                else if (c == 11 || c == 8) v = rho < 1 ? 300 * bz : 0;
                else v = rho < 1 ? 40 * bz * (c - 9.5) + 20 * x : 0;
                out[c][i][j] = (float)(v * (1 + 0.02 * (sun_uniform() - 0.5)));
            }
        }
}

/* One random Sun with its labels; raw values, normalised by the caller. */
static void sun_make(sun_sample *s)
{
    sun_region r[3];
    int nr = 1 + (int)(sun_uniform() * 3);
    double flare_score = 0;
    for (int k = 0; k < nr; k++) {
        r[k].lat = (sun_uniform() - 0.5) * 1.0, r[k].lon = (sun_uniform() - 0.5) * 2.0;
        r[k].strength = 0.3 + sun_uniform() * 1.2, r[k].sep = 0.05 + sun_uniform() * 0.2;
        if (fabs(r[k].lon) < 1.2) flare_score = fmax(flare_score, r[k].strength / (r[k].sep * 10));
    }
    double hole = sun_uniform() < 0.6 ? 0.15 + 0.35 * sun_uniform() : 0;
    sun_render(s->prev, r, nr, hole, -0.08);
    sun_render(s->x, r, nr, hole, 0.0);
    s->flare = (float)((flare_score > 1.1) ^ (sun_uniform() < 0.05));
    s->wind = (float)(fmin(1, (hole * hole * 3.0) + 0.05 * sun_uniform()));
    for (int i = 0; i < SUN; i++)
        for (int j = 0; j < SUN; j++) s->mask[i][j] = fabsf(s->x[11][i][j]) > 60 ? 1.0f : 0.0f;
}

/* n samples, normalised with the scalers. Owned: free(). */
static sun_sample *sun_dataset(int n, uint64_t seed)
{
    sun_rng_state = seed * 2654435761ull + 7;
    sun_sample *d = (sun_sample *)malloc(sizeof *d * (size_t)n);
    aur_surya_scaler sc[SUN_C];
    sun_scalers(sc);
    aur_tensor *tmp = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape3(1, SUN_C, SUN * SUN));
    for (int k = 0; k < n; k++) {
        sun_make(&d[k]);
        for (int pass = 0; pass < 2; pass++) {
            float *img = pass ? &d[k].prev[0][0][0] : &d[k].x[0][0][0];
            for (int i = 0; i < SUN_C * SUN * SUN; i++) aur_tensor_f32(tmp)[i] = img[i];
            aur_surya_normalise(tmp, sc, SUN_C, 0);
            for (int i = 0; i < SUN_C * SUN * SUN; i++) img[i] = (float)aur_tensor_f32(tmp)[i];
        }
    }
    aur_tensor_free(tmp);
    return d;
}

/* ts (B, 13, T, 32, 32) for samples idx[0..B): T = 1 (now) or 2 (previous, now). */
static aur_tensor *sun_batch(aur_tape *t, const sun_sample *d, const int *idx, int B, int T)
{
    aur_tensor *ts = aur_tensor_new(t, AUR_CPU, aur_shape5(B, SUN_C, T, SUN, SUN));
    for (int b = 0; b < B; b++)
        for (int c = 0; c < SUN_C; c++)
            for (int k = 0; k < T; k++) {
                const float *src = (k == T - 1) ? &d[idx[b]].x[c][0][0] : &d[idx[b]].prev[c][0][0];
                aur_real *dst = aur_tensor_f32(ts) + (((int64_t)b * SUN_C + c) * T + k) * SUN * SUN;
                for (int i = 0; i < SUN * SUN; i++) dst[i] = src[i];
            }
    return ts;
}

/* ---- the run config: keys as in the reference's YAML ---- */

static double demo_num(const cJSON *o, const char *k, double d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsBool(v) ? cJSON_IsTrue(v) : d;
}

/* model: {img_size, patch_size, in_channels, time_embedding, embed_dim, depth, spectral_blocks, num_heads,
   mlp_ratio, window_size, dp_rank, nglo, <pooling flags>, penultimate_linear_layer, dropout, ...} */
static int demo_surya_config(const cJSON *model, aur_surya_head head, aur_surya_config *c)
{
    aur_surya_preset("surya-tiny", c);
    c->img_size = (int)demo_num(model, "img_size", SUN), c->patch_size = (int)demo_num(model, "patch_size", 4);
    c->in_chans = (int)demo_num(model, "in_channels", SUN_C), c->embed_dim = (int)demo_num(model, "embed_dim", 32);
    c->depth = (int)demo_num(model, "depth", 4), c->n_spectral_blocks = (int)demo_num(model, "spectral_blocks", 2);
    c->num_heads = (int)demo_num(model, "num_heads", 4), c->mlp_ratio = demo_num(model, "mlp_ratio", 4);
    c->window_size = (int)demo_num(model, "window_size", 2), c->dp_rank = (int)demo_num(model, "dp_rank", 4);
    c->nglo = (int)demo_num(model, "nglo", 0);
    c->time_dim = (int)demo_num(cJSON_GetObjectItemCaseSensitive(model, "time_embedding"), "time_dim", 1);
    c->head = head;
    c->penultimate_linear = (int)demo_num(model, "penultimate_linear_layer", 1);
    c->head_dropout = demo_num(model, "dropout", 0.0);
    c->pooling = demo_num(model, "global_class_token", 0) ? AUR_POOL_CLASS_TOKEN
                 : demo_num(model, "global_max_pooling", 0) ? AUR_POOL_MAX : AUR_POOL_AVERAGE;
    c->perceiver_decoder = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(model, "ft_unembedding_type")) &&
                           !strcmp(cJSON_GetObjectItemCaseSensitive(model, "ft_unembedding_type")->valuestring, "perceiver");
    c->out_chans = (int)demo_num(model, "ft_out_chans", 1);
    return 0;
}

/* ---- a tiny "pretrained" backbone: next-frame forecasting on the synthetic Sun ---- */

static void demo_die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, aur_last_error());
    exit(1);
}

/* Pretrains the forecasting model (the previous frame, repeated for each of
   the head's T input times -> the next frame) unless path exists. */
static void demo_pretrain(const aur_surya_config *head_cfg, const char *path, const sun_sample *d, int n)
{
    if (access(path, F_OK) == 0) return;
    aur_surya_config c = *head_cfg;
    c.head = AUR_SURYA_FORECAST, c.nglo = 0;
    int T = c.time_dim;
    aur_model *m = aur_surya_create(&c, AUR_CPU, 11);
    aur_optim_opts o = aur_adamw_defaults();
    o.lr = 2e-3;
    aur_optim *opt = aur_optim_create(m, &o);
    aur_tape *t = aur_tape_create();
    double first = 0, last = 0;
    for (int step = 0; step < 120; step++) {
        int idx[4];
        for (int b = 0; b < 4; b++) idx[b] = (step * 4 + b) % n;
        aur_tape_reset(t);
        aur_tensor *ts = aur_tensor_new(t, AUR_CPU, aur_shape5(4, SUN_C, T, SUN, SUN)), *tg = aur_tensor_new(t, AUR_CPU, aur_shape4(4, SUN_C, SUN, SUN));
        for (int b = 0; b < 4; b++)
            for (int i = 0; i < SUN_C * SUN * SUN; i++) {
                for (int k = 0; k < T; k++) aur_tensor_f32(ts)[((int64_t)b * SUN_C + i / (SUN * SUN)) * T * SUN * SUN + k * SUN * SUN + i % (SUN * SUN)] = (&d[idx[b]].prev[0][0][0])[i];
                aur_tensor_f32(tg)[(int64_t)b * SUN_C * SUN * SUN + i] = (&d[idx[b]].x[0][0][0])[i];
            }
        aur_tensor *loss = aur_mse_loss(t, aur_surya_forward(m, t, ts), tg);
        aur_model_zero_grad(m);
        if (!loss || aur_backward(t, loss) || aur_clip_grad_norm(m, 1.0, NULL) || aur_optim_step(opt)) demo_die("pretraining");
        if (step == 0) first = aur_tensor_f32(loss)[0];
        last = aur_tensor_f32(loss)[0];
    }
    printf("pretrained a tiny Surya backbone on next-frame forecasting: MSE %.4f -> %.4f (120 steps)\n", first, last);
    if (aur_save_safetensors(m, path)) demo_die(path);
    aur_tape_free(t);
    aur_optim_free(opt);
    aur_model_free(m);
}

/* The head model: the backbone from the checkpoint (filtered: the forecast
   decoder does not fit a head), then as the config asks: LoRA with PEFT's
   freezing (the adapters and lora_config.modules_to_save train), the
   backbone frozen (freeze_backbone), or everything trained (full). The
   class token is a bare parameter, which PEFT's modules_to_save cannot name:
   it trains with the head. verbose prints what trains and what is frozen. */
static aur_model *demo_head_model(const aur_surya_config *c, const cJSON *model, const char *ckpt, uint64_t seed, int full,
                                  aur_lora_config *lc, int verbose)
{
    aur_model *m = aur_surya_declare_model(c);
    if (!m) demo_die("model");
    *lc = aur_lora_defaults();
    int use_lora = !full && (int)demo_num(model, "use_lora", 1);
    aur_lora_report lrep = {0};
    if (use_lora && (aur_lora_config_json(cJSON_GetObjectItemCaseSensitive(model, "lora_config"), lc, NULL) || aur_lora_declare(m, lc, &lrep)))
        demo_die("LoRA");
    if (verbose && use_lora) aur_lora_report_print(&lrep, stdout);
    aur_lora_report_free(&lrep);
    if (aur_model_alloc(m, AUR_CPU) || aur_surya_init_weights(m, seed)) demo_die("model");
    aur_load_report rep;
    if (aur_load_safetensors(m, ckpt, AUR_LOAD_FILTERED, &rep)) demo_die(ckpt);
    if (use_lora && aur_lora_freeze_base(m, lc)) demo_die("LoRA");
    else if (!full && demo_num(model, "freeze_backbone", 0)) aur_model_freeze(m, "*embedding*,backbone.*");
    if (!full && aur_model_param(m, "cls_token")) aur_model_unfreeze(m, "cls_token");
    if (verbose) {
        printf("  backbone from %s: %d tensors loaded, %d new here (head, adapters), %d unused\n", ckpt, rep.n_loaded, rep.n_missing,
               rep.n_unexpected);
        aur_model_print_trainable(m, &rep, stdout);
    }
    aur_load_report_free(&rep);
    return m;
}

static void write_line(FILE *fp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(fp, fmt, ap);
    va_end(ap);
}

/* ---- training and prediction ---- */

enum { TASK_FLARE = 0, TASK_WIND = 1, TASK_SEGMENT = 2 };

/* Targets of a batch: flare (B), wind (B, 1), masks (B, 1, H, W). */
static aur_tensor *demo_target(aur_tape *t, const sun_sample *d, const int *idx, int B, int task)
{
    aur_tensor *y = aur_tensor_new(t, AUR_CPU, task == TASK_FLARE ? aur_shape1(B) : task == TASK_WIND ? aur_shape2(B, 1)
                                                                                                    : aur_shape4(B, 1, SUN, SUN));
    for (int b = 0; b < B; b++) {
        if (task == TASK_SEGMENT)
            for (int i = 0; i < SUN * SUN; i++) aur_tensor_f32(y)[(int64_t)b * SUN * SUN + i] = (&d[idx[b]].mask[0][0])[i];
        else aur_tensor_f32(y)[b] = task == TASK_FLARE ? d[idx[b]].flare : d[idx[b]].wind;
    }
    return y;
}

static aur_tensor *demo_loss(aur_tape *t, aur_tensor *out, aur_tensor *y, int task)
{
    return task == TASK_WIND ? aur_mse_loss(t, out, y) : aur_bce_logits_loss(t, out, y, NULL);
}

/* The run's sample order: a fixed stride through the training set, shifted per seed. */
static int demo_sample(int64_t s, int b, int B, int n, uint64_t seed) { return (int)(((s * B + b) * 7919 + (int64_t)seed * 104729) % n); }

/* Fine-tunes for `steps` (warm-up then cosine to min_lr; AdamW, clipping at 1)
   with the head's parameters (head_patterns, may be NULL) in their own group
   at head_lr; curve[s] = the loss of step s. */
static void demo_train(aur_model *m, const sun_sample *d, int n, int T, int task, const double lr[2], const char *head_patterns,
                       double min_lr, int warmup, int steps, int B, uint64_t seed, double *curve)
{
    aur_optim_opts o = aur_adamw_defaults();
    o.lr = lr[0];
    aur_optim *opt = aur_optim_create(m, &o);
    if (head_patterns && aur_optim_add_group(opt, head_patterns, lr[1], o.weight_decay) < 0) demo_die("the head's parameter group");
    aur_lr_schedule sched = {AUR_LR_COSINE, warmup, steps, min_lr / lr[0]};
    aur_tape *t = aur_tape_create();
    aur_tape_seed(t, 5 + seed);
    int *idx = (int *)malloc(sizeof(int) * (size_t)B);
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) idx[b] = demo_sample(s, b, B, n, seed);
        aur_tape_reset(t);
        aur_tensor *loss = demo_loss(t, aur_surya_forward(m, t, sun_batch(t, d, idx, B, T)), demo_target(t, d, idx, B, task), task);
        aur_model_zero_grad(m);
        aur_optim_set_lr_factor(opt, aur_lr_factor(&sched, s));
        if (!loss || aur_backward(t, loss) || aur_clip_grad_norm(m, 1.0, NULL) || aur_optim_step(opt)) demo_die("fine-tuning");
        curve[s] = aur_tensor_f32(loss)[0];
    }
    free(idx);
    aur_tape_free(t);
    aur_optim_free(opt);
}

/* Predictions on every sample: probabilities (flare, masks) or values (wind); out holds n or n*H*W. */
static void demo_predict(aur_model *m, const sun_sample *d, int n, int T, int task, float *out)
{
    aur_tape *t = aur_tape_create();
    aur_tape_set_grad(t, 0);
    aur_tape_set_training(t, 0);
    for (int i = 0; i < n; i++) {
        aur_tape_reset(t);
        aur_tensor *y = aur_surya_forward(m, t, sun_batch(t, d, &i, 1, T));
        if (!y) demo_die("prediction");
        if (task != TASK_WIND) y = aur_sigmoid(t, y);
        int64_t k = task == TASK_SEGMENT ? SUN * SUN : 1;
        for (int64_t j = 0; j < k; j++) out[(int64_t)i * k + j] = (float)aur_tensor_f32(y)[j];
    }
    aur_tape_free(t);
}

/* ---- the linear baseline ---- */

/* Features of a sample: per channel the mean and the extremes over the image (1D tasks). */
static void demo_features(const sun_sample *s, float *f)
{
    for (int c = 0; c < SUN_C; c++) {
        double sum = 0, lo = 1e30, hi = -1e30;
        for (int i = 0; i < SUN * SUN; i++) {
            double v = (&s->x[c][0][0])[i];
            sum += v, lo = fmin(lo, v), hi = fmax(hi, v);
        }
        f[3 * c] = (float)(sum / (SUN * SUN)), f[3 * c + 1] = (float)lo, f[3 * c + 2] = (float)hi;
    }
}

/* The baseline's inputs and targets for samples idx[0..B): image features and
   a label (1D tasks), or each pixel's 13 channel values and its mask value. */
static void demo_linear_rows(const sun_sample *d, const int *idx, int B, int task, aur_real *x, aur_real *y)
{
    int F = task == TASK_SEGMENT ? SUN_C : 3 * SUN_C;
    for (int b = 0; b < B; b++) {
        const sun_sample *s = &d[idx[b]];
        if (task == TASK_SEGMENT)
            for (int i = 0; i < SUN * SUN; i++) {
                for (int c = 0; c < SUN_C; c++) x[((int64_t)b * SUN * SUN + i) * F + c] = (&s->x[c][0][0])[i];
                y[(int64_t)b * SUN * SUN + i] = (&s->mask[0][0])[i];
            }
        else {
            float f[3 * SUN_C];
            demo_features(s, f);
            for (int c = 0; c < F; c++) x[(int64_t)b * F + c] = f[c];
            y[b] = task == TASK_FLARE ? s->flare : s->wind;
        }
    }
}

/* The linear baseline: logistic or linear regression on those rows, trained
   with the same mini-batches, steps, schedule and AdamW as the networks (an
   equal sample budget), at its own learning rate. Predicts the validation set. */
static void demo_baseline(const sun_sample *tr, int ntr, const sun_sample *va, int nva, int task, double lr, double min_lr, int warmup,
                          int steps, int B, uint64_t seed, float *pred, double *curve)
{
    int F = task == TASK_SEGMENT ? SUN_C : 3 * SUN_C;
    int64_t per_sample = task == TASK_SEGMENT ? SUN * SUN : 1;
    aur_model *m = aur_model_create();
    aur_tensor *w = aur_model_add(m, "baseline.weight", aur_shape2(1, F), 0), *bias = aur_model_add(m, "baseline.bias", aur_shape1(1), 0);
    aur_model_alloc(m, AUR_CPU);
    aur_optim_opts o = aur_adamw_defaults();
    o.lr = lr;
    aur_optim *opt = aur_optim_create(m, &o);
    aur_lr_schedule sched = {AUR_LR_COSINE, warmup, steps, min_lr / lr};
    aur_tape *t = aur_tape_create();
    int *idx = (int *)malloc(sizeof(int) * (size_t)(B > nva ? B : nva));
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) idx[b] = demo_sample(s, b, B, ntr, seed);
        aur_tape_reset(t);
        aur_tensor *x = aur_tensor_new(t, AUR_CPU, aur_shape2(B * per_sample, F)), *y = aur_tensor_new(t, AUR_CPU, aur_shape2(B * per_sample, 1));
        demo_linear_rows(tr, idx, B, task, aur_tensor_f32(x), aur_tensor_f32(y));
        aur_tensor *out = aur_linear(t, x, w, bias);
        aur_tensor *loss = task == TASK_WIND ? aur_mse_loss(t, out, y) : aur_bce_logits_loss(t, out, y, NULL);
        aur_model_zero_grad(m);
        aur_optim_set_lr_factor(opt, aur_lr_factor(&sched, s));
        if (!loss || aur_backward(t, loss) || aur_optim_step(opt)) demo_die("baseline");
        curve[s] = aur_tensor_f32(loss)[0];
    }
    for (int i = 0; i < nva; i++) idx[i] = i;
    aur_tape_reset(t);
    aur_tensor *x = aur_tensor_new(t, AUR_CPU, aur_shape2(nva * per_sample, F)), *y = aur_tensor_new(t, AUR_CPU, aur_shape2(nva * per_sample, 1));
    demo_linear_rows(va, idx, nva, task, aur_tensor_f32(x), aur_tensor_f32(y));
    aur_tensor *out = aur_linear(t, x, w, bias);
    for (int64_t r = 0; r < nva * per_sample; r++) {
        double v = aur_tensor_f32(out)[r];
        pred[r] = (float)(task == TASK_WIND ? v : 1 / (1 + exp(-v)));
    }
    free(idx);
    aur_tape_free(t);
    aur_optim_free(opt);
    aur_model_free(m);
}

/* ---- one run config and the comparison it asks for ---- */

#define DEMO_MAX_LR 6
#define DEMO_MAX_SEEDS 8
enum { RUN_LORA = 0, RUN_FULL = 1, RUN_BASELINE = 2, N_METHODS = 3 };
static const char *const demo_method_names[N_METHODS] = {"LoRA", "full FT", "linear baseline"};

/* A run config (the reference YAML's keys, plus the recipe's): optimizer.learning_rate
   is the LoRA rate, or a list whose first entry is and whose others are the
   sweep (LoRA, seed 0 only); head_lr_multiplier scales it for the head. */
typedef struct demo_config {
    cJSON *json;
    const cJSON *model;
    aur_surya_config surya;
    int n_train, n_valid, batch, steps, warmup, seeds, n_lr;
    double min_lr, lr[DEMO_MAX_LR], head_lr_multiplier, full_lr, baseline_lr;
} demo_config;

static void demo_read_config(const char *path, aur_surya_head head, int n_valid, demo_config *dc)
{
    memset(dc, 0, sizeof *dc);
    if (!(dc->json = aur_json_load(path))) demo_die(path);
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(dc->json, "optimizer"), *data = cJSON_GetObjectItemCaseSensitive(dc->json, "data");
    const cJSON *lrs = cJSON_GetObjectItemCaseSensitive(opt, "learning_rate");
    dc->model = cJSON_GetObjectItemCaseSensitive(dc->json, "model");
    demo_surya_config(dc->model, head, &dc->surya);
    dc->n_train = (int)demo_num(data, "n_train", 192), dc->n_valid = (int)demo_num(data, "n_valid", n_valid);
    dc->batch = (int)demo_num(data, "batch_size", 1);
    dc->steps = (int)demo_num(opt, "max_steps", 600), dc->warmup = (int)demo_num(opt, "warm_up_steps", 0);
    dc->min_lr = demo_num(opt, "min_lr", 1e-5);
    dc->n_lr = cJSON_IsArray(lrs) ? cJSON_GetArraySize(lrs) : 1;
    if (dc->n_lr < 1 || dc->n_lr > DEMO_MAX_LR) fprintf(stderr, "%s: optimizer.learning_rate: 1 to %d rates\n", path, DEMO_MAX_LR), exit(1);
    for (int i = 0; i < dc->n_lr; i++) dc->lr[i] = cJSON_IsArray(lrs) ? cJSON_GetArrayItem(lrs, i)->valuedouble : demo_num(opt, "learning_rate", 1e-3);
    dc->head_lr_multiplier = demo_num(opt, "head_lr_multiplier", 10);
    dc->full_lr = demo_num(opt, "full_finetune_learning_rate", dc->lr[0]);
    dc->baseline_lr = demo_num(opt, "baseline_learning_rate", 1e-2);
    dc->seeds = (int)demo_num(dc->json, "seeds", 3);
    if (dc->seeds < 1 || dc->seeds > DEMO_MAX_SEEDS) fprintf(stderr, "%s: seeds: 1 to %d\n", path, DEMO_MAX_SEEDS), exit(1);
}

static void demo_config_free(demo_config *dc) { cJSON_Delete(dc->json); }

/* Scores a run's validation predictions, prints and logs them (jl may be
   NULL); returns the task's headline metric. method is RUN_* (-1: a sweep run). */
typedef double (*demo_score_fn)(const float *pred, const sun_sample *va, int n, FILE *jl, const char *run, int seed, int method);

/* What a task is, for the comparison: its name, headline metric and scorer. */
typedef struct demo_task {
    const char *name, *metric;
    int task, higher_is_better;
    demo_score_fn score;
    const char *adapter_dir; /* where the seed-0 LoRA adapter goes in PEFT's format, or NULL */
} demo_task;

/* The comparison's results: the headline metric per method and seed, and the
   training curves of seed 0's runs and of the sweep. */
typedef struct demo_results {
    double score[N_METHODS][DEMO_MAX_SEEDS];
    double *curve[N_METHODS + DEMO_MAX_LR];
    char label[N_METHODS + DEMO_MAX_LR][48];
    int n_curves;
} demo_results;

/* The head's optimiser group: the class token and every lora_config.modules_to_save
   module (PEFT's rule: the name as a whole component of the parameter's). */
static const char *demo_head_patterns(const aur_lora_config *lc, char *buf, size_t size)
{
    int k = snprintf(buf, size, "cls_token");
    for (int i = 0; i < lc->n_modules_to_save && k > 0 && (size_t)k < size; i++)
        k += snprintf(buf + k, size - (size_t)k, ",%s.*,*.%s.*", lc->modules_to_save[i], lc->modules_to_save[i]);
    return buf;
}

/* One run: trains method at lr with seed, predicts the validation set into
   pred, logs its curve; returns the model (NULL for the baseline; owned). */
static aur_model *demo_run(const demo_config *dc, int method, double lr, uint64_t seed, const demo_task *tk, const sun_sample *tr,
                           const sun_sample *va, const char *base, float *pred, double *curve, aur_lora_config *lc)
{
    if (method == RUN_BASELINE) {
        demo_baseline(tr, dc->n_train, va, dc->n_valid, tk->task, lr, dc->min_lr, dc->warmup, dc->steps, dc->batch, seed, pred, curve);
        return NULL;
    }
    int verbose = seed == 0 && lr == (method == RUN_FULL ? dc->full_lr : dc->lr[0]);
    if (verbose) printf("  %s, seed 0:\n", demo_method_names[method]);
    aur_model *m = demo_head_model(&dc->surya, dc->model, base, seed, method == RUN_FULL, lc, verbose);
    double rates[2] = {lr, lr * dc->head_lr_multiplier};
    char patterns[AUR_LORA_MAX_TARGETS * 200];
    const char *head = method == RUN_LORA ? demo_head_patterns(lc, patterns, sizeof patterns) : NULL; /* full fine-tuning: one rate for all */
    demo_train(m, tr, dc->n_train, dc->surya.time_dim, tk->task, rates, head, dc->min_lr, dc->warmup, dc->steps, dc->batch, seed, curve);
    demo_predict(m, va, dc->n_valid, dc->surya.time_dim, tk->task, pred);
    return m;
}

static void demo_log_curve(FILE *jl, const char *task, const char *run, int seed, const double *curve, int steps)
{
    for (int s = 0; s < steps && jl; s++)
        fprintf(jl, "{\"task\": \"%s\", \"run\": \"%s\", \"seed\": %d, \"step\": %d, \"loss\": %.6g}\n", task, run, seed, s + 1, curve[s]);
}

/* The run as TensorBoard events, OUT/tensorboard/{task}/{run}_seed{n}/: the
   loss per step and the validation metric at the last step, so TensorBoard
   (or W&B, MLflow) puts the runs side by side. Runs are directories there. */
static void demo_events(const char *out, const demo_task *tk, const char *run, int seed, const double *curve, int steps, double score)
{
    char dir[900], path[1000];
    snprintf(dir, sizeof dir, "%s/tensorboard", out);
    mkdir(dir, 0755);
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/%s", tk->name);
    mkdir(dir, 0755);
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/%s_seed%d", run, seed);
    for (char *c = dir + strlen(out); *c; c++) *c = *c == ' ' ? '_' : *c;
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/events.out.tfevents.demo", dir);
    char tag[64];
    snprintf(tag, sizeof tag, "valid/%s", tk->metric);
    int rc = aur_events_create(path, (double)time(NULL));
    for (int s = 0; s < steps && !rc; s++) rc = aur_events_scalar(path, (double)time(NULL), s + 1, "train/loss", curve[s]);
    if (!rc) rc = aur_events_scalar(path, (double)time(NULL), steps, tag, score);
    if (rc) demo_die(path);
}

static void demo_mean_sd(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static void demo_plot_curves(const char *path, const char *title, double **curves, char (*labels)[48], int n_runs, int steps);

/* The lecture's comparison for one task: LoRA (head at head_lr_multiplier x),
   full fine-tuning and the linear baseline, each for every seed with the
   same samples in the same order; then the LoRA learning-rate sweep on seed
   0. Prints the mean and spread, writes OUT/{task}_metrics.jsonl, one figure
   of every seed-0 curve (OUT/{task}_curves.png) and OUT/{task}_result.txt
   with the RESULT line. */
static void demo_compare(const demo_config *dc, const demo_task *tk, const sun_sample *tr, const sun_sample *va, const char *base,
                         const char *out, float *pred)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s_metrics.jsonl", out, tk->name);
    FILE *jl = fopen(path, "w");
    demo_results R;
    memset(&R, 0, sizeof R);
    for (int k = 0; k < N_METHODS + DEMO_MAX_LR; k++) R.curve[k] = (double *)calloc((size_t)dc->steps, sizeof(double));
    double *scratch = (double *)calloc((size_t)dc->steps, sizeof(double));
    for (int seed = 0; seed < dc->seeds; seed++)
        for (int method = 0; method < N_METHODS; method++) {
            double lr = method == RUN_LORA ? dc->lr[0] : method == RUN_FULL ? dc->full_lr : dc->baseline_lr;
            double *curve = seed == 0 ? R.curve[method] : scratch;
            char run[48];
            snprintf(run, sizeof run, "%s lr %g", demo_method_names[method], lr);
            aur_lora_config lc;
            aur_model *m = demo_run(dc, method, lr, (uint64_t)seed, tk, tr, va, base, pred, curve, &lc);
            demo_log_curve(jl, tk->name, run, seed, curve, dc->steps);
            R.score[method][seed] = tk->score(pred, va, dc->n_valid, jl, run, seed, method);
            demo_events(out, tk, run, seed, curve, dc->steps, R.score[method][seed]);
            if (seed == 0) snprintf(R.label[method], sizeof R.label[0], "%s", run);
            if (m && method == RUN_LORA && seed == 0 && tk->adapter_dir && aur_lora_save(m, &lc, tk->adapter_dir)) demo_die(tk->adapter_dir);
            aur_model_free(m);
        }
    R.n_curves = N_METHODS;
    for (int i = 1; i < dc->n_lr; i++) { /* the sweep: how the learning rate is chosen from the curves */
        char run[48];
        snprintf(run, sizeof run, "LoRA lr %g", dc->lr[i]);
        aur_lora_config lc;
        aur_model *m = demo_run(dc, RUN_LORA, dc->lr[i], 0, tk, tr, va, base, pred, R.curve[R.n_curves], &lc);
        demo_log_curve(jl, tk->name, run, 0, R.curve[R.n_curves], dc->steps);
        demo_events(out, tk, run, 0, R.curve[R.n_curves], dc->steps, tk->score(pred, va, dc->n_valid, jl, run, 0, -1));
        snprintf(R.label[R.n_curves++], sizeof R.label[0], "%s", run);
        aur_model_free(m);
    }
    if (jl) fclose(jl);
    snprintf(path, sizeof path, "%s/%s_curves.png", out, tk->name);
    char title[128];
    snprintf(title, sizeof title, "%s: training loss per run, seed 0", tk->name);
    demo_plot_curves(path, title, R.curve, R.label, R.n_curves, dc->steps);

    double mean[N_METHODS], sd[N_METHODS];
    printf("  %s over %d seeds (%s is better):", tk->metric, dc->seeds, tk->higher_is_better ? "higher" : "lower");
    for (int k = 0; k < N_METHODS; k++) {
        demo_mean_sd(R.score[k], dc->seeds, &mean[k], &sd[k]);
        printf("  %s %.3f +- %.3f%s", demo_method_names[k], mean[k], sd[k], k + 1 < N_METHODS ? "," : "\n");
    }
    snprintf(path, sizeof path, "%s/%s_result.txt", out, tk->name);
    FILE *rf = fopen(path, "w");
    if (!rf) fprintf(stderr, "%s: cannot write\n", path), exit(1);
    fprintf(rf, "RESULT task=%s metric=%s lora=%.4f+-%.4f baseline=%.4f+-%.4f full=%.4f+-%.4f seeds=%d\n", tk->name, tk->metric, mean[RUN_LORA],
            sd[RUN_LORA], mean[RUN_BASELINE], sd[RUN_BASELINE], mean[RUN_FULL], sd[RUN_FULL], dc->seeds);
    fclose(rf);
    for (int k = 0; k < N_METHODS + DEMO_MAX_LR; k++) free(R.curve[k]);
    free(scratch);
}

/* loss-vs-step curves of several runs on one log-scale chart, each smoothed
   by an exponential moving average (0.9) so mini-batch noise does not hide them. */
static void demo_plot_curves(const char *path, const char *title, double **curves, char (*labels)[48], int n_runs, int steps)
{
    double *x = (double *)malloc(sizeof(double) * (size_t)steps), *smooth = (double *)malloc(sizeof(double) * (size_t)(steps * 8));
    for (int s = 0; s < steps; s++) x[s] = s + 1;
    aur_plot_series series[8];
    for (int r = 0; r < n_runs && r < 8; r++) {
        double ema = curves[r][0];
        for (int s = 0; s < steps; s++) smooth[r * steps + s] = ema = 0.9 * ema + 0.1 * curves[r][s];
        series[r].label = labels[r], series[r].x = x, series[r].y = smooth + r * steps, series[r].n = steps;
    }
    if (aur_plot_lines(path, 720, 420, title, "step (loss smoothed, EMA 0.9)", series, n_runs, 1)) fprintf(stderr, "plot: %s\n", aur_last_error());
    free(x);
    free(smooth);
}

#endif
