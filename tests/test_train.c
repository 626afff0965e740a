/* test_train.c - the fine-tuning toolkit: data checks, series windows, the
   gradient alarm, the memory plan against measured peaks, new variables, and
   the trainer (config errors, refusals, bit-exact resume, aborts that leave
   old checkpoints untouched). */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"
#include "train_data.h"
#include "events_read.h"

#include <stdlib.h>
#include <sys/wait.h>

/* The finding for a variable, or NULL. */
static const aur_var_check *finding(const aur_check_report *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->vars[i].name, name)) return &r->vars[i];
    return NULL;
}

static void test_check_batch(void)
{
    aur_model *m = stats_model(1);
    aur_batch *b = series(m, 3, 1);
    aur_check_report r;
    int rc = aur_aurora_check_batch(m, b, NULL, &r);
    AUR_CHECK(rc == 0 && r.errors == 0, "clean synthetic data passes (%d errors: %s)", r.errors, aur_last_error());
    const aur_var_check *t = finding(&r, "t");
    AUR_CHECK(t && fabs(t->mean) < 1.5 && t->std > 0.2 && t->std < 3, "normalised t: mean %g std %g", t ? t->mean : 0, t ? t->std : 0);
    aur_check_report_free(&r);

    aur_tensor_f32(aur_batch_surf(b, "10u"))[7] = NAN; /* a NaN */
    rc = aur_aurora_check_batch(m, b, NULL, &r);
    AUR_CHECK(rc == AUR_EFORMAT && strstr(aur_last_error(), "'10u'") && strstr(aur_last_error(), "NaN"), "NaN named: %s",
              aur_last_error());
    AUR_CHECK(finding(&r, "10u")->nonfinite == 1 && finding(&r, "10u")->severity == AUR_CHECK_ERROR, "NaN counted");
    aur_check_report_free(&r);
    aur_check_opts o = aur_check_defaults();
    o.nan_ok = "10u,swh";
    AUR_CHECK(aur_aurora_check_batch(m, b, &o, NULL) == 0, "nan_ok accepts NaN as data: %s", aur_last_error());
    aur_tensor_f32(aur_batch_surf(b, "10u"))[7] = 1;

    aur_tensor *q = aur_batch_atmos(b, "q"); /* one zeroed field: time 1, level 2 */
    memset(aur_tensor_f32(q) + (1 * C + 2) * H * W, 0, sizeof(aur_real) * H * W);
    rc = aur_aurora_check_batch(m, b, NULL, &r);
    AUR_CHECK(rc == AUR_EFORMAT && strstr(aur_last_error(), "'q'") && strstr(aur_last_error(), "1 of 9 fields are all zero"),
              "zeroed field named: %s", aur_last_error());
    aur_check_report_free(&r);
    aur_batch_free(b);

    b = series(m, 3, 2); /* an outlier in 2t, and a static field of zeros (a warning only) */
    aur_tensor_f32(aur_batch_surf(b, "2t"))[5] = 1e4f;
    memset(aur_tensor_f32(aur_batch_static(b, "slt")), 0, sizeof(aur_real) * H * W);
    rc = aur_aurora_check_batch(m, b, NULL, &r);
    const aur_var_check *t2 = finding(&r, "2t"), *slt = finding(&r, "slt");
    AUR_CHECK(rc == 0 && t2->outliers == 1 && t2->severity == AUR_CHECK_WARNING && slt->severity == AUR_CHECK_WARNING,
              "one outlier and a zero static field warn (rc %d, outliers %lld)", rc, (long long)t2->outliers);
    aur_check_report_free(&r);
    aur_batch_free(b);

    b = series(m, 3, 3); /* a missing variable, and one the model lacks statistics for */
    b->surf_names.n--;   /* drops tcwv (the last) */
    aur_tensor_free(b->surf[b->surf_names.n]);
    aur_aurora_set_stats(m, "tcwv", 0, 1);
    rc = aur_aurora_check_batch(m, b, NULL, &r);
    AUR_CHECK(rc == AUR_EFORMAT && strstr(aur_last_error(), "'tcwv'") && strstr(aur_last_error(), "missing"), "missing named: %s",
              aur_last_error());
    aur_check_report_free(&r);
    aur_batch_free(b);

    aur_aurora_config c = *aur_aurora_config_of(m); /* a new variable without statistics */
    snprintf(c.surf_vars.name[c.surf_vars.n++], AUR_NAME_LEN, "newvar");
    aur_model *m2 = aur_aurora_declare_model(&c);
    aur_aurora_set_stats(m2, "tcwv", SYNTH_TCWV_LOC, SYNTH_TCWV_SCALE);
    aur_var_list sv = c.surf_vars;
    b = synth_series(m, 2, C, LEVELS, H, W, &sv, &c.static_vars, &c.atmos_vars, 4);
    rc = aur_aurora_check_batch(m2, b, NULL, NULL);
    AUR_CHECK(rc == AUR_EFORMAT && strstr(aur_last_error(), "'newvar'") && strstr(aur_last_error(), "statistics"),
              "no statistics named: %s", aur_last_error());
    aur_batch_free(b);
    aur_model_free(m2);
    aur_model_free(m);
}

static void test_window(void)
{
    aur_model *m = stats_model(0);
    aur_batch *s = series(m, 6, 5);
    aur_batch *w = aur_batch_window(s, 2, 3, 3600);
    const aur_real *a = aur_tensor_f32(aur_batch_atmos(s, "u")), *b = aur_tensor_f32(aur_batch_atmos(w, "u"));
    int64_t step = (int64_t)C * H * W;
    AUR_CHECK(w->T == 3 && !memcmp(b, a + 2 * step, sizeof(aur_real) * (size_t)(3 * step)), "window copies steps 2..4");
    AUR_CHECK(w->time[0] == s->time[0] - 1 * 3600.0, "window time is its last step's (%.0f vs %.0f)", w->time[0], s->time[0]);
    AUR_CHECK(!aur_batch_window(s, 4, 3, 3600) && strstr(aur_last_error(), "6 steps"), "window past the end refused");
    aur_batch_free(w);
    aur_batch_free(s);
    aur_model_free(m);
}

/* ---- a series read window by window, and the loader ---- */

/* Two samples (B = 2) of 5 steps, 6 h apart, saved as a safetensors series at path. */
static aur_batch *two_sample_series(const aur_model *m, const char *path)
{
    const aur_aurora_config *c = aur_aurora_config_of(m);
    aur_batch *a = series(m, 5, 21), *b = series(m, 5, 22);
    aur_batch *two = aur_batch_create(2, 5, C, H, W, &c->surf_vars, &c->static_vars, &c->atmos_vars);
    for (int i = 0; i < c->surf_vars.n; i++)
        for (int k = 0; k < 2; k++)
            memcpy(aur_tensor_f32(two->surf[i]) + k * a->surf[i]->numel, (k ? b : a)->surf[i]->data, sizeof(aur_real) * (size_t)a->surf[i]->numel);
    for (int i = 0; i < c->atmos_vars.n; i++)
        for (int k = 0; k < 2; k++)
            memcpy(aur_tensor_f32(two->atmos[i]) + k * a->atmos[i]->numel, (k ? b : a)->atmos[i]->data, sizeof(aur_real) * (size_t)a->atmos[i]->numel);
    for (int i = 0; i < c->static_vars.n; i++) memcpy(two->statics[i]->data, a->statics[i]->data, sizeof(aur_real) * (size_t)(H * W));
    memcpy(two->lat, a->lat, sizeof(float) * H);
    memcpy(two->lon, a->lon, sizeof(float) * W);
    memcpy(two->levels, a->levels, sizeof two->levels);
    two->time[0] = a->time[0], two->time[1] = a->time[0] + 86400;
    two->step_seconds = 21600;
    AUR_CHECK(aur_batch_save(two, path) == 0, "a two-sample series saved: %s", aur_last_error());
    aur_batch_free(a);
    aur_batch_free(b);
    return two;
}

/* Every window read from an open series equals the one aur_batch_window cuts from the whole series. */
static void test_series_windows(void)
{
    aur_model *m = stats_model(0), *m5 = stats_model(1);
    const char *path = aur_test_tmp("two_samples.safetensors");
    aur_batch_free(two_sample_series(m, path));
    aur_batch *whole = aur_batch_load(path);
    aur_series *s = aur_series_open(&path, 1, NULL, NULL);
    AUR_CHECK(whole && s && aur_series_length(s) == 5 && aur_series_step_seconds(s) == 21600, "the series opens: 5 steps 6 h apart: %s",
              aur_last_error());
    int windows = 0, same = 0;
    for (int start = 0; s && whole && start < 5; start++)
        for (int steps = 1; start + steps <= 5; steps++, windows++) {
            aur_batch *w = aur_series_read(s, start, steps, 21600), *ref = aur_batch_window(whole, start, steps, 21600);
            same += aur_test_same_batch(w, ref);
            aur_batch_free(w);
            aur_batch_free(ref);
        }
    AUR_CHECK(windows == 15 && same == windows, "%d of %d windows of a B = 2 series equal aur_batch_window's bit for bit", same, windows);
    AUR_CHECK(!aur_series_read(s, 3, 3, 21600) && strstr(aur_last_error(), "the series has 5 steps"), "a window past the end: %s", aur_last_error());
    aur_batch *other = series(m5, 2, 1), *buf = aur_series_window_alloc(s, 2, 0);
    AUR_CHECK(aur_series_read_into(s, 0, 21600, other) == AUR_ESHAPE && strstr(aur_last_error(), "another layout"),
              "a buffer with other variables is refused: %s", aur_last_error());
    AUR_CHECK(buf && aur_series_read_into(s, 3, 21600, buf) == 0 && buf->T == 2, "a window into a reused buffer: %s", aur_last_error());
    aur_batch_free(other);
    aur_batch_free(buf);
    const char *missing = aur_test_tmp("no_such_series.safetensors");
    AUR_CHECK(!aur_series_open(&missing, 1, NULL, NULL) && strstr(aur_last_error(), "no_such_series"), "a missing file is named: %s",
              aur_last_error());
    aur_series_close(s);
    aur_batch_free(whole);
    aur_model_free(m);
    aur_model_free(m5);
}

/* Two reports with the same findings (means and stds to round-off: sums in another order). */
static int same_report(const aur_check_report *a, const aur_check_report *b)
{
    int same = a->n == b->n && a->errors == b->errors && a->warnings == b->warnings;
    for (int i = 0; same && i < a->n; i++) {
        const aur_var_check *x = &a->vars[i], *y = &b->vars[i];
        same = !strcmp(x->name, y->name) && !strcmp(x->kind, y->kind) && x->present == y->present && x->used == y->used &&
               x->count == y->count && x->nonfinite == y->nonfinite && x->outliers == y->outliers && x->zero_fields == y->zero_fields &&
               x->fields == y->fields && x->severity == y->severity && !strcmp(x->message, y->message) && fabs(x->mean - y->mean) < 1e-9 &&
               fabs(x->std - y->std) < 1e-9 && x->max_abs_z == y->max_abs_z;
    }
    return same;
}

/* The check of a series read a few steps at a time equals the check of the whole series in memory. */
static void test_series_check(void)
{
    aur_model *m = stats_model(0);
    aur_batch *b = series(m, 7, 4);
    aur_tensor_f32(aur_batch_surf(b, "msl"))[5 * H * W + 3] = NAN;       /* step 5 */
    aur_tensor_f32(aur_batch_surf(b, "2t"))[6 * H * W + 9] = 1e4f;       /* step 6: an outlier */
    memset(aur_tensor_f32(aur_batch_atmos(b, "q")) + (3 * C + 1) * H * W, 0, sizeof(aur_real) * H * W); /* step 3, level 1 */
    const char *path = aur_test_tmp("check_series.safetensors");
    aur_batch_save(b, path);
    aur_check_report whole, part;
    int rc_whole = aur_aurora_check_batch(m, b, NULL, &whole);
    char msg_whole[2048];
    snprintf(msg_whole, sizeof msg_whole, "%s", aur_last_error());
    aur_series *s = aur_series_open(&path, 1, NULL, NULL);
    const int chunks[] = {1, 2, 3, 0};
    for (int i = 0; s && i < 4; i++) {
        aur_check_opts o = aur_check_defaults();
        o.chunk_steps = chunks[i];
        int rc = aur_aurora_check_series(m, s, &o, &part);
        AUR_CHECK(rc == rc_whole && rc == AUR_EFORMAT && !strcmp(aur_last_error(), msg_whole) && same_report(&whole, &part),
                  "checked %d steps at a time: the whole series' report (%s)", chunks[i], aur_last_error());
        aur_check_report_free(&part);
    }
    AUR_CHECK(whole.errors == 2 && whole.warnings >= 1, "the planted NaN and zero field are errors, the outlier a warning (%d errors)", whole.errors);
    aur_check_report_free(&whole);
    aur_series_close(s);
    aur_batch_free(b);
    aur_model_free(m);
}

/* A fixed order over four series slots (slot 3 is series_0 again, so that the loader's few open series turn over). */
static const aur_window_ref LOADER_ORDER[] = {{0, 0}, {1, 3}, {2, 4}, {3, 1}, {0, 4}, {2, 0}, {1, 1}, {3, 2}, {0, 2}, {2, 2},
                                              {1, 0}, {3, 4}, {1, 4}, {0, 1}, {2, 3}, {3, 0}, {1, 6} /* past the end */};
enum { LOADER_N = 16, LOADER_HISTORY = 2, LOADER_ROLLOUT = 2 };
static aur_window_ref loader_order(void *ctx, int64_t i)
{
    (void)ctx;
    return LOADER_ORDER[i];
}

/* Window i as the trainer cut it before the loader: from the whole series in memory. */
static int loader_window_ok(const aur_window *w, aur_batch *const *whole, int64_t i)
{
    aur_window_ref r = LOADER_ORDER[i];
    const aur_batch *s = whole[r.series % 3];
    aur_batch *in = aur_batch_window(s, r.start, LOADER_HISTORY, 21600);
    int ok = w && w->ref.series == r.series && w->ref.start == r.start && w->rollout == LOADER_ROLLOUT && aur_test_same_batch(w->input, in);
    for (int k = 0; ok && k < LOADER_ROLLOUT; k++) {
        aur_batch *t = aur_batch_window(s, r.start + LOADER_HISTORY + k, 1, 21600);
        ok = aur_test_same_batch(w->target[k], t);
        aur_batch_free(t);
    }
    aur_batch_free(in);
    return ok;
}

/* The loader's windows, read ahead by its thread or not, in order, after a jump, and past an error. */
static void test_loader(void)
{
    char p[4][512], *one[4];
    int n_paths[4] = {1, 1, 1, 1};
    char **paths[4];
    aur_batch *whole[3];
    for (int i = 0; i < 4; i++) {
        snprintf(p[i], sizeof p[i], "%s", aur_test_tmp(i == 1 ? "series_1.safetensors" : i == 2 ? "series_2.safetensors" : "series_0.safetensors"));
        one[i] = p[i], paths[i] = &one[i];
        if (i < 3) whole[i] = aur_batch_load(p[i]);
    }
    const int depths[] = {0, 1, 3};
    for (int d = 0; d < 3; d++) {
        aur_loader_opts o = {LOADER_HISTORY, LOADER_ROLLOUT, 21600, depths[d], 0, NULL};
        aur_loader *ld = aur_loader_create(paths, n_paths, 4, loader_order, NULL, &o);
        int good = 0;
        for (int64_t i = 0; ld && i < LOADER_N; i++) good += loader_window_ok(aur_loader_get(ld, i), whole, i);
        AUR_CHECK(good == LOADER_N, "depth %d: %d of %d windows equal the windows cut from the whole series", depths[d], good, LOADER_N);
        int jumped = ld && loader_window_ok(aur_loader_get(ld, 9), whole, 9) && loader_window_ok(aur_loader_get(ld, 2), whole, 2) &&
                     loader_window_ok(aur_loader_get(ld, 3), whole, 3);
        AUR_CHECK(jumped, "depth %d: asked out of order (9, 2, 3), the loader reads from there", depths[d]);
        const aur_window *bad = ld ? aur_loader_get(ld, LOADER_N) : NULL;
        AUR_CHECK(!bad && strstr(aur_last_error(), "series_1.safetensors") && strstr(aur_last_error(), "at step 6"),
                  "depth %d: a window past the end names the file and step: %s", depths[d], aur_last_error());
        AUR_CHECK(ld && loader_window_ok(aur_loader_get(ld, 5), whole, 5), "depth %d: the loader reads on after the error", depths[d]);
        aur_loader_stats st;
        if (ld) aur_loader_stats_get(ld, &st);
        AUR_CHECK(ld && st.windows_taken == LOADER_N + 5 && st.windows_read >= st.windows_taken - 1, "depth %d: %lld windows taken, %lld read",
                  depths[d], ld ? (long long)st.windows_taken : 0, ld ? (long long)st.windows_read : 0);
        aur_loader_free(ld);
    }
    aur_loader_opts pinned = {LOADER_HISTORY, LOADER_ROLLOUT, 21600, 1, 1, NULL};
    aur_loader *ld = aur_loader_create(paths, n_paths, 4, loader_order, NULL, &pinned);
    AUR_CHECK(ld && !aur_loader_get(ld, 0) && strstr(aur_last_error(), "pinned memory needs a CUDA build"), "pinned windows without CUDA: %s",
              aur_last_error());
    aur_loader_free(ld);
    for (int i = 0; i < 3; i++) aur_batch_free(whole[i]);
}

static void test_alarm(void)
{
    aur_grad_alarm a;
    aur_grad_alarm_init(&a, 20, 5, 1);
    const char *names[2] = {"rest", "new_vars"};
    char msg[256];
    int alarms = 0;
    for (int s = 0; s < 30; s++) {
        double g[2] = {1.0 + 0.05 * sin(s), 0.5 + 0.02 * cos(s)};
        alarms += aur_grad_alarm_check(&a, hypot(g[0], g[1]), g, names, 2, msg, sizeof msg);
    }
    AUR_CHECK(alarms == 0, "steady norms raise no alarm (%d)", alarms);
    double spike[2] = {1.0, 40.0};
    AUR_CHECK(aur_grad_alarm_check(&a, hypot(spike[0], spike[1]), spike, names, 2, msg, sizeof msg) == 1 && strstr(msg, "'new_vars'"),
              "a spike names its group: %s", msg);
    double nan[2] = {NAN, 0.5};
    AUR_CHECK(aur_grad_alarm_check(&a, NAN, nan, names, 2, msg, sizeof msg) == 1 && strstr(msg, "'rest'"), "NaN names its group: %s", msg);
    double ok[2] = {1.0, 0.5};
    AUR_CHECK(aur_grad_alarm_check(&a, hypot(1.0, 0.5), ok, names, 2, msg, sizeof msg) == 0, "spikes stay out of the window");
}

/* One training step of m at H x W: its measured tape peak, without the
   CPU's per-thread scratch (which a GPU, the plan's subject, does not have). */
static size_t measured_step_peak(aur_model *m, int H, int W)
{
    const aur_aurora_config *c = aur_aurora_config_of(m);
    aur_batch *s = synth_series(m, 3, C, LEVELS, H, W, &c->surf_vars, &c->static_vars, &c->atmos_vars, 1);
    aur_batch *in = aur_batch_window(s, 0, 2, 21600), *target = aur_batch_window(s, 2, 1, 21600);
    aur_tape *t = aur_tape_create();
    aur_batch *p = aur_aurora_forward(m, t, in);
    aur_backward(t, aur_aurora_loss(m, t, p, target));
    aur_memory_stats ms;
    aur_tape_memory_stats(t, &ms);
    aur_batch_free(p);
    aur_tape_free(t);
    aur_batch_free(in);
    aur_batch_free(target);
    aur_batch_free(s);
    return ms.peak_shared;
}

/* The plan's activations (a dry run on the meta device) against the measured
   tape peak of m's step at H x W, with checkpointing off and on: within 10%,
   and never above (the CPU only adds its matrix-product packing). */
static void check_plan(aur_model *m, int H, int W, int threads)
{
    aur_aurora_config c = *aur_aurora_config_of(m);
    for (int ckpt = 0; ckpt < 2; ckpt++) {
        c.checkpoint = ckpt ? AUR_CHECKPOINT_ALL : 0;
        aur_aurora_set_checkpoint(m, c.checkpoint);
        aur_memory_choice ch = {AUR_ADAMW, c.checkpoint, 0, 0, 0, 1};
        aur_memory_plan plan;
        int rc = aur_aurora_memory_plan(&c, 1, 2, C, H, W, &ch, &plan);
        AUR_CHECK(rc == 0, "plan: %s", aur_last_error());
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        double peak = (double)measured_step_peak(m, H, W), ratio = plan.activations / peak;
        AUR_CHECK(ratio > 0.9 && ratio <= 1.0, "%s %d x %d, checkpointing %d, %d threads: planned %.2f MB, measured %.2f MB",
                  aur_aurora_config_of(m)->embed_dim == 32 ? "reduced" : "AuroraSmallPretrained", H, W, ckpt, threads,
                  plan.activations / 1e6, peak / 1e6);
    }
}

/* A reduced architecture (fast under the sanitizers) on 1 to 16 threads: the
   CPU's scratch is sized by the matrix products, not by the thread count. */
static void test_memory_plan_threads(void)
{
#ifdef _OPENMP
    int threads = omp_get_max_threads();
#endif
    aur_aurora_config c;
    aur_aurora_preset("aurora-small-pretrained", &c);
    c.embed_dim = 32, c.num_heads = 4, c.window_size[0] = 2, c.window_size[1] = c.window_size[2] = 4;
    c.n_stages = 2, c.latent_levels = 2;
    for (int i = 0; i < 2; i++) c.encoder_depths[i] = c.decoder_depths[i] = 2, c.encoder_num_heads[i] = c.decoder_num_heads[1 - i] = 2 << i;
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 1);
    for (int nt = 1; nt <= 16; nt *= 2) check_plan(m, 64, 128, nt);
    aur_aurora_config checked = *aur_aurora_config_of(m);
    checked.checkpoint = 0;
    aur_memory_choice ch = {AUR_ADAMW, 0, 0, 0, 0, 1}, ada = {AUR_ADAFACTOR, 0, 0, 0, 1, 1};
    aur_memory_plan plan, pa;
    aur_aurora_memory_plan(&checked, 1, 2, C, 64, 128, &ch, &plan);
    aur_aurora_memory_plan(&checked, 1, 2, C, 64, 128, &ada, &pa);
    size_t grads, weights = aur_model_bytes(m, &grads);
    AUR_CHECK(fabs(plan.params - (double)weights) < 0.01 * (double)weights && fabs(plan.optimiser - 2 * plan.grads) < 1,
              "weights %.0f vs %zu bytes; AdamW state is twice the gradients", plan.params, weights);
    AUR_CHECK(pa.optimiser == 0 && pa.host > 0 && pa.host < 0.2 * plan.optimiser, "Adafactor offloaded: %.0f bytes on the host", pa.host);
    aur_model_free(m);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
}

/* AuroraSmallPretrained's real architecture at two small grids. Only in the
   optimised build: under the sanitizers its 113 M weights' initialisation and
   steps take minutes (the reduced architecture above runs there). */
static void test_memory_plan_real(void)
{
#if !defined(__SANITIZE_ADDRESS__)
#ifdef _OPENMP
    int threads = omp_get_max_threads();
#endif
    aur_aurora_config c;
    aur_aurora_preset("aurora-small-pretrained", &c);
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 1);
    check_plan(m, 32, 64, threads);
    check_plan(m, 48, 96, threads);
    aur_model_free(m);
#endif
}

/* Zero-initialised embeddings of a new variable leave the other variables'
   predictions exactly as the base model makes them (the guide's promise). */
static void test_zero_new_embedding(void)
{
    aur_aurora_config c;
    aur_aurora_preset("aurora-small-pretrained", &c);
    c.embed_dim = 16, c.num_heads = 2, c.window_size[0] = 2, c.window_size[1] = 2, c.window_size[2] = 4, c.n_stages = 2;
    c.latent_levels = 2;
    for (int i = 0; i < 2; i++) c.encoder_depths[i] = c.decoder_depths[i] = 1, c.encoder_num_heads[i] = c.decoder_num_heads[1 - i] = 2 << i;
    aur_model *base = aur_aurora_create(&c, AUR_CPU, 3);
    const char *ckpt = aur_test_tmp("base.safetensors");
    aur_save_safetensors(base, ckpt);
    aur_aurora_config c2 = c;
    snprintf(c2.surf_vars.name[c2.surf_vars.n++], AUR_NAME_LEN, "tcwv");
    aur_model *ext = aur_aurora_create(&c2, AUR_CPU, 4);
    aur_aurora_set_stats(ext, "tcwv", SYNTH_TCWV_LOC, SYNTH_TCWV_SCALE);
    aur_load_report rep;
    int rc = aur_aurora_load(ext, ckpt, AUR_LOAD_NONSTRICT, &rep);
    char *fresh = aur_aurora_new_var_params(ext, &rep);
    AUR_CHECK(rc == 0 && fresh && !strcmp(fresh, "encoder.surf_token_embeds.weights.tcwv,decoder.surf_heads.tcwv.weight,decoder.surf_heads.tcwv.bias"),
              "the new variable's parameters: %s", fresh ? fresh : aur_last_error());
    AUR_CHECK(aur_model_fill(ext, "encoder.*_token_embeds.weights.tcwv", 0) == 1, "one embedding zeroed");
    aur_batch *s = synth_series(ext, 3, C, LEVELS, H, W, &c2.surf_vars, &c2.static_vars, &c2.atmos_vars, 9);
    aur_batch *in = aur_batch_window(s, 0, 2, 21600), *in_base = aur_batch_window(s, 0, 2, 21600);
    aur_tensor_free(in_base->surf[--in_base->surf_names.n]); /* the base model has no tcwv */
    aur_tape *t = aur_tape_create();
    aur_tape_set_grad(t, 0);
    aur_batch *p1 = aur_aurora_forward(base, t, in_base), *p2 = aur_aurora_forward(ext, t, in);
    AUR_CHECK(p1 && p2, "forward: %s", aur_last_error());
    if (!p1 || !p2) return;
    double worst = 0;
    for (int v = 0; v < p1->atmos_names.n; v++)
        for (int64_t i = 0; i < p1->atmos[v]->numel; i++)
            worst = fmax(worst, fabs(aur_tensor_f32(p1->atmos[v])[i] - aur_tensor_f32(aur_batch_atmos(p2, p1->atmos_names.name[v]))[i]) /
                                    fmax(1e-6, fabs(aur_tensor_f32(p1->atmos[v])[i])));
    AUR_CHECK(worst < 1e-6, "old variables unchanged by a zero new embedding (worst relative change %.2g)", worst);
    free(fresh);
    aur_load_report_free(&rep);

    /* stabilise_level_agg on a checkpoint without it: the new layer norms are reported and start as identities */
    aur_aurora_config c3 = c;
    c3.stabilise_level_agg = 1;
    aur_model *stab = aur_aurora_create(&c3, AUR_CPU, 5);
    rc = aur_aurora_load(stab, ckpt, AUR_LOAD_NONSTRICT, &rep);
    int lns = 0, identity = 1;
    for (int i = 0; i < rep.n_missing; i++) {
        aur_tensor *ln = aur_model_param(stab, rep.missing[i]);
        lns += strstr(rep.missing[i], ".ln_") != NULL;
        for (int64_t k = 0; ln && k < ln->numel; k++)
            identity &= aur_tensor_f32(ln)[k] == (strstr(rep.missing[i], ".weight") ? 1.0f : 0.0f);
    }
    AUR_CHECK(rc == 0 && rep.n_missing == 4 && lns == 4 && identity, "stabilise_level_agg: %d new tensors, %d layer-norm ones", rep.n_missing,
              lns);
    aur_load_report_free(&rep);
    aur_model_free(stab);
    aur_batch_free(p1);
    aur_batch_free(p2);
    aur_tape_free(t);
    aur_batch_free(in);
    aur_batch_free(in_base);
    aur_batch_free(s);
    aur_model_free(base);
    aur_model_free(ext);
}

/* ---- the trainer ---- */

/* A run config over the test data; the keys of extra replace or join the top level. */
static cJSON *config(const char *out, const char *extra)
{
    char text[4096];
    train_config_text(text, sizeof text, out);
    cJSON *j = cJSON_Parse(text);
    snprintf(text, sizeof text, "{%s}", extra);
    cJSON *x = cJSON_Parse(text);
    if (!j || !x) printf("FAIL: test config does not parse\n");
    for (cJSON *it = x ? x->child : NULL; it; it = it->next) {
        cJSON_DeleteItemFromObject(j, it->string);
        cJSON_AddItemToObject(j, it->string, cJSON_Duplicate(it, 1));
    }
    cJSON_Delete(x);
    return j;
}

static aur_trainer *trainer(const char *out, const char *extra)
{
    cJSON *j = config(out, extra);
    aur_trainer *tr = aur_trainer_create_json(j, aur_test_dir);
    cJSON_Delete(j);
    return tr;
}

static int same_params(const aur_model *a, const aur_model *b)
{
    for (int i = 0; i < aur_model_count(a); i++)
        if (memcmp(aur_model_at(a, i)->data, aur_model_at(b, i)->data, sizeof(aur_real) * (size_t)aur_model_at(a, i)->numel)) return 0;
    return 1;
}

static void test_config_errors(void)
{
    struct { const char *extra, *want; } bad[] = {
        {"\"stepz\": 3", "unknown key 'stepz'"},
        {"\"clip_grad_norm\": \"big\"", "'clip_grad_norm': expected a number in [0, 1e+30], found \"big\""},
        {"\"alarm\": {\"windoww\": 3}", "alarm: unknown key 'windoww'"},
        {"\"device\": \"tpu\"", "'device': expected \"cpu\" or \"cuda\", found \"tpu\""},
        {"\"steps\": -1", "'steps': expected an integer in [0, 1000000000000], found -1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aur_trainer *tr = trainer("bad", bad[i].extra);
        AUR_CHECK(!tr && strstr(aur_last_error(), bad[i].want), "config error '%s': %s", bad[i].extra, aur_last_error());
        aur_trainer_free(tr);
    }
    cJSON *j = config("bad", "");
    cJSON *data = cJSON_GetObjectItem(j, "data");
    cJSON_ReplaceItemInObject(data, "train", cJSON_CreateString("nan.safetensors"));
    aur_trainer *tr = aur_trainer_create_json(j, aur_test_dir);
    AUR_CHECK(!tr && strstr(aur_last_error(), "nan.safetensors") && strstr(aur_last_error(), "'msl'") && strstr(aur_last_error(), "NaN"),
              "a NaN in the data refuses the run: %s", aur_last_error());
    cJSON_ReplaceItemInObject(data, "train", cJSON_CreateString("absent.safetensors"));
    tr = aur_trainer_create_json(j, aur_test_dir);
    AUR_CHECK(!tr && strstr(aur_last_error(), "absent.safetensors"), "a missing file is named: %s", aur_last_error());
    cJSON_Delete(j);
}

/* A config whose data.KEY (or model.KEY) is set to the JSON text value. */
static aur_trainer *trainer_with(const char *section, const char *key, const char *value)
{
    cJSON *j = config("bad", ""), *v = cJSON_Parse(value);
    cJSON *s = cJSON_GetObjectItem(j, section);
    if (!v || !s) printf("FAIL: test config '%s' does not parse\n", value);
    cJSON_DeleteItemFromObject(s, key);
    cJSON_AddItemToObject(s, key, v);
    aur_trainer *tr = aur_trainer_create_json(j, aur_test_dir);
    cJSON_Delete(j);
    return tr;
}

/* Inputs that crashed or hung (issue 13): each is refused with a message naming it. */
static void test_hostile_configs(void)
{
    struct { const char *section, *key, *value, *want; } bad[] = {
        {"model", "stats", "[[1, 2]]", "model 'stats': expected an object"},
        {"model", "stats", "{\"tcwv\": [1]}", "model 'stats.tcwv': expected [location, scale]"},
        {"data", "train", "[]", "data 'train': expected a file name or a non-empty list"},
        {"data", "val", "[]", "data 'val': expected a file name or a non-empty list"},
        {"data", "train", "[\"\"]", "data 'train[0]': expected a file name, found \"\""},
        /* found by fuzz_run_config: a negative width was shifted (undefined) before it was checked */
        {"model", "kwargs", "{\"embed_dim\": -6}", "embed_dim -6 must be a positive multiple of 4"},
        {"model", "kwargs", "{\"embed_dim\": 1073741824}", "at most 65536"},
        {"model", "kwargs", "{\"patch_size\": 100000}", "at most 1024 (found 100000)"},
        {"model", "kwargs", "{\"encoder_depths\": [-1, 1], \"decoder_depths\": [1, -1]}", "stage 0 depths must be in [0, 1024]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aur_trainer *tr = trainer_with(bad[i].section, bad[i].key, bad[i].value);
        AUR_CHECK(!tr && strstr(aur_last_error(), bad[i].want), "%s.%s = %s is refused: %s", bad[i].section, bad[i].key, bad[i].value,
                  aur_last_error());
        aur_trainer_free(tr);
    }
    /* a value of the wrong type is named, never taken for a number or ignored */
    struct { const char *extra, *want; } typed[] = {
        {"\"steps\": true", "run config 'steps': expected an integer in [0, 1000000000000], found true"},
        {"\"optimizer\": {\"lr\": true}", "run config: optimizer 'lr': expected a number in [0, 10], found true"},
        {"\"optimizer\": {\"groups\": \"decoder.*\"}", "run config: optimizer 'groups': expected a list of at most 7 groups, found \"decoder.*\""},
        {"\"map_vars\": \"2t\"", "run config 'map_vars': expected a list of at most 8 names, found \"2t\""},
        {"\"seed\": \"5\"", "run config 'seed': expected an integer"},
        {"\"autocast\": \"true\"", "run config 'autocast': expected true or false, found \"true\""},
        {"\"schedule\": {\"warmup_steps\": 2.5}", "run config: schedule 'warmup_steps': expected an integer"},
        {"\"output_dir\": \"\"", "run config 'output_dir': expected a directory name, found \"\""}, /* found by fuzz_run_config */
    };
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
        aur_trainer *tr = trainer("bad", typed[i].extra);
        AUR_CHECK(!tr && strstr(aur_last_error(), typed[i].want), "%s is refused: %s", typed[i].extra, aur_last_error());
        aur_trainer_free(tr);
    }
    /* one rule for duplicate keys everywhere: an error naming the key (cJSON would take the first, Python the last) */
    cJSON *dup = config("bad", "");
    cJSON_AddItemToObject(cJSON_GetObjectItem(dup, "optimizer"), "lr", cJSON_CreateNumber(1));
    aur_trainer *tr = aur_trainer_create_json(dup, aur_test_dir);
    AUR_CHECK(!tr && strstr(aur_last_error(), "run config: duplicate key 'lr' in 'optimizer'"), "a key twice in a config is refused: %s",
              aur_last_error());
    cJSON_Delete(dup);
    static const char *const twice[][2] = {
        {"{\"steps\": 3, \"steps\": 4}", "x.json: duplicate key 'steps'"},
        {"{\"a\": [{\"r\": 1, \"r\": 2}]}", "x.json: duplicate key 'r'"},
        {"{\"stats\": {\"k1\": 1, \"k2\": 2, \"k3\": 3, \"k4\": 4, \"k5\": 5, \"k6\": 6, \"k7\": 7, \"k8\": 8, \"k9\": 9, \"k3\": 3}}",
         "x.json: duplicate key 'k3' in 'stats'"},
    };
    for (size_t i = 0; i < sizeof twice / sizeof twice[0]; i++) {
        cJSON *j = aur_json_parse(twice[i][0], strlen(twice[i][0]), "x.json");
        AUR_CHECK(!j && strstr(aur_last_error(), twice[i][1]), "duplicate keys refused in %s: %s", twice[i][0], aur_last_error());
        cJSON_Delete(j);
    }
    tr = aur_trainer_create("/dev/zero");
    AUR_CHECK(!tr && strstr(aur_last_error(), "/dev/zero: not a regular file"), "a config that is not a regular file is refused: %s",
              aur_last_error());
    FILE *fp = fopen(aur_test_tmp("garbage.json"), "w");
    if (fp) fputs("{\"steps\": 3}\n}x", fp), fclose(fp);
    tr = aur_trainer_create(aur_test_tmp("garbage.json"));
    AUR_CHECK(!tr && strstr(aur_last_error(), "text after the JSON value, at line 2"), "text after a config's JSON is refused: %s", aur_last_error());
    if ((fp = fopen(aur_test_tmp("a_file"), "w"))) fclose(fp);
    /* what failed only at the last step's plot or the first save, refused before step 1 */
    struct { const char *extra, *want; } late[] = {
        {"\"map_vars\": [\"t850\"]", "map_vars: 't850' is not a predicted variable"},
        {"\"map_vars\": [\"t@851\"]", "map_vars: 't@851' is not a predicted variable"},
        {"\"map_vars\": [\"tcwv@500\"]", "map_vars: 'tcwv@500' is not a predicted variable"},
        {"\"output_dir\": \"a_file\"", "a_file is not a directory"},
    };
    for (size_t i = 0; i < sizeof late / sizeof late[0]; i++) {
        tr = trainer("bad", late[i].extra);
        AUR_CHECK(!tr && strstr(aur_last_error(), late[i].want), "%s is refused at the start: %s", late[i].extra, aur_last_error());
        aur_trainer_free(tr);
    }
}

/* A saved run's trainer_state.json with key (a top-level key, or "alarm.KEY") set to the JSON value, or dropped when NULL. */
static void edit_state(const char *dir, const char *key, const char *value)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/checkpoint-000001/trainer_state.json", aur_test_dir, dir);
    cJSON *s = aur_json_load(path), *obj = s;
    const char *dot = strchr(key, '.');
    if (dot) obj = cJSON_GetObjectItem(s, "alarm"), key = dot + 1;
    cJSON_DeleteItemFromObject(obj, key);
    if (value) cJSON_AddItemToObject(obj, key, cJSON_Parse(value));
    char *text = cJSON_Print(s);
    FILE *fp = fopen(path, "w");
    if (fp) fputs(text, fp), fclose(fp);
    free(text);
    cJSON_Delete(s);
}

/* Resuming from a damaged trainer_state.json: refused with the key named, or restored whole (issue 13's crashes). */
static void test_hostile_states(void)
{
    struct { const char *key, *value, *want; } bad[] = {
        {"alarm.alarms", NULL, NULL}, /* absent: the default, as a fresh run's */
        {"step", "-5", "'step'"},
        {"step", "1e30", "'step'"},
        {"step", "1.5", "'step'"},
        {"history", "[\"a\", \"b\"]", "history"},
        {"alarm.hist", "7", "'alarm.hist'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aur_trainer *a = trainer("state", "\"steps\": 2");
        aur_step_info si;
        int rc = a ? aur_trainer_step(a, &si) : -1;
        if (!rc) rc = aur_trainer_save(a);
        aur_trainer_free(a);
        AUR_CHECK(rc == 0, "a run to damage: %s", aur_last_error());
        edit_state("state", bad[i].key, bad[i].value);
        aur_trainer *b = trainer("state", "\"steps\": 2");
        rc = b ? aur_trainer_resume(b, NULL) : -1;
        if (bad[i].want)
            AUR_CHECK(rc != 0 && strstr(aur_last_error(), bad[i].want), "trainer state %s = %s is refused: %s", bad[i].key, bad[i].value,
                      rc ? aur_last_error() : "(resumed)");
        else
            AUR_CHECK(rc == 0 && aur_trainer_steps_done(b) == 1 && aur_trainer_step(b, &si) == 0, "trainer state without %s resumes: %s",
                      bad[i].key, aur_last_error());
        aur_trainer_free(b);
    }
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    if (in) fclose(in);
    if (out) fclose(out);
}

/* A checkpoint whose optimizer.safetensors was copied in from another run or another step is refused, not resumed wrong. */
static void test_mixed_checkpoint(void)
{
    aur_trainer *a = trainer("mixed_a", "\"steps\": 2, \"keep_last\": 3, \"save_every\": 1"), *b = trainer("mixed_b", "\"steps\": 1");
    int rc = a && b ? aur_trainer_run(a) : -1;
    if (!rc) rc = aur_trainer_run(b);
    AUR_CHECK(rc == 0, "two runs to mix: %s", aur_last_error());
    aur_trainer_free(a);
    aur_trainer_free(b);
    char from[512], to[512];
    snprintf(to, sizeof to, "%s", aur_test_tmp("mixed_a/checkpoint-000001/optimizer.safetensors"));
    copy_file(to, aur_test_tmp("mixed_a/optimizer.safetensors.keep"));
    struct { const char *from, *want; } cases[] = {
        {"mixed_b/checkpoint-000001/optimizer.safetensors", "the files of two runs are mixed"},
        {"mixed_a/checkpoint-000002/optimizer.safetensors", "the state of step 2, but"},
        {"mixed_a/optimizer.safetensors.keep", NULL}, /* its own file back: resumes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(from, sizeof from, "%s", aur_test_tmp(cases[i].from));
        copy_file(from, to);
        aur_trainer *c = trainer("mixed_a", "\"steps\": 2");
        rc = c ? aur_trainer_resume(c, aur_test_tmp("mixed_a/checkpoint-000001")) : -1;
        if (cases[i].want)
            AUR_CHECK(rc != 0 && strstr(aur_last_error(), cases[i].want), "an optimiser file from %s is refused: %s", cases[i].from,
                      rc ? aur_last_error() : "(resumed)");
        else
            AUR_CHECK(rc == 0, "the checkpoint's own optimiser file resumes: %s", aur_last_error());
        aur_trainer_free(c);
    }
}

/* N steps, save, resume in a new trainer, M steps == N + M steps at once. */
static void test_resume(const char *extra)
{
    aur_trainer *a = trainer("full", extra), *b = trainer("part", extra);
    AUR_CHECK(a && b, "trainers (%s): %s", extra, aur_last_error());
    if (!a || !b) return;
    double la[6], lb[6];
    aur_step_info si;
    for (int s = 0; s < 6; s++) aur_trainer_step(a, &si), la[s] = si.loss;
    for (int s = 0; s < 3; s++) aur_trainer_step(b, &si), lb[s] = si.loss;
    AUR_CHECK(aur_trainer_save(b) == 0, "save: %s", aur_last_error());
    aur_trainer_free(b);
    b = trainer("part", extra);
    int rc = aur_trainer_resume(b, NULL);
    AUR_CHECK(rc == 0 && aur_trainer_steps_done(b) == 3, "resume at step 3: %s", aur_last_error());
    for (int s = 3; s < 6; s++) aur_trainer_step(b, &si), lb[s] = si.loss;
    AUR_CHECK(!memcmp(la, lb, sizeof la), "losses equal bit for bit (%s): %.9g vs %.9g", extra, la[5], lb[5]);
    AUR_CHECK(same_params(aur_trainer_model(a), aur_trainer_model(b)), "weights equal bit for bit after resume (%s)", extra);
    AUR_CHECK(la[5] < la[0], "the loss falls (%g -> %g)", la[0], la[5]);
    aur_trainer_free(a);
    aur_trainer_free(b);
}

/* Windows read ahead by the loader's thread train the same weights as windows read at each step. */
static void test_prefetch_same_run(void)
{
    aur_trainer *tr[2] = {trainer_with("data", "prefetch", "0"), trainer_with("data", "prefetch", "3")};
    AUR_CHECK(tr[0] && tr[1], "trainers with data.prefetch 0 and 3: %s", aur_last_error());
    double loss[2][6] = {{0}};
    aur_step_info si;
    for (int k = 0; k < 2 && tr[0] && tr[1]; k++)
        for (int s = 0; s < 6; s++) loss[k][s] = aur_trainer_step(tr[k], &si) ? NAN : si.loss;
    AUR_CHECK(tr[0] && tr[1] && !memcmp(loss[0], loss[1], sizeof loss[0]) && same_params(aur_trainer_model(tr[0]), aur_trainer_model(tr[1])),
              "prefetch 0 and 3: the same losses and weights bit for bit (%.9g, %.9g)", tr[0] ? loss[0][5] : 0, tr[1] ? loss[1][5] : 0);
    for (int k = 0; k < 2; k++) aur_trainer_free(tr[k]);
    aur_trainer *bad = trainer_with("data", "prefetch", "-1");
    AUR_CHECK(!bad && strstr(aur_last_error(), "prefetch"), "a negative prefetch is refused: %s", aur_last_error());
    aur_trainer_free(bad);
}

/* The events the fixture holds (tests/fixtures/tensorboard/), at a fixed wall time. */
static int write_fixture_events(const char *path)
{
    double t = 1764633600.25;
    int rc = aur_events_create(path, t);
    if (!rc) rc = aur_events_scalar(path, t + 1, 1, "loss", 0.75);
    if (!rc) rc = aur_events_scalar(path, t + 2, 2, "loss", 0.5);
    if (!rc) rc = aur_events_scalar(path, t + 2, 2, "val_loss", 0.625);
    if (!rc) rc = aur_events_from_json(path, t + 3, "{\"step\": 300, \"lr\": 0.0003, \"grad_norm/encoder\": 1.25, \"alarm\": false}");
    return rc;
}

/* TensorBoard event files: the writer's bytes equal the fixture file, which
   TensorBoard's own reader read as tests/fixtures/tensorboard/scalars.json
   (tools/read_tensorboard.py); and our reading of them agrees with TensorBoard's. */
static void test_events(void)
{
    const uint8_t check[] = "123456789";
    AUR_CHECK(aur__crc32c(check, 9) == 0xE3069283u, "CRC-32C of \"123456789\" is the standard check value (%08x)", aur__crc32c(check, 9));
    const char *path = aur_test_tmp("events.out.tfevents.test");
    AUR_CHECK(write_fixture_events(path) == 0, "events written: %s", aur_last_error());
    FILE *a = fopen(path, "rb"), *b = fopen("tests/fixtures/tensorboard/events.out.tfevents.fixture", "rb");
    int same = a && b, ca, cb;
    while (same && ((ca = fgetc(a)) != EOF) | ((cb = fgetc(b)) != EOF)) same = ca == cb;
    if (a) fclose(a);
    if (b) fclose(b);
    AUR_CHECK(same, "the events file equals the one TensorBoard read (tests/fixtures/tensorboard/)");
    ev_scalar s[16];
    int n = ev_read_scalars(path, s, 16);
    cJSON *want = aur_json_load("tests/fixtures/tensorboard/scalars.json");
    int agree = n == cJSON_GetArraySize(want);
    for (int i = 0; agree && i < n; i++) { /* TensorBoard lists by tag, the file is in write order: matched by (tag, step) */
        agree = 0;
        for (const cJSON *w = want ? want->child : NULL; w && !agree; w = w->next)
            agree = !strcmp(s[i].tag, cJSON_GetObjectItem(w, "tag")->valuestring) && s[i].step == cJSON_GetObjectItem(w, "step")->valuedouble &&
                    s[i].value == (float)cJSON_GetObjectItem(w, "value")->valuedouble;
    }
    AUR_CHECK(n == 5 && agree, "5 scalars, as TensorBoard read them (%d)", n);
    cJSON_Delete(want);
    AUR_CHECK(aur_events_scalar(path, 0, 1, "", 1) == AUR_EINVAL, "an empty tag is refused");
}

/* The "loss" steps in a run's events file: 1..n in order, once each. */
static int events_loss_steps(const char *path, int n)
{
    enum { MAX = 4096 }; /* evaluation lines carry a scalar per variable, level and lead (val_rmse/...) */
    static ev_scalar s[MAX];
    int k = ev_read_scalars(path, s, MAX), seen = 0;
    for (int i = 0; i < k; i++)
        if (!strcmp(s[i].tag, "loss") && s[i].step != ++seen) return 0;
    return k > 0 && seen == n;
}

/* The loop's outputs; then a run that blows up must leave the checkpoint alone. */
static void test_run_and_abort(void)
{
    aur_trainer *tr = trainer("run", "\"eval_every\": 3, \"save_every\": 3, \"map_vars\": [\"tcwv\", \"t@500\"]");
    AUR_CHECK(tr && aur_trainer_run(tr) == 0, "run: %s", aur_last_error());
    aur_trainer_free(tr);
    AUR_CHECK(aur_test_count_lines(aur_test_tmp("run/metrics.jsonl")) == 6, "6 metrics lines");
    AUR_CHECK(events_loss_steps(aur_test_tmp("run/events.out.tfevents.aurora"), 6), "TensorBoard events beside them: loss at steps 1..6");
    const char *files[] = {"run/curves.png", "run/maps_tcwv.png", "run/maps_t_500_error.png", "run/checkpoint-000003/model.safetensors",
                           "run/checkpoint-000006/optimizer.safetensors", "run/checkpoint-000006/trainer_state.json", "run/latest"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) AUR_CHECK(access(aur_test_tmp(files[i]), F_OK) == 0, "%s written", files[i]);

    /* resume to 9 steps: the metrics file reads as one run */
    tr = trainer("run", "\"eval_every\": 3, \"steps\": 9");
    AUR_CHECK(tr && aur_trainer_resume(tr, NULL) == 0 && aur_trainer_run(tr) == 0, "resumed run: %s", aur_last_error());
    aur_trainer_free(tr);
    AUR_CHECK(aur_test_count_lines(aur_test_tmp("run/metrics.jsonl")) == 9, "9 metrics lines after resuming");
    AUR_CHECK(events_loss_steps(aur_test_tmp("run/events.out.tfevents.aurora"), 9), "the events read as one run too: loss at steps 1..9");

    /* a NaN weight with alarm.skip off: the run stops, no checkpoint is written or replaced */
    const char *model = aur_test_tmp("run/checkpoint-000009/model.safetensors");
    struct stat before, after;
    stat(model, &before);
    tr = trainer("run", "\"steps\": 12, \"save_every\": 1, \"alarm\": {\"skip\": false}");
    AUR_CHECK(tr && aur_trainer_resume(tr, NULL) == 0, "resume: %s", aur_last_error());
    aur_tensor *w = aur_model_param(aur_trainer_model(tr), "decoder.surf_heads.tcwv.weight");
    aur_tensor_f32(w)[0] = NAN;
    int rc = aur_trainer_run(tr);
    AUR_CHECK(rc == AUR_ENAN && strstr(aur_last_error(), "step 10"), "the run stops at step 10: %s", aur_last_error());
    aur_trainer_free(tr);
    stat(model, &after);
    AUR_CHECK(before.st_mtime == after.st_mtime && before.st_size == after.st_size && before.st_ino == after.st_ino,
              "checkpoint-000009 untouched");
    AUR_CHECK(access(aur_test_tmp("run/checkpoint-000010"), F_OK) != 0 && access(aur_test_tmp("run/.checkpoint-000010.tmp"), F_OK) != 0,
              "no checkpoint of the failed step");
    FILE *fp = fopen(aur_test_tmp("run/latest"), "r");
    char latest[64] = "";
    if (fp && fgets(latest, sizeof latest, fp)) latest[strcspn(latest, "\n")] = 0;
    if (fp) fclose(fp);
    AUR_CHECK(!strcmp(latest, "checkpoint-000009"), "latest still names checkpoint-000009 (%s)", latest);

    /* with skip on, the alarm skips the update and the run goes on */
    tr = trainer("run", "\"steps\": 11, \"alarm\": {\"skip\": true}");
    aur_trainer_resume(tr, NULL);
    aur_tensor_f32(aur_model_param(aur_trainer_model(tr), "decoder.surf_heads.tcwv.weight"))[0] = NAN;
    aur_step_info si;
    rc = aur_trainer_step(tr, &si);
    AUR_CHECK(rc == 0 && si.alarm && si.skipped && strstr(si.alarm_msg, "skipped"), "alarm skips the update: %s", si.alarm_msg);
    aur_trainer_free(tr);
}

static void touch(const char *rel)
{
    FILE *fp = fopen(aur_test_tmp(rel), "w");
    if (fp) fputs("x", fp), fclose(fp);
}

/* What a kill or a failed call during a save leaves is set right; a fresh run does not take over another's output_dir. */
static void test_checkpoint_recovery(void)
{
    aur_trainer *tr = trainer("rec", "\"steps\": 3");
    aur_step_info si;
    int rc = tr ? aur_trainer_step(tr, &si) : -1;
    if (!rc) rc = aur_trainer_save(tr);
    aur_trainer_free(tr);
    AUR_CHECK(rc == 0, "a run to interrupt: %s", aur_last_error());
    /* killed between the two renames of a same-step save: the complete copy is aside as .old, a half-written .tmp beside it */
    rename(aur_test_tmp("rec/checkpoint-000001"), aur_test_tmp("rec/.checkpoint-000001.old"));
    mkdir(aur_test_tmp("rec/.checkpoint-000001.tmp"), 0755);
    touch("rec/.checkpoint-000001.tmp/model.safetensors.tmp");
    tr = trainer("rec", "\"steps\": 3");
    rc = tr ? aur_trainer_resume(tr, NULL) : -1;
    AUR_CHECK(rc == 0 && aur_trainer_steps_done(tr) == 1, "resumed from the copy a cut-short save left aside: %s", aur_last_error());
    AUR_CHECK(access(aur_test_tmp("rec/.checkpoint-000001.tmp"), F_OK) && access(aur_test_tmp("rec/.checkpoint-000001.old"), F_OK),
              "the save's leftovers are gone");
    /* a stale .old holding a stray file no longer blocks replacing that step's checkpoint */
    mkdir(aur_test_tmp("rec/.checkpoint-000001.old"), 0755);
    touch("rec/.checkpoint-000001.old/optimizer.safetensors.tmp");
    rc = aur_trainer_save(tr);
    AUR_CHECK(rc == 0 && access(aur_test_tmp("rec/.checkpoint-000001.old"), F_OK), "a save beside a stale .old: %s", aur_last_error());
    aur_trainer_free(tr);
    /* a fresh run into this output_dir is refused, or clears it when told to */
    tr = trainer("rec", "\"steps\": 1");
    rc = tr ? aur_trainer_run(tr) : -1;
    AUR_CHECK(rc != 0 && strstr(aur_last_error(), "holds another run") && access(aur_test_tmp("rec/checkpoint-000001"), F_OK) == 0,
              "a fresh run into a used output_dir is refused, the old run kept: %s", aur_last_error());
    aur_trainer_free(tr);
    tr = trainer("rec", "\"steps\": 1, \"overwrite_output_dir\": true, \"save_every\": 1");
    rc = tr ? aur_trainer_run(tr) : -1;
    AUR_CHECK(rc == 0 && aur_test_count_lines(aur_test_tmp("rec/metrics.jsonl")) == 1, "overwrite_output_dir starts afresh: %s", aur_last_error());
    aur_trainer_free(tr);
}

/* Runs a command, returns its exit status and fills out with its output. */
static int run_tool(const char *args, char *out, size_t size)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "build/aurora-inspect %s > %s 2>&1", args, aur_test_tmp("tool.txt"));
    int st = system(cmd);
    FILE *fp = fopen(aur_test_tmp("tool.txt"), "r");
    size_t n = fp ? fread(out, 1, size - 1, fp) : 0;
    out[n] = 0;
    if (fp) fclose(fp);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* build/aurora-inspect --check-batch: a report per variable, exit 1 on errors. */
static void test_check_tool(void)
{
    static char out[16384];
    char args[1024];
    snprintf(args, sizeof args, "--check-batch %s --model aurora-small-pretrained --stats tcwv=25,16", aur_test_tmp("series_1.safetensors"));
    int st = run_tool(args, out, sizeof out);
    AUR_CHECK(st == 0 && strstr(out, "0 errors, 0 warnings") && strstr(out, "tcwv "), "a clean file passes (%d):\n%s", st, out);
    snprintf(args, sizeof args, "--check-batch %s --stats tcwv=25,16", aur_test_tmp("nan.safetensors"));
    st = run_tool(args, out, sizeof out);
    AUR_CHECK(st == 1 && strstr(out, "msl                ERROR") && strstr(out, "'msl': 1 NaN"), "a NaN fails, named (%d):\n%s", st, out);
    snprintf(args, sizeof args, "--check-batch %s", aur_test_tmp("series_1.safetensors"));
    st = run_tool(args, out, sizeof out);
    AUR_CHECK(st == 0 && strstr(out, "not used by the model"), "a variable without statistics is listed as unused (%d)", st);
}

/* The same run on the GPU (optimiser state offloaded): the losses agree with the CPU's to round-off, and
   its checkpoint resumes on the CPU. Runs where the build has CUDA (on the
   CPU under tests/cuda_emu.h: build/test_train_cuda_emu). */
static void test_device(void)
{
    if (!aur_cuda_available()) {
        aur_trainer *tr = trainer("gpu", "\"device\": \"cuda\"");
        AUR_CHECK(!tr && strstr(aur_last_error(), "cuda"), "device cuda without a GPU is refused: %s", aur_last_error());
        aur_trainer_free(tr);
        return;
    }
    const char *extra = "\"map_vars\": [\"tcwv\"], \"steps\": 2, \"activation_checkpointing\": false";
    char gpu_extra[512];
    /* the GPU run keeps its optimiser state in pinned host memory (offload) */
    snprintf(gpu_extra, sizeof gpu_extra, "%s, \"device\": \"cuda\", \"optimizer\": {\"name\": \"adamw\", \"lr\": 1e-3, \"offload\": true,"
             " \"groups\": [{\"name\": \"heads\", \"params\": \"decoder.*_heads.*\", \"lr\": 3e-3}]}", extra);
    aur_trainer *c = trainer("cpu_run", extra), *g = trainer("gpu_run", gpu_extra);
    AUR_CHECK(c && g, "a CPU and a GPU trainer: %s", aur_last_error());
    if (!c || !g) return;
    aur_step_info sc, sg;
    double worst = 0;
    for (int s = 0; s < 2; s++) {
        aur_trainer_step(c, &sc), aur_trainer_step(g, &sg);
        double d = fabs(sc.loss - sg.loss) / fabs(sc.loss);
        worst = d > worst ? d : worst;
    }
    AUR_CHECK(worst < 1e-4, "2 steps on the GPU give the CPU's losses (relative difference %.2e)", worst);
    double vc = 0, vg = 0;
    AUR_CHECK(aur_trainer_eval(c, &vc) == 0 && aur_trainer_eval(g, &vg) == 0 && fabs(vc - vg) < 1e-4 * fabs(vc),
              "validation loss on both devices: %.6g vs %.6g", vc, vg);
    AUR_CHECK(aur_trainer_save(g) == 0 && aur_trainer_plot(g) == 0, "the GPU run saves and plots: %s", aur_last_error());
    aur_trainer *r = trainer("gpu_run", extra); /* the GPU's checkpoint, resumed on the CPU */
    AUR_CHECK(r && aur_trainer_resume(r, NULL) == 0 && aur_trainer_steps_done(r) == 2, "a GPU checkpoint resumes on the CPU: %s",
              aur_last_error());
    aur_trainer_free(r);
    aur_trainer_free(c);
    aur_trainer_free(g);
}

int main(void)
{
    aur_test_tmpdir_begin("train");
#ifdef AUR_CUDA_EMU /* the CUDA paths under the emulator (build/test_train_cuda_emu): only the device test */
    write_train_series(1);
    test_device();
    aur_test_tmpdir_end();
    return aur_test_summary();
#endif
    test_check_batch();
    test_window();
    test_alarm();
    test_events();
    test_memory_plan_threads();
    test_memory_plan_real();
    test_zero_new_embedding();
    write_train_series(1);
    test_config_errors();
    test_hostile_configs();
    test_hostile_states();
    test_mixed_checkpoint();
    test_checkpoint_recovery();
    test_check_tool();
    test_series_windows();
    test_series_check();
    test_loader();
    test_prefetch_same_run();
    test_resume("");
    test_resume("\"pure_bf16\": true, \"optimizer\": {\"name\": \"adafactor\", \"lr\": 1e-2, \"new_vars_lr\": 3e-2}");
    test_run_and_abort();
    test_device();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
