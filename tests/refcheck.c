/* refcheck - run a golden fixture case and compare with the reference.

   usage: refcheck DIR

   DIR holds config.json and the case's safetensors files (see
   tests/fixtures/README.md). Every output, gradient or trajectory tensor is
   compared with the max-normalised error max|ours - ref| / max|ref| against
   the tolerance in config.json; one line per tensor, then
   "refcheck: N checked, M failed". Exit 0 if all pass, 1 if any fails or the
   case cannot run, 2 for a case kind not supported yet. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#include <stdlib.h>

static int n_checked, n_failed;

/* ---- comparison ---- */

static void compare(const char *name, const aur_real *got, const aur_st_file *ref, const char *ref_name, int64_t n, double tol)
{
    const aur_st_tensor *e = aur_st_find(ref, ref_name);
    n_checked++;
    if (!e || e->numel != n) {
        n_failed++;
        printf("FAIL %-52s missing in %s or size %lld != %lld\n", name, ref->path, e ? (long long)e->numel : -1LL, (long long)n);
        return;
    }
    aur_real *want = (aur_real *)malloc(sizeof(aur_real) * (size_t)(n ? n : 1));
    aur_st_read(ref, e, AUR_F32, want);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        num = (d > num || isnan(d)) ? (isnan(d) ? INFINITY : d) : num;
        den = fabs((double)want[i]) > den ? fabs((double)want[i]) : den;
    }
    double err = num / (den > 1e-30 ? den : 1e-30);
    int ok = err <= tol;
    n_failed += !ok;
    printf("%s %-52s max err %.3e (tol %.0e)\n", ok ? "ok  " : "FAIL", name, err, tol);
    free(want);
}

/* ---- small JSON helpers ---- */

static double num_or(const cJSON *obj, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static int fail(const char *msg, const char *detail)
{
    fprintf(stderr, "refcheck: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
    return 1;
}

/* ---- kind "optim": optimiser trajectories and gradient clipping ---- */

/* Optimiser options from a torch class name and its kwargs; unknown or unsupported keys are errors. */
static int optim_opts(const char *cls, const cJSON *kw, aur_optim_opts *o, char *err, size_t errn)
{
    if (!strcmp(cls, "Adam")) *o = aur_adam_defaults();
    else if (!strcmp(cls, "AdamW")) *o = aur_adamw_defaults();
    else if (!strcmp(cls, "Adafactor")) *o = aur_adafactor_defaults();
    else return snprintf(err, errn, "unsupported optimiser class '%s'", cls), 1;
    for (const cJSON *k = kw ? kw->child : NULL; k; k = k->next) {
        const char *n = k->string;
        if (!strcmp(n, "betas") && cJSON_GetArraySize(k) == 2) {
            o->beta1 = cJSON_GetArrayItem(k, 0)->valuedouble;
            o->beta2 = cJSON_GetArrayItem(k, 1)->valuedouble;
        } else if (!strcmp(n, "eps") && cJSON_IsNumber(k)) {
            o->eps = k->valuedouble;
        } else if (!strcmp(n, "eps") && cJSON_GetArraySize(k) == 2) { /* Adafactor: (eps1 or None, eps2) */
            const cJSON *e1 = cJSON_GetArrayItem(k, 0);
            if (!cJSON_IsNull(e1)) o->eps1 = e1->valuedouble;
            o->eps2 = cJSON_GetArrayItem(k, 1)->valuedouble;
        } else if (!strcmp(n, "weight_decay")) {
            o->weight_decay = k->valuedouble;
        } else if (!strcmp(n, "beta2_decay")) {
            o->beta2_decay = k->valuedouble;
        } else if (!strcmp(n, "d")) {
            o->d = k->valuedouble;
        } else if (!strcmp(n, "lr")) {
            o->lr = k->valuedouble;
        } else if ((!strcmp(n, "amsgrad") || !strcmp(n, "maximize")) && cJSON_IsTrue(k)) {
            return snprintf(err, errn, "%s=true is not supported", n), 1;
        } else if (!strcmp(n, "amsgrad") || !strcmp(n, "maximize") || !strcmp(n, "foreach") || !strcmp(n, "capturable") ||
                   !strcmp(n, "differentiable") || !strcmp(n, "fused")) {
            continue; /* code-path selectors with no effect on the arithmetic */
        } else {
            return snprintf(err, errn, "unknown optimiser keyword '%s'", n), 1;
        }
    }
    return 0;
}

static aur_model *optim_model(const aur_st_file *in, int *n_params)
{
    char name[64];
    aur_model *m = aur_model_create();
    int n = 0;
    for (;; n++) {
        snprintf(name, sizeof name, "init/p%d", n);
        const aur_st_tensor *e = aur_st_find(in, name);
        if (!e) break;
        snprintf(name, sizeof name, "p%d", n);
        aur_model_add(m, name, aur_shapev(e->ndim, e->shape), 0);
    }
    *n_params = n;
    if (aur_model_alloc(m, AUR_CPU)) {
        aur_model_free(m);
        return NULL;
    }
    return m;
}

static int load_into(aur_model *m, const aur_st_file *f, const char *prefix, int n, int as_grad)
{
    char name[128];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s/p%d", prefix, i);
        const aur_st_tensor *e = aur_st_find(f, name);
        aur_tensor *p = aur_model_at(m, i);
        if (!e || e->numel != p->numel) return fail("missing input tensor", name);
        aur_st_read(f, e, AUR_F32, as_grad ? (void *)p->grad : p->data);
        if (as_grad) p->grad_written = 1;
    }
    return 0;
}

/* One optimiser case: apply the recorded gradients, compare after each step and the final state. */
static int run_optimiser(const char *key, const cJSON *spec, const aur_st_file *in, const aur_st_file *out, double tol)
{
    char err[256], name[160], pat[256], ref[200];
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(spec, "class");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(spec, "groups");
    aur_optim_opts o;
    if (!cJSON_IsString(cls) || !cJSON_IsArray(groups)) return fail("optimiser entry needs class and groups", key);
    if (optim_opts(cls->valuestring, cJSON_GetObjectItemCaseSensitive(spec, "kwargs"), &o, err, sizeof err))
        return fail(err, key);
    int n;
    aur_model *m = optim_model(in, &n);
    if (!m || load_into(m, in, "init", n, 0)) return fail("cannot build the parameters", key);
    /* group 0 carries the default hyperparameters; later groups take their parameters from it */
    const cJSON *g0 = cJSON_GetArrayItem(groups, 0);
    o.lr = num_or(g0, "lr", o.lr);
    o.weight_decay = num_or(g0, "weight_decay", o.weight_decay);
    aur_optim *opt = aur_optim_create(m, &o);
    int gi = 0;
    for (const cJSON *g = groups->child; g && opt; g = g->next, gi++) {
        if (gi == 0) continue;
        pat[0] = 0;
        for (const cJSON *p = cJSON_GetObjectItemCaseSensitive(g, "params")->child; p; p = p->next)
            snprintf(pat + strlen(pat), sizeof pat - strlen(pat), "%sp%d", pat[0] ? "," : "", p->valueint);
        if (aur_optim_add_group(opt, pat, num_or(g, "lr", o.lr), num_or(g, "weight_decay", o.weight_decay)) < 0)
            return fail(aur_last_error(), key);
    }
    if (!opt) return fail(aur_last_error(), key);
    for (int k = 0;; k++) {
        snprintf(name, sizeof name, "grad/step%d/p0", k);
        if (!aur_st_find(in, name)) break;
        snprintf(name, sizeof name, "grad/step%d", k);
        if (load_into(m, in, name, n, 1) || aur_optim_step(opt)) return fail("step failed", aur_last_error());
        for (int i = 0; i < n; i++) {
            snprintf(ref, sizeof ref, "%s/step%d/p%d", key, k, i);
            compare(ref, (const aur_real *)aur_model_at(m, i)->data, out, ref, aur_model_at(m, i)->numel, tol);
        }
    }
    static const char *states[] = {"exp_avg", "exp_avg_sq", "row_var", "col_var", "variance"};
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "p%d", i);
        for (size_t s = 0; s < sizeof states / sizeof states[0]; s++) {
            snprintf(ref, sizeof ref, "%s/final_state/p%d/%s", key, i, states[s]);
            if (!aur_st_find(out, ref)) continue;
            aur_tensor *st = aur_optim_state(opt, name, states[s]);
            if (!st) return fail("no such optimiser state", ref);
            compare(ref, (const aur_real *)st->data, out, ref, st->numel, tol);
        }
        snprintf(ref, sizeof ref, "%s/final_state/p%d/step", key, i);
        aur_real step = (aur_real)aur_optim_param_steps(opt, name);
        compare(ref, &step, out, ref, 1, tol);
    }
    aur_optim_free(opt);
    aur_model_free(m);
    return 0;
}

static int run_clip(const char *key, const cJSON *spec, const aur_st_file *in, const aur_st_file *out, double tol)
{
    char name[160];
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(spec, "kwargs");
    if (num_or(kw, "norm_type", 2.0) != 2.0) return fail("only norm_type 2 is supported", key);
    int n;
    aur_model *m = optim_model(in, &n);
    snprintf(name, sizeof name, "%s/grads_in", key);
    if (!m || load_into(m, in, name, n, 1)) return fail("cannot build the gradients", key);
    double total = 0;
    if (aur_clip_grad_norm(m, num_or(kw, "max_norm", 1.0), &total)) return fail(aur_last_error(), key);
    aur_real tr = (aur_real)total;
    snprintf(name, sizeof name, "%s/total_norm", key);
    compare(name, &tr, out, name, 1, tol);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s/grads_out/p%d", key, i);
        compare(name, aur_model_at(m, i)->grad, out, name, aur_model_at(m, i)->numel, tol);
    }
    aur_model_free(m);
    return 0;
}

static int run_optim_case(const char *dir, const cJSON *cfg)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    aur_st_file *in = aur_st_open(path);
    snprintf(path, sizeof path, "%s/outputs.safetensors", dir);
    aur_st_file *out = aur_st_open(path);
    if (!in || !out) return fail(aur_last_error(), NULL);
    const cJSON *tols = cJSON_GetObjectItemCaseSensitive(cfg, "tolerances");
    double tol_traj = num_or(tols, "trajectories", 1e-6), tol_clip = num_or(tols, "clip", 1e-6);
    int rc = 0;
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(cfg, "optimizers");
    for (const cJSON *o = opts ? opts->child : NULL; o && !rc; o = o->next) rc = run_optimiser(o->string, o, in, out, tol_traj);
    const cJSON *clip = cJSON_GetObjectItemCaseSensitive(cfg, "clip");
    for (const cJSON *c = clip ? clip->child : NULL; c && !rc; c = c->next) rc = run_clip(c->string, c, in, out, tol_clip);
    aur_st_close(in);
    aur_st_close(out);
    return rc;
}

/* ---- dispatch on the case kind ---- */

typedef struct case_kind {
    const char *kind;
    int (*run)(const char *dir, const cJSON *cfg);
} case_kind;

static const case_kind kinds[] = {
    {"optim", run_optim_case},
};

int main(int argc, char **argv)
{
    char path[4096];
    if (argc != 2) {
        fprintf(stderr, "usage: refcheck DIR (a fixture case with config.json)\n");
        return 1;
    }
    snprintf(path, sizeof path, "%s/config.json", argv[1]);
    cJSON *cfg = aur_json_load(path);
    if (!cfg) return fail(aur_last_error(), NULL);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(cfg, "kind");
    char k[64];
    snprintf(k, sizeof k, "%s", cJSON_IsString(kind) ? kind->valuestring : "?");
    int rc = -1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].kind, k)) rc = kinds[i].run(argv[1], cfg);
    cJSON_Delete(cfg);
    if (rc < 0) {
        printf("refcheck: case kind '%s' is not supported yet\n", k);
        return 2;
    }
    printf("refcheck: %d checked, %d failed\n", n_checked, n_failed);
    return rc || n_failed ? 1 : 0;
}
