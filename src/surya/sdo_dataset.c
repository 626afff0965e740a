#include "api.h"
#include "../core/platform.h"

/* ==== Surya: SDO samples ====
   surya/datasets/helio.py: HelioNetCDFDataset.filter_valid_indices and
   _get_index_data over the index (sdo_index.c) and the files (sdo_netcdf.c). */

#define AUR__SDO_MAX_TIMES 64
#define AUR__MINUTE_NS (60 * 1000000000LL)

struct aur_sdo_dataset {
    aur__sdo_table index;                /* present rows, by time (label-joined when labelled) */
    int labelled, C, T, L, pooling, H0, W0, H, W;
    char root[1024];
    char (*names)[AUR_NAME_LEN];
    const char *name_of[AUR_SDO_MAX_CHANNELS];
    aur_surya_scaler scalers[AUR_SDO_MAX_CHANNELS];
    int64_t deltas[AUR__SDO_MAX_TIMES];  /* the T sorted input times, then the L targets, in ns */
    int64_t *valid, n, files;            /* index rows of the samples' reference times */
    double *work;                        /* one raw channel */
};

AURDEF void aur_sdo_close(aur_sdo_dataset *d)
{
    if (!d) return;
    aur__sdo_table_free(&d->index);
    AUR_FREE(d->names);
    AUR_FREE(d->valid);
    AUR_FREE(d->work);
    AUR_FREE(d);
}

static int aur__int_cmp(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

/* The options, checked; the reference's times as offsets in ns. */
static int aur__sdo_options(const aur_sdo_options *o, aur_sdo_dataset *d)
{
    const char *E = "SDO data";
    if (!o || !o->index_path || !o->scalers_path || !o->channels) return aur__err(AUR_EINVAL, "%s: index_path, scalers_path and channels are required", E);
    if (o->n_channels < 1 || o->n_channels > AUR_SDO_MAX_CHANNELS) return aur__err(AUR_EINVAL, "%s: 1 to %d channels, not %d", E, AUR_SDO_MAX_CHANNELS, o->n_channels);
    if (o->n_inputs < 1 || o->rollout_steps < 0 || o->n_inputs > AUR__SDO_MAX_TIMES - 1 || o->rollout_steps > AUR__SDO_MAX_TIMES - 1 - o->n_inputs)
        return aur__err(AUR_EINVAL, "%s: input times and rollout_steps + 1 lead times: %d in all at most, not %d and %d", E, AUR__SDO_MAX_TIMES,
                        o->n_inputs, o->rollout_steps + 1);
    if (!o->time_delta_input_minutes)
        return aur__err(AUR_EINVAL, "%s: time_delta_input_minutes is required", E);
    /* ten years each way keeps t + every offset inside int64 nanoseconds */
    int64_t far = 10LL * 366 * 24 * 60;
    for (int k = 0; k < o->n_inputs; k++)
        if (llabs((long long)o->time_delta_input_minutes[k]) > far)
            return aur__err(AUR_EINVAL, "%s: time_delta_input_minutes %d is more than ten years", E, o->time_delta_input_minutes[k]);
    if (llabs((long long)o->time_delta_target_minutes) * (o->rollout_steps + 1) > far)
        return aur__err(AUR_EINVAL, "%s: time_delta_target_minutes %d x %d lead times is more than ten years", E, o->time_delta_target_minutes,
                        o->rollout_steps + 1);
    if (o->pooling < 1 || o->pooling > 1024) return aur__err(AUR_EINVAL, "%s: pooling must be 1 to 1024, not %d", E, o->pooling);
    d->C = o->n_channels, d->T = o->n_inputs, d->L = o->rollout_steps + 1, d->pooling = o->pooling;
    int in[AUR__SDO_MAX_TIMES];
    memcpy(in, o->time_delta_input_minutes, sizeof *in * (size_t)d->T);
    qsort(in, (size_t)d->T, sizeof *in, aur__int_cmp);
    for (int k = 0; k < d->T; k++) d->deltas[k] = in[k] * AUR__MINUTE_NS;
    for (int k = 1; k <= d->L; k++) d->deltas[d->T + k - 1] = (int64_t)k * o->time_delta_target_minutes * AUR__MINUTE_NS;
    d->names = (char(*)[AUR_NAME_LEN])aur__calloc(sizeof *d->names * (size_t)d->C, "channel names");
    if (!d->names) return AUR_ENOMEM;
    for (int c = 0; c < d->C; c++) {
        if (!o->channels[c] || !o->channels[c][0] || strlen(o->channels[c]) >= AUR_NAME_LEN)
            return aur__err(AUR_EINVAL, "%s: channel %d has no name or one too long", E, c);
        snprintf(d->names[c], AUR_NAME_LEN, "%s", o->channels[c]);
        d->name_of[c] = d->names[c];
    }
    if (o->data_root && strlen(o->data_root) >= sizeof d->root) return aur__err(AUR_EINVAL, "%s: data_root is longer than %zu bytes", E, sizeof d->root - 1);
    snprintf(d->root, sizeof d->root, "%s", o->data_root ? o->data_root : "");
    return 0;
}

/* A row's file: the index's path, joined to the data root when relative (load_nc_data). */
static int aur__sdo_path(const aur_sdo_dataset *d, const aur__sdo_row *r, char *path, size_t size)
{
    int n = d->root[0] && r->path[0] != '/' ? snprintf(path, size, "%s/%s", d->root, r->path) : snprintf(path, size, "%s", r->path);
    if (n < 0 || (size_t)n >= size) return aur__err(AUR_EINVAL, "line %d of the index: the path %s is longer than %zu bytes", r->line, r->path, size - 1);
    return 0;
}

/* The rows a reference time reads, or 0 if one is missing. */
static int aur__sdo_rows(const aur_sdo_dataset *d, int64_t t, const aur__sdo_row **rows)
{
    for (int k = 0; k < d->T + d->L; k++)
        if (!(rows[k] = aur__sdo_find(&d->index, t + d->deltas[k]))) return 0;
    return 1;
}

/* filter_valid_indices: the times whose every file is present. */
static int aur__sdo_valid(aur_sdo_dataset *d)
{
    const aur__sdo_row *rows[AUR__SDO_MAX_TIMES];
    d->valid = (int64_t *)aur__malloc(sizeof *d->valid * (size_t)(d->index.n ? d->index.n : 1), "the sample times");
    if (!d->valid) return AUR_ENOMEM;
    for (int i = 0; i < d->index.n; i++)
        if (aur__sdo_rows(d, d->index.rows[i].time, rows)) d->valid[d->n++] = i;
    return 0;
}

/* Every file a sample reads: opened, its channels and shape checked (before any step). */
static int aur__sdo_check_files(aur_sdo_dataset *d)
{
    const aur__sdo_row *rows[AUR__SDO_MAX_TIMES];
    char *seen = (char *)aur__calloc((size_t)d->index.n, "the file checks"), path[2048];
    if (!seen) return AUR_ENOMEM;
    int rc = 0;
    for (int64_t i = 0; i < d->n && !rc; i++) {
        aur__sdo_rows(d, d->index.rows[d->valid[i]].time, rows);
        for (int k = 0; k < d->T + d->L && !rc; k++) {
            int row = (int)(rows[k] - d->index.rows), H = 0, W = 0;
            if (seen[row]) continue;
            seen[row] = 1, d->files++;
            rc = aur__sdo_path(d, rows[k], path, sizeof path);
            if (!rc) rc = aur__sdo_file_shape(path, d->name_of, d->C, &H, &W);
            if (!rc && !d->H0) d->H0 = H, d->W0 = W;
            else if (!rc && (H != d->H0 || W != d->W0))
                rc = aur__err(AUR_EFORMAT, "%s: channels of %d x %d, but the first file's are %d x %d", path, H, W, d->H0, d->W0);
        }
    }
    AUR_FREE(seen);
    return rc;
}

AURDEF int aur_sdo_open(const aur_sdo_options *o, aur_sdo_dataset **out)
{
    *out = NULL;
    aur_sdo_dataset *d = (aur_sdo_dataset *)aur__calloc(sizeof *d, "an SDO dataset");
    if (!d) return AUR_ENOMEM;
    int rc = aur__sdo_options(o, d);
    if (!rc) rc = aur_surya_scalers_load(o->scalers_path, d->name_of, d->C, d->scalers);
    if (!rc) rc = aur__sdo_read_index(o->index_path, &d->index);
    if (!rc && o->label_path) rc = aur__sdo_join_labels(&d->index, o->label_path, o->label_column ? o->label_column : "label_max");
    d->labelled = o && o->label_path;
    if (!rc) rc = aur__sdo_valid(d);
    if (!rc && !d->n)
        rc = aur__err(AUR_EINVAL, "%s: no time has all the files its inputs and targets need (%d input times, %d lead times%s)", o->index_path, d->T,
                      d->L, d->labelled ? ", labelled" : "");
    if (!rc) rc = aur__sdo_check_files(d);
    if (!rc) {
        d->H = (d->H0 + d->pooling - 1) / d->pooling, d->W = (d->W0 + d->pooling - 1) / d->pooling;
        d->work = (double *)aur__malloc(sizeof *d->work * (size_t)d->H0 * (size_t)d->W0, "an SDO channel");
        if (!d->work) rc = AUR_ENOMEM;
    }
    if (rc) aur_sdo_close(d);
    else *out = d;
    return rc;
}

AURDEF aur_sdo_info aur_sdo_describe(const aur_sdo_dataset *d)
{
    aur_sdo_info i = {d->n, d->C, d->T, d->L, d->H, d->W, d->labelled, d->files};
    return i;
}

/* The files of sample i into ts (C, T, H, W) and forecast (C, L, H, W). */
static int aur__sdo_read_files(aur_sdo_dataset *d, const aur__sdo_row **rows, float *ts, float *forecast)
{
    size_t hw = (size_t)d->H * d->W;
    char path[2048];
    for (int k = 0; k < d->T + d->L; k++) {
        int input = k < d->T, slot = input ? k : k - d->T, times = input ? d->T : d->L;
        float *out = input ? ts : forecast;
        if (!out) continue;
        int rc = aur__sdo_path(d, rows[k], path, sizeof path);
        if (!rc) rc = aur__sdo_file_read(path, d->name_of, d->C, d->pooling, d->scalers, d->H0, d->W0, d->work, out + slot * hw, (size_t)times * hw);
        if (rc) return rc;
    }
    return 0;
}

AURDEF int aur_sdo_read(aur_sdo_dataset *d, int64_t i, aur_sdo_sample *out)
{
    if (!d || !out || i < 0 || i >= d->n) return aur__err(AUR_EINVAL, "aur_sdo_read: sample %lld of %lld", (long long)i, (long long)(d ? d->n : 0));
    const aur__sdo_row *rows[AUR__SDO_MAX_TIMES];
    const aur__sdo_row *ref = &d->index.rows[d->valid[i]];
    aur__sdo_rows(d, ref->time, rows);
    int64_t last = d->deltas[d->T - 1];
    for (int k = 0; k < d->T + d->L; k++) {
        float hours = (float)((double)(last - d->deltas[k]) / (60.0 * AUR__MINUTE_NS)); /* (t_last - t_k) / np.timedelta64(1, "h") */
        if (k < d->T && out->time_delta_input) out->time_delta_input[k] = hours;
        if (k >= d->T && out->lead_time_delta) out->lead_time_delta[k - d->T] = hours;
        if (out->times) out->times[k] = ref->time + d->deltas[k];
    }
    out->label = ref->label;
    return aur__sdo_read_files(d, rows, out->ts, out->forecast);
}
