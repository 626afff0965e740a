#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

#define AUR__EVENTS_FILE "events.out.tfevents.aurora" /* TensorBoard finds files named *tfevents* */

/* ---- the setup, printed ---- */

/* Prints names with every run of digits as '*', each pattern once with its
   count: 64 LoRA matrices read as four lines. */
static void aur__print_patterns(char *const *names, int n, FILE *out)
{
    char(*pat)[160] = (char(*)[160])aur__calloc(sizeof *pat * (size_t)(n + 1), "name patterns");
    int *count = (int *)aur__calloc(sizeof(int) * (size_t)(n + 1), "name patterns");
    int k = 0;
    for (int i = 0; pat && count && i < n; i++) {
        char buf[160];
        size_t o = 0;
        for (const char *s = names[i]; *s && o + 2 < sizeof buf; s++) {
            if (isdigit((unsigned char)*s)) {
                while (isdigit((unsigned char)s[1])) s++;
                buf[o++] = '*';
            } else buf[o++] = *s;
        }
        buf[o] = 0;
        int j = 0;
        while (j < k && strcmp(pat[j], buf)) j++;
        if (j == k) memcpy(pat[k++], buf, sizeof buf);
        count[j]++;
    }
    for (int j = 0; j < k; j++) {
        if (count[j] > 1) fprintf(out, "    %s  (%d tensors)\n", pat[j], count[j]);
        else fprintf(out, "    %s\n", pat[j]);
    }
    AUR_FREE(pat);
    AUR_FREE(count);
}

AURDEF void aur_trainer_print_setup(const aur_trainer *tr, FILE *out)
{
    const aur_load_report *r = &tr->rep;
    fprintf(out, "model: %lld parameters (%lld trainable)\n", (long long)aur_model_numel(tr->m, 0), (long long)aur_model_numel(tr->m, 1));
    if (r->n_loaded || r->n_missing || r->n_unexpected) {
        fprintf(out, "checkpoint: %d tensors loaded, %d new (not in the checkpoint), %d in the checkpoint but not the model\n",
                r->n_loaded, r->n_missing, r->n_unexpected);
        if (r->n_missing) fprintf(out, "  new:\n");
        aur__print_patterns(r->missing, r->n_missing, out);
        if (r->n_unexpected) fprintf(out, "  unused from the checkpoint:\n");
        aur__print_patterns(r->unexpected, r->n_unexpected, out);
    }
    aur_model_print_trainable(tr->m, r, out);
    fprintf(out, "optimiser groups:");
    for (int g = 0; g < tr->n_groups; g++) fprintf(out, "%s %s (lr %g)", g ? "," : "", tr->group_name[g], aur_optim_group_lr(tr->o, g));
    fprintf(out, "\n");
    if (tr->task) {
        tr->task->print_data(tr, out);
        return;
    }
    fprintf(out, "data: %d training windows from %d files, %d validation windows; history %d, rollout %d step%s; %d read ahead\n",
            tr->train.n_win, tr->train.n_files, tr->val.n_win, tr->history, tr->rollout, tr->rollout > 1 ? "s" : "", tr->prefetch);
}

/* ---- one step ---- */

/* Items first..first+count-1 of epoch `epoch`'s shuffle of n items, into
   out: a fresh permutation every epoch, a pure function of (seed, epoch) so
   a resumed run sees the same order. (The positions themselves where memory
   is short.) */
static void aur__shuffled(uint64_t seed, int64_t epoch, int n, int first, int count, int64_t *out)
{
    aur__rng r = {aur__mix64(seed * 0x9E3779B97F4A7C15ull + (uint64_t)epoch + 1)};
    int *perm = (int *)aur__malloc(sizeof(int) * (size_t)n, "a shuffle");
    for (int i = 0; perm && i < n; i++) perm[i] = i;
    for (int i = n - 1; perm && i > 0; i--) {
        int k = (int)(aur__rng_uniform(&r) * (i + 1)), s = perm[i];
        perm[i] = perm[k], perm[k] = s;
    }
    for (int i = 0; i < count; i++) out[i] = perm ? perm[first + i] : first + i;
    AUR_FREE(perm);
}

/* The training order, the loader's: every window once per epoch, shuffled. */
static aur_window_ref aur__train_order(void *ctx, int64_t step)
{
    const aur_trainer *tr = (const aur_trainer *)ctx;
    int n = tr->train.n_win;
    int64_t item;
    aur__shuffled(tr->seed, step / n, n, (int)(step % n), 1, &item);
    return tr->train.win[item];
}

/* The training window of a step, read ahead by the loader (made at the first
   step asked for, so that a resumed run starts reading where it resumes). */
static const aur_window *aur__train_window(aur_trainer *tr, int64_t step)
{
    if (!tr->loader) {
        int on_gpu = tr->m->n && tr->m->params[0]->device == AUR_CUDA; /* pinned windows copy to the GPU directly */
        aur_loader_opts o = {tr->history, tr->rollout, tr->mcfg.timestep_seconds, tr->prefetch, on_gpu, tr->train.renames};
        tr->loader = aur_loader_create(tr->train.paths, tr->train.n_paths, tr->train.n_files, aur__train_order, tr, &o);
        if (!tr->loader) return NULL;
    }
    return aur_loader_get(tr->loader, step);
}

/* Seconds the run has waited for training windows so far. */
static double aur__data_waited(aur_trainer *tr)
{
    aur_loader_stats st = {0, 0, 0, 0};
    if (tr->loader) aur_loader_stats_get(tr->loader, &st);
    return st.wait_seconds;
}

/* An evaluation window, read now from its series (kept open for the next). */
static const aur_window *aur__read_window(const aur_trainer *tr, aur__data *d, aur_window_ref ref)
{
    if (!d->open || d->open_id != ref.series) {
        aur_series_close(d->open);
        d->open = aur_series_open((const char *const *)d->paths[ref.series], d->n_paths[ref.series], d->renames, NULL);
        d->open_id = ref.series;
        if (!d->open) return NULL;
    }
    return aur_window_read(d->open, ref, tr->history, tr->rollout, tr->mcfg.timestep_seconds, 0, &d->read) ? NULL : &d->read;
}

/* Forward over a window's rollout and the mean loss of its steps; NULL on error. */
static aur_tensor *aur__rollout_loss(aur_trainer *tr, const aur_window *w, aur_batch **first_pred, aur_scores *scores)
{
    if (!w) return NULL;
    double dt = tr->mcfg.timestep_seconds;
    aur_batch *preds[AUR_MAX_ROLLOUT] = {NULL};
    aur_tensor *loss = NULL;
    int ok = !aur_aurora_rollout(tr->m, tr->t, w->input, tr->rollout, preds);
    for (int k = 0; ok && k < tr->rollout; k++) {
        const aur_batch *target = w->target[k];
        aur_tensor *l = tr->loss_mae ? aur_aurora_loss_mae(tr->m, tr->t, preds[k], target, &tr->mae) : aur_aurora_loss(tr->m, tr->t, preds[k], target);
        ok = l != NULL;
        /* WeatherBench2's scores of each lead time, from predictions in host memory */
        if (ok && scores && preds[k]->surf_names.n && preds[k]->surf[0]->device == AUR_CPU && preds[k]->B == 1 && !preds[k]->lat_2d && !preds[k]->lon_2d)
            ok = !aur_scores_add(scores, (k + 1) * dt / 3600, preds[k], target, 0, NULL, 0);
        if (ok) loss = loss ? aur_add(tr->t, loss, l) : l;
    }
    if (ok && tr->rollout > 1) loss = aur_scale(tr->t, loss, 1.0 / tr->rollout);
    for (int k = 0; k < tr->rollout; k++) {
        if (k == 0 && first_pred && ok) *first_pred = preds[k];
        else aur_batch_free(preds[k]);
    }
    return ok ? loss : NULL;
}

/* Rounds the trainable weights to BF16: what a pure-BF16 run stores. */
static int aur__round_params_bf16(aur_model *m)
{
    for (int i = 0; i < m->n; i++) {
        aur_tensor *p = m->params[i];
        if (!p->requires_grad) continue;
        if (p->device == AUR_CUDA) {
            int rc = AUR__GPU(aur__cuda_round, (float *)p->data, (const float *)p->data, 0, p->numel);
            if (rc) return rc;
            continue;
        }
        aur_real *v = aur_tensor_f32(p);
        for (int64_t k = 0; k < p->numel; k++) v[k] = aur_round_bf16(v[k]);
    }
    return 0;
}

/* Group norms: group 0 ("rest") is what the named groups leave of the total. */
static void aur__group_norms(const aur_trainer *tr, double total, double *norms)
{
    double named = 0;
    for (int g = 1; g < tr->n_groups; g++) {
        norms[g] = aur_grad_norm(tr->m, tr->group_params[g]);
        named += norms[g] * norms[g];
    }
    norms[0] = isfinite(total) ? sqrt(fmax(0, total * total - named)) : total;
}

AURDEF int aur_trainer_step(aur_trainer *tr, aur_step_info *info)
{
    aur_step_info si;
    memset(&si, 0, sizeof si);
    double t0 = aur__wall();
    aur_tape_reset(tr->t);
    aur_tape_set_grad(tr->t, 1);
    aur_tape_set_training(tr->t, 1);
    aur_tape_set_autocast(tr->t, 0); /* the model's cfg.autocast turns it on around the backbone only, as the reference's Aurora.forward */
    aur_tape_seed(tr->t, aur__mix64(tr->seed + 0x51ED270B27u * (uint64_t)(tr->step + 1)));
    aur_model_zero_grad(tr->m);
    double waited = aur__data_waited(tr);
    aur_tensor *loss = tr->task ? tr->task->train_loss(tr, tr->step) : aur__rollout_loss(tr, aur__train_window(tr, tr->step), NULL, NULL);
    si.data_seconds = aur__data_waited(tr) - waited;
    if (!loss) return AUR_EINVAL;
    int rc = aur_backward(tr->t, loss);
    if (rc) return rc;
    si.loss = aur__value(loss);
    double norms[AUR__MAX_GROUPS];
    si.grad_norm = aur_grad_norm(tr->m, NULL);
    aur__group_norms(tr, si.grad_norm, norms);
    const char *names[AUR__MAX_GROUPS];
    for (int g = 0; g < tr->n_groups; g++) names[g] = tr->group_name[g];
    si.alarm = aur_grad_alarm_check(&tr->alarm, isfinite(si.loss) ? si.grad_norm : NAN, norms, names, tr->n_groups, si.alarm_msg,
                                    sizeof si.alarm_msg);
    if (si.alarm && !tr->alarm.skip && !(isfinite(si.loss) && isfinite(si.grad_norm)))
        return aur__err(AUR_ENAN, "step %lld: %s; stopping (alarm.skip is off)", (long long)tr->step + 1, si.alarm_msg);
    si.skipped = si.alarm && tr->alarm.skip;
    aur_optim_set_lr_factor(tr->o, aur_lr_factor(&tr->sched, tr->step));
    si.lr = aur_optim_group_lr(tr->o, 0);
    if (!si.skipped && tr->clip > 0) rc = aur_clip_grad_norm(tr->m, tr->clip, NULL);
    if (!si.skipped && !rc) rc = aur_optim_step(tr->o);
    if (rc) return rc;
    if (!si.skipped && tr->pure_bf16 && (rc = aur__round_params_bf16(tr->m))) return rc;
    tr->step++;
    si.step = tr->step;
    si.seconds = aur__wall() - t0;
    double row[4 + AUR__MAX_GROUPS] = {(double)si.step, si.loss, si.grad_norm, si.lr};
    for (int g = 0; g < tr->n_groups; g++) row[4 + g] = norms[g];
    rc = aur__table_add(&tr->hist, row);
    if (info) *info = si;
    return rc;
}

/* ---- evaluation ---- */

/* A task's evaluation: its loss and metrics as one row of the validation history. */
static int aur__task_eval(aur_trainer *tr, double *loss)
{
    double row[2 + AUR__MAX_METRICS] = {(double)tr->step};
    aur_tape_reset(tr->t);
    aur_tape_set_grad(tr->t, 0);
    aur_tape_set_training(tr->t, 0);
    int rc = tr->task->eval(tr, loss, row + 2);
    aur_tape_reset(tr->t);
    row[1] = *loss;
    return rc ? rc : aur__table_add(&tr->val_hist, row);
}

AURDEF int aur_trainer_eval(aur_trainer *tr, double *loss)
{
    if (tr->task) return aur__task_eval(tr, loss);
    aur__data *d = tr->val.n_win ? &tr->val : &tr->train;
    int n = d->n_win < tr->eval_windows ? d->n_win : tr->eval_windows;
    double sum = 0;
    aur_scores_free(&tr->val_scores);
    for (int i = 0; i < n; i++) {
        aur_tape_reset(tr->t);
        aur_tape_set_grad(tr->t, 0);
        aur_tape_set_training(tr->t, 0);
        aur_tape_set_autocast(tr->t, 0);
        /* spread the evaluated windows over the whole set */
        aur_tensor *l = aur__rollout_loss(tr, aur__read_window(tr, d, d->win[(int64_t)i * d->n_win / n]), NULL, &tr->val_scores);
        if (!l) return aur_scores_free(&tr->val_scores), AUR_EINVAL;
        sum += aur__value(l);
    }
    aur_scores_finish(&tr->val_scores);
    aur_tape_reset(tr->t);
    *loss = n ? sum / n : NAN;
    double row[2] = {(double)tr->step, *loss};
    return aur__table_add(&tr->val_hist, row);
}

/* ---- plots ---- */

/* One curve of the history table. */
static aur_plot_series aur__hist_series(const aur__table *t, int col, const char *label, double *x, double *y)
{
    for (int r = 0; r < t->rows; r++) x[r] = t->v[(size_t)r * t->cols], y[r] = t->v[(size_t)r * t->cols + col];
    aur_plot_series s = {label, x, y, t->rows};
    return s;
}

static int aur__plot_curves(const aur_trainer *tr)
{
    int n = tr->hist.rows, nv = tr->val_hist.rows, ng = tr->n_groups > 1 ? tr->n_groups : 0;
    int nm = tr->task ? tr->task->n_metrics : 0;
    double *buf = (double *)aur__malloc(sizeof(double) * (size_t)(2 * (n * (3 + ng)) + 2 * nv * (1 + nm) + 2), "plot data");
    if (!buf) return AUR_ENOMEM;
    double *p = buf;
    aur_plot_series loss[2], gn[1 + AUR__MAX_GROUPS], lr[1], metric[AUR__MAX_METRICS];
    loss[0] = aur__hist_series(&tr->hist, 1, "train", p, p + n), p += 2 * n;
    loss[1] = aur__hist_series(&tr->val_hist, 1, "validation", p, p + nv), p += 2 * nv;
    gn[0] = aur__hist_series(&tr->hist, 2, "total", p, p + n), p += 2 * n;
    for (int g = 0; g < ng; g++) gn[1 + g] = aur__hist_series(&tr->hist, 4 + g, tr->group_name[g], p, p + n), p += 2 * n;
    lr[0] = aur__hist_series(&tr->hist, 3, "lr (group rest)", p, p + n), p += 2 * n;
    for (int k = 0; k < nm; k++) metric[k] = aur__hist_series(&tr->val_hist, 2 + k, tr->task->metric_names[k], p, p + nv), p += 2 * nv;
    aur_plot_panel panels[4] = {{tr->task ? "loss" : "loss (normalised MSE)", loss, nv ? 2 : 1, 1},
                                {"validation metrics", metric, nm < 8 ? nm : 8, 0},
                                {"gradient norm (before clipping)", gn, 1 + ng, 1},
                                {"learning rate", lr, 1, 0}};
    if (!nm || !nv) panels[1] = panels[2], panels[2] = panels[3];
    char path[1100];
    snprintf(path, sizeof path, "%s/curves.png", tr->out_dir);
    int rc = aur_plot_panels(path, 720, 260, "step", panels, nm && nv ? 4 : 3);
    AUR_FREE(buf);
    return rc;
}

/* Copies the first `rows` rows of the first field (sample 0, newest step, level index c) of a variable to out
   (rows*W, host): a 721-row target is mapped on its prediction's 720 rows. 0 if there is none. */
static int aur__field(const aur_batch *b, const char *var, int c, int rows, aur_real *out)
{
    aur_tensor *x = aur_batch_surf(b, var);
    int64_t hw = (int64_t)b->H * b->W, off = (b->T - 1) * hw;
    if (!x && (x = aur_batch_atmos(b, var))) off = ((int64_t)(b->T - 1) * b->C + c) * hw;
    return x && rows <= b->H && !aur__copy_bytes(out, AUR_CPU, (const aur_real *)x->data + off, x->device, sizeof(aur_real) * (size_t)rows * b->W);
}

/* maps_{var}.png: prediction and target on one colour scale; maps_{var}_error.png. A map
   variable "t@850" picks a level. */
static int aur__trainer_map(const aur_trainer *tr, const aur_batch *pred, const aur_batch *target, const char *spec)
{
    char var[AUR_NAME_LEN], path[1200], title[160];
    snprintf(var, sizeof var, "%s", spec);
    char *at = strchr(var, '@');
    double level = at ? atof(at + 1) : 0;
    if (at) *at = 0;
    int c = 0;
    while (at && c < pred->C - 1 && pred->levels[c] != level) c++;
    int64_t hw = (int64_t)pred->H * pred->W;
    float *buf = (float *)aur__malloc(sizeof(float) * (size_t)(2 * hw), "map data");
    aur_real *p = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(2 * hw), "map data"), *y = p ? p + hw : NULL;
    if (!buf || !p) {
        AUR_FREE(buf);
        AUR_FREE(p);
        return AUR_ENOMEM;
    }
    if (!aur__field(pred, var, c, pred->H, p) || !aur__field(target, var, c, pred->H, y)) {
        AUR_FREE(buf);
        AUR_FREE(p);
        return aur__err(AUR_EINVAL, "map_vars: '%s' is not a predicted variable", spec);
    }
    for (int64_t i = 0; i < hw; i++) buf[i] = (float)p[i], buf[hw + i] = (float)y[i];
    AUR_FREE(p);
    for (char *q = var; *q; q++)
        if (*q == '/') *q = '_';
    snprintf(path, sizeof path, "%s/maps_%s%s%s", tr->out_dir, var, at ? "_" : "", at ? at + 1 : "");
    snprintf(title, sizeof title, "%s after %lld steps (validation window 0, lead 1 step)", spec, (long long)tr->step);
    int rc = aur_plot_versus(path, buf, buf + hw, pred->H, pred->W, "prediction", "target", title);
    AUR_FREE(buf);
    return rc;
}

AURDEF int aur_trainer_plot(aur_trainer *tr)
{
    int rc = aur__mkdirs(tr->out_dir);
    if (!rc) rc = aur__plot_curves(tr);
    if (!rc && tr->task) return tr->task->plot ? tr->task->plot(tr) : 0;
    char prefix[1100];
    snprintf(prefix, sizeof prefix, "%s/val_", tr->out_dir);
    if (!rc && tr->val_scores.n) rc = aur_scores_plot(&tr->val_scores, prefix);
    if (rc || !tr->n_maps) return rc;
    aur__data *d = tr->val.n_win ? &tr->val : &tr->train;
    aur_tape_reset(tr->t);
    aur_tape_set_grad(tr->t, 0);
    aur_tape_set_training(tr->t, 0);
    aur_batch *pred = NULL;
    const aur_window *w = aur__read_window(tr, d, d->win[0]);
    aur_tensor *l = aur__rollout_loss(tr, w, &pred, NULL);
    for (int i = 0; l && !rc && i < tr->n_maps; i++) rc = aur__trainer_map(tr, pred, w->target[0], tr->map_vars[i]);
    aur_batch_free(pred);
    aur_tape_reset(tr->t);
    return l ? rc : AUR_EINVAL;
}

/* ---- checkpoints ---- */

static int aur__write_text(const char *path, const char *text)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    int rc = fp && fputs(text, fp) >= 0 && !fflush(fp) && !fsync(fileno(fp)) ? 0 : -1;
    if (fp && fclose(fp)) rc = -1;
    if (!rc && rename(tmp, path)) rc = -1;
    if (rc) {
        unlink(tmp);
        return aur__err(AUR_EIO, "cannot write %s: %s", path, strerror(errno));
    }
    return aur__fsync_dir(path);
}

static cJSON *aur__json_doubles(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* trainer_state.json: the step, the gradient alarm's windows and the
   history (exact: cJSON writes doubles with enough digits to round-trip). */
static char *aur__trainer_state(const aur_trainer *tr)
{
    cJSON *s = cJSON_CreateObject(), *alarm = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "run_id", tr->run_id);
    cJSON_AddNumberToObject(s, "step", (double)tr->step);
    cJSON_AddNumberToObject(s, "n_groups", tr->n_groups);
    cJSON_AddNumberToObject(alarm, "alarms", (double)tr->alarm.alarms);
    cJSON *counts = cJSON_AddArrayToObject(alarm, "count"), *hist = cJSON_AddArrayToObject(alarm, "hist");
    for (int g = 0; g <= tr->n_groups; g++) {
        cJSON_AddItemToArray(counts, cJSON_CreateNumber(tr->alarm.count[g]));
        cJSON_AddItemToArray(hist, aur__json_doubles(tr->alarm.hist[g], tr->alarm.window));
    }
    cJSON_AddItemToObject(s, "alarm", alarm);
    cJSON_AddItemToObject(s, "history", aur__json_doubles(tr->hist.v, tr->hist.rows * tr->hist.cols));
    cJSON_AddItemToObject(s, "val_history", aur__json_doubles(tr->val_hist.v, tr->val_hist.rows * tr->val_hist.cols));
    cJSON_AddItemToObject(s, "config", cJSON_Duplicate(tr->config, 1));
    char *text = cJSON_Print(s);
    cJSON_Delete(s);
    return text;
}

static int aur__restore_table(const cJSON *a, const char *path, aur__table *t)
{
    int n = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || n % t->cols) return aur__err(AUR_EFORMAT, "%s: a history is not a list of rows of %d numbers", path, t->cols);
    t->rows = 0;
    if (n && aur__grow((void **)&t->v, &t->cap, n, sizeof(double))) return AUR_ENOMEM;
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) { /* null: a metric without a value (cJSON writes NaN so) */
        if (!cJSON_IsNumber(e) && !cJSON_IsNull(e)) return aur__err(AUR_EFORMAT, "%s: a history holds a %s where numbers belong", path, cJSON_IsString(e) ? "string" : "non-number");
        t->v[i] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    }
    t->rows = n / t->cols;
    return 0;
}

/* The step, alarm and histories of a parsed trainer_state.json (path: for messages). */
static int aur__trainer_restore_json(aur_trainer *tr, const cJSON *s, const char *path)
{
    const cJSON *alarm = aur__json_at(s, "alarm"), *hist = aur__json_at(alarm, "hist");
    int64_t step = -1;
    int ng = -1, n = 0, rc = aur__json_i64(aur__json_at(s, "step"), path, 0, 9007199254740992.0, &step);
    if (!rc && step < 0) rc = aur__err(AUR_EFORMAT, "%s: no 'step'", path);
    if (!rc) rc = aur__json_int(aur__json_at(s, "n_groups"), path, 0, AUR__MAX_GROUPS, &ng);
    if (!rc) rc = aur__json_i64(aur__json_at(alarm, "alarms"), path, 0, 9007199254740992.0, &tr->alarm.alarms);
    if (!rc) rc = aur__json_ints(aur__json_at(alarm, "count"), path, tr->alarm.count, 0, AUR_ALARM_GROUPS + 1, &n);
    int mismatch = !rc && !(ng == tr->n_groups && n == ng + 1 && cJSON_GetArraySize(hist) == ng + 1);
    if (mismatch) rc = AUR_EFORMAT;
    for (int g = 0; !rc && g <= tr->n_groups; g++)
        rc = aur__json_nums(cJSON_GetArrayItem(hist, g), path, tr->alarm.hist[g], tr->alarm.window, tr->alarm.window, &n);
    if (!rc) rc = aur__restore_table(aur__json_at(s, "history"), path, &tr->hist);
    if (!rc) rc = aur__restore_table(aur__json_at(s, "val_history"), path, &tr->val_hist);
    if (!rc) tr->step = step;
    if (mismatch)
        return aur__err(AUR_EFORMAT, "%s: not the state of this run: 'n_groups', 'alarm.count' or 'alarm.hist' do not fit its %d parameter groups",
                        path, tr->n_groups);
    return rc ? AUR_EFORMAT : 0; /* the readers' messages name the key */
}

/* Removes one of the run's checkpoint directories with whatever it holds
   (an interrupted write leaves a file.tmp beside the three files). 0 when
   it is gone, or was never there. */
static int aur__remove_checkpoint(const char *dir)
{
    DIR *d = opendir(dir);
    char path[1400];
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            unlink(path);
    if (d) closedir(d);
    if (rmdir(dir) && errno != ENOENT) return aur__err(AUR_EIO, "cannot remove %s: %s", dir, strerror(errno));
    return 0;
}

/* 1 if dir holds the three files of a checkpoint. */
static int aur__checkpoint_complete(const char *dir)
{
    static const char *files[] = {"model.safetensors", "optimizer.safetensors", "trainer_state.json"};
    char path[1400];
    for (int i = 0; i < 3; i++)
        if (snprintf(path, sizeof path, "%s/%s", dir, files[i]) >= (int)sizeof path || access(path, R_OK)) return 0;
    return 1;
}

/* The checkpoint directory `latest` names, into dir: 0, or -1 when there is no `latest` to read. */
static int aur__latest_dir(const aur_trainer *tr, char *dir, size_t size)
{
    char path[1200], name[256] = "";
    snprintf(path, sizeof path, "%s/latest", tr->out_dir);
    FILE *fp = fopen(path, "r");
    int ok = fp && fgets(name, sizeof name, fp);
    if (fp) fclose(fp);
    name[strcspn(name, "\r\n")] = 0;
    if (ok) snprintf(dir, size, "%s/%s", tr->out_dir, name);
    return ok ? 0 : -1;
}

/* What a save or a prune cut short leaves, set right: a step whose
   checkpoint-N is missing gets it back from its complete .tmp (the newer) or
   .old copy; other .tmp and .old directories go, and so do the .del ones a
   prune was removing; `latest` names the newest complete checkpoint. Run
   before a save and before a resume. */
static int aur__recover_checkpoints(const aur_trainer *tr)
{
    DIR *d = opendir(tr->out_dir);
    if (!d) return 0;
    char side[1400], dir[1400];
    long long newest = -1, s;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d)) && !rc;) {
        char kind[8] = "", tail;
        if (sscanf(e->d_name, "checkpoint-%lld%c", &s, &tail) == 1) {
            snprintf(dir, sizeof dir, "%s/%s", tr->out_dir, e->d_name);
            if (aur__checkpoint_complete(dir) && s > newest) newest = s;
            continue;
        }
        if (sscanf(e->d_name, ".checkpoint-%lld.%3s%c", &s, kind, &tail) != 2 || (strcmp(kind, "tmp") && strcmp(kind, "old") && strcmp(kind, "del")))
            continue;
        snprintf(side, sizeof side, "%s/%s", tr->out_dir, e->d_name);
        snprintf(dir, sizeof dir, "%s/checkpoint-%06lld", tr->out_dir, s);
        if (strcmp(kind, "del") && access(dir, F_OK) && aur__checkpoint_complete(side)) {
            if (rename(side, dir)) rc = aur__err(AUR_EIO, "cannot restore %s as %s: %s", side, dir, strerror(errno));
            else if (s > newest) newest = s;
        } else {
            rc = aur__remove_checkpoint(side);
        }
    }
    closedir(d);
    if (rc || newest < 0) return rc;
    if (!aur__latest_dir(tr, dir, sizeof dir) && aur__checkpoint_complete(dir)) return 0;
    char path[1200], name[64];
    snprintf(path, sizeof path, "%s/latest", tr->out_dir);
    snprintf(name, sizeof name, "checkpoint-%06lld\n", newest);
    return aur__write_text(path, name);
}

/* Keeps the newest keep_last checkpoint-* directories. Each goes by a rename
   to .checkpoint-N.del first, so a prune cut short never leaves a
   checkpoint-N half removed; what it cannot remove is said, and the next
   save's recovery tries again. */
static void aur__prune_checkpoints(const aur_trainer *tr)
{
    DIR *d = opendir(tr->out_dir);
    if (!d) return;
    long long steps[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;) {
        long long s;
        char tail;
        if (sscanf(e->d_name, "checkpoint-%lld%c", &s, &tail) == 1) steps[n++] = s;
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int k = 0; k < n; k++) newer += steps[k] > steps[i];
        if (newer < tr->keep_last) continue;
        char dir[1200], del[1200];
        snprintf(dir, sizeof dir, "%s/checkpoint-%06lld", tr->out_dir, steps[i]);
        snprintf(del, sizeof del, "%s/.checkpoint-%06lld.del", tr->out_dir, steps[i]);
        int rc = rename(dir, del) ? aur__err(AUR_EIO, "cannot move %s aside: %s", dir, strerror(errno)) : aur__remove_checkpoint(del);
        if (rc) fprintf(stderr, "warning: pruning old checkpoints: %s\n", aur_last_error());
    }
}

/* A fresh run into an output_dir that holds another run's checkpoints or
   metrics would prune its own checkpoints as older and mix both metrics:
   refused, unless the config says overwrite_output_dir (then they go). */
static int aur__claim_output_dir(const aur_trainer *tr)
{
    DIR *d = opendir(tr->out_dir);
    char found[300] = "", path[1400];
    for (struct dirent *e; d && (e = readdir(d));) {
        int run = !strncmp(e->d_name, "checkpoint-", 11) || !strncmp(e->d_name, ".checkpoint-", 12) || !strcmp(e->d_name, "metrics.jsonl") ||
                  !strcmp(e->d_name, "latest") || !strcmp(e->d_name, AUR__EVENTS_FILE);
        if (!run) continue;
        snprintf(path, sizeof path, "%s/%s", tr->out_dir, e->d_name);
        int kept = !tr->overwrite_output_dir;
        if (!kept && strchr(e->d_name, '-')) kept = aur__remove_checkpoint(path) != 0;
        else if (!kept && unlink(path)) kept = aur__err(AUR_EIO, "cannot remove %s: %s", path, strerror(errno)) != 0;
        if (kept) {
            snprintf(found, sizeof found, "%s", e->d_name);
            break;
        }
    }
    if (d) closedir(d);
    if (!found[0]) return 0;
    if (tr->overwrite_output_dir) return AUR_EIO; /* the message says what could not be removed */
    return aur__err(AUR_EINVAL, "output_dir %s holds another run (%s): resume it (aurora-train CONFIG --resume), choose another output_dir, "
                    "or set \"overwrite_output_dir\": true", tr->out_dir, found);
}

AURDEF int aur_trainer_save(aur_trainer *tr)
{
    char tmp[1100], dir[1100], path[1200], old[1100];
    snprintf(tmp, sizeof tmp, "%s/.checkpoint-%06lld.tmp", tr->out_dir, (long long)tr->step);
    snprintf(dir, sizeof dir, "%s/checkpoint-%06lld", tr->out_dir, (long long)tr->step);
    snprintf(old, sizeof old, "%s/.checkpoint-%06lld.old", tr->out_dir, (long long)tr->step);
    int rc = aur__mkdirs(tr->out_dir);
    if (!rc) rc = aur__recover_checkpoints(tr); /* the leftovers of a run killed while saving */
    if (!rc) rc = aur__mkdirs(tmp);
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    if (!rc) rc = aur_save_safetensors(tr->m, path);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)tr->step);
    const char *const meta[] = {"run_id", tr->run_id, "step", step, NULL};
    if (!rc) rc = aur__optim_save(tr->o, path, meta);
    char *state = rc ? NULL : aur__trainer_state(tr);
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    if (!rc) rc = state ? aur__write_text(path, state) : aur__err(AUR_ENOMEM, "out of memory writing the trainer state");
    cJSON_free(state);
    if (!rc && tr->task && tr->task->save) rc = tr->task->save(tr, tmp);
    if (rc) {
        aur__remove_checkpoint(tmp);
        return rc;
    }
    /* a checkpoint of the same step (a rerun) is replaced only once the new one is complete */
    int replacing = access(dir, F_OK) == 0;
    if (replacing && rename(dir, old)) rc = aur__err(AUR_EIO, "cannot move %s aside: %s", dir, strerror(errno));
    if (!rc && rename(tmp, dir)) rc = aur__err(AUR_EIO, "cannot rename %s to %s: %s", tmp, dir, strerror(errno));
    if (replacing) aur__remove_checkpoint(old);
    snprintf(path, sizeof path, "%s/latest", tr->out_dir);
    char name[64];
    snprintf(name, sizeof name, "checkpoint-%06lld\n", (long long)tr->step);
    if (!rc) rc = aur__write_text(path, name);
    if (!rc) aur__prune_checkpoints(tr);
    return rc;
}

/* Keeps the metrics lines up to the resumed step, so a resumed run's file
   reads as if it had never stopped, and writes the TensorBoard events
   again from them (TensorBoard would show a resumed run's repeated steps twice). */
static int aur__trim_metrics(const aur_trainer *tr)
{
    char path[1100], events[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", tr->out_dir);
    snprintf(events, sizeof events, "%s/%s", tr->out_dir, AUR__EVENTS_FILE);
    FILE *fp = fopen(path, "rb");
    if (!fp) return access(events, F_OK) == 0 ? aur_events_create(events, aur__unix_time()) : 0; /* no metrics: no events either */
    aur__buf keep;
    memset(&keep, 0, sizeof keep);
    char line[8192];
    while (fgets(line, sizeof line, fp)) {
        cJSON *j = aur__cjson_parse(line, strlen(line), NULL);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
        if (cJSON_IsNumber(st) && st->valuedouble <= (double)tr->step) aur__buf_printf(&keep, "%s", line);
        cJSON_Delete(j);
    }
    fclose(fp);
    int rc = keep.failed ? aur__err(AUR_ENOMEM, "out of memory trimming %s", path) : aur__write_text(path, keep.p ? keep.p : "");
    if (!rc) rc = aur_events_create(events, aur__unix_time());
    for (char *line = keep.p, *next; !rc && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        rc = aur_events_from_json(events, aur__unix_time(), line);
    }
    AUR_FREE(keep.p);
    return rc;
}

/* A checkpoint's state (s, read from path) and optimiser file (f) were
   written by one save: the same run id and step (a copied-in
   optimizer.safetensors of another run or step would resume silently
   wrong). Checkpoints from before run ids have none in either file. The run
   id read is put in *id. */
static int aur__checkpoint_belongs(const cJSON *s, const char *path, const aur_st_file *f, char *id, size_t size)
{
    char step[32] = "";
    const char *opath = f->path, *sid = NULL, *oid = aur_st_meta(f, "run_id"), *ostep = aur_st_meta(f, "step");
    int64_t n = -1;
    int rc = aur__json_str(aur__json_at(s, "run_id"), path, &sid);
    if (!rc) rc = aur__json_i64(aur__json_at(s, "step"), path, 0, 9007199254740992.0, &n);
    if (!rc) snprintf(step, sizeof step, "%lld", (long long)n);
    if (!rc && (!sid != !oid || (sid && strcmp(sid, oid))))
        rc = aur__err(AUR_EFORMAT, "%s: written by run %s, but %s by run %s: the files of two runs are mixed", opath, oid ? oid : "(none)", path,
                      sid ? sid : "(none)");
    else if (!rc && oid && (!ostep || strcmp(ostep, step)))
        rc = aur__err(AUR_EFORMAT, "%s: the state of step %s, but %s is of step %s", opath, ostep ? ostep : "(none)", path, step);
    if (!rc) snprintf(id, size, "%s", sid ? sid : "");
    return rc;
}

AURDEF int aur_trainer_resume(aur_trainer *tr, const char *checkpoint_dir)
{
    char dir[1400], path[1500];
    if (checkpoint_dir) {
        snprintf(dir, sizeof dir, "%s", checkpoint_dir);
    } else {
        int rc = aur__recover_checkpoints(tr); /* a save cut short may have left the newest checkpoint aside */
        if (rc) return rc;
        if (aur__latest_dir(tr, dir, sizeof dir)) return aur__err(AUR_EIO, "%s/latest: no checkpoint to resume from", tr->out_dir);
    }
    /* the state and the optimiser file are read once: checked to belong together before the model is loaded */
    char id[sizeof tr->run_id] = "", state[1500];
    snprintf(state, sizeof state, "%s/trainer_state.json", dir);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    cJSON *s = aur_json_load(state);
    aur_st_file *f = s ? aur_st_open(path) : NULL;
    int rc = s && f ? aur__checkpoint_belongs(s, state, f, id, sizeof id) : AUR_EFORMAT;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = aur_load_safetensors(tr->m, path, AUR_LOAD_STRICT, NULL);
    if (!rc) rc = aur__optim_load_file(tr->o, f);
    if (!rc) rc = aur__trainer_restore_json(tr, s, state);
    aur_st_close(f);
    cJSON_Delete(s);
    if (!rc) rc = aur__trim_metrics(tr);
    if (!rc && id[0]) snprintf(tr->run_id, sizeof tr->run_id, "%s", id); /* the run goes on under its id */
    return rc;
}

/* ---- the loop ---- */

static void aur__progress(const aur_trainer *tr, const aur_step_info *si, double rate)
{
    double eta = rate > 0 ? (double)(tr->steps - tr->step) / rate : 0;
    int tty = isatty(fileno(stderr));
    if (!tty && tr->step % tr->log_every && tr->step != tr->steps) return;
    fflush(stdout); /* keep the order of the run's own output */
    char data[64] = ""; /* said only when reading is what the step waits for */
    if (si->data_seconds > 0.1 * si->seconds && si->seconds > 0)
        snprintf(data, sizeof data, "  waiting for data %.0f%% (data.prefetch %d)", 100 * si->data_seconds / si->seconds, tr->prefetch);
    fprintf(stderr, "%sstep %lld/%lld  loss %.5g  |g| %.3g  lr %.3g  %.2f steps/s  ETA %d:%02d%s%s%s", tty ? "\r\033[K" : "",
            (long long)tr->step, (long long)tr->steps, si->loss, si->grad_norm, si->lr, rate, (int)(eta / 60), (int)eta % 60, data,
            si->alarm ? "  ALARM: " : "", si->alarm ? si->alarm_msg : "");
    fprintf(stderr, tty && !si->alarm && tr->step != tr->steps ? "" : "\n");
}

/* One line of metrics.jsonl, and the same numbers as TensorBoard scalars beside it. */
static int aur__log_metrics(const aur_trainer *tr, const aur_step_info *si, double rate, double val)
{
    char path[1100], events[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", tr->out_dir);
    snprintf(events, sizeof events, "%s/%s", tr->out_dir, AUR__EVENTS_FILE);
    aur__buf line;
    memset(&line, 0, sizeof line);
    aur__buf_printf(&line, "{\"step\": %lld, \"loss\": %.9g, \"grad_norm\": %.9g, \"lr\": %.9g", (long long)si->step, si->loss, si->grad_norm, si->lr);
    const double *row = tr->hist.v + (size_t)(tr->hist.rows - 1) * tr->hist.cols;
    for (int g = 0; g < tr->n_groups && tr->n_groups > 1; g++) aur__buf_printf(&line, ", \"grad_norm/%s\": %.9g", tr->group_name[g], row[4 + g]);
    aur__buf_printf(&line, ", \"steps_per_s\": %.4g, \"data_wait_s\": %.4g, \"alarm\": %s, \"skipped\": %s", rate, si->data_seconds,
                    si->alarm ? "true" : "false", si->skipped ? "true" : "false");
    if (isfinite(val)) aur__buf_printf(&line, ", \"val_loss\": %.9g", val);
    /* the validation row exists only on a step that evaluated */
    const double *vrow = isfinite(val) ? tr->val_hist.v + (size_t)(tr->val_hist.rows - 1) * tr->val_hist.cols : NULL;
    for (int k = 0; vrow && tr->task && k < tr->task->n_metrics; k++) {
        if (isfinite(vrow[2 + k])) aur__buf_printf(&line, ", \"val/%s\": %.9g", tr->task->metric_names[k], vrow[2 + k]);
        else aur__buf_printf(&line, ", \"val/%s\": null", tr->task->metric_names[k]); /* R^2 of a constant target; JSON has no NaN */
    }
    for (int k = 0; isfinite(val) && !tr->task && k < tr->val_scores.n; k++) { /* "val_rmse/z500/6h" */
        const aur_score *r = &tr->val_scores.rows[k];
        char level[32] = "";
        if (r->atmos) snprintf(level, sizeof level, "%g", r->level);
        if (isfinite(r->rmse)) aur__buf_printf(&line, ", \"val_rmse/%s%s/%gh\": %.9g", r->var, level, r->lead_hours, r->rmse);
    }
    aur__buf_printf(&line, "}");
    int rc = line.failed ? aur__err(AUR_ENOMEM, "out of memory writing %s", path) : 0;
    FILE *fp = rc ? NULL : fopen(path, "ab");
    if (!rc && !fp) rc = aur__err(AUR_EIO, "cannot append to %s: %s", path, strerror(errno));
    if (fp) {
        int bad = fprintf(fp, "%s\n", line.p) < 0;
        if (fclose(fp) || bad) rc = aur__err(AUR_EIO, "cannot write %s", path);
    }
    if (!rc && access(events, F_OK) != 0) rc = aur_events_create(events, aur__unix_time());
    if (!rc) rc = aur_events_from_json(events, aur__unix_time(), line.p);
    AUR_FREE(line.p);
    return rc;
}

static int aur__due(int64_t step, int every) { return every > 0 && step % every == 0; }

AURDEF int aur_trainer_run(aur_trainer *tr)
{
    int rc = aur__mkdirs(tr->out_dir);
    if (!rc && tr->step == 0) rc = aur__claim_output_dir(tr);
    if (!rc && tr->step == 0) aur_trainer_print_setup(tr, stdout);
    double t0 = aur__wall();
    int64_t first = tr->step;
    while (!rc && tr->step < tr->steps) {
        aur_step_info si;
        rc = aur_trainer_step(tr, &si);
        if (rc) break;
        double rate = (double)(tr->step - first) / fmax(aur__wall() - t0, 1e-9), val = NAN;
        if (aur__due(tr->step, tr->eval_every) || tr->step == tr->steps) rc = aur_trainer_eval(tr, &val);
        aur__progress(tr, &si, rate);
        if (!rc) rc = aur__log_metrics(tr, &si, rate, val);
        if (!rc && aur__due(tr->step, tr->plot_every)) rc = aur_trainer_plot(tr);
        if (!rc && aur__due(tr->step, tr->save_every) && tr->step != tr->steps) rc = aur_trainer_save(tr);
    }
    if (!rc) rc = aur_trainer_plot(tr);
    if (!rc) rc = aur_trainer_save(tr);
    return rc;
}
