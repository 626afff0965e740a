#include "api.h"
#include "../core/platform.h"

/* ==== Surya: sample sets ====
   A fine-tuning set as one safetensors file: "ts" (N, C, T, H, W), the
   normalised input stacks the reference's datasets return as batch["ts"],
   and "target" (N, ...), batch["label"] or batch["forecast"] of each sample:
   a flare label, a wind speed, an EUV spectrum, an AR mask. Or read from
   SDO files in the reference's layout (sdo_dataset.c) batch by batch. */

AURDEF void aur_surya_samples_free(aur_surya_samples *s)
{
    if (!s) return;
    AUR_FREE(s->ts);
    AUR_FREE(s->target);
    aur_sdo_close(s->sdo);
    memset(s, 0, sizeof *s);
}

AURDEF int aur_surya_samples_from_sdo(const aur_sdo_options *o, aur_surya_samples *s)
{
    memset(s, 0, sizeof *s);
    if (!o || !o->label_path) return aur__err(AUR_EINVAL, "aur_surya_samples_from_sdo: a label table (label_path) gives the targets");
    int rc = aur_sdo_open(o, &s->sdo);
    if (rc) return rc;
    aur_sdo_info in = aur_sdo_describe(s->sdo);
    s->n = in.n, s->C = in.C, s->T = in.T, s->H = in.H, s->W = in.W, s->target_ndim = 0, s->target_size = 1;
    s->target = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)in.n, "the labels");
    for (int64_t i = 0; s->target && i < in.n; i++) {
        aur_sdo_sample one = {NULL, NULL, NULL, NULL, NULL, 0};
        aur_sdo_read(s->sdo, i, &one); /* no outputs: only the label, no file read */
        s->target[i] = (aur_real)one.label;
    }
    if (!s->target) aur_surya_samples_free(s), rc = AUR_ENOMEM;
    return rc;
}

/* One F32 entry of the file into a new host buffer. */
static int aur__samples_read(const aur_st_file *f, const aur_st_tensor *e, aur_real **out)
{
    *out = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(e->numel ? e->numel : 1), "a sample set");
    if (!*out) return AUR_ENOMEM;
    return aur_st_read(f, e, AUR_F32, *out);
}

AURDEF int aur_surya_samples_load(const char *path, aur_surya_samples *s)
{
    memset(s, 0, sizeof *s);
    aur_st_file *f = aur_st_open(path);
    if (!f) return AUR_EFORMAT;
    const aur_st_tensor *ts = aur_st_find(f, "ts"), *y = aur_st_find(f, "target");
    int rc = 0;
    if (!ts || ts->ndim != 5 || ts->shape[0] < 1)
        rc = aur__err(AUR_EFORMAT, "%s: tensor 'ts' must be (N, C, T, H, W) with N >= 1 (%s)", path, ts ? "another shape" : "missing");
    else if (!y || y->ndim < 1 || y->shape[0] != ts->shape[0])
        rc = aur__err(AUR_EFORMAT, "%s: tensor 'target' must be (N, ...) with N = %lld, as 'ts' (%s)", path, (long long)ts->shape[0],
                      y ? "another first dimension" : "missing");
    if (!rc) {
        s->n = ts->shape[0], s->C = (int)ts->shape[1], s->T = (int)ts->shape[2], s->H = (int)ts->shape[3], s->W = (int)ts->shape[4];
        s->target_ndim = y->ndim - 1;
        for (int d = 1; d < y->ndim; d++) s->target_shape[d - 1] = y->shape[d];
        s->target_size = y->numel / s->n;
        rc = aur__samples_read(f, ts, &s->ts);
    }
    if (!rc) rc = aur__samples_read(f, y, &s->target);
    for (int64_t i = 0; !rc && i < s->n * s->C * s->T * (int64_t)s->H * s->W; i++)
        if (!isfinite(s->ts[i])) rc = aur__err(AUR_EFORMAT, "%s: 'ts' holds a non-finite value (sample %lld)", path,
                                               (long long)(i / ((int64_t)s->C * s->T * s->H * s->W)));
    for (int64_t i = 0; !rc && i < s->n * s->target_size; i++)
        if (!isfinite(s->target[i])) rc = aur__err(AUR_EFORMAT, "%s: 'target' holds a non-finite value (sample %lld)", path,
                                                   (long long)(i / s->target_size));
    aur_st_close(f);
    if (rc) aur_surya_samples_free(s);
    return rc;
}

AURDEF int aur_surya_samples_save(const aur_surya_samples *s, const char *path)
{
    if (!s->ts) return aur__err(AUR_EINVAL, "%s: a sample set read from SDO files is not held in memory; nothing to save", path);
    int64_t ts_shape[5] = {s->n, s->C, s->T, s->H, s->W}, y_shape[AUR_MAX_DIMS] = {s->n};
    for (int d = 0; d < s->target_ndim; d++) y_shape[d + 1] = s->target_shape[d];
    aur_tensor ts, y; /* views of the buffers, for the writer */
    memset(&ts, 0, sizeof ts);
    memset(&y, 0, sizeof y);
    ts.ndim = 5, ts.numel = s->n * ts_shape[1] * ts_shape[2] * ts_shape[3] * ts_shape[4], ts.data = s->ts;
    y.ndim = 1 + s->target_ndim, y.numel = s->n * s->target_size, y.data = s->target;
    memcpy(ts.shape, ts_shape, sizeof ts_shape);
    memcpy(y.shape, y_shape, sizeof y_shape);
    aur_st_writer *w = aur_st_writer_create();
    int rc = w ? aur_st_writer_add(w, "ts", &ts) : AUR_ENOMEM;
    if (!rc) rc = aur_st_writer_add(w, "target", &y);
    if (!rc) rc = aur_st_writer_write(w, path);
    aur_st_writer_free(w);
    return rc;
}

/* Sample i's inputs from its files, straight into out (through a float buffer when aur_real is double). */
static int aur__samples_read_sdo(const aur_surya_samples *s, int64_t i, aur_real *out, int64_t per)
{
    int direct = sizeof(aur_real) == sizeof(float);
    float *buf = direct ? (float *)(void *)out : (float *)aur__malloc(sizeof(float) * (size_t)per, "an SDO sample");
    if (!buf) return AUR_ENOMEM;
    aur_sdo_sample one = {buf, NULL, NULL, NULL, NULL, 0};
    int rc = aur_sdo_read(s->sdo, i, &one);
    if (!direct) {
        for (int64_t k = 0; !rc && k < per; k++) out[k] = (aur_real)buf[k];
        AUR_FREE(buf);
    }
    return rc;
}

/* Stacks samples idx[0..B) into ts (B, C, T, H, W) and target (B, ...) on the tape. */
static int aur__samples_batch(aur_tape *t, const aur_surya_samples *s, const int64_t *idx, int B, aur_tensor **ts, aur_tensor **target)
{
    int64_t per = (int64_t)s->C * s->T * s->H * s->W, y_shape[AUR_MAX_DIMS] = {B};
    for (int d = 0; d < s->target_ndim; d++) y_shape[d + 1] = s->target_shape[d];
    *ts = aur_tensor_new(t, AUR_CPU, aur_shape5(B, s->C, s->T, s->H, s->W));
    *target = aur_tensor_new(t, AUR_CPU, aur_shapev(1 + s->target_ndim, y_shape));
    if (!*ts || !*target) return AUR_ENOMEM;
    for (int b = 0; b < B; b++) {
        aur_real *at = aur_tensor_f32(*ts) + b * per;
        if (!s->sdo) memcpy(at, s->ts + idx[b] * per, sizeof(aur_real) * (size_t)per);
        else {
            int rc = aur__samples_read_sdo(s, idx[b], at, per);
            if (rc) return rc;
        }
        memcpy(aur_tensor_f32(*target) + b * s->target_size, s->target + idx[b] * s->target_size, sizeof(aur_real) * (size_t)s->target_size);
    }
    return 0;
}
