#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Fine-tuning: several runs' curves on one figure ==== */
/* The way the Surya lecture chooses a learning rate (and compares LoRA, full
   fine-tuning and a baseline): every run's curves on one chart. This reads
   each run directory's metrics.jsonl (what the trainer writes) and draws one
   panel per metric, one line per run, labelled by the directory's name. */

#define AUR__COMPARE_MAX_METRICS 16

typedef struct aur__run_curves {
    double *step, *value; /* [metric * cap + i] */
    int *n;               /* points per metric */
    int cap;              /* lines read */
} aur__run_curves;

/* The directory's last path component: "runs/lr-1e-3/" -> "lr-1e-3". */
static void aur__run_label(const char *dir, char *out, size_t size)
{
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(out, size, "%.*s", (int)(end - start), dir + start);
}

/* Every key of a line that names a number (or null: a metric without a value
   at that step), in the order a reader expects: loss first, then validation. */
static int aur__metric_wanted(const char *key)
{
    return !strcmp(key, "loss") || !strcmp(key, "val_loss") || !strncmp(key, "val/", 4);
}

static int aur__metric_index(char names[][64], int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], key)) return i;
    return -1;
}

/* Finds the metrics to draw when none are named: loss, val_loss and each
   val/<metric>, in the order they first appear in the runs. */
static int aur__discover_metrics(FILE *const *fps, int n_runs, char names[][64], int *n_names)
{
    char *line = NULL;
    size_t cap = 0;
    for (int r = 0; r < n_runs; r++) {
        rewind(fps[r]);
        while (getline(&line, &cap, fps[r]) > 0) {
            cJSON *j = aur__cjson_parse(line, strlen(line), NULL);
            for (const cJSON *it = j ? j->child : NULL; it; it = it->next)
                if (aur__metric_wanted(it->string) && (cJSON_IsNumber(it) || cJSON_IsNull(it)) &&
                    aur__metric_index(names, *n_names, it->string) < 0 && *n_names < AUR__COMPARE_MAX_METRICS)
                    snprintf(names[(*n_names)++], 64, "%s", it->string);
            cJSON_Delete(j);
        }
    }
    free(line);
    return 0;
}

/* One run's (step, value) points for each metric; lines that do not parse are
   named with their line number. */
static int aur__read_curves(FILE *fp, const char *path, char names[][64], int n_names, aur__run_curves *c)
{
    char *line = NULL;
    size_t cap = 0;
    int lines = 0, rc = 0;
    rewind(fp);
    while (getline(&line, &cap, fp) > 0) lines++;
    c->cap = lines > 0 ? lines : 1;
    c->step = (double *)AUR_MALLOC(sizeof(double) * (size_t)c->cap * (size_t)n_names);
    c->value = (double *)AUR_MALLOC(sizeof(double) * (size_t)c->cap * (size_t)n_names);
    c->n = (int *)calloc((size_t)n_names, sizeof(int));
    if (!c->step || !c->value || !c->n) rc = aur__err(AUR_ENOMEM, "out of memory reading %s", path);
    rewind(fp);
    for (int ln = 1; !rc && getline(&line, &cap, fp) > 0; ln++) {
        if (line[0] == '\n' || !line[0]) continue;
        cJSON *j = aur__cjson_parse(line, strlen(line), NULL);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
        if (!cJSON_IsNumber(st)) rc = aur__err(AUR_EFORMAT, "%s:%d: not a metrics line (a JSON object with a \"step\" number expected)", path, ln);
        for (int m = 0; !rc && m < n_names; m++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, names[m]);
            if (!v || !(cJSON_IsNumber(v) || cJSON_IsNull(v))) continue;
            int i = c->n[m]++;
            c->step[(size_t)m * c->cap + i] = st->valuedouble;
            c->value[(size_t)m * c->cap + i] = cJSON_IsNumber(v) ? v->valuedouble : NAN; /* null: a gap */
        }
        cJSON_Delete(j);
    }
    free(line);
    return rc;
}

static void aur__curves_free(aur__run_curves *c)
{
    AUR_FREE(c->step);
    AUR_FREE(c->value);
    free(c->n);
}

/* The panels: metric m of every run that logged it. */
static int aur__draw_runs(const char *png, char names[][64], int n_names, const aur__run_curves *c, char labels[][128], int n_runs)
{
    aur_plot_series series[8 * AUR__COMPARE_MAX_METRICS];
    aur_plot_panel panels[AUR__COMPARE_MAX_METRICS];
    for (int m = 0; m < n_names; m++) {
        int k = 0;
        for (int r = 0; r < n_runs; r++)
            if (c[r].n[m] > 0)
                series[m * 8 + k++] = (aur_plot_series){labels[r], c[r].step + (size_t)m * c[r].cap, c[r].value + (size_t)m * c[r].cap, c[r].n[m]};
        panels[m] = (aur_plot_panel){names[m], series + m * 8, k, 0};
    }
    return aur_plot_panels(png, 900, 240, "step", panels, n_names);
}

AURDEF int aur_plot_runs(const char *png, const char *const *run_dirs, int n_runs, const char *const *metrics, int n_metrics)
{
    if (!png || !run_dirs || n_runs < 1 || n_runs > 8)
        return aur__err(AUR_EINVAL, "aur_plot_runs: %d runs given; 1 to 8 run directories fit one figure", n_runs);
    if (n_metrics < 0 || n_metrics > AUR__COMPARE_MAX_METRICS || (n_metrics && !metrics))
        return aur__err(AUR_EINVAL, "aur_plot_runs: %d metrics given; 0 (all found) to %d", n_metrics, AUR__COMPARE_MAX_METRICS);
    FILE *fps[8] = {0};
    char paths[8][1100], labels[8][128], names[AUR__COMPARE_MAX_METRICS][64];
    aur__run_curves curves[8];
    memset(curves, 0, sizeof curves);
    int rc = 0, n_names = 0;
    for (int r = 0; !rc && r < n_runs; r++) {
        snprintf(paths[r], sizeof paths[r], "%s/metrics.jsonl", run_dirs[r]);
        aur__run_label(run_dirs[r], labels[r], sizeof labels[r]);
        fps[r] = fopen(paths[r], "rb");
        if (!fps[r]) rc = aur__err(AUR_EIO, "%s: %s (a run directory of aurora-train expected)", paths[r], strerror(errno));
    }
    for (int m = 0; !rc && m < n_metrics; m++) {
        if (!metrics[m] || !metrics[m][0] || strlen(metrics[m]) >= 64) rc = aur__err(AUR_EINVAL, "aur_plot_runs: metric %d: a name of 1 to 63 characters expected", m);
        else snprintf(names[n_names++], 64, "%s", metrics[m]);
    }
    if (!rc && n_metrics == 0) rc = aur__discover_metrics(fps, n_runs, names, &n_names);
    if (!rc && n_names == 0) rc = aur__err(AUR_EFORMAT, "%s: no loss or val_ metrics to draw (an empty run?)", paths[0]);
    for (int r = 0; !rc && r < n_runs; r++) rc = aur__read_curves(fps[r], paths[r], names, n_names, &curves[r]);
    for (int m = 0; !rc && m < n_names; m++) {
        int found = 0;
        for (int r = 0; r < n_runs; r++) found += curves[r].n[m] > 0;
        if (!found) rc = aur__err(AUR_EINVAL, "metric '%s': in none of the runs' metrics.jsonl (e.g. loss, val_loss, val/tss)", names[m]);
    }
    if (!rc) rc = aur__draw_runs(png, names, n_names, curves, labels, n_runs);
    for (int r = 0; r < n_runs; r++) {
        if (fps[r]) fclose(fps[r]);
        aur__curves_free(&curves[r]);
    }
    return rc;
}
