#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: batches ==== */

AURDEF void aur_batch_free(aur_batch *b)
{
    if (!b || b->on_tape) return;
    for (int i = 0; b->owns_tensors && i < b->surf_names.n; i++) aur_tensor_free(b->surf[i]);
    for (int i = 0; b->owns_tensors && i < b->static_names.n; i++) aur_tensor_free(b->statics[i]);
    for (int i = 0; b->owns_tensors && i < b->atmos_names.n; i++) aur_tensor_free(b->atmos[i]);
    AUR_FREE(b->lat);
    AUR_FREE(b->lon);
    AUR_FREE(b->time);
    AUR_FREE(b);
}

/* An empty batch struct with lat/lon/time buffers of the given sizes. */
static aur_batch *aur__batch_shell(int B, int T, int C, int H, int W, int lat_2d, int lon_2d)
{
    aur_batch *b = (aur_batch *)aur__calloc(sizeof *b, "a batch");
    if (!b) return NULL;
    b->B = B;
    b->T = T;
    b->C = C;
    b->H = H;
    b->W = W;
    b->lat_2d = lat_2d;
    b->lon_2d = lon_2d;
    b->lat = (float *)aur__calloc(sizeof(float) * (size_t)(lat_2d ? H * W : H) + 1, "latitudes");
    b->lon = (float *)aur__calloc(sizeof(float) * (size_t)(lon_2d ? H * W : W) + 1, "longitudes");
    b->time = (double *)aur__calloc(sizeof(double) * (size_t)B + 1, "times");
    if (!b->lat || !b->lon || !b->time) {
        aur_batch_free(b);
        return NULL;
    }
    return b;
}

/* The same on the tape (a step's predictions and the rollout's inputs): the
   struct from the tape's result blocks, the coordinates in its arena. */
static aur_batch *aur__batch_on_tape(aur_tape *t, int B, int T, int C, int H, int W, int lat_2d, int lon_2d)
{
    aur_batch *b = (aur_batch *)aur__tape_object(t, sizeof *b);
    if (!b) return NULL;
    b->on_tape = 1;
    b->B = B, b->T = T, b->C = C, b->H = H, b->W = W;
    b->lat_2d = lat_2d;
    b->lon_2d = lon_2d;
    b->lat = (float *)aur_tape_alloc(t, sizeof(float) * (size_t)(lat_2d ? H * W : H));
    b->lon = (float *)aur_tape_alloc(t, sizeof(float) * (size_t)(lon_2d ? H * W : W));
    b->time = (double *)aur_tape_alloc(t, sizeof(double) * (size_t)B);
    return b->lat && b->lon && b->time ? b : NULL;
}

/* A batch on the tape with src's metadata: its grid's first H rows, times,
   levels, rollout step and variable names; T history steps, no tensors yet. */
static aur_batch *aur__batch_like(aur_tape *t, const aur_batch *src, int T, int H)
{
    aur_batch *b = aur__batch_on_tape(t, src->B, T, src->C, H, src->W, src->lat_2d, src->lon_2d);
    if (!b) return NULL;
    memcpy(b->lat, src->lat, sizeof(float) * (size_t)(src->lat_2d ? H * src->W : H));
    memcpy(b->lon, src->lon, sizeof(float) * (size_t)(src->lon_2d ? H * src->W : src->W));
    memcpy(b->time, src->time, sizeof(double) * (size_t)src->B);
    memcpy(b->levels, src->levels, sizeof b->levels);
    b->rollout_step = src->rollout_step;
    b->surf_names = src->surf_names;
    b->static_names = src->static_names;
    b->atmos_names = src->atmos_names;
    return b;
}

/* aur_batch_create with the tensors on dev (zeroed; AUR_META: shapes only). */
static aur_batch *aur__batch_create_on(aur_device dev, int B, int T, int C, int H, int W, const aur_var_list *surf,
                                       const aur_var_list *statics, const aur_var_list *atmos)
{
    if (B < 1 || T < 1 || C < 0 || C > AUR_MAX_LEVELS || H < 1 || W < 1) {
        aur__err(AUR_EINVAL, "aur_batch_create: sizes B %d T %d C %d H %d W %d", B, T, C, H, W);
        return NULL;
    }
    aur_batch *b = aur__batch_shell(B, T, C, H, W, 0, 0);
    if (!b) return NULL;
    b->owns_tensors = 1;
    int ok = 1;
    if (surf) b->surf_names = *surf;
    if (statics) b->static_names = *statics;
    if (atmos) b->atmos_names = *atmos;
    for (int i = 0; i < b->surf_names.n && ok; i++) ok = (b->surf[i] = aur_tensor_create(AUR_F32, dev, aur_shape4(B, T, H, W))) != NULL;
    for (int i = 0; i < b->static_names.n && ok; i++) ok = (b->statics[i] = aur_tensor_create(AUR_F32, dev, aur_shape2(H, W))) != NULL;
    for (int i = 0; i < b->atmos_names.n && ok; i++)
        ok = (b->atmos[i] = aur_tensor_create(AUR_F32, dev, aur_shape5(B, T, C, H, W))) != NULL;
    if (!ok) {
        aur_batch_free(b);
        return NULL;
    }
    return b;
}

/* A host batch of T steps with layout's sizes, grid shape and names (tensors
   zeroed, in pinned memory when asked), for a series' windows. */
static aur_batch *aur__batch_alloc_like(const aur_batch *layout, int T, int pinned)
{
    const aur_batch *l = layout;
    aur_batch *b = aur__batch_shell(l->B, T, l->C, l->H, l->W, l->lat_2d, l->lon_2d);
    if (!b) return NULL;
    b->owns_tensors = 1;
    b->surf_names = l->surf_names, b->static_names = l->static_names, b->atmos_names = l->atmos_names;
    aur_shape s4 = aur_shape4(l->B, T, l->H, l->W), s5 = aur_shape5(l->B, T, l->C, l->H, l->W), s2 = aur_shape2(l->H, l->W);
    int ok = 1;
    for (int i = 0; i < l->surf_names.n && ok; i++)
        ok = (b->surf[i] = pinned ? aur__tensor_create_pinned(AUR_F32, s4) : aur_tensor_create(AUR_F32, AUR_CPU, s4)) != NULL;
    for (int i = 0; i < l->static_names.n && ok; i++)
        ok = (b->statics[i] = pinned ? aur__tensor_create_pinned(AUR_F32, s2) : aur_tensor_create(AUR_F32, AUR_CPU, s2)) != NULL;
    for (int i = 0; i < l->atmos_names.n && ok; i++)
        ok = (b->atmos[i] = pinned ? aur__tensor_create_pinned(AUR_F32, s5) : aur_tensor_create(AUR_F32, AUR_CPU, s5)) != NULL;
    if (!ok) aur_batch_free(b);
    return ok ? b : NULL;
}

AURDEF aur_batch *aur_batch_create(int B, int T, int C, int H, int W, const aur_var_list *surf, const aur_var_list *statics,
                                   const aur_var_list *atmos)
{
    return aur__batch_create_on(AUR_CPU, B, T, C, H, W, surf, statics, atmos);
}

static aur_tensor *aur__vl_get(const aur_var_list *l, aur_tensor *const *t, const char *name)
{
    int i = aur__vl_find(l, name);
    return i < 0 ? NULL : t[i];
}
AURDEF aur_tensor *aur_batch_surf(const aur_batch *b, const char *name) { return aur__vl_get(&b->surf_names, b->surf, name); }
AURDEF aur_tensor *aur_batch_atmos(const aur_batch *b, const char *name) { return aur__vl_get(&b->atmos_names, b->atmos, name); }
AURDEF aur_tensor *aur_batch_static(const aur_batch *b, const char *name) { return aur__vl_get(&b->static_names, b->statics, name); }

/* Variable names for a group: from the metadata's comma list, else every
   "{group}/{v}" tensor in name order. */
static int aur__batch_names(const aur_st_file *f, const char *group, aur_var_list *out)
{
    char key[64];
    memset(out, 0, sizeof *out);
    snprintf(key, sizeof key, "%s_vars", group);
    const char *list = aur_st_meta(f, key);
    if (list) return aur__vl_split(out, list, ", ");
    size_t k = strlen(group);
    for (int i = 0; i < f->n; i++)
        if (!strncmp(f->tensors[i].name, group, k) && f->tensors[i].name[k] == '/')
            if (aur__vl_add(out, f->tensors[i].name + k + 1)) return AUR_EINVAL;
    return 0;
}

/* The entry "{group}/{name}" with an expected shape (-1 = any), or NULL with an error naming it. */
static const aur_st_tensor *aur__batch_entry(const aur_st_file *f, const char *group, const char *name, int ndim, const int64_t *want)
{
    char key[160], s1[64];
    snprintf(key, sizeof key, "%s/%s", group, name);
    const aur_st_tensor *e = aur_st_find(f, key);
    if (!e) return aur__err(AUR_EFORMAT, "%s: batch variable '%s' is missing", f->path, key), (const aur_st_tensor *)NULL;
    int ok = e->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = want[i] < 0 || e->shape[i] == want[i];
    if (!ok)
        return aur__err(AUR_ESHAPE, "%s: '%s' has shape %s; expected rank %d matching the other variables", f->path, key,
                        aur_shape_str(e->shape, e->ndim, s1, sizeof s1), ndim), (const aur_st_tensor *)NULL;
    return e;
}

/* Reads "{group}/{name}" with an expected shape (-1 = any) into a new owned tensor, refusing NaN/Inf. */
static aur_tensor *aur__batch_read(const aur_st_file *f, const char *group, const char *name, int ndim, const int64_t *want,
                                   int keep_nonfinite)
{
    const aur_st_tensor *e = aur__batch_entry(f, group, name, ndim, want);
    if (!e) return NULL;
    aur_tensor *t = aur_tensor_create(AUR_F32, AUR_CPU, aur_shapev(e->ndim, e->shape));
    if (!t || aur_st_read(f, e, AUR_F32, t->data)) {
        aur_tensor_free(t);
        return NULL;
    }
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(aur_tensor_f32(t)[i])) {
            bad++;
            first = first < 0 ? i : first;
        }
    if (bad && !keep_nonfinite) {
        aur__err(AUR_ENAN, "%s: variable '%s/%s' has %lld NaN or infinite values (first at flat index %lld)", f->path, group, name,
                 (long long)bad, (long long)first);
        aur_tensor_free(t);
        return NULL;
    }
    return t;
}

/* Reads a 1-D or 2-D coordinate into host floats. */
static float *aur__batch_coord(const aur_st_file *f, const char *name, int64_t n1, int64_t H, int64_t W, int *is_2d)
{
    const aur_st_tensor *e = aur_st_find(f, name);
    char s1[64];
    if (!e || !((e->ndim == 1 && e->shape[0] == n1) || (e->ndim == 2 && e->shape[0] == H && e->shape[1] == W))) {
        aur__err(AUR_EFORMAT, "%s: '%s' %s; expected (%lld) or (%lld, %lld)", f->path, name,
                 e ? aur_shape_str(e->shape, e->ndim, s1, sizeof s1) : "is missing", (long long)n1, (long long)H, (long long)W);
        return NULL;
    }
    *is_2d = e->ndim == 2;
    aur_real *tmp = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)e->numel, "coordinates");
    float *out = (float *)aur__malloc(sizeof(float) * (size_t)e->numel, "coordinates");
    if (tmp && out && !aur_st_read(f, e, AUR_F32, tmp)) {
        for (int64_t i = 0; i < e->numel; i++) out[i] = (float)tmp[i];
        AUR_FREE(tmp);
        return out;
    }
    AUR_FREE(tmp);
    AUR_FREE(out);
    return NULL;
}

/* Sizes (B, T, C, H, W) from the first variables present. */
static int aur__batch_sizes(const aur_st_file *f, const aur_var_list *surf, const aur_var_list *atmos, int64_t *sz)
{
    char key[160];
    const aur_st_tensor *e = NULL;
    if (surf->n) {
        snprintf(key, sizeof key, "surf/%s", surf->name[0]);
        if ((e = aur_st_find(f, key)) && e->ndim == 4) {
            sz[0] = e->shape[0], sz[1] = e->shape[1], sz[3] = e->shape[2], sz[4] = e->shape[3];
        }
    }
    if (atmos->n) {
        snprintf(key, sizeof key, "atmos/%s", atmos->name[0]);
        const aur_st_tensor *a = aur_st_find(f, key);
        if (a && a->ndim == 5) {
            sz[0] = a->shape[0], sz[1] = a->shape[1], sz[2] = a->shape[2], sz[3] = a->shape[3], sz[4] = a->shape[4];
            e = a;
        }
    }
    if (!e) return aur__err(AUR_EFORMAT, "%s: no surf/{v} (B,T,H,W) or atmos/{v} (B,T,C,H,W) variables to read the sizes from", f->path);
    if (sz[0] < 1 || sz[1] < 1 || sz[3] < 1 || sz[4] < 1 || sz[2] > AUR_MAX_LEVELS)
        return aur__err(AUR_EFORMAT, "%s: batch sizes (B %lld, T %lld, C %lld, H %lld, W %lld) are not usable", f->path,
                        (long long)sz[0], (long long)sz[1], (long long)sz[2], (long long)sz[3], (long long)sz[4]);
    return 0;
}

/* "a,b,c" -> doubles; returns the count or -1. */
static int aur__parse_doubles(const char *s, double *out, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        char *end;
        out[n++] = strtod(s, &end);
        if (end == s) return -1;
        s = *end == ',' ? end + 1 : end;
        while (*s == ' ') s++;
    }
    return s && *s ? -1 : n;
}

static int aur__batch_meta(const aur_st_file *f, aur_batch *b)
{
    const char *tu = aur_st_meta(f, "time_unix"), *rs = aur_st_meta(f, "rollout_step");
    for (int i = 0; i < b->B; i++) b->time[i] = NAN;
    if (tu && aur__parse_doubles(tu, b->time, b->B) != b->B)
        return aur__err(AUR_EFORMAT, "%s: metadata time_unix '%s' does not give %d times", f->path, tu, b->B);
    b->rollout_step = rs ? atoi(rs) : 0;
    const char *ss = aur_st_meta(f, "step_seconds");
    if (ss && (aur__parse_doubles(ss, &b->step_seconds, 1) != 1 || !(b->step_seconds >= 0)))
        return aur__err(AUR_EFORMAT, "%s: metadata step_seconds '%s' is not a number of seconds", f->path, ss);
    const aur_st_tensor *lv = aur_st_find(f, "meta/levels");
    if (b->C > 0) {
        aur_real tmp[AUR_MAX_LEVELS];
        if (!lv || lv->numel != b->C || aur_st_read(f, lv, AUR_F32, tmp))
            return aur__err(AUR_EFORMAT, "%s: meta/levels must hold the %d pressure levels", f->path, b->C);
        for (int c = 0; c < b->C; c++) b->levels[c] = tmp[c];
    }
    AUR_FREE(b->lat);
    AUR_FREE(b->lon);
    b->lat = aur__batch_coord(f, "meta/lat", b->H, b->H, b->W, &b->lat_2d);
    b->lon = b->lat ? aur__batch_coord(f, "meta/lon", b->W, b->H, b->W, &b->lon_2d) : NULL;
    return b->lat && b->lon ? 0 : AUR_EFORMAT;
}

/* A safetensors batch's names and sizes as a batch without tensors yet (NULL on error). */
static aur_batch *aur__batch_st_shell(const aur_st_file *f)
{
    aur_var_list surf, statics, atmos;
    int64_t sz[5] = {0, 0, 0, 0, 0};
    int rc = aur__batch_names(f, "surf", &surf) || aur__batch_names(f, "static", &statics) || aur__batch_names(f, "atmos", &atmos);
    if (!rc) rc = aur__batch_sizes(f, &surf, &atmos, sz);
    aur_batch *b = rc ? NULL : aur__batch_shell((int)sz[0], (int)sz[1], (int)sz[2], (int)sz[3], (int)sz[4], 0, 0);
    if (!b) return NULL;
    b->owns_tensors = 1;
    b->surf_names = surf, b->static_names = statics, b->atmos_names = atmos;
    return b;
}

static aur_batch *aur__batch_load(const char *path, int keep_nonfinite)
{
    aur_st_file *f = aur_st_open(path);
    if (!f) return NULL;
    aur_batch *b = aur__batch_st_shell(f);
    int rc = b ? 0 : AUR_EFORMAT;
    if (!rc) {
        int64_t s4[4] = {b->B, b->T, b->H, b->W}, s2[2] = {b->H, b->W}, s5[5] = {b->B, b->T, b->C, b->H, b->W};
        for (int i = 0; i < b->surf_names.n && !rc; i++)
            rc = (b->surf[i] = aur__batch_read(f, "surf", b->surf_names.name[i], 4, s4, keep_nonfinite)) ? 0 : AUR_EFORMAT;
        for (int i = 0; i < b->static_names.n && !rc; i++)
            rc = (b->statics[i] = aur__batch_read(f, "static", b->static_names.name[i], 2, s2, keep_nonfinite)) ? 0 : AUR_EFORMAT;
        for (int i = 0; i < b->atmos_names.n && !rc; i++)
            rc = (b->atmos[i] = aur__batch_read(f, "atmos", b->atmos_names.name[i], 5, s5, keep_nonfinite)) ? 0 : AUR_EFORMAT;
    }
    if (!rc) rc = aur__batch_meta(f, b);
    aur_st_close(f);
    if (rc) {
        aur_batch_free(b);
        return NULL;
    }
    return b;
}

AURDEF aur_batch *aur_batch_load(const char *path) { return aur__batch_load(path, 0); }
AURDEF aur_batch *aur_batch_load_unchecked(const char *path) { return aur__batch_load(path, 1); }

static void aur__join_names(const aur_var_list *l, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < l->n && k < size; i++) k += (size_t)snprintf(buf + k, size - k, i ? ",%s" : "%s", l->name[i]);
}

AURDEF int aur_batch_save(const aur_batch *b, const char *path)
{
    aur_st_writer *w = aur_st_writer_create();
    char name[160], list[4096], num[64];
    int rc = w ? 0 : AUR_ENOMEM;
    aur_tensor *lat = NULL, *lon = NULL, *lev = NULL;
    for (int i = 0; i < b->surf_names.n && !rc; i++) {
        snprintf(name, sizeof name, "surf/%s", b->surf_names.name[i]);
        rc = aur_st_writer_add(w, name, b->surf[i]);
    }
    for (int i = 0; i < b->static_names.n && !rc; i++) {
        snprintf(name, sizeof name, "static/%s", b->static_names.name[i]);
        rc = aur_st_writer_add(w, name, b->statics[i]);
    }
    for (int i = 0; i < b->atmos_names.n && !rc; i++) {
        snprintf(name, sizeof name, "atmos/%s", b->atmos_names.name[i]);
        rc = aur_st_writer_add(w, name, b->atmos[i]);
    }
    if (!rc) {
        lat = aur_tensor_create(AUR_F32, AUR_CPU, b->lat_2d ? aur_shape2(b->H, b->W) : aur_shape1(b->H));
        lon = aur_tensor_create(AUR_F32, AUR_CPU, b->lon_2d ? aur_shape2(b->H, b->W) : aur_shape1(b->W));
        lev = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape1(b->C));
        rc = lat && lon && lev ? 0 : AUR_ENOMEM;
    }
    for (int64_t i = 0; !rc && i < lat->numel; i++) aur_tensor_f32(lat)[i] = b->lat[i];
    for (int64_t i = 0; !rc && i < lon->numel; i++) aur_tensor_f32(lon)[i] = b->lon[i];
    for (int64_t i = 0; !rc && i < lev->numel; i++) aur_tensor_f32(lev)[i] = (aur_real)b->levels[i];
    if (!rc) rc = aur_st_writer_add(w, "meta/lat", lat) || aur_st_writer_add(w, "meta/lon", lon) || aur_st_writer_add(w, "meta/levels", lev);
    if (!rc) {
        aur__join_names(&b->surf_names, list, sizeof list);
        rc = aur_st_writer_meta(w, "surf_vars", list);
        aur__join_names(&b->static_names, list, sizeof list);
        if (!rc) rc = aur_st_writer_meta(w, "static_vars", list);
        aur__join_names(&b->atmos_names, list, sizeof list);
        if (!rc) rc = aur_st_writer_meta(w, "atmos_vars", list);
        size_t k = 0;
        list[0] = 0;
        for (int i = 0; i < b->B && k < sizeof list; i++) k += (size_t)snprintf(list + k, sizeof list - k, i ? ",%.17g" : "%.17g", b->time[i]);
        if (!rc) rc = aur_st_writer_meta(w, "time_unix", list);
        snprintf(num, sizeof num, "%d", b->rollout_step);
        if (!rc) rc = aur_st_writer_meta(w, "rollout_step", num);
        snprintf(num, sizeof num, "%.17g", b->step_seconds);
        if (!rc && b->step_seconds > 0) rc = aur_st_writer_meta(w, "step_seconds", num);
    }
    if (!rc) rc = aur_st_writer_write(w, path);
    aur_st_writer_free(w);
    aur_tensor_free(lat);
    aur_tensor_free(lon);
    aur_tensor_free(lev);
    return rc;
}

/* The reference's metadata checks (aurora/batch.py: Metadata.__post_init__), as errors. */
static int aur__check_coords(const aur_batch *b)
{
    if (b->lat_2d != b->lon_2d) return aur__err(AUR_EINVAL, "batch: lat and lon must both be 1-D or both 2-D");
    int64_t nlat = b->lat_2d ? (int64_t)b->H * b->W : b->H, nlon = b->lon_2d ? (int64_t)b->H * b->W : b->W;
    for (int64_t i = 0; i < nlat; i++)
        if (!(b->lat[i] >= -90 && b->lat[i] <= 90)) return aur__err(AUR_EINVAL, "batch: latitude %g is outside [-90, 90]", b->lat[i]);
    for (int64_t i = 0; i < nlon; i++)
        if (!(b->lon[i] >= 0 && b->lon[i] < 360)) return aur__err(AUR_EINVAL, "batch: longitude %g is outside [0, 360)", b->lon[i]);
    if (!b->lat_2d) {
        for (int i = 0; i + 1 < b->H; i++)
            if (!(b->lat[i + 1] < b->lat[i])) return aur__err(AUR_EINVAL, "batch: latitudes must strictly decrease (row %d)", i + 1);
        for (int j = 0; j + 1 < b->W; j++)
            if (!(b->lon[j + 1] > b->lon[j])) return aur__err(AUR_EINVAL, "batch: longitudes must strictly increase (column %d)", j + 1);
        return 0;
    }
    for (int i = 0; i < b->H; i++)
        for (int j = 0; j + 1 < b->W; j++)
            if (!(b->lon[i * b->W + j + 1] > b->lon[i * b->W + j]))
                return aur__err(AUR_EINVAL, "batch: 2-D longitudes must increase along each row (row %d)", i);
    for (int i = 0; i + 1 < b->H; i++) { /* the reference only asks consecutive rows to differ */
        int differ = 1;
        for (int j = 0; j < b->W; j++) differ &= b->lat[(i + 1) * b->W + j] != b->lat[i * b->W + j];
        if (!differ) return aur__err(AUR_EINVAL, "batch: 2-D latitude rows %d and %d do not differ", i, i + 1);
    }
    return 0;
}
