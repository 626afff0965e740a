#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

/* ==== fine-tuning: windows of a series ==== */

static void aur__copy_steps(const aur_tensor *src, aur_tensor *dst, int B, int T_src, int start, int T_dst, int64_t per_step)
{
    for (int b = 0; b < B; b++)
        memcpy((aur_real *)dst->data + (int64_t)b * T_dst * per_step, (const aur_real *)src->data + ((int64_t)b * T_src + start) * per_step,
               sizeof(aur_real) * (size_t)(T_dst * per_step));
}

AURDEF aur_batch *aur_batch_window(const aur_batch *s, int start, int history, double step_seconds)
{
    if (!s || history < 1 || start < 0 || start + history > s->T) {
        aur__err(AUR_EINVAL, "window of %d steps at step %d: the series has %d steps", history, start, s ? s->T : 0);
        return NULL;
    }
    aur_batch *w = aur_batch_create(s->B, history, s->C, s->H, s->W, &s->surf_names, &s->static_names, &s->atmos_names);
    if (!w) return NULL;
    int64_t hw = (int64_t)s->H * s->W;
    if (s->lat_2d || s->lon_2d) { /* curvilinear grids: coordinates per cell */
        AUR_FREE(w->lat);
        AUR_FREE(w->lon);
        w->lat = (float *)aur__malloc(sizeof(float) * (size_t)hw, "latitudes");
        w->lon = (float *)aur__malloc(sizeof(float) * (size_t)hw, "longitudes");
        w->lat_2d = s->lat_2d, w->lon_2d = s->lon_2d;
        if (!w->lat || !w->lon) {
            aur_batch_free(w);
            return NULL;
        }
    }
    for (int i = 0; i < s->surf_names.n; i++) aur__copy_steps(s->surf[i], w->surf[i], s->B, s->T, start, history, hw);
    for (int i = 0; i < s->atmos_names.n; i++) aur__copy_steps(s->atmos[i], w->atmos[i], s->B, s->T, start, history, hw * s->C);
    for (int i = 0; i < s->static_names.n; i++) memcpy(w->statics[i]->data, s->statics[i]->data, sizeof(aur_real) * (size_t)hw);
    memcpy(w->lat, s->lat, sizeof(float) * (size_t)(s->lat_2d ? hw : s->H));
    memcpy(w->lon, s->lon, sizeof(float) * (size_t)(s->lon_2d ? hw : s->W));
    memcpy(w->levels, s->levels, sizeof w->levels);
    w->step_seconds = s->step_seconds;
    for (int b = 0; b < s->B; b++) w->time[b] = s->time[b] - (double)(s->T - start - history) * step_seconds;
    return w;
}
