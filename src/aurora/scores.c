#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: forecast scores as WeatherBench2 defines them ====
   weatherbench2/metrics.py: every spatial mean is weighted by latitude,
   with get_lat_weights' weights: the area of each row's cell on the sphere
   (sin of its upper bound less sin of its lower; bounds halfway between
   rows, and at the poles), divided by their mean. Then, per variable,
   level and lead time:
     RMSE = sqrt(mean over forecasts of the weighted spatial mean of (f - o)^2)
     ACC  = mean over forecasts of  mean_w(f' o') / sqrt(mean_w(f'^2) mean_w(o'^2)),
            f' = f - climatology, o' = o - climatology (not centred again).
   Cells where a value is not finite are left out of that forecast's means
   (the weights of the rest renormalised). */

AURDEF int aur_lat_weights(const float *lat, int H, double *w)
{
    if (!lat || !w || H < 1) return aur__err(AUR_EINVAL, "aur_lat_weights: %d latitudes", H);
    if (H == 1) return w[0] = 1, 0;
    int down = lat[0] > lat[H - 1];
    const double rad = 3.14159265358979323846 / 180;
    double sum = 0;
    for (int i = 0; i < H; i++) { /* row i's neighbours in increasing latitude */
        double x = lat[i], below = down ? (i + 1 < H ? lat[i + 1] : -90) : (i ? lat[i - 1] : -90);
        double above = down ? (i ? lat[i - 1] : 90) : (i + 1 < H ? lat[i + 1] : 90);
        if (!(x >= -90 && x <= 90) || (i && !(down ? lat[i] < lat[i - 1] : lat[i] > lat[i - 1])))
            return aur__err(AUR_EINVAL, "latitude weights: latitudes must be monotonic within [-90, 90] (row %d: %g)", i, x);
        double lo = (i == (down ? H - 1 : 0)) ? -90 : (x + below) / 2, hi = (i == (down ? 0 : H - 1)) ? 90 : (x + above) / 2;
        w[i] = sin(hi * rad) - sin(lo * rad);
        sum += w[i];
    }
    for (int i = 0; i < H; i++) w[i] /= sum / H;
    return 0;
}

/* The time of step k of a series (its last step is b->time[0]); NaN where its spacing is not known. */
static double aur__series_time(const aur_batch *b, int k)
{
    if (k == b->T - 1) return b->time[0];
    return b->step_seconds > 0 ? b->time[0] - (double)(b->T - 1 - k) * b->step_seconds : NAN;
}

AURDEF int aur_series_step_at(const aur_batch *b, double t)
{
    for (int k = 0; b && k < b->T; k++)
        if (fabs(aur__series_time(b, k) - t) < 1) return k;
    return -1;
}

/* A climatology's step for valid time t: the one with t's day of the year and hour (any year), or its only step. */
AURDEF int aur_climatology_step(const aur_batch *clim, double t)
{
    if (!clim) return -1;
    if (clim->T == 1) return 0;
    char want[32], have[32];
    aur__format_time((int64_t)llround(t) * 1000000000LL, want, sizeof want);
    for (int k = 0; k < clim->T; k++) {
        if (!isfinite(aur__series_time(clim, k))) continue;
        aur__format_time((int64_t)llround(aur__series_time(clim, k)) * 1000000000LL, have, sizeof have);
        if (!strcmp(want + 4, have + 4)) return k; /* "-MM-DD hh:mm:ss" */
    }
    return -1;
}

static aur_score *aur__score_row(aur_scores *s, const char *var, int atmos, double level, double lead)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->rows[i].var, var) && s->rows[i].atmos == atmos && s->rows[i].level == level && s->rows[i].lead_hours == lead)
            return &s->rows[i];
    aur_score *grown = (aur_score *)AUR_REALLOC(s->rows, sizeof *grown * (size_t)(s->n + 1));
    if (!grown) return aur__err(AUR_ENOMEM, "out of memory for scores"), (aur_score *)NULL;
    s->rows = grown;
    aur_score *r = &s->rows[s->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->var, sizeof r->var, "%s", var);
    r->atmos = atmos, r->level = level, r->lead_hours = lead;
    return r;
}

/* One field's weighted means: of the squared error, and the three ACC sums (clim NULL: none). */
static void aur__score_field(aur_score *r, const float *f, const float *o, const float *c, const double *w, int H, int W)
{
    double sw = 0, se = 0, fo = 0, ff = 0, oo = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            size_t i = (size_t)y * W + x;
            double cl = c ? c[i] : 0;
            if (!isfinite(f[i]) || !isfinite(o[i]) || !isfinite(cl)) continue;
            double d = (double)f[i] - o[i], fa = f[i] - cl, oa = o[i] - cl;
            sw += w[y], se += w[y] * d * d, fo += w[y] * fa * oa, ff += w[y] * fa * fa, oo += w[y] * oa * oa;
        }
    if (!(sw > 0)) return; /* nothing finite: this forecast adds nothing */
    r->sum_mse += se / sw, r->n++;
    if (c && ff > 0 && oo > 0) r->sum_acc += fo / sqrt(ff * oo), r->n_acc++;
}

/* The (H, W) field of variable i of a group at step k and level c (rows beyond H cut, as the model's crop). */
static const float *aur__score_plane(const aur_tensor *t, int k, int C, int c, int rows, int W)
{
    const float *x = (const float *)t->data;
    return x + (((size_t)k * (size_t)(C ? C : 1) + (size_t)c) * (size_t)rows) * (size_t)W;
}

AURDEF int aur_scores_add(aur_scores *s, double lead_hours, const aur_batch *pred, const aur_batch *truth, int t_truth, const aur_batch *clim, int t_clim)
{
    if (!s || !pred || !truth) return aur__err(AUR_EINVAL, "aur_scores_add: scores, a prediction and a truth are needed");
    int H = pred->H, W = pred->W;
    if (pred->B != 1 || pred->T != 1 || truth->B != 1 || t_truth < 0 || t_truth >= truth->T || (clim && (clim->B != 1 || t_clim < 0 || t_clim >= clim->T)))
        return aur__err(AUR_EINVAL, "scores: one prediction (B 1, T 1) against one step of a truth (and climatology) series of B 1");
    if (truth->W != W || truth->H < H || truth->H > H + 1 || (clim && (clim->W != W || clim->H < H || clim->H > H + 1)))
        return aur__err(AUR_ESHAPE, "scores: the truth's grid %d x %d (climatology %d x %d) is not the forecast's %d x %d", truth->H, truth->W,
                        clim ? clim->H : 0, clim ? clim->W : 0, H, W);
    if (pred->lat_2d || pred->lon_2d) return aur__err(AUR_EUNSUPPORTED, "scores: 2-D latitude or longitude grids are not scored");
    for (int y = 0; y < H; y++)
        if (fabs(truth->lat[y] - pred->lat[y]) > 1e-3 || (clim && fabs(clim->lat[y] - pred->lat[y]) > 1e-3))
            return aur__err(AUR_ESHAPE, "scores: the truth's (or climatology's) latitude %g is not the forecast's %g", truth->lat[y], pred->lat[y]);
    for (int x = 0; x < W; x++)
        if (fabs(truth->lon[x] - pred->lon[x]) > 1e-3 || (clim && fabs(clim->lon[x] - pred->lon[x]) > 1e-3))
            return aur__err(AUR_ESHAPE, "scores: the truth's (or climatology's) longitude %g is not the forecast's %g", truth->lon[x], pred->lon[x]);
    double *w = (double *)aur__malloc(sizeof(double) * (size_t)H, "latitude weights");
    int rc = w ? aur_lat_weights(pred->lat, H, w) : AUR_ENOMEM;
    for (int g = 0; g < 2 && !rc; g++) {
        const aur_var_list *names = g ? &pred->atmos_names : &pred->surf_names;
        for (int i = 0; i < names->n && !rc; i++) {
            const char *v = names->name[i];
            const aur_tensor *p = g ? aur_batch_atmos(pred, v) : aur_batch_surf(pred, v), *o = g ? aur_batch_atmos(truth, v) : aur_batch_surf(truth, v);
            const aur_tensor *c = !clim ? NULL : g ? aur_batch_atmos(clim, v) : aur_batch_surf(clim, v);
            if (!o) { rc = aur__err(AUR_EINVAL, "scores: the truth has no %s variable '%s'", g ? "atmospheric" : "surface", v); break; }
            if (clim && !c) { rc = aur__err(AUR_EINVAL, "scores: the climatology has no %s variable '%s'", g ? "atmospheric" : "surface", v); break; }
            if (p->dtype != AUR_F32 || p->device != AUR_CPU || o->dtype != AUR_F32 || o->device != AUR_CPU || (c && (c->dtype != AUR_F32 || c->device != AUR_CPU))) {
                rc = aur__err(AUR_EINVAL, "scores: '%s' must be F32 in host memory", v);
                break;
            }
            int C = g ? pred->C : 0;
            int same = !g || (truth->C == C && (!clim || clim->C == C));
            for (int lev = 0; same && g && lev < C; lev++)
                same = fabs(truth->levels[lev] - pred->levels[lev]) < 1e-6 && (!clim || fabs(clim->levels[lev] - pred->levels[lev]) < 1e-6);
            if (!same) { rc = aur__err(AUR_ESHAPE, "scores: the truth (or climatology) has other pressure levels, or another order, than the forecast"); break; }
            for (int lev = 0; lev < (g ? C : 1) && !rc; lev++) {
                aur_score *r = aur__score_row(s, v, g, g ? pred->levels[lev] : 0, lead_hours);
                if (!r) { rc = AUR_ENOMEM; break; }
                aur__score_field(r, aur__score_plane(p, 0, C, lev, H, W), aur__score_plane(o, t_truth, C, lev, truth->H, W),
                                 c ? aur__score_plane(c, t_clim, C, lev, clim->H, W) : NULL, w, H, W);
            }
        }
    }
    AUR_FREE(w);
    return rc;
}

AURDEF void aur_scores_finish(aur_scores *s)
{
    for (int i = 0; s && i < s->n; i++) {
        aur_score *r = &s->rows[i];
        r->rmse = r->n ? sqrt(r->sum_mse / r->n) : NAN;
        r->acc = r->n_acc ? r->sum_acc / r->n_acc : NAN;
    }
}

AURDEF int aur_scores_write_jsonl(const aur_scores *s, const char *path)
{
    FILE *fp = fopen(path, "w");
    if (!fp) return aur__err(AUR_EIO, "%s: cannot write: %s", path, strerror(errno));
    for (int i = 0; i < s->n; i++) {
        const aur_score *r = &s->rows[i];
        fprintf(fp, "{\"variable\": \"%s\", ", r->var);
        if (r->atmos) fprintf(fp, "\"level\": %g, ", r->level);
        fprintf(fp, "\"lead_hours\": %g, \"n\": %d", r->lead_hours, r->n);
        if (isfinite(r->rmse)) fprintf(fp, ", \"rmse\": %.9g", r->rmse);
        if (isfinite(r->acc)) fprintf(fp, ", \"acc\": %.9g", r->acc);
        fprintf(fp, "}\n");
    }
    int bad = ferror(fp);
    if (fclose(fp) || bad) return aur__err(AUR_EIO, "%s: cannot write", path);
    return 0;
}

AURDEF void aur_scores_free(aur_scores *s)
{
    if (!s) return;
    AUR_FREE(s->rows);
    s->rows = NULL, s->n = 0;
}
