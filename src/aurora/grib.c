#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: GRIB files in a weather series ====
   The reference's HRES examples (docs/example_hres_t0, example_hres_0.1)
   open GRIB 1/2 files with xarray's cfgrib engine, which decodes every
   message with ecCodes. Here the same messages through ecCodes' C API.
   A GRIB file is a sequence of 2-D fields, each with its parameter
   (shortName), level type and level, and valid time; this reader gathers
   the messages of one parameter and level type into what a NetCDF
   variable is for aurora/weather.c (a "file" of its own, with time, level,
   latitude and longitude coordinates), so the series' checks, flips and
   rolls are the NetCDF reader's. Levels come in cfgrib's order
   (decreasing pressure), times increasing, values as ecCodes decodes them
   (doubles, rounded to float32), bitmap points as NaN. */

#ifdef AUR_NETCDF
#ifdef AUR_GRIB
#include <eccodes.h>

/* One parameter and level type of one GRIB file: where its messages are. */
struct aur__grib_field {
    FILE *fp;     /* the file's one stream, shared by its fields */
    int owns_fp;  /* the file's first field closes it */
    long *offset; /* [time][level]: the message's byte offset in the file */
    size_t points, stride_lat, stride_lon;
};

/* What one message says about itself. */
typedef struct aur__grib_msg {
    char short_name[64], level_type[64], grid[32], units[64];
    long level, number, ni, nj, j_consecutive, alternative_rows, paramid, j_positive, i_negative;
    double lat_first, lon_first; /* degrees: a field's messages must lie on one grid */
    double time; /* valid time, Unix seconds */
    long offset;
    int index;   /* its place in the file, from 1, for messages */
} aur__grib_msg;

static int aur__grib_err(int code, const char *path, int index, const char *what)
{
    return aur__err(AUR_EFORMAT, "%s: GRIB message %d: %s: %s", path, index, what, codes_get_error_message(code));
}

static long aur__grib_long(codes_handle *h, const char *key, long fallback)
{
    long v;
    return codes_get_long(h, key, &v) == CODES_SUCCESS ? v : fallback;
}

static void aur__grib_text(codes_handle *h, const char *key, char *out, size_t size)
{
    size_t n = size;
    if (codes_get_string(h, key, out, &n) != CODES_SUCCESS) out[0] = 0;
}

static int aur__grib_read_msg(codes_handle *h, const char *path, int index, aur__grib_msg *m)
{
    memset(m, 0, sizeof *m);
    m->index = index;
    aur__grib_text(h, "shortName", m->short_name, sizeof m->short_name);
    aur__grib_text(h, "typeOfLevel", m->level_type, sizeof m->level_type);
    aur__grib_text(h, "gridType", m->grid, sizeof m->grid);
    aur__grib_text(h, "units", m->units, sizeof m->units);
    m->level = aur__grib_long(h, "level", 0), m->number = aur__grib_long(h, "number", 0), m->paramid = aur__grib_long(h, "paramId", 0);
    m->ni = aur__grib_long(h, "Ni", 0), m->nj = aur__grib_long(h, "Nj", 0), m->j_consecutive = aur__grib_long(h, "jPointsAreConsecutive", 0);
    m->alternative_rows = aur__grib_long(h, "alternativeRowScanning", 0);
    m->j_positive = aur__grib_long(h, "jScansPositively", 0), m->i_negative = aur__grib_long(h, "iScansNegatively", 0);
    if (codes_get_double(h, "latitudeOfFirstGridPointInDegrees", &m->lat_first) != CODES_SUCCESS) m->lat_first = NAN;
    if (codes_get_double(h, "longitudeOfFirstGridPointInDegrees", &m->lon_first) != CODES_SUCCESS) m->lon_first = NAN;
    long date = aur__grib_long(h, "validityDate", -1), hhmm = aur__grib_long(h, "validityTime", -1);
    int rc = codes_get_long(h, "offset", &m->offset);
    if (rc != CODES_SUCCESS) return aur__grib_err(rc, path, index, "offset");
    if (!m->short_name[0] || !strcmp(m->short_name, "unknown"))
        return aur__err(AUR_EFORMAT, "%s: GRIB message %d: a parameter ecCodes does not know (paramId %ld); is the centre's local table installed?",
                        path, index, m->paramid);
    if (strcmp(m->grid, "regular_ll") && strcmp(m->grid, "regular_gg"))
        return aur__err(AUR_EUNSUPPORTED, "%s: GRIB message %d (%s): grid '%s'; only regular latitude-longitude (or Gaussian) grids are read: "
                        "interpolate to one first (e.g. with MIR or cdo)", path, index, m->short_name, m->grid);
    if (m->ni < 1 || m->nj < 1 || m->alternative_rows)
        return aur__err(AUR_EFORMAT, "%s: GRIB message %d (%s): a %ld x %ld grid%s", path, index, m->short_name, m->nj, m->ni,
                        m->alternative_rows ? " scanned in alternating rows" : "");
    int d = (int)(date % 100), mo = (int)(date / 100 % 100), y = (int)(date / 10000), hh = (int)(hhmm / 100), mi = (int)(hhmm % 100);
    if (date < 0 || hhmm < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mi > 59)
        return aur__err(AUR_EFORMAT, "%s: GRIB message %d (%s): no valid time (validityDate %ld, validityTime %ld)", path, index, m->short_name, date, hhmm);
    m->time = (double)((aur__days_from_civil(y, mo, d) * 24 + hh) * 60 + mi) * 60;
    return 0;
}

/* Every message's header, in file order. */
static int aur__grib_list(const char *path, aur__grib_msg **out, int *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno));
    aur__grib_msg *msgs = NULL;
    int count = 0, rc = 0;
    for (;;) {
        int err = 0;
        codes_handle *h = codes_handle_new_from_file(NULL, fp, PRODUCT_GRIB, &err);
        if (!h) {
            if (err != CODES_SUCCESS && err != CODES_END_OF_FILE) rc = aur__grib_err(err, path, count + 1, "cannot be read (a truncated file?)");
            break;
        }
        aur__grib_msg *grown = (aur__grib_msg *)AUR_REALLOC(msgs, sizeof *grown * (size_t)(count + 1));
        rc = grown ? aur__grib_read_msg(h, path, count + 1, &grown[count]) : aur__err(AUR_ENOMEM, "out of memory listing GRIB messages");
        codes_handle_delete(h);
        if (grown) msgs = grown;
        if (rc) break;
        count++;
    }
    /* ecCodes stops without an error at bytes that do not start a message: the file must end with its last message */
    if (!rc && !feof(fp)) {
        long end = ftell(fp);
        if (fgetc(fp) != EOF) rc = aur__err(AUR_EFORMAT, "%s: bytes after GRIB message %d (at offset %ld) are no GRIB message (a truncated file?)", path, count, end);
    }
    fclose(fp);
    if (!rc && !count) rc = aur__err(AUR_EFORMAT, "%s: no GRIB message", path);
    if (rc) return AUR_FREE(msgs), rc;
    *out = msgs, *n = count;
    return 0;
}

/* Pressure levels are the atmosphere's; model levels are refused; any other level type is one level. */
static int aur__grib_level_kind(const aur__grib_msg *m)
{
    if (!strcmp(m->level_type, "isobaricInhPa")) return 1;
    if (!strcmp(m->level_type, "isobaricInPa")) return 2;
    if (!strcmp(m->level_type, "hybrid") || !strncmp(m->level_type, "generalVertical", 15) || !strcmp(m->level_type, "hybridPressure")) return -1;
    return 0;
}

static int aur__cmp_level_down(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* The sorted distinct values of one key over the messages of a field. */
static int aur__grib_axis(const aur__grib_msg *msgs, const int *sel, int n, int levels, double **out, int *len)
{
    double *v = (double *)aur__malloc(sizeof(double) * (size_t)n, "a GRIB axis");
    if (!v) return AUR_ENOMEM;
    for (int i = 0; i < n; i++) v[i] = levels ? (double)msgs[sel[i]].level : msgs[sel[i]].time;
    *out = v, *len = (int)aur__sort_unique(v, (size_t)n, levels ? aur__cmp_level_down : aur__cmp_double, 0);
    return 0;
}

static int aur__grib_index_of(const double *axis, int n, double x)
{
    for (int i = 0; i < n; i++)
        if (axis[i] == x) return i;
    return -1;
}

/* The grid's coordinates in the messages' point order, from ecCodes' latitudes and longitudes of the first message. */
static int aur__grib_coords(aur__wx_file *f, const aur__grib_msg *m)
{
    aur__grib_field *g = f->grib;
    FILE *fp = g->fp;
    int err = 0;
    if (fseek(fp, m->offset, SEEK_SET)) return aur__err(AUR_EIO, "%s: cannot seek: %s", f->path, strerror(errno));
    codes_handle *h = codes_handle_new_from_file(NULL, fp, PRODUCT_GRIB, &err);
    if (!h) return aur__grib_err(err ? err : CODES_END_OF_FILE, f->path, m->index, "cannot be read");
    size_t n = g->points, got_lat = n, got_lon = n;
    double *lats = (double *)aur__malloc(sizeof(double) * n, "GRIB latitudes"), *lons = (double *)aur__malloc(sizeof(double) * n, "GRIB longitudes");
    int rc = lats && lons ? 0 : AUR_ENOMEM;
    if (!rc && (err = codes_get_double_array(h, "latitudes", lats, &got_lat)) == CODES_SUCCESS) err = codes_get_double_array(h, "longitudes", lons, &got_lon);
    if (!rc && (err || got_lat != n || got_lon != n)) rc = aur__grib_err(err ? err : CODES_WRONG_ARRAY_SIZE, f->path, m->index, "coordinates");
    codes_handle_delete(h);
    f->lat = rc ? NULL : (double *)aur__malloc(sizeof(double) * f->len[AUR__WX_LAT], "GRIB latitudes");
    f->lon = rc ? NULL : (double *)aur__malloc(sizeof(double) * f->len[AUR__WX_LON], "GRIB longitudes");
    if (!rc && (!f->lat || !f->lon)) rc = AUR_ENOMEM;
    for (size_t y = 0; !rc && y < f->len[AUR__WX_LAT]; y++) f->lat[y] = lats[y * g->stride_lat];
    for (size_t x = 0; !rc && x < f->len[AUR__WX_LON]; x++) f->lon[x] = lons[x * g->stride_lon];
    AUR_FREE(lats);
    AUR_FREE(lons);
    return rc;
}

/* The messages of one parameter and level type as a "file" and its variable. */
static int aur__grib_field_of(aur__wx_set *s, int fi, const aur__grib_msg *msgs, const int *sel, int n, const char *renames)
{
    aur__wx_file *f = &s->files[fi];
    const aur__grib_msg *m0 = &msgs[sel[0]];
    int kind = aur__grib_level_kind(m0), nt = 0, nl = 0;
    if (kind < 0)
        return aur__err(AUR_EUNSUPPORTED, "%s: %s is on model levels ('%s'); Aurora takes pressure levels (isobaricInhPa)", f->path, m0->short_name,
                        m0->level_type);
    int rc = aur__grib_axis(msgs, sel, n, 0, &f->time, &nt);
    if (!rc) rc = aur__grib_axis(msgs, sel, n, 1, &f->level, &nl);
    if (rc) return rc;
    if (!kind && nl > 1)
        return aur__err(AUR_EFORMAT, "%s: %s comes on %d levels of type '%s' (%g, %g, ...); only pressure levels can have more than one", f->path,
                        m0->short_name, nl, m0->level_type, f->level[0], f->level[1]);
    f->len[AUR__WX_TIME] = (size_t)nt, f->len[AUR__WX_LEVEL] = kind ? (size_t)nl : 0;
    f->len[AUR__WX_LAT] = (size_t)m0->nj, f->len[AUR__WX_LON] = (size_t)m0->ni;
    f->level_in_pa = kind == 2;
    for (int c = 0; f->level_in_pa && c < nl; c++) f->level[c] /= 100;
    aur__grib_field *g = f->grib;
    g->points = (size_t)m0->ni * (size_t)m0->nj;
    g->stride_lat = m0->j_consecutive ? 1 : (size_t)m0->ni, g->stride_lon = m0->j_consecutive ? (size_t)m0->nj : 1;
    g->offset = (long *)aur__malloc(sizeof(long) * (size_t)nt * (size_t)nl, "GRIB message offsets");
    if (!g->offset) return AUR_ENOMEM;
    for (int i = 0; i < nt * nl; i++) g->offset[i] = -1;
    char t1[32];
    for (int i = 0; i < n; i++) {
        const aur__grib_msg *m = &msgs[sel[i]];
        if (m->ni != m0->ni || m->nj != m0->nj || m->j_consecutive != m0->j_consecutive || m->j_positive != m0->j_positive ||
            m->i_negative != m0->i_negative || !(fabs(m->lat_first - m0->lat_first) <= 1e-6) || !(fabs(m->lon_first - m0->lon_first) <= 1e-6))
            return aur__err(AUR_EFORMAT, "%s: GRIB message %d (%s): its grid (%ld x %ld from %g, %g, or its scanning) is not message %d's (%ld x %ld "
                            "from %g, %g)", f->path, m->index, m->short_name, m->nj, m->ni, m->lat_first, m->lon_first, m0->index, m0->nj, m0->ni,
                            m0->lat_first, m0->lon_first);
        long *slot = &g->offset[aur__grib_index_of(f->time, nt, m->time) * nl + aur__grib_index_of(f->level, nl, (double)m->level / (kind == 2 ? 100 : 1))];
        if (*slot >= 0)
            return aur__err(AUR_EFORMAT, "%s: GRIB message %d: %s at level %ld at %s is there twice (ensemble members or several forecasts? select "
                            "one with grib_copy -w)", f->path, m->index, m->short_name, m->level, aur__wx_time_str(m->time, t1, sizeof t1));
        *slot = m->offset;
    }
    for (int t = 0; t < nt; t++)
        for (int c = 0; c < nl; c++)
            if (g->offset[t * nl + c] < 0)
                return aur__err(AUR_EFORMAT, "%s: %s has no message at level %g at %s, which it has at other times", f->path, m0->short_name,
                                f->level[c], aur__wx_time_str(f->time[t], t1, sizeof t1));
    if ((rc = aur__grib_coords(f, m0))) return rc;

    aur__wx_var v;
    memset(&v, 0, sizeof v);
    v.file = fi;
    snprintf(v.file_name, sizeof v.file_name, "%s", m0->short_name);
    if ((rc = aur__wx_aurora_name(v.file_name, renames, v.name))) return rc;
    v.group = aur__wx_group(&v, 1, kind != 0);
    if ((rc = aur__wx_check_units(f->path, &v, m0->units))) return rc;
    return aur__wx_add_var(s, &v);
}

/* Every parameter and level type of a GRIB file, each as a "file" of the set. */
static int aur__grib_scan(aur__wx_set *s, const char *path, const char *renames)
{
    aur__grib_msg *msgs = NULL;
    int n = 0, rc = aur__grib_list(path, &msgs, &n);
    if (rc) return rc;
    int *sel = (int *)aur__malloc(sizeof(int) * (size_t)n, "GRIB messages"), *done = (int *)aur__calloc(sizeof(int) * (size_t)n, "GRIB messages");
    if (!sel || !done) rc = AUR_ENOMEM;
    FILE *fp = NULL; /* one stream for all the file's fields, closed with its first field */
    for (int i = 0; i < n && !rc; i++) {
        if (done[i]) continue;
        int k = 0;
        for (int e = i; e < n; e++)
            if (!done[e] && !strcmp(msgs[e].short_name, msgs[i].short_name) && !strcmp(msgs[e].level_type, msgs[i].level_type)) sel[k++] = e, done[e] = 1;
        int fi = aur__wx_add_file(s, path);
        if (fi < 0) { rc = fi; break; }
        aur__wx_file *f = &s->files[fi];
        f->grib = (aur__grib_field *)aur__calloc(sizeof(aur__grib_field), "a GRIB field");
        if (!f->grib) { rc = AUR_ENOMEM; break; }
        if (!fp && !(fp = fopen(path, "rb"))) { rc = aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno)); break; }
        f->grib->fp = fp, f->grib->owns_fp = !i;
        rc = aur__grib_field_of(s, fi, msgs, sel, k, renames);
    }
    AUR_FREE(sel);
    AUR_FREE(done);
    AUR_FREE(msgs);
    return rc;
}

/* Step j of a GRIB field: every level's message into work, (level, lat, lon) strides as the points lie. */
static int aur__grib_read_step(const aur__wx_file *f, size_t j, double *work, size_t *stride)
{
    const aur__grib_field *g = f->grib;
    size_t nl = f->len[AUR__WX_LEVEL] ? f->len[AUR__WX_LEVEL] : 1;
    for (size_t c = 0; c < nl; c++) {
        int err = 0;
        long off = g->offset[j * nl + c];
        if (fseek(g->fp, off, SEEK_SET)) return aur__err(AUR_EIO, "%s: cannot seek: %s", f->path, strerror(errno));
        codes_handle *h = codes_handle_new_from_file(NULL, g->fp, PRODUCT_GRIB, &err);
        if (!h) return aur__err(AUR_EIO, "%s: the GRIB message at offset %ld cannot be read again: %s", f->path, off, codes_get_error_message(err));
        size_t got = g->points;
        double *out = work + c * g->points, missing = 0;
        err = codes_get_double_array(h, "values", out, &got);
        int bitmap = aur__grib_long(h, "bitmapPresent", 0) && codes_get_double(h, "missingValue", &missing) == CODES_SUCCESS;
        codes_handle_delete(h);
        if (err || got != g->points)
            return aur__err(AUR_EFORMAT, "%s: the GRIB message at offset %ld: %zu values for %zu points: %s", f->path, off, got, g->points,
                            codes_get_error_message(err ? err : CODES_WRONG_ARRAY_SIZE));
        for (size_t i = 0; bitmap && i < got; i++)
            if (out[i] == missing) out[i] = NAN;
    }
    stride[AUR__WX_LEVEL] = g->points, stride[AUR__WX_LAT] = g->stride_lat, stride[AUR__WX_LON] = g->stride_lon;
    return 0;
}

static void aur__grib_close(aur__wx_file *f)
{
    if (!f->grib) return;
    if (f->grib->fp && f->grib->owns_fp) fclose(f->grib->fp);
    AUR_FREE(f->grib->offset);
    AUR_FREE(f->grib);
}

#else /* built without ecCodes */

static int aur__grib_scan(aur__wx_set *s, const char *path, const char *renames)
{
    (void)s, (void)renames;
    return aur__err(AUR_EUNSUPPORTED, "%s: reading GRIB needs the implementation compiled with -DAUR_GRIB and linked with -leccodes (Debian: "
                    "libeccodes-dev); or convert it to NetCDF with grib_to_netcdf", path);
}
static int aur__grib_read_step(const aur__wx_file *f, size_t j, double *work, size_t *stride)
{
    (void)f, (void)j, (void)work, (void)stride;
    return AUR_EUNSUPPORTED;
}
static void aur__grib_close(aur__wx_file *f) { (void)f; }
#endif
#endif
