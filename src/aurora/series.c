#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: a series read window by window ====
   A training run visits a series as windows of history + rollout steps.
   Reading the whole series to cut one window costs a year of ERA5 at
   0.25 degrees (about 400 GB) for every file; here a series is opened once
   (names, grid, levels, times and the static fields are read and checked)
   and each window reads only its own steps: byte ranges of a safetensors
   series, hyperslabs of NetCDF and Zarr variables, the messages of GRIB
   fields. A window equals aur_batch_window of the whole series, bit for bit.

   libnetcdf, HDF5 and ecCodes are not thread-safe, and a loader thread
   reads while the trainer evaluates: every call into them here holds
   aur__io_lock. */

static pthread_mutex_t aur__io_lock = PTHREAD_MUTEX_INITIALIZER;

/* Takes the lock (and quiets HDF5 on a thread new to it). */
static void aur__io_enter(void)
{
    pthread_mutex_lock(&aur__io_lock);
#ifdef AUR_NETCDF
    aur__nc_quiet_thread();
#endif
}

struct aur_series {
    char **paths;
    int n_paths;
    aur_batch *layout; /* names, grid, levels, last time, statics; no surface or atmospheric tensors; T = the length */
    aur_st_file *st;   /* a safetensors series, or */
#ifdef AUR_NETCDF
    aur__wx_set wx;    /* weather files (aurora/weather.c) */
#endif
};

/* ---- opening ---- */

/* A safetensors series: every surface and atmospheric entry of the batch's shape and a readable dtype, the statics read. */
static aur_batch *aur__series_st_layout(const aur_st_file *f)
{
    aur_batch *b = aur__batch_st_shell(f);
    int rc = b ? 0 : AUR_EFORMAT;
    size_t size;
    if (!rc) {
        int64_t s4[4] = {b->B, b->T, b->H, b->W}, s2[2] = {b->H, b->W}, s5[5] = {b->B, b->T, b->C, b->H, b->W};
        const aur_st_tensor *e;
        for (int i = 0; i < b->surf_names.n && !rc; i++)
            rc = (e = aur__batch_entry(f, "surf", b->surf_names.name[i], 4, s4)) ? aur__st_readable(f, e, &size) : AUR_EFORMAT;
        for (int i = 0; i < b->atmos_names.n && !rc; i++)
            rc = (e = aur__batch_entry(f, "atmos", b->atmos_names.name[i], 5, s5)) ? aur__st_readable(f, e, &size) : AUR_EFORMAT;
        for (int i = 0; i < b->static_names.n && !rc; i++)
            rc = (b->statics[i] = aur__batch_read(f, "static", b->static_names.name[i], 2, s2, 1)) ? 0 : AUR_EFORMAT;
    }
    if (!rc) rc = aur__batch_meta(f, b);
    if (rc) aur_batch_free(b);
    return rc ? NULL : b;
}

/* What each path holds: 0 all weather files, 1 one safetensors file; an error for a mix. */
static int aur__series_kind(const char *const *paths, int n)
{
    int other = -1; /* the first path that is neither NetCDF, Zarr nor GRIB */
    for (int i = 0; i < n; i++) {
        int kind = aur__data_kind(paths[i]);
        if (kind < 0) return kind;
        if (!kind && other < 0) other = i;
    }
    if (n == 1 && other == 0) return 1;
    if (other >= 0)
        return aur__err(AUR_EINVAL, "%s: a safetensors batch is one file on its own; several files together must be NetCDF, Zarr or GRIB",
                        paths[other]);
    return 0;
}

static int aur__series_open_weather(aur_series *s, FILE *log, const char *renames)
{
#ifdef AUR_NETCDF
    int rc = aur__wx_scan(&s->wx, (const char *const *)s->paths, s->n_paths, renames);
    if (!rc) rc = (s->layout = aur__wx_layout(&s->wx)) ? 0 : AUR_EFORMAT;
    if (!rc && log) aur__wx_describe(&s->wx, log);
    return rc;
#else
    (void)log, (void)renames;
    return aur__err(AUR_EUNSUPPORTED, "%s: reading NetCDF, Zarr or GRIB needs the implementation compiled with -DAUR_NETCDF (and -DAUR_GRIB) and "
                    "linked with -lnetcdf (-leccodes) (Debian: libnetcdf-dev, libeccodes-dev)", s->paths[0]);
#endif
}

static void aur__series_free(aur_series *s)
{
    if (!s) return;
#ifdef AUR_NETCDF
    aur__wx_free(&s->wx);
#endif
    aur_st_close(s->st);
    aur_batch_free(s->layout);
    for (int i = 0; i < s->n_paths; i++) AUR_FREE(s->paths[i]);
    AUR_FREE(s->paths);
    AUR_FREE(s);
}

static aur_series *aur__series_open(const char *const *paths, int n, const char *renames, FILE *log)
{
    if (!paths || n < 1) return aur__err(AUR_EINVAL, "aur_series_open: no files"), (aur_series *)NULL;
    int kind = aur__series_kind(paths, n);
    if (kind < 0) return NULL;
    aur_series *s = (aur_series *)aur__calloc(sizeof *s, "a series");
    char **copy = s ? (char **)aur__calloc(sizeof(char *) * (size_t)n, "a series' paths") : NULL;
    if (!copy) return AUR_FREE(s), (aur_series *)NULL;
    s->paths = copy; /* the weather set keeps pointers to its paths */
    int rc = 0;
    for (int i = 0; i < n && !rc; i++, s->n_paths++) rc = (s->paths[i] = aur__strdup(paths[i])) ? 0 : AUR_ENOMEM;
    if (!rc && kind == 1) {
        rc = (s->st = aur_st_open(paths[0])) ? 0 : AUR_EFORMAT;
        if (!rc) rc = (s->layout = aur__series_st_layout(s->st)) ? 0 : AUR_EFORMAT;
    } else if (!rc) rc = aur__series_open_weather(s, log, renames);
    if (rc) aur__series_free(s);
    return rc ? NULL : s;
}

AURDEF aur_series *aur_series_open(const char *const *paths, int n, const char *renames, FILE *log)
{
    aur__io_enter();
    aur_series *s = aur__series_open(paths, n, renames, log);
    pthread_mutex_unlock(&aur__io_lock);
    return s;
}

AURDEF void aur_series_close(aur_series *s)
{
    aur__io_enter();
    aur__series_free(s);
    pthread_mutex_unlock(&aur__io_lock);
}

AURDEF int aur_series_length(const aur_series *s) { return s ? s->layout->T : 0; }
AURDEF double aur_series_step_seconds(const aur_series *s) { return s ? s->layout->step_seconds : 0; }
AURDEF const char *aur_series_path(const aur_series *s) { return s ? s->paths[0] : ""; }

/* ---- reading a window ---- */

/* Whether w has the series' layout (its names, sizes and grid) for a window of w->T steps. */
static int aur__series_fits(const aur_batch *l, const aur_batch *w)
{
    if (w->B != l->B || w->C != l->C || w->H != l->H || w->W != l->W || w->lat_2d != l->lat_2d || w->lon_2d != l->lon_2d || !w->owns_tensors)
        return 0;
    const aur_var_list *a[3] = {&l->surf_names, &l->static_names, &l->atmos_names}, *b[3] = {&w->surf_names, &w->static_names, &w->atmos_names};
    for (int k = 0; k < 3; k++) {
        if (a[k]->n != b[k]->n) return 0;
        for (int i = 0; i < a[k]->n; i++)
            if (strcmp(a[k]->name[i], b[k]->name[i])) return 0;
    }
    return 1;
}

/* Steps start..start+w->T-1 of every surface and atmospheric entry of a safetensors series: one byte range per sample. */
static int aur__series_st_fill(const aur_series *s, aur_batch *w, int start)
{
    const aur_batch *l = s->layout;
    int64_t hw = (int64_t)l->H * l->W;
    int rc = 0;
    for (int g = 0; g < 2 && !rc; g++) {
        const aur_var_list *names = g ? &l->atmos_names : &l->surf_names;
        int64_t per_step = g ? hw * l->C : hw;
        for (int i = 0; i < names->n && !rc; i++) {
            char key[160];
            snprintf(key, sizeof key, "%s/%s", g ? "atmos" : "surf", names->name[i]);
            aur_real *dst = (aur_real *)(g ? w->atmos[i] : w->surf[i])->data;
            const aur_st_tensor *e = aur_st_find(s->st, key);
            for (int b = 0; b < l->B && !rc; b++)
                rc = aur_st_read_range(s->st, e, ((int64_t)b * l->T + start) * per_step, w->T * per_step, dst + (int64_t)b * w->T * per_step);
        }
    }
    return rc;
}

/* The layout's coordinates, levels, statics and step, and the window's times (as aur_batch_window's). */
static void aur__series_meta(const aur_batch *l, aur_batch *w, int start, double step_seconds)
{
    int64_t hw = (int64_t)l->H * l->W;
    memcpy(w->lat, l->lat, sizeof(float) * (size_t)(l->lat_2d ? hw : l->H));
    memcpy(w->lon, l->lon, sizeof(float) * (size_t)(l->lon_2d ? hw : l->W));
    memcpy(w->levels, l->levels, sizeof w->levels);
    for (int i = 0; i < l->static_names.n; i++) memcpy(w->statics[i]->data, l->statics[i]->data, sizeof(aur_real) * (size_t)hw);
    w->step_seconds = l->step_seconds;
    w->rollout_step = 0;
    for (int b = 0; b < l->B; b++) w->time[b] = l->time[b] - (double)(l->T - start - w->T) * step_seconds;
}

AURDEF int aur_series_read_into(aur_series *s, int start, double step_seconds, aur_batch *w)
{
    if (!s || !w) return aur__err(AUR_EINVAL, "aur_series_read_into: no series or window");
    if (start < 0 || w->T < 1 || start + w->T > s->layout->T)
        return aur__err(AUR_EINVAL, "%s: a window of %d steps at step %d: the series has %d steps", s->paths[0], w->T, start, s->layout->T);
    if (!aur__series_fits(s->layout, w))
        return aur__err(AUR_ESHAPE, "%s: the window's buffer has another layout (variables, sizes or grid) than the series", s->paths[0]);
    aur__series_meta(s->layout, w, start, step_seconds);
    aur__io_enter();
#ifdef AUR_NETCDF
    int rc = s->st ? aur__series_st_fill(s, w, start) : aur__wx_fill_steps(&s->wx, w, start);
#else
    int rc = aur__series_st_fill(s, w, start);
#endif
    pthread_mutex_unlock(&aur__io_lock);
    return rc;
}

AURDEF aur_batch *aur_series_window_alloc(const aur_series *s, int steps, int pinned)
{
    if (!s || steps < 1) return aur__err(AUR_EINVAL, "aur_series_window_alloc: no series, or %d steps", steps), (aur_batch *)NULL;
    return aur__batch_alloc_like(s->layout, steps, pinned);
}

AURDEF aur_batch *aur_series_read(aur_series *s, int start, int steps, double step_seconds)
{
    aur_batch *w = aur_series_window_alloc(s, steps, 0);
    if (w && aur_series_read_into(s, start, step_seconds, w)) {
        aur_batch_free(w);
        return NULL;
    }
    return w;
}

/* ---- whole series ---- */

AURDEF aur_batch *aur_weather_load(const char *const *paths, int n, const char *renames, FILE *log)
{
    if (n < 1 || !paths) return aur__err(AUR_EINVAL, "aur_weather_load: no files"), (aur_batch *)NULL;
    for (int i = 0; i < n; i++)
        if (!aur__data_kind(paths[i]))
            return aur__err(AUR_EFORMAT, "%s: not a NetCDF file, Zarr store or GRIB file", paths[i]), (aur_batch *)NULL;
    aur_series *s = aur_series_open(paths, n, renames, log);
    aur_batch *b = s ? aur_series_read(s, 0, aur_series_length(s), aur_series_step_seconds(s)) : NULL;
    aur_series_close(s);
    return b;
}

AURDEF aur_batch *aur_batch_load_files(const char *const *paths, int n, const char *renames, FILE *log)
{
    int kind = aur__series_kind(paths, n);
    if (kind < 0) return NULL;
    return kind ? aur_batch_load_unchecked(paths[0]) : aur_weather_load(paths, n, renames, log);
}
