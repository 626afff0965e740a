#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

/* ==== plot: forecasts ====
   A predicted field beside its truth, and their difference (the trainer's
   maps and aurora-forecast's); and, as WeatherBench2's score cards draw
   them, per variable RMSE against lead time, one line per pressure level
   (up to 8, spread over the levels). */

AURDEF int aur_plot_versus(const char *stem, const float *pred, const float *truth, int H, int W, const char *pred_name, const char *truth_name,
                           const char *title)
{
    char path[1200], etitle[128];
    const float *maps[2] = {pred, truth};
    const char *titles[2] = {pred_name, truth_name};
    int scale = W >= 256 ? 1 : 512 / W < 1 ? 1 : 512 / W;
    snprintf(path, sizeof path, "%s.png", stem);
    int rc = aur_plot_maps(path, maps, titles, truth ? 2 : 1, H, W, scale, 0, 0, 0, title);
    if (rc || !truth) return rc;
    size_t n = (size_t)H * (size_t)W;
    float *err = (float *)aur__malloc(sizeof(float) * n, "an error map");
    if (!err) return AUR_ENOMEM;
    for (size_t i = 0; i < n; i++) err[i] = pred[i] - truth[i];
    const float *e[1] = {err};
    snprintf(etitle, sizeof etitle, "%s - %s", pred_name, truth_name);
    const char *et[1] = {etitle};
    snprintf(path, sizeof path, "%s_error.png", stem);
    rc = aur_plot_maps(path, e, et, 1, H, W, scale, 0, 0, 1, title);
    AUR_FREE(err);
    return rc;
}

/* The distinct levels of a variable's rows, in the order they first come. */
static int aur__score_levels(const aur_scores *s, const aur_score *v, double *levels)
{
    int n = 0;
    for (int e = 0; e < s->n; e++) {
        const aur_score *r = &s->rows[e];
        if (strcmp(r->var, v->var) || r->atmos != v->atmos) continue;
        int seen = 0;
        for (int l = 0; l < n; l++) seen |= levels[l] == r->level;
        if (!seen && n < AUR_MAX_LEVELS) levels[n++] = r->level;
    }
    return n;
}

/* One variable's chart: prefix + "rmse_VAR.png" (surface) or "rmse_VAR_levels.png". */
static int aur__score_plot_var(const aur_scores *s, const aur_score *v, const char *prefix)
{
    double levels[AUR_MAX_LEVELS];
    int nl = aur__score_levels(s, v, levels), ns = nl < 8 ? nl : 8;
    aur_plot_series series[8];
    char labels[8][AUR_NAME_LEN + 16];
    double *xy = (double *)aur__calloc(sizeof(double) * 2 * 8 * (size_t)s->n, "a score plot");
    if (!xy) return AUR_ENOMEM;
    for (int l = 0; l < ns; l++) {
        double level = levels[nl <= 8 ? l : l * (nl - 1) / 7], *x = xy + (size_t)2 * l * s->n, *y = x + s->n;
        int n = 0;
        for (int e = 0; e < s->n; e++) {
            const aur_score *r = &s->rows[e];
            if (!strcmp(r->var, v->var) && r->atmos == v->atmos && r->level == level) x[n] = r->lead_hours, y[n] = r->rmse, n++;
        }
        if (v->atmos) snprintf(labels[l], sizeof labels[l], "%g hPa", level);
        else snprintf(labels[l], sizeof labels[l], "%s", v->var);
        series[l].label = labels[l], series[l].x = x, series[l].y = y, series[l].n = n;
    }
    char path[1200], title[AUR_NAME_LEN + 48];
    snprintf(path, sizeof path, "%srmse_%s%s.png", prefix, v->var, v->atmos ? "_levels" : "");
    snprintf(title, sizeof title, "%s: latitude-weighted RMSE", v->var);
    int rc = aur_plot_lines(path, 640, 400, title, "lead time (hours)", series, ns, 0);
    AUR_FREE(xy);
    return rc;
}

AURDEF int aur_scores_plot(const aur_scores *s, const char *prefix)
{
    for (int i = 0; s && i < s->n; i++) {
        int first = 1;
        for (int e = 0; e < i; e++) first &= strcmp(s->rows[e].var, s->rows[i].var) || s->rows[e].atmos != s->rows[i].atmos;
        int rc = first ? aur__score_plot_var(s, &s->rows[i], prefix) : 0;
        if (rc) return rc;
    }
    return 0;
}
