/* aur_test.h - the tiny shared test harness.
   Every check counts as passed or failed; a program ends with
   aur_test_summary(), which prints "N passed, N failed" as its last line
   and returns the exit status (non-zero if anything failed). */
#ifndef AUR_TEST_H
#define AUR_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int aur_test_passed, aur_test_failed;

#define AUR_CHECK(cond, ...)                                                     \
    do {                                                                         \
        if (cond) {                                                              \
            aur_test_passed++;                                                   \
        } else {                                                                 \
            aur_test_failed++;                                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                          \
            printf(__VA_ARGS__);                                                 \
            printf("\n");                                                        \
        }                                                                        \
    } while (0)

/* Max-normalised error max|got - want| / max(max|want|, floor), as the fixtures define it. */
static inline double aur_test_maxerr(const double *got, const double *want, int64_t n, int64_t *at)
{
    double num = 0, den = 0;
    *at = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]);
        if (e > num || isnan(e)) {
            num = isnan(e) ? INFINITY : e;
            *at = i;
        }
        if (fabs(want[i]) > den) den = fabs(want[i]);
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

/* Checks got against want (n doubles) at a max-normalised tolerance and prints one line. */
static inline int aur_test_close(const char *name, const double *got, const double *want, int64_t n, double tol)
{
    int64_t at;
    double err = aur_test_maxerr(got, want, n, &at);
    int ok = err <= tol;
    if (ok) aur_test_passed++;
    else aur_test_failed++;
    printf("%s %-44s max err %.3e (tol %.0e)", ok ? "ok  " : "FAIL", name, err, tol);
    if (!ok && n) printf("  at %lld: got %.9g want %.9g", (long long)at, got[at], want[at]);
    printf("\n");
    return ok;
}

static int aur_test_summary(void)
{
    printf("%d passed, %d failed\n", aur_test_passed, aur_test_failed);
    return aur_test_failed != 0;
}

/* The number of lines of a text file (0 if it cannot be read). */
static inline int aur_test_count_lines(const char *path)
{
    FILE *fp = fopen(path, "r");
    int n = 0, ch;
    while (fp && (ch = fgetc(fp)) != EOF) n += ch == '\n';
    if (fp) fclose(fp);
    return n;
}

/* A small deterministic generator for test data. */
static uint64_t aur_test_rng = 88172645463325252ull;
static inline double aur_test_uniform(void)
{
    aur_test_rng ^= aur_test_rng << 13;
    aur_test_rng ^= aur_test_rng >> 7;
    aur_test_rng ^= aur_test_rng << 17;
    return (double)(aur_test_rng >> 11) * (1.0 / 9007199254740992.0);
}
static inline double aur_test_normal(void)
{
    double u = aur_test_uniform() + 1e-12, v = aur_test_uniform();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* A scratch directory per test program: aur_test_tmp("x") is a path inside it. */
static char aur_test_dir[256];

static inline void aur_test_tmpdir_begin(const char *prog)
{
    snprintf(aur_test_dir, sizeof aur_test_dir, "/tmp/aur_%s_%d", prog, (int)getpid());
    mkdir(aur_test_dir, 0700);
}

static inline const char *aur_test_tmp(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", aur_test_dir, name);
    return p[k];
}

static inline void aur_test_tmpdir_end(void)
{
    char cmd[300];
    if (getenv("AUR_TEST_KEEP")) { /* to look at what a test wrote */
        printf("kept %s\n", aur_test_dir);
        return;
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", aur_test_dir);
    if (system(cmd)) printf("note: could not remove %s\n", aur_test_dir);
}

/* 1 if a model's table equals a reference manifest (a JSON file in tests/fixtures/manifests):
   every key and shape in order, and the parameter count. Include after aurora.h. */
#ifdef AUR__AURORA_H
static inline int aur_test_same_as_manifest(const aur_model *m, const char *path)
{
    cJSON *man = aur_json_load(path);
    const cJSON *list = man ? cJSON_GetObjectItemCaseSensitive(man, "tensors") : NULL;
    int same = m && list && cJSON_GetArraySize(list) == aur_model_count(m), i = 0;
    for (const cJSON *e = list ? list->child : NULL; same && e; e = e->next, i++) {
        const aur_tensor *p = aur_model_at(m, i);
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        same = !strcmp(p->name, cJSON_GetObjectItemCaseSensitive(e, "key")->valuestring) && cJSON_GetArraySize(shape) == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = cJSON_GetArrayItem(shape, d)->valuedouble == (double)p->shape[d];
    }
    double count = man ? cJSON_GetObjectItemCaseSensitive(man, "num_parameters")->valuedouble : -1;
    same = same && (double)aur_model_numel(m, 0) == count;
    cJSON_Delete(man);
    return same;
}

static inline int aur_test_same_names(const aur_var_list *a, const aur_var_list *b)
{
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->name[i], b->name[i])) return 0;
    return 1;
}

static inline int aur_test_same_tensors(const aur_var_list *names, aur_tensor *const *a, aur_tensor *const *b)
{
    for (int i = 0; i < names->n; i++)
        if (a[i]->numel != b[i]->numel || memcmp(a[i]->data, b[i]->data, sizeof(aur_real) * (size_t)a[i]->numel)) return 0;
    return 1;
}

/* 1 if two host batches are equal bit for bit: sizes, names, every tensor, coordinates, levels, times and step. */
static inline int aur_test_same_batch(const aur_batch *a, const aur_batch *b)
{
    if (!a || !b || a->B != b->B || a->T != b->T || a->C != b->C || a->H != b->H || a->W != b->W || a->lat_2d != b->lat_2d ||
        a->lon_2d != b->lon_2d || !aur_test_same_names(&a->surf_names, &b->surf_names) ||
        !aur_test_same_names(&a->static_names, &b->static_names) || !aur_test_same_names(&a->atmos_names, &b->atmos_names))
        return 0;
    int64_t hw = (int64_t)a->H * a->W;
    return aur_test_same_tensors(&a->surf_names, a->surf, b->surf) && aur_test_same_tensors(&a->static_names, a->statics, b->statics) &&
           aur_test_same_tensors(&a->atmos_names, a->atmos, b->atmos) && !memcmp(a->lat, b->lat, sizeof(float) * (size_t)(a->lat_2d ? hw : a->H)) &&
           !memcmp(a->lon, b->lon, sizeof(float) * (size_t)(a->lon_2d ? hw : a->W)) && !memcmp(a->levels, b->levels, sizeof(double) * (size_t)a->C) &&
           !memcmp(a->time, b->time, sizeof(double) * (size_t)a->B) && a->step_seconds == b->step_seconds && a->rollout_step == b->rollout_step;
}
#endif

#endif
