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
    aur_check_opts o = {10.0, 1e-3, 3.0, 0.1, 10.0, NULL};
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

/* Checks a surface or static variable (one set of statistics). */
static void aur__check_surf(const aur__aurora *A, const aur_tensor *x, int64_t hw, const aur_check_opts *o, aur_var_check *v)
{
    double loc = 0, scale = 1;
    aur__moments s = {0, 0, 0, 0, 0, 0};
    int have = !v->used || !aur__surf_stats(A, v->name, &loc, &scale);
    if (v->used && !have) {
        snprintf(v->message, sizeof v->message, "no normalisation statistics: register them (aur_aurora_set_stats)");
        v->severity = AUR_CHECK_ERROR;
    }
    aur__moments_add(&s, aur_tensor_f32((aur_tensor *)x), x->numel, loc, scale, o->outlier_z);
    v->zero_fields = aur__zero_fields(x, hw, &v->fields);
    v->count = s.count, v->nonfinite = s.nonfinite, v->outliers = s.outliers;
    v->mean = aur__moments_mean(&s), v->std = aur__moments_std(&s), v->max_abs_z = s.max_abs_z;
}

/* Checks an atmospheric variable level by level; the reported mean and std
   are those of the level that fits its statistics worst. */
static int aur__check_atmos(const aur__aurora *A, const aur_batch *b, const aur_tensor *x, const aur_check_opts *o, aur_var_check *v)
{
    double loc[AUR_MAX_LEVELS], scale[AUR_MAX_LEVELS], worst = -1;
    int64_t hw = (int64_t)b->H * b->W;
    for (int c = 0; c < b->C; c++) loc[c] = 0, scale[c] = 1;
    if (v->used && aur__atmos_stats(A, v->name, b->levels, b->C, loc, scale)) {
        snprintf(v->message, sizeof v->message, "%.190s", aur_last_error());
        v->severity = AUR_CHECK_ERROR;
        return AUR_EINVAL;
    }
    v->zero_fields = aur__zero_fields(x, hw, &v->fields);
    for (int c = 0; c < b->C; c++) {
        aur__moments s = {0, 0, 0, 0, 0, 0};
        for (int64_t bt = 0; bt < (int64_t)b->B * b->T; bt++)
            aur__moments_add(&s, aur_tensor_f32((aur_tensor *)x) + (bt * b->C + c) * hw, hw, loc[c], scale[c], o->outlier_z);
        double m = aur__moments_mean(&s), sd = aur__moments_std(&s);
        double misfit = fabs(m) + fabs(log(fmax(sd, 1e-12)));
        if (misfit > worst) worst = misfit, v->mean = m, v->std = sd;
        v->count += s.count, v->nonfinite += s.nonfinite, v->outliers += s.outliers;
        v->max_abs_z = fmax(v->max_abs_z, s.max_abs_z);
    }
    return 0;
}

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

AURDEF int aur_aurora_check_batch(const aur_model *m, const aur_batch *b, const aur_check_opts *opts, aur_check_report *rep)
{
    aur__aurora *A = aur__A(m);
    if (!A || !b) return AUR_EINVAL;
    aur_check_opts o = opts ? *opts : aur_check_defaults();
    const aur_aurora_config *c = &A->cfg;
    aur_check_report r = {0, 0, 0, NULL};
    int cap = c->surf_vars.n + c->static_vars.n + c->atmos_vars.n + b->surf_names.n + b->static_names.n + b->atmos_names.n;
    r.vars = (aur_var_check *)aur__calloc(sizeof(aur_var_check) * (size_t)(cap ? cap : 1), "a data-check report");
    if (!r.vars) return AUR_ENOMEM;
    const aur_var_list *model_lists[3] = {&c->surf_vars, &c->static_vars, &c->atmos_vars};
    const aur_var_list *batch_lists[3] = {&b->surf_names, &b->static_names, &b->atmos_names};
    const char *kinds[3] = {"surf", "static", "atmos"};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < model_lists[k]->n; i++) aur__check_entry(&r, model_lists[k]->name[i], kinds[k])->used = 1;
        for (int i = 0; i < batch_lists[k]->n; i++) {
            aur_var_check *v = aur__check_entry(&r, batch_lists[k]->name[i], kinds[k]);
            v->present = 1;
            if (k == 2) aur__check_atmos(A, b, b->atmos[i], &o, v);
            else aur__check_surf(A, k ? b->statics[i] : b->surf[i], (int64_t)b->H * b->W, &o, v);
        }
    }
    int first_error = -1;
    for (int i = 0; i < r.n; i++) {
        aur_var_check *v = &r.vars[i];
        if (v->severity != AUR_CHECK_ERROR) /* a statistics lookup failure is already graded */
            aur__grade(v, &o, o.nan_ok && aur_name_matches(o.nan_ok, v->name));
        r.errors += v->severity == AUR_CHECK_ERROR;
        r.warnings += v->severity == AUR_CHECK_WARNING;
        if (v->severity == AUR_CHECK_ERROR && first_error < 0) first_error = i;
    }
    int rc = 0;
    if (first_error >= 0)
        rc = aur__err(AUR_EFORMAT, "data check: %s variable '%s': %s%s", r.vars[first_error].kind, r.vars[first_error].name,
                      r.vars[first_error].message, r.errors > 1 ? " (and more: see the report)" : "");
    if (rep) *rep = r;
    else AUR_FREE(r.vars);
    return rc;
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
