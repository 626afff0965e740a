#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

/* ======================================================================== */
/*                              Fine-tuning                                 */
/* ======================================================================== */

/* ==== fine-tuning: data checks ==== */

AURDEF aur_check_opts aur_check_defaults(void)
{
    aur_check_opts o = {10.0, 1e-3, 3.0, 0.1, 10.0, NULL, 0};
    return o;
}

/* Running sums over one variable in normalised units. */
typedef struct aur__moments {
    int64_t count, nonfinite, outliers;
    double sum, sumsq, max_abs_z;
} aur__moments;

static void aur__moments_add(aur__moments *s, const aur_real *x, int64_t n, double loc, double scale, double outlier_z)
{
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            s->nonfinite++;
            continue;
        }
        double z = ((double)x[i] - loc) / scale;
        s->count++;
        s->sum += z;
        s->sumsq += z * z;
        if (fabs(z) > s->max_abs_z) s->max_abs_z = fabs(z);
        if (fabs(z) > outlier_z) s->outliers++;
    }
}

static int aur__field_is_zero(const aur_real *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != 0) return 0;
    return 1;
}

static double aur__moments_mean(const aur__moments *s) { return s->count ? s->sum / (double)s->count : 0; }
static double aur__moments_std(const aur__moments *s)
{
    double m = aur__moments_mean(s);
    return s->count ? sqrt(fmax(0, s->sumsq / (double)s->count - m * m)) : 0;
}

/* Adds a finding to a variable's message ("; "-separated) and raises its severity. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void aur__finding(aur_var_check *v, aur_severity sev, const char *fmt, ...)
{
    size_t k = strlen(v->message);
    if (sev > v->severity) v->severity = sev;
    if (k && k + 2 < sizeof v->message) k += (size_t)snprintf(v->message + k, sizeof v->message - k, "; ");
    va_list ap;
    va_start(ap, fmt);
    if (k < sizeof v->message) vsnprintf(v->message + k, sizeof v->message - k, fmt, ap);
    va_end(ap);
}

/* Grades one variable's findings into its severity and message. */
static void aur__grade(aur_var_check *v, const aur_check_opts *o, int nan_ok)
{
    v->severity = AUR_CHECK_OK;
    v->message[0] = 0;
    if (!v->present) {
        if (v->used) aur__finding(v, AUR_CHECK_ERROR, "missing: the model needs it");
        return;
    }
    if (!v->used) aur__finding(v, AUR_CHECK_WARNING, "not used by the model");
    if (v->nonfinite && !nan_ok) aur__finding(v, AUR_CHECK_ERROR, "%lld NaN/Inf values", (long long)v->nonfinite);
    if (v->zero_fields) /* a static field of zeros is legitimate (a land-sea mask over open sea) */
        aur__finding(v, !strcmp(v->kind, "static") ? AUR_CHECK_WARNING : AUR_CHECK_ERROR, "%d of %d fields are all zero", v->zero_fields,
                     v->fields);
    if (!v->used) return;
    if (v->outliers)
        aur__finding(v, (double)v->outliers > o->max_outlier_frac * (double)v->count ? AUR_CHECK_ERROR : AUR_CHECK_WARNING,
                     "%lld values beyond %g sd (max %.3g)", (long long)v->outliers, o->outlier_z, v->max_abs_z);
    if (v->count && (fabs(v->mean) > o->max_abs_mean || v->std < o->min_std || v->std > o->max_std))
        aur__finding(v, AUR_CHECK_WARNING, "statistics do not fit: normalised mean %.3g, std %.3g", v->mean, v->std);
}

/* Counts the all-zero 2-D fields of a (..., H, W) tensor. */
static int aur__zero_fields(const aur_tensor *t, int64_t hw, int *fields)
{
    int zeros = 0;
    for (int64_t f = 0; f < t->numel / hw; f++) {
        zeros += aur__field_is_zero(aur_tensor_f32((aur_tensor *)t) + f * hw, hw);
        (*fields)++;
    }
    return zeros;
}

/* A check under way: the report's entries, and each entry's running sums
   (one per level for atmospheric variables), so that a series checked in
   chunks of steps gets the report of the whole. */
typedef struct aur__data_check {
    const aur__aurora *A;
    aur_check_opts o;
    aur_check_report r;
    aur__moments (*m)[AUR_MAX_LEVELS];
} aur__data_check;

static aur_var_check *aur__check_entry(aur_check_report *r, const char *name, const char *kind)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->vars[i].name, name) && !strcmp(r->vars[i].kind, kind)) return &r->vars[i];
    aur_var_check *v = &r->vars[r->n++];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->kind = kind;
    return v;
}

static const char *const aur__check_kinds[3] = {"surf", "static", "atmos"};

/* The entries of the model's variables (used) and of a batch's (present). */
static int aur__check_begin(aur__data_check *k, const aur__aurora *A, const aur_batch *b, const aur_check_opts *opts)
{
    memset(k, 0, sizeof *k);
    k->A = A;
    k->o = opts ? *opts : aur_check_defaults();
    const aur_aurora_config *c = &A->cfg;
    int cap = c->surf_vars.n + c->static_vars.n + c->atmos_vars.n + b->surf_names.n + b->static_names.n + b->atmos_names.n;
    k->r.vars = (aur_var_check *)aur__calloc(sizeof(aur_var_check) * (size_t)(cap ? cap : 1), "a data-check report");
    k->m = (aur__moments(*)[AUR_MAX_LEVELS])aur__calloc(sizeof *k->m * (size_t)(cap ? cap : 1), "a data check's sums");
    if (!k->r.vars || !k->m) return AUR_FREE(k->r.vars), AUR_FREE(k->m), AUR_ENOMEM;
    const aur_var_list *model_lists[3] = {&c->surf_vars, &c->static_vars, &c->atmos_vars};
    const aur_var_list *batch_lists[3] = {&b->surf_names, &b->static_names, &b->atmos_names};
    for (int g = 0; g < 3; g++) {
        for (int i = 0; i < model_lists[g]->n; i++) aur__check_entry(&k->r, model_lists[g]->name[i], aur__check_kinds[g])->used = 1;
        for (int i = 0; i < batch_lists[g]->n; i++) aur__check_entry(&k->r, batch_lists[g]->name[i], aur__check_kinds[g])->present = 1;
    }
    return 0;
}

/* One variable's values into its sums: one set of statistics (surface, static) or one per level. */
static void aur__check_add_var(aur__data_check *k, const aur_batch *b, const aur_tensor *x, int group, aur_var_check *v)
{
    aur__moments *m = k->m[v - k->r.vars];
    int64_t hw = (int64_t)b->H * b->W, levels = group == 2 ? b->C : 1;
    double loc[AUR_MAX_LEVELS], scale[AUR_MAX_LEVELS];
    for (int c = 0; c < AUR_MAX_LEVELS; c++) loc[c] = 0, scale[c] = 1;
    int missing = !v->used ? 0 : group == 2 ? aur__atmos_stats(k->A, v->name, b->levels, b->C, loc, scale) : aur__surf_stats(k->A, v->name, loc, scale);
    if (missing) {
        if (group == 2) snprintf(v->message, sizeof v->message, "%.190s", aur_last_error());
        else snprintf(v->message, sizeof v->message, "no normalisation statistics: register them (aur_aurora_set_stats)");
        v->severity = AUR_CHECK_ERROR;
        if (group == 2) return;
    }
    v->zero_fields += aur__zero_fields(x, hw, &v->fields);
    const aur_real *data = aur_tensor_f32((aur_tensor *)x);
    for (int c = 0; c < levels; c++)
        for (int64_t f = 0; f < x->numel / hw / levels; f++) aur__moments_add(&m[c], data + (f * levels + c) * hw, hw, loc[c], scale[c], k->o.outlier_z);
}

/* A batch's (or a chunk of a series') values; the static fields only when asked (a series' chunks share them). */
static void aur__check_add(aur__data_check *k, const aur_batch *b, int statics)
{
    const aur_var_list *lists[3] = {&b->surf_names, &b->static_names, &b->atmos_names};
    aur_tensor *const *tensors[3] = {b->surf, b->statics, b->atmos};
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < lists[g]->n && (g != 1 || statics); i++)
            aur__check_add_var(k, b, tensors[g][i], g, aur__check_entry(&k->r, lists[g]->name[i], aur__check_kinds[g]));
}

/* The sums into each entry's figures (an atmospheric variable's mean and std
   are those of the level that fits its statistics worst), graded. */
static int aur__check_end(aur__data_check *k, int C, aur_check_report *rep)
{
    aur_check_report *r = &k->r;
    int first_error = -1;
    for (int i = 0; i < r->n; i++) {
        aur_var_check *v = &r->vars[i];
        double worst = -1;
        for (int c = 0; c < (strcmp(v->kind, "atmos") ? 1 : C); c++) {
            const aur__moments *s = &k->m[i][c];
            double mean = aur__moments_mean(s), sd = aur__moments_std(s), misfit = fabs(mean) + fabs(log(fmax(sd, 1e-12)));
            if (misfit > worst) worst = misfit, v->mean = mean, v->std = sd;
            v->count += s->count, v->nonfinite += s->nonfinite, v->outliers += s->outliers;
            v->max_abs_z = fmax(v->max_abs_z, s->max_abs_z);
        }
        if (v->severity != AUR_CHECK_ERROR) /* a statistics lookup failure is already graded */
            aur__grade(v, &k->o, k->o.nan_ok && aur_name_matches(k->o.nan_ok, v->name));
        r->errors += v->severity == AUR_CHECK_ERROR;
        r->warnings += v->severity == AUR_CHECK_WARNING;
        if (v->severity == AUR_CHECK_ERROR && first_error < 0) first_error = i;
    }
    AUR_FREE(k->m);
    int rc = 0;
    if (first_error >= 0)
        rc = aur__err(AUR_EFORMAT, "data check: %s variable '%s': %s%s", r->vars[first_error].kind, r->vars[first_error].name,
                      r->vars[first_error].message, r->errors > 1 ? " (and more: see the report)" : "");
    if (rep) *rep = *r;
    else AUR_FREE(r->vars);
    return rc;
}

AURDEF int aur_aurora_check_batch(const aur_model *m, const aur_batch *b, const aur_check_opts *opts, aur_check_report *rep)
{
    aur__aurora *A = aur__A(m);
    if (!A || !b) return AUR_EINVAL;
    aur__data_check k;
    int rc = aur__check_begin(&k, A, b, opts);
    if (rc) return rc;
    aur__check_add(&k, b, 1);
    return aur__check_end(&k, b->C, rep);
}

#define AUR__CHECK_CHUNK_BYTES ((int64_t)256 << 20) /* a series is checked this much at a time */

AURDEF int aur_aurora_check_series(const aur_model *m, aur_series *s, const aur_check_opts *opts, aur_check_report *rep)
{
    aur__aurora *A = aur__A(m);
    if (!A || !s) return AUR_EINVAL;
    int T = aur_series_length(s), rc;
    aur_batch *chunk = aur_series_read(s, 0, 1, 0);
    if (!chunk) return AUR_EFORMAT;
    int64_t step_bytes = (int64_t)sizeof(aur_real) * chunk->B * chunk->H * chunk->W * (chunk->surf_names.n + (int64_t)chunk->C * chunk->atmos_names.n);
    aur__data_check k;
    rc = aur__check_begin(&k, A, chunk, opts);
    int steps = k.o.chunk_steps > 0 ? k.o.chunk_steps : (int)(step_bytes > 0 ? AUR__CHECK_CHUNK_BYTES / step_bytes : T);
    steps = steps < 1 ? 1 : steps > T ? T : steps;
    for (int start = 0; start < T && !rc; start += steps) {
        int n = T - start < steps ? T - start : steps;
        if (chunk->T != n) {
            aur_batch_free(chunk);
            chunk = aur_series_window_alloc(s, n, 0);
        }
        rc = chunk ? aur_series_read_into(s, start, 0, chunk) : AUR_ENOMEM;
        if (!rc) aur__check_add(&k, chunk, start == 0);
    }
    int C = chunk ? chunk->C : 0;
    aur_batch_free(chunk);
    if (rc) {
        AUR_FREE(k.m);
        AUR_FREE(k.r.vars);
        return rc;
    }
    return aur__check_end(&k, C, rep);
}

AURDEF void aur_check_report_print(const aur_check_report *r, FILE *out)
{
    static const char *sev[3] = {"ok", "WARNING", "ERROR"};
    fprintf(out, "%-7s %-16s %7s %9s %9s %9s  %s\n", "kind", "variable", "status", "mean", "std", "max|z|", "findings");
    for (int i = 0; i < r->n; i++) {
        const aur_var_check *v = &r->vars[i];
        if (v->present && v->used && v->count)
            fprintf(out, "%-7s %-16s %7s %9.3g %9.3g %9.3g  %s\n", v->kind, v->name, sev[v->severity], v->mean, v->std, v->max_abs_z,
                    v->message);
        else
            fprintf(out, "%-7s %-16s %7s %9s %9s %9s  %s\n", v->kind, v->name, sev[v->severity], "-", "-", "-", v->message);
    }
    fprintf(out, "data check: %d variables, %d errors, %d warnings (mean and std in normalised units)\n", r->n, r->errors,
            r->warnings);
}

AURDEF void aur_check_report_free(aur_check_report *r)
{
    if (!r) return;
    AUR_FREE(r->vars);
    memset(r, 0, sizeof *r);
}
