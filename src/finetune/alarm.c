#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

/* ==== fine-tuning: exploding gradients ==== */

AURDEF void aur_grad_alarm_init(aur_grad_alarm *a, int window, double z, int skip)
{
    memset(a, 0, sizeof *a);
    a->window = window < 2 ? 2 : window > AUR_ALARM_WINDOW ? AUR_ALARM_WINDOW : window;
    a->z = z > 0 ? z : 6;
    a->min_history = a->window < 10 ? a->window : 10;
    a->skip = skip;
}

/* z-score of log(norm) against a series' window, or 0 while it is short. */
static double aur__alarm_z(const aur_grad_alarm *a, int s, double norm)
{
    int n = a->count[s] < a->window ? a->count[s] : a->window;
    if (n < a->min_history || !(norm > 0)) return 0;
    double sum = 0, sumsq = 0;
    for (int i = 0; i < n; i++) sum += a->hist[s][i], sumsq += a->hist[s][i] * a->hist[s][i];
    double mean = sum / n, sd = sqrt(fmax(0, sumsq / n - mean * mean));
    return (log(norm) - mean) / fmax(sd, 0.05); /* a floor: a constant history must not make every wiggle an alarm */
}

static void aur__alarm_push(aur_grad_alarm *a, int s, double norm)
{
    if (!(norm > 0) || !isfinite(norm)) return;
    a->hist[s][a->count[s] % a->window] = log(norm);
    a->count[s]++;
}

AURDEF int aur_grad_alarm_check(aur_grad_alarm *a, double total, const double *group_norms, const char *const *group_names,
                                int n_groups, char *msg, size_t size)
{
    if (n_groups > AUR_ALARM_GROUPS) n_groups = AUR_ALARM_GROUPS;
    int worst = -1;
    double worst_z = 0;
    for (int g = 0; g < n_groups; g++) {
        double z = isfinite(group_norms[g]) ? aur__alarm_z(a, g + 1, group_norms[g]) : INFINITY;
        if (z > worst_z) worst_z = z, worst = g;
    }
    double zt = isfinite(total) ? aur__alarm_z(a, 0, total) : INFINITY;
    int alarm = zt > a->z || worst_z > a->z;
    if (alarm) {
        a->alarms++;
        if (msg)
            snprintf(msg, size, "gradient norm %.4g (z %.1f)%s%s%s%s", total, zt, worst >= 0 ? "; it started in group '" : "",
                     worst >= 0 ? group_names[worst] : "", worst >= 0 ? "'" : "", a->skip ? "; update skipped" : "");
        return 1;
    }
    aur__alarm_push(a, 0, total);
    for (int g = 0; g < n_groups; g++) aur__alarm_push(a, g + 1, group_norms[g]);
    if (msg && size) msg[0] = 0;
    return 0;
}
