#include "api.h"
#include "../core/platform.h"

/* ==== Surya: scalers ==== */

/* 1 if text is one whole finite number (strtod's forms), into *v. */
static int aur__text_number(const char *text, double *v)
{
    char *end = NULL;
    *v = strtod(text, &end);
    return end != text && !*end && isfinite(*v);
}

/* helio.py transform() of one value in float32: signum-log of x * sl, then (. - mean) / den. */
static float aur__surya_scale_f32(float x, float sl, float mean, float den)
{
    float y = x * sl;
    y = y >= 0 ? log1pf(y) : -log1pf(-y);
    return (y - mean) / den;
}

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
                    p[i] = (aur_real)aur__surya_scale_f32((float)p[i], scale, mean, den);
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

/* ---- the scalers file ----
   Surya-1.0's scalers.yaml: channel -> the StandardScaler.to_dict() of
   surya/datasets/transformations.py (base, class, epsilon, mean, std, min,
   max, sl_scale_factor, is_fitted; numbers written as strings), read by
   surya/utils/data.py: build_scalers, which keeps each as np.float32. */

#ifdef AUR_NETCDF
#include <yaml.h>

/* The parser's error, naming the line. */
static int aur__yaml_error(const yaml_parser_t *p, const char *path)
{
    return aur__err(AUR_EFORMAT, "%s line %zu: %s", path, p->problem_mark.line + 1, p->problem ? p->problem : "not YAML");
}

/* A scaler field's value: a number, quoted or not. */
static int aur__scaler_number(const char *path, const char *channel, const char *key, const char *text, double *v)
{
    if (!aur__text_number(text, v))
        return aur__err(AUR_EFORMAT, "%s: %s.%s is '%s', not a number (is the scaler fitted?)", path, channel, key, text);
    return 0;
}

/* One channel's mapping (the parser just past its MAPPING_START): its fields into s. */
static int aur__scaler_fields(yaml_parser_t *p, const char *path, const char *channel, aur_surya_scaler *s, int *have)
{
    char key[64] = "";
    for (int want_key = 1;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(p, &e)) return aur__yaml_error(p, path);
        int type = e.type, rc = 0;
        const char *text = type == YAML_SCALAR_EVENT ? (const char *)e.data.scalar.value : "";
        if (type == YAML_MAPPING_END_EVENT) { yaml_event_delete(&e); return 0; }
        if (type != YAML_SCALAR_EVENT) rc = aur__err(AUR_EFORMAT, "%s: %s.%s: expected a single value", path, channel, want_key ? "(a key)" : key);
        else if (want_key) snprintf(key, sizeof key, "%s", text);
        else if (!strcmp(key, "class") && strcmp(text, "StandardScaler"))
            rc = aur__err(AUR_EUNSUPPORTED, "%s: %s is a %s; Surya's data are scaled by StandardScaler", path, channel, text);
        else {
            static const char *const names[] = {"mean", "std", "epsilon", "sl_scale_factor"};
            double *slot[] = {&s->mean, &s->std, &s->epsilon, &s->sl_scale_factor};
            for (int k = 0; k < 4 && !rc; k++)
                if (!strcmp(key, names[k])) rc = aur__scaler_number(path, channel, key, text, slot[k]), *have |= 1 << k;
        }
        want_key = !want_key;
        yaml_event_delete(&e);
        if (rc) return rc;
    }
}

/* Skips one node (the parser just read its first event e). */
static int aur__yaml_skip(yaml_parser_t *p, yaml_event_type_t first, const char *path)
{
    int depth = first == YAML_MAPPING_START_EVENT || first == YAML_SEQUENCE_START_EVENT;
    while (depth > 0) {
        yaml_event_t e;
        if (!yaml_parser_parse(p, &e)) return aur__yaml_error(p, path);
        depth += (e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT) -
                 (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT);
        yaml_event_delete(&e);
    }
    return 0;
}

/* The top-level mapping: each wanted channel's scaler; the others skipped. */
static int aur__scalers_walk(yaml_parser_t *p, const char *path, const char *const *channels, int C, aur_surya_scaler *out, int *have)
{
    int depth = 0, rc = 0;
    for (int done = 0; !done && !rc;) {
        yaml_event_t e;
        if (!yaml_parser_parse(p, &e)) return aur__yaml_error(p, path);
        if (e.type == YAML_STREAM_END_EVENT) done = 1;
        else if (e.type == YAML_MAPPING_START_EVENT && depth == 0) depth = 1;
        else if (e.type == YAML_MAPPING_END_EVENT && depth == 1) depth = 0;
        else if (depth == 1 && e.type == YAML_SCALAR_EVENT) {
            int c = 0;
            while (c < C && strcmp(channels[c], (const char *)e.data.scalar.value)) c++;
            yaml_event_t v;
            if (!yaml_parser_parse(p, &v)) rc = aur__yaml_error(p, path);
            else {
                if (c < C && v.type != YAML_MAPPING_START_EVENT)
                    rc = aur__err(AUR_EFORMAT, "%s: %s: expected a mapping of the scaler's fields", path, channels[c]);
                else if (c < C) rc = aur__scaler_fields(p, path, channels[c], &out[c], &have[c]);
                else rc = aur__yaml_skip(p, v.type, path);
                yaml_event_delete(&v);
            }
        } else if (depth == 1) rc = aur__err(AUR_EFORMAT, "%s: expected channel names as the top-level keys", path);
        yaml_event_delete(&e);
    }
    return rc;
}

AURDEF int aur_surya_scalers_load(const char *path, const char *const *channels, int C, aur_surya_scaler *out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno));
    yaml_parser_t p;
    int have[AUR_SDO_MAX_CHANNELS] = {0}, rc = C < 1 || C > AUR_SDO_MAX_CHANNELS ? aur__err(AUR_EINVAL, "aur_surya_scalers_load: 1 to %d channels",
                                                                                               AUR_SDO_MAX_CHANNELS) : 0;
    if (!rc && !yaml_parser_initialize(&p)) rc = aur__err(AUR_ENOMEM, "%s: cannot start the YAML parser", path);
    if (!rc) {
        yaml_parser_set_input_file(&p, fp);
        memset(out, 0, sizeof *out * (size_t)C);
        rc = aur__scalers_walk(&p, path, channels, C, out, have);
        yaml_parser_delete(&p);
    }
    fclose(fp);
    for (int c = 0; c < C && !rc; c++)
        if (have[c] != 15)
            rc = aur__err(AUR_EFORMAT, "%s: %s: %s", path, channels[c], have[c] ? "needs mean, std, epsilon and sl_scale_factor" : "no scaler for this channel");
    return rc;
}

#else
AURDEF int aur_surya_scalers_load(const char *path, const char *const *channels, int C, aur_surya_scaler *out)
{
    (void)channels, (void)C, (void)out;
    return aur__err(AUR_EUNSUPPORTED, "%s: reading a scalers YAML file needs the implementation compiled with -DAUR_NETCDF and linked with "
                    "-lyaml (Debian: libyaml-dev)", path);
}
#endif
