#include "api.h"
#include "../core/platform.h"

/* ==== Surya: scalers ==== */

AURDEF int aur_surya_normalise(aur_tensor *x, const aur_surya_scaler *s, int C, int inverse)
{
    if (!x || x->ndim < 2 || x->shape[1] != C || x->device != AUR_CPU)
        return aur__err(AUR_EINVAL, "aur_surya_normalise: x must be a CPU tensor (B, %d, ...)", C);
    int64_t inner = x->numel / (x->shape[0] * C);
    aur_real *v = aur_tensor_f32(x);
    for (int64_t b = 0; b < x->shape[0]; b++)
        for (int c = 0; c < C; c++) {
            float scale = (float)s[c].sl_scale_factor, mean = (float)s[c].mean, den = (float)s[c].std + (float)s[c].epsilon;
            aur_real *p = v + (b * C + c) * inner;
            for (int64_t i = 0; i < inner; i++) {
                if (!inverse) {
                    float y = (float)p[i] * scale;
                    y = y >= 0 ? log1pf(y) : -log1pf(-y);
                    p[i] = (aur_real)((y - mean) / den);
                } else {
                    float y = (float)p[i] * den + mean;
                    p[i] = (aur_real)((y >= 0 ? expm1f(y) : -expm1f(-y)) / scale);
                }
            }
        }
    return 0;
}

static const char *const aur__sdo_channels[] = {"aia94", "aia131", "aia171", "aia193", "aia211", "aia304", "aia335",
                                                 "aia1600", "hmi_m", "hmi_bx", "hmi_by", "hmi_bz", "hmi_v", NULL};

AURDEF const char *const *aur_surya_channel_names(void) { return aur__sdo_channels; }

AURDEF int aur_surya_check_batch(const aur_tensor *ts, const char *const *names, const aur_check_opts *opts, aur_check_report *rep)
{
    if (!ts || ts->ndim != 5 || ts->device != AUR_CPU)
        return aur__err(AUR_EINVAL, "aur_surya_check_batch: ts must be a CPU tensor (B, C, T, H, W)");
    aur_check_opts o = opts ? *opts : aur_check_defaults();
    int64_t B = ts->shape[0], C = ts->shape[1], T = ts->shape[2], hw = ts->shape[3] * ts->shape[4];
    if (!names && C > 13) return aur__err(AUR_EINVAL, "aur_surya_check_batch: %lld channels; give their names", (long long)C);
    aur_check_report r = {(int)C, 0, 0, (aur_var_check *)aur__calloc(sizeof(aur_var_check) * (size_t)C, "a data-check report")};
    if (!r.vars) return AUR_ENOMEM;
    const aur_real *x = (const aur_real *)ts->data;
    int first = -1;
    for (int64_t c = 0; c < C; c++) {
        aur_var_check *v = &r.vars[c];
        snprintf(v->name, sizeof v->name, "%s", names ? names[c] : aur__sdo_channels[c]);
        v->kind = "channel", v->present = v->used = 1;
        aur__moments s = {0, 0, 0, 0, 0, 0};
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++) { /* the data is normalised already: location 0, scale 1 */
                const aur_real *f = x + ((b * C + c) * T + t) * hw;
                aur__moments_add(&s, f, hw, 0, 1, o.outlier_z);
                v->zero_fields += aur__field_is_zero(f, hw), v->fields++;
            }
        v->count = s.count, v->nonfinite = s.nonfinite, v->outliers = s.outliers;
        v->mean = aur__moments_mean(&s), v->std = aur__moments_std(&s), v->max_abs_z = s.max_abs_z;
        aur__grade(v, &o, o.nan_ok && aur_name_matches(o.nan_ok, v->name));
        r.errors += v->severity == AUR_CHECK_ERROR, r.warnings += v->severity == AUR_CHECK_WARNING;
        if (v->severity == AUR_CHECK_ERROR && first < 0) first = (int)c;
    }
    int rc = first < 0 ? 0 : aur__err(AUR_EFORMAT, "data check: channel '%s': %s", r.vars[first].name, r.vars[first].message);
    if (rep) *rep = r;
    else AUR_FREE(r.vars);
    return rc;
}
