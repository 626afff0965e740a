#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: weather files as a series ====
   The reference's examples (docs/example_era5.ipynb, example_hres_t0,
   example_cams) open ERA5, HRES or CAMS NetCDF files with xarray, rename
   the variables to Aurora's (t2m -> 2t, ...), stack them into a Batch and
   rely on the data stores' conventions: latitudes decreasing, longitudes
   in [0, 360), pressure levels in hPa. Here the same with libnetcdf
   (NetCDF-3, NetCDF-4/HDF5, and local Zarr v2 stores through NCZarr):
   every variable of the files that lies on the latitude-longitude grid,
   renamed, checked (units, grid, levels, times), flipped or rolled into
   the conventions, as one series of B = 1 with every time step in order.
   GRIB files join the same series through aurora/grib.c (ecCodes).
   Values are what xarray decodes, rounded to float32 as the model's
   batch.type(float32) does. */

/* What a path holds, from its first bytes: 0 safetensors (or anything else), 1 NetCDF, HDF5 or a Zarr store, 2 GRIB;
   an error if there is nothing there. */
static int aur__data_kind(const char *path)
{
    struct stat st;
    if (stat(path, &st)) return aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return 1;
    unsigned char m[8] = {0};
    FILE *fp = fopen(path, "rb");
    size_t got = fp ? fread(m, 1, sizeof m, fp) : 0;
    if (fp) fclose(fp);
    if (got >= 4 && !memcmp(m, "CDF", 3) && (m[3] == 1 || m[3] == 2 || m[3] == 5)) return 1;
    if (got == 8 && !memcmp(m, "\x89HDF\r\n\x1a\n", 8)) return 1;
    if (got >= 4 && !memcmp(m, "GRIB", 4)) return 2;
    return 0;
}

#ifdef AUR_NETCDF
#include <netcdf.h>
#include <netcdf_filter.h>

/* The files' names of Aurora's variables: ERA5/HRES short names as the
   Copernicus stores write them, and WeatherBench2's long names. */
static const char *const aur__wx_renames[][2] = {
    {"t2m", "2t"},
    {"u10", "10u"},
    {"v10", "10v"},
    {"2m_temperature", "2t"},
    {"10m_u_component_of_wind", "10u"},
    {"10m_v_component_of_wind", "10v"},
    {"mean_sea_level_pressure", "msl"},
    {"geopotential", "z"},
    {"temperature", "t"},
    {"u_component_of_wind", "u"},
    {"v_component_of_wind", "v"},
    {"specific_humidity", "q"},
    {"geopotential_at_surface", "z"},
    {"land_sea_mask", "lsm"},
    {"soil_type", "slt"},
};

/* The units the model's statistics assume, spelt without spaces, "**" or "^"
   (lower case); and what to say when a common other unit comes instead. */
typedef struct aur__wx_unit {
    const char *name; /* Aurora's */
    const char *want; /* as the stores write it, for messages */
    const char *ok[4];
    const char *other, *hint;
} aur__wx_unit;
static const aur__wx_unit aur__wx_units[] = {
    {"2t", "K", {"k", "kelvin"}, "degc", "add 273.15"},
    {"t", "K", {"k", "kelvin"}, "degc", "add 273.15"},
    {"10u", "m s**-1", {"ms-1", "m/s"}, NULL, NULL},
    {"10v", "m s**-1", {"ms-1", "m/s"}, NULL, NULL},
    {"u", "m s**-1", {"ms-1", "m/s"}, NULL, NULL},
    {"v", "m s**-1", {"ms-1", "m/s"}, NULL, NULL},
    {"msl", "Pa", {"pa"}, "hpa", "multiply by 100"},
    {"z", "m**2 s**-2", {"m2s-2", "m2/s2"}, "m", "this is geopotential height: multiply by 9.80665"},
    {"q", "kg kg**-1", {"kgkg-1", "kg/kg", "1"}, NULL, NULL},
};


enum { AUR__WX_TIME, AUR__WX_LEVEL, AUR__WX_LAT, AUR__WX_LON, AUR__WX_OTHER };
enum { AUR__WX_SURF, AUR__WX_ATMOS, AUR__WX_STATIC };
static const char *const aur__wx_group_name[] = {"surf", "atmos", "static"};

typedef struct aur__grib_field aur__grib_field; /* aurora/grib.c */

/* One NetCDF file or Zarr store; or one parameter and level type of a GRIB file (grib set), holding one variable. */
typedef struct aur__wx_file {
    const char *path;
    int nc, zarr;
    aur__grib_field *grib;
    int dim[4];      /* ids of the time, level, latitude and longitude dimensions (-1: none) */
    size_t len[4];
    double *time;    /* Unix seconds */
    double *level;   /* hPa */
    double *lat, *lon;
    int level_in_pa; /* the file's levels were in Pa */
} aur__wx_file;

/* One data variable of one file. */
typedef struct aur__wx_var {
    char name[AUR_NAME_LEN], file_name[NC_MAX_NAME + 1];
    int group, file, ndims;
    int role[NC_MAX_VAR_DIMS]; /* AUR__WX_* of each dimension, in the file's order */
    size_t len[NC_MAX_VAR_DIMS];
    aur__cf_var cf;
} aur__wx_var;

typedef struct aur__wx_set {
    aur__wx_file *files;
    int n_files, n_paths;
    aur__wx_var *vars;
    int n_vars;
    double *times; /* every time step of the series, increasing */
    int T, C, H, W;
    double step;   /* seconds between steps (0: one step) */
    int grid_file, level_var, flip_lat, lon_shift;
    double *work;      /* a field being read, kept from window to window */
    size_t work_len;
} aur__wx_set;

/* ---- names, roles, units ---- */

static int aur__name_in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list)) return 1;
    return 0;
}

/* "m s**-1" -> "ms-1": no spaces, "**" or "^", lower case. */
static void aur__units_key(const char *u, char *out, size_t size)
{
    size_t k = 0;
    for (; *u && k + 1 < size; u++)
        if (*u != ' ' && *u != '*' && *u != '^') out[k++] = (char)tolower((unsigned char)*u);
    out[k] = 0;
}

/* A dimension's role, from its name or its coordinate's CF attributes. */
static int aur__wx_dim_role(int nc, const char *dim)
{
    static const char *const times[] = {"time", "valid_time", NULL};
    static const char *const levels[] = {"level", "pressure_level", "isobaricInhPa", "plev", "lev", "air_pressure", NULL};
    static const char *const lats[] = {"latitude", "lat", NULL}, *const lons[] = {"longitude", "lon", NULL};
    if (aur__name_in(dim, times)) return AUR__WX_TIME;
    if (aur__name_in(dim, levels)) return AUR__WX_LEVEL;
    if (aur__name_in(dim, lats)) return AUR__WX_LAT;
    if (aur__name_in(dim, lons)) return AUR__WX_LON;
    int id;
    char sn[64], units[128];
    if (nc_inq_varid(nc, dim, &id) != NC_NOERR) return AUR__WX_OTHER;
    aur__nc_text_att(nc, id, "standard_name", sn, sizeof sn);
    aur__nc_text_att(nc, id, "units", units, sizeof units);
    if (!strcmp(sn, "latitude") || !strcmp(units, "degrees_north")) return AUR__WX_LAT;
    if (!strcmp(sn, "longitude") || !strcmp(units, "degrees_east")) return AUR__WX_LON;
    if (!strcmp(sn, "time") || strstr(units, " since ")) return AUR__WX_TIME;
    if (!strcmp(sn, "air_pressure")) return AUR__WX_LEVEL;
    return AUR__WX_OTHER;
}

/* Aurora's name of a file's variable: the caller's renames ("from=to,..."), then the table, else its own. */
static int aur__wx_aurora_name(const char *file_name, const char *renames, char *out)
{
    const char *s = renames ? renames : "";
    size_t k = strlen(file_name);
    while (*s) {
        const char *end = strchr(s, ','), *eq = strchr(s, '=');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (eq && eq < s + n && (size_t)(eq - s) == k && !strncmp(s, file_name, k)) {
            size_t m = n - k - 1;
            if (!m || m >= AUR_NAME_LEN) return aur__err(AUR_EINVAL, "rename '%.*s': the new name must be 1 to %d characters", (int)n, s, AUR_NAME_LEN - 1);
            memcpy(out, eq + 1, m);
            out[m] = 0;
            return 0;
        }
        s += n + (end != NULL);
    }
    for (size_t i = 0; i < sizeof aur__wx_renames / sizeof aur__wx_renames[0]; i++)
        if (!strcmp(file_name, aur__wx_renames[i][0])) return snprintf(out, AUR_NAME_LEN, "%s", aur__wx_renames[i][1]), 0;
    if (k >= AUR_NAME_LEN) return aur__err(AUR_EINVAL, "variable '%s': a name of at most %d characters is needed (rename it)", file_name, AUR_NAME_LEN - 1);
    memcpy(out, file_name, k + 1);
    return 0;
}

/* A variable's units must be what the model's statistics assume (when it states them). */
static int aur__wx_check_units(const char *path, const aur__wx_var *v, const char *units)
{
    char key[128];
    if (!units[0]) return 0;
    aur__units_key(units, key, sizeof key);
    for (size_t i = 0; i < sizeof aur__wx_units / sizeof aur__wx_units[0]; i++) {
        const aur__wx_unit *u = &aur__wx_units[i];
        if (strcmp(u->name, v->name)) continue;
        for (int k = 0; k < 4 && u->ok[k]; k++)
            if (!strcmp(key, u->ok[k])) return 0;
        int known = u->other && (!strcmp(key, u->other) || (!strcmp(u->other, "m") && !strcmp(key, "gpm")));
        return aur__err(AUR_EFORMAT, "%s: variable '%s' (Aurora's %s) is in '%s'; the model expects %s%s%s", path, v->file_name, v->name, units,
                        u->want, known ? ": " : "", known ? u->hint : "");
    }
    return 0;
}

/* ---- CF times ---- */

/* "hours since 1900-01-01 00:00:00.0" (or days, minutes, seconds; a "T"
   or a trailing "Z"/"UTC"/"+00:00") -> seconds per unit and the epoch in
   Unix seconds; calendars the proleptic Gregorian count fits only. */
static int aur__cf_time_units(const char *units, const char *calendar, double *unit, double *epoch)
{
    static const struct { const char *name; double s; } u[] = {
        {"days", 86400}, {"day", 86400}, {"d", 86400}, {"hours", 3600}, {"hour", 3600}, {"hrs", 3600}, {"hr", 3600}, {"h", 3600},
        {"minutes", 60}, {"minute", 60}, {"mins", 60}, {"min", 60}, {"seconds", 1}, {"second", 1}, {"secs", 1}, {"sec", 1}, {"s", 1},
        {"milliseconds", 1e-3}, {"ms", 1e-3}, {"microseconds", 1e-6}, {"us", 1e-6}, {"nanoseconds", 1e-9}, {"ns", 1e-9}};
    static const char *const calendars[] = {"", "standard", "gregorian", "proleptic_gregorian", NULL};
    char word[32];
    int used = 0, y, mo, d, h = 0, mi = 0;
    double sec = 0;
    if (!aur__name_in(calendar, calendars))
        return aur__err(AUR_EUNSUPPORTED, "calendar '%s': only the standard (proleptic Gregorian) calendar is read", calendar);
    if (sscanf(units, "%31s since %d-%d-%d%n", word, &y, &mo, &d, &used) != 4) return aur__err(AUR_EFORMAT, "time units '%s' are not 'UNIT since DATE'", units);
    const char *s = units + used;
    if (*s == ' ' || *s == 'T') {
        int n = 0;
        if (sscanf(s + 1, "%d:%d%n", &h, &mi, &n) == 2) {
            s += 1 + n;
            if (*s == ':' && sscanf(s + 1, "%lf%n", &sec, &n) == 1) s += 1 + n;
        }
    }
    while (*s == ' ') s++;
    if (*s && strcmp(s, "Z") && strcmp(s, "UTC") && strcmp(s, "+00:00") && strcmp(s, "+0000") && strcmp(s, "00:00"))
        return aur__err(AUR_EUNSUPPORTED, "time units '%s': only UTC reference times are read", units);
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || !(sec >= 0 && sec < 61))
        return aur__err(AUR_EFORMAT, "time units '%s': not a valid date", units);
    if (strcmp(calendar, "proleptic_gregorian") && (y < 1582 || (y == 1582 && (mo < 10 || (mo == 10 && d < 15)))))
        return aur__err(AUR_EUNSUPPORTED, "time units '%s': a Julian-calendar reference date (before 1582-10-15)", units);
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (!strcmp(word, u[i].name)) {
            *unit = u[i].s;
            *epoch = (double)((aur__days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
            return 0;
        }
    return aur__err(AUR_EFORMAT, "time units '%s': unknown unit '%s'", units, word);
}

static const char *aur__wx_time_str(double t, char *buf, size_t size) { return aur__format_time((int64_t)llround(t) * 1000000000LL, buf, size); }

/* ---- one file ---- */

/* A coordinate variable (1-D, over its own dimension), as doubles. */
static double *aur__wx_coord(const aur__wx_file *f, int role, const char *dim, int *id)
{
    int ndims = 0;
    nc_type type;
    if (nc_inq_varid(f->nc, dim, id) != NC_NOERR || nc_inq_var(f->nc, *id, NULL, &type, &ndims, NULL, NULL) != NC_NOERR || ndims != 1 ||
        !aur__nc_numeric(type)) {
        static const char *const what[] = {"time", "level", "latitude", "longitude"};
        aur__err(AUR_EFORMAT, "%s: dimension '%s' (%s) has no numeric coordinate variable '%s'", f->path, dim, what[role], dim);
        return NULL;
    }
    double *v = (double *)aur__malloc(sizeof(double) * (f->len[role] + 1), "a coordinate");
    int st = v ? nc_get_var_double(f->nc, *id, v) : NC_ENOMEM;
    if (st != NC_NOERR) {
        AUR_FREE(v);
        aur__nc_err(st, f->path, dim);
        return NULL;
    }
    return v;
}

/* The coordinates' units: times to Unix seconds, levels to hPa. */
static int aur__wx_coord_units(aur__wx_file *f, int role, int id, const char *dim)
{
    char units[128], cal[64];
    aur__nc_text_att(f->nc, id, "units", units, sizeof units);
    if (role == AUR__WX_TIME) {
        double unit = 1, epoch = 0;
        aur__nc_text_att(f->nc, id, "calendar", cal, sizeof cal);
        if (aur__cf_time_units(units, cal, &unit, &epoch)) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%.1000s", aur_last_error());
            return aur__err(AUR_EFORMAT, "%s: coordinate '%s': %s", f->path, dim, msg);
        }
        for (size_t i = 0; i < f->len[role]; i++) f->time[i] = epoch + f->time[i] * unit;
    } else if (role == AUR__WX_LEVEL) {
        char key[128];
        aur__units_key(units, key, sizeof key);
        static const char *const hpa[] = {"", "hpa", "millibars", "millibar", "mbar", "mb", NULL};
        f->level_in_pa = !strcmp(key, "pa");
        if (!f->level_in_pa && !aur__name_in(key, hpa))
            return aur__err(AUR_EFORMAT, "%s: pressure levels '%s' are in '%s'; hPa or Pa are read", f->path, dim, units);
        for (size_t i = 0; f->level_in_pa && i < f->len[role]; i++) f->level[i] /= 100;
    }
    return 0;
}

/* A Zarr store's path for libnetcdf ("file:///abs/store#mode=zarr,file"); 0 if path is no directory. */
static int aur__wx_zarr_url(const char *path, char *url, size_t size)
{
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) return 0;
    char abs[PATH_MAX], cwd[PATH_MAX], probe[PATH_MAX + 32];
    if (path[0] != '/' && !getcwd(cwd, sizeof cwd)) return aur__err(AUR_EIO, "%s: cannot find the working directory: %s", path, strerror(errno));
    if (snprintf(abs, sizeof abs, "%s%s%s", path[0] == '/' ? "" : cwd, path[0] == '/' ? "" : "/", path) >= (int)sizeof abs || strchr(abs, '#'))
        return aur__err(AUR_EINVAL, "%s: a Zarr path must be shorter than %d characters, without '#'", path, PATH_MAX);
    snprintf(probe, sizeof probe, "%s/zarr.json", abs);
    if (!access(probe, F_OK)) return aur__err(AUR_EUNSUPPORTED, "%s: a Zarr v3 store; libnetcdf reads Zarr v2 (write it with zarr_format=2)", path);
    snprintf(probe, sizeof probe, "%s/.zgroup", abs);
    if (access(probe, F_OK)) return aur__err(AUR_EFORMAT, "%s: a directory without .zgroup (not a Zarr v2 store)", path);
    if (snprintf(url, size, "file://%s#mode=zarr,file", abs) >= (int)size) return aur__err(AUR_EINVAL, "%s: path too long", path);
    return 1;
}

/* NCZarr hands back a chunk's stored bytes when it lacks the store's codec
   (Debian's libnetcdf has no NCZarr codec plugins), so a compressed array
   it does not report a filter for is refused here, from its .zarray. */
static int aur__wx_zarr_codec(const aur__wx_file *f, const aur__wx_var *v)
{
    size_t n = 0;
    if (nc_inq_var_filter_ids(f->nc, v->cf.id, &n, NULL) == NC_NOERR && n > 0) return 0; /* libnetcdf decodes it (checked as for HDF5) */
    char meta[PATH_MAX + NC_MAX_NAME + 16];
    size_t len;
    snprintf(meta, sizeof meta, "%s/%s/.zarray", f->path, v->file_name);
    char *text = aur__read_text_file(meta, (size_t)1 << 20, "a .zarray", &len);
    if (!text) return AUR_EFORMAT;
    cJSON *j = cJSON_Parse(text);
    AUR_FREE(text);
    const cJSON *comp = j ? cJSON_GetObjectItemCaseSensitive(j, "compressor") : NULL, *filt = j ? cJSON_GetObjectItemCaseSensitive(j, "filters") : NULL;
    const cJSON *id = cJSON_IsObject(comp) ? cJSON_GetObjectItemCaseSensitive(comp, "id") : NULL;
    int plain = j && (!comp || cJSON_IsNull(comp)) && (!filt || cJSON_IsNull(filt) || (cJSON_IsArray(filt) && !cJSON_GetArraySize(filt)));
    char codec[64];
    snprintf(codec, sizeof codec, "%s", cJSON_IsString(id) ? id->valuestring : !j ? "?" : comp && !cJSON_IsNull(comp) ? "a compressor" : "filters");
    cJSON_Delete(j);
    if (plain) return 0;
    return aur__err(AUR_EUNSUPPORTED, "%s: Zarr array '%s' is stored with %s, which this libnetcdf's NCZarr cannot decode; write the store "
                    "uncompressed (to_zarr(..., encoding={name: {'compressors': None}}))", f->path, v->file_name, codec);
}

/* Opens a NetCDF file or Zarr store and reads its coordinates. */
static int aur__wx_open(aur__wx_file *f)
{
    char url[PATH_MAX + 64];
    int zarr = aur__wx_zarr_url(f->path, url, sizeof url);
    if (zarr < 0) return zarr;
    f->zarr = zarr;
    int st = nc_open(zarr ? url : f->path, NC_NOWRITE, &f->nc);
    if (st != NC_NOERR) return f->nc = -1, aur__nc_err(st, f->path, "cannot open as NetCDF");
    int ndims = 0;
    nc_inq_ndims(f->nc, &ndims);
    for (int r = 0; r < 4; r++) f->dim[r] = -1;
    for (int d = 0; d < ndims; d++) {
        char name[NC_MAX_NAME + 1];
        size_t len;
        if (nc_inq_dim(f->nc, d, name, &len) != NC_NOERR) continue;
        int role = aur__wx_dim_role(f->nc, name);
        if (role == AUR__WX_OTHER) continue;
        if (f->dim[role] >= 0) return aur__err(AUR_EFORMAT, "%s: two dimensions play one role ('%s' and another)", f->path, name);
        f->dim[role] = d, f->len[role] = len;
        double **out[] = {&f->time, &f->level, &f->lat, &f->lon};
        int id;
        if (!(*out[role] = aur__wx_coord(f, role, name, &id))) return AUR_EFORMAT;
        int rc = aur__wx_coord_units(f, role, id, name);
        if (rc) return rc;
    }
    return 0;
}

/* GRIB files (aurora/grib.c) */
static int aur__grib_scan(aur__wx_set *s, const char *path, const char *renames);
static int aur__grib_read_step(const aur__wx_file *f, size_t j, double *work, size_t *stride);
static void aur__grib_close(aur__wx_file *f);

static void aur__wx_close(aur__wx_file *f)
{
    if (f->nc >= 0) nc_close(f->nc);
    aur__grib_close(f);
    AUR_FREE(f->time);
    AUR_FREE(f->level);
    AUR_FREE(f->lat);
    AUR_FREE(f->lon);
}

/* Static fields: no time dimension, or the land-sea mask, soil type and
   surface geopotential (which the stores deliver with one time step). */
static int aur__wx_group(const aur__wx_var *v, int has_time, int has_level)
{
    if (has_level) return AUR__WX_ATMOS;
    if (!has_time || !strcmp(v->name, "z") || !strcmp(v->name, "lsm") || !strcmp(v->name, "slt")) return AUR__WX_STATIC;
    return AUR__WX_SURF;
}

/* Adds a variable to the set; two of one group and Aurora name in one file are refused. */
static int aur__wx_add_var(aur__wx_set *s, const aur__wx_var *v)
{
    for (int i = 0; i < s->n_vars; i++)
        if (s->vars[i].file == v->file && s->vars[i].group == v->group && !strcmp(s->vars[i].name, v->name))
            return aur__err(AUR_EFORMAT, "%s: variables '%s' and '%s' are both Aurora's %s %s", s->files[v->file].path, s->vars[i].file_name,
                            v->file_name, aur__wx_group_name[v->group], v->name);
    aur__wx_var *grown = (aur__wx_var *)AUR_REALLOC(s->vars, sizeof *grown * (size_t)(s->n_vars + 1));
    if (!grown) return aur__err(AUR_ENOMEM, "out of memory listing variables");
    s->vars = grown;
    s->vars[s->n_vars++] = *v;
    return 0;
}

/* Adds a file to the set: its index, or an error. */
static int aur__wx_add_file(aur__wx_set *s, const char *path)
{
    aur__wx_file *grown = (aur__wx_file *)AUR_REALLOC(s->files, sizeof *grown * (size_t)(s->n_files + 1));
    if (!grown) return aur__err(AUR_ENOMEM, "out of memory listing files");
    s->files = grown;
    aur__wx_file *f = &s->files[s->n_files];
    memset(f, 0, sizeof *f);
    f->nc = -1, f->path = path;
    return s->n_files++;
}

/* A file's variable, if it is data on the grid (else 0 and it is skipped). */
static int aur__wx_var_of(aur__wx_set *s, int fi, int id, const char *renames)
{
    aur__wx_file *f = &s->files[fi];
    aur__wx_var v;
    int dims[NC_MAX_VAR_DIMS], has[5] = {0};
    memset(&v, 0, sizeof v);
    if (nc_inq_var(f->nc, id, v.file_name, &v.cf.type, &v.ndims, dims, NULL) != NC_NOERR || !aur__nc_numeric(v.cf.type)) return 0;
    for (int d = 0; d < v.ndims; d++) {
        v.role[d] = AUR__WX_OTHER;
        for (int r = 0; r < 4; r++)
            if (dims[d] == f->dim[r]) v.role[d] = r;
        has[v.role[d]]++;
        nc_inq_dimlen(f->nc, dims[d], &v.len[d]);
        char dn[NC_MAX_NAME + 1];
        if (nc_inq_dimname(f->nc, dims[d], dn) == NC_NOERR && !strcmp(dn, v.file_name)) return 0; /* a coordinate */
    }
    if (has[AUR__WX_LAT] != 1 || has[AUR__WX_LON] != 1) return 0;
    for (int d = 0; d < v.ndims; d++)
        if (v.role[d] == AUR__WX_OTHER && v.len[d] != 1) {
            char dn[NC_MAX_NAME + 1] = "?";
            nc_inq_dimname(f->nc, dims[d], dn);
            return aur__err(AUR_EFORMAT, "%s: variable '%s' has dimension '%s' of size %zu; only time, level, latitude and longitude can "
                            "have more than one element (select one member or experiment first)", f->path, v.file_name, dn, v.len[d]);
        }
    v.cf.id = id, v.file = fi;
    int rc = aur__wx_aurora_name(v.file_name, renames, v.name);
    if (!rc) rc = aur__cf_attributes(f->nc, f->path, v.file_name, &v.cf);
    if (!rc && f->zarr) rc = aur__wx_zarr_codec(f, &v);
    v.group = aur__wx_group(&v, has[AUR__WX_TIME], has[AUR__WX_LEVEL]);
    if (!rc) {
        char units[128];
        aur__nc_text_att(f->nc, v.cf.id, "units", units, sizeof units);
        rc = aur__wx_check_units(f->path, &v, units);
    }
    return rc ? rc : aur__wx_add_var(s, &v);
}

static int aur__wx_scan_file(aur__wx_set *s, int fi, const char *renames)
{
    aur__wx_file *f = &s->files[fi];
    int rc = aur__wx_open(f), nvars = 0, before = s->n_vars;
    if (rc) return rc;
    nc_inq_nvars(f->nc, &nvars);
    for (int id = 0; id < nvars && !rc; id++) rc = aur__wx_var_of(s, fi, id, renames);
    if (!rc && s->n_vars == before)
        rc = aur__err(AUR_EFORMAT, "%s: no variable on a latitude-longitude grid (dimensions named latitude/lat and longitude/lon)", f->path);
    return rc;
}

/* ---- the files together ---- */

/* A longitude in [0, 360). */
static double aur__lon360(double lon) { return fmod(fmod(lon, 360) + 360, 360); }

/* Every file's grid must be the first variable's; then the flip and roll into the conventions. */
static int aur__wx_grid(aur__wx_set *s)
{
    const aur__wx_file *g = &s->files[s->vars[0].file];
    s->grid_file = s->vars[0].file;
    s->H = (int)g->len[AUR__WX_LAT], s->W = (int)g->len[AUR__WX_LON];
    for (int i = 0; i < s->n_vars; i++) {
        const aur__wx_file *f = &s->files[s->vars[i].file];
        if (f == g) continue;
        int same = f->len[AUR__WX_LAT] == g->len[AUR__WX_LAT] && f->len[AUR__WX_LON] == g->len[AUR__WX_LON];
        for (int y = 0; same && y < s->H; y++) same = fabs(f->lat[y] - g->lat[y]) <= 1e-4;
        for (int x = 0; same && x < s->W; x++) same = fabs(f->lon[x] - g->lon[x]) <= 1e-4;
        if (!same)
            return aur__err(AUR_EFORMAT, "%s: its grid (%zu latitudes %g..%g, %zu longitudes %g..%g) is not %s's (%d, %g..%g; %d, %g..%g)", f->path,
                            f->len[AUR__WX_LAT], f->lat[0], f->lat[f->len[AUR__WX_LAT] - 1], f->len[AUR__WX_LON], f->lon[0],
                            f->lon[f->len[AUR__WX_LON] - 1], g->path, s->H, g->lat[0], g->lat[s->H - 1], s->W, g->lon[0], g->lon[s->W - 1]);
    }
    s->flip_lat = s->H > 1 && g->lat[0] < g->lat[s->H - 1];
    for (int y = 0; y + 1 < s->H; y++) {
        double a = g->lat[s->flip_lat ? s->H - 1 - y : y], b = g->lat[s->flip_lat ? s->H - 2 - y : y + 1];
        if (!(b < a) || a > 90 || b < -90)
            return aur__err(AUR_EFORMAT, "%s: latitudes are not monotonic within [-90, 90] (at %g, %g)", g->path, a, b);
    }
    s->lon_shift = 0;
    for (int x = 1; x < s->W; x++)
        if (aur__lon360(g->lon[x]) < aur__lon360(g->lon[s->lon_shift])) s->lon_shift = x;
    for (int x = 0; x + 1 < s->W; x++) {
        double a = aur__lon360(g->lon[(x + s->lon_shift) % s->W]), b = aur__lon360(g->lon[(x + 1 + s->lon_shift) % s->W]);
        if (!(b > a)) return aur__err(AUR_EFORMAT, "%s: longitudes do not increase around the globe once in [0, 360) (at %g, %g)", g->path, a, b);
    }
    return 0;
}

/* Every atmospheric variable must come on the same pressure levels. */
static int aur__wx_levels(aur__wx_set *s)
{
    s->C = 0, s->level_var = -1;
    for (int i = 0; i < s->n_vars; i++) {
        const aur__wx_var *v = &s->vars[i];
        if (v->group != AUR__WX_ATMOS) continue;
        const aur__wx_file *f = &s->files[v->file];
        if (s->level_var < 0) {
            s->level_var = i, s->C = (int)f->len[AUR__WX_LEVEL];
            if (s->C > AUR_MAX_LEVELS) return aur__err(AUR_EFORMAT, "%s: %d pressure levels; at most %d", f->path, s->C, AUR_MAX_LEVELS);
            continue;
        }
        const aur__wx_file *r = &s->files[s->vars[s->level_var].file];
        int same = (int)f->len[AUR__WX_LEVEL] == s->C;
        for (int c = 0; same && c < s->C; c++) same = fabs(f->level[c] - r->level[c]) < 1e-6;
        if (!same)
            return aur__err(AUR_EFORMAT, "%s: variable '%s' is on other pressure levels (or in another order) than '%s' in %s", f->path, v->file_name,
                            s->vars[s->level_var].file_name, r->path);
    }
    return 0;
}

static int aur__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v (cmp's order) and keeps one of each run of values less than tol apart (tol 0: equal ones): the count kept. */
static size_t aur__sort_unique(double *v, size_t n, int (*cmp)(const void *, const void *), double tol)
{
    qsort(v, n, sizeof(double), cmp);
    size_t k = 0;
    for (size_t j = 0; j < n; j++)
        if (!k || (v[j] != v[k - 1] && fabs(v[j] - v[k - 1]) >= tol)) v[k++] = v[j];
    return k;
}

/* Whether variable i is the first of its group and Aurora name (the others are its other files). */
static int aur__wx_first_of_name(const aur__wx_set *s, int i)
{
    for (int e = 0; e < i; e++)
        if (s->vars[e].group == s->vars[i].group && !strcmp(s->vars[e].name, s->vars[i].name)) return 0;
    return 1;
}

/* The step of the series holding time t (-1: none). */
static int aur__wx_step_of(const aur__wx_set *s, double t)
{
    int lo = 0, hi = s->T - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (fabs(s->times[mid] - t) < 1e-3) return mid;
        if (s->times[mid] < t) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* The series' times: every time of the surface and atmospheric variables,
   evenly spaced, each variable holding each exactly once. */
static int aur__wx_times(aur__wx_set *s)
{
    size_t n = 0;
    for (int i = 0; i < s->n_vars; i++)
        if (s->vars[i].group != AUR__WX_STATIC) n += s->files[s->vars[i].file].len[AUR__WX_TIME];
    if (!n) return aur__err(AUR_EFORMAT, "%s: no surface or atmospheric variable with a time dimension", s->files[0].path);
    s->times = (double *)aur__malloc(sizeof(double) * n, "the time steps");
    if (!s->times) return AUR_ENOMEM;
    size_t k = 0;
    for (int i = 0; i < s->n_vars; i++) {
        const aur__wx_file *f = &s->files[s->vars[i].file];
        for (size_t j = 0; s->vars[i].group != AUR__WX_STATIC && j < f->len[AUR__WX_TIME]; j++) s->times[k++] = f->time[j];
    }
    s->T = (int)aur__sort_unique(s->times, n, aur__cmp_double, 1e-3);
    char t1[32], t2[32], t3[32];
    s->step = s->T > 1 ? s->times[1] - s->times[0] : 0;
    for (int j = 1; j + 1 < s->T; j++)
        if (fabs(s->times[j + 1] - s->times[j] - s->step) > 1e-3)
            return aur__err(AUR_EFORMAT, "%s: the time steps are not evenly spaced: %s, %s, then %s", s->files[0].path,
                            aur__wx_time_str(s->times[0], t1, sizeof t1), aur__wx_time_str(s->times[1], t2, sizeof t2),
                            j > 1 ? aur__wx_time_str(s->times[j + 1], t3, sizeof t3) : aur__wx_time_str(s->times[2], t3, sizeof t3));
    int *seen = (int *)aur__calloc(sizeof(int) * (size_t)s->T, "a time table");
    if (!seen) return AUR_ENOMEM;
    int rc = 0;
    for (int i = 0; i < s->n_vars && !rc; i++) { /* each variable (all its files): every step exactly once */
        const aur__wx_var *v = &s->vars[i];
        if (v->group == AUR__WX_STATIC || !aur__wx_first_of_name(s, i)) continue;
        memset(seen, 0, sizeof(int) * (size_t)s->T);
        for (int e = i; e < s->n_vars && !rc; e++) {
            const aur__wx_var *w = &s->vars[e];
            if (w->group != v->group || strcmp(w->name, v->name)) continue;
            const aur__wx_file *f = &s->files[w->file];
            for (size_t j = 0; j < f->len[AUR__WX_TIME] && !rc; j++)
                if (seen[aur__wx_step_of(s, f->time[j])]++)
                    rc = aur__err(AUR_EFORMAT, "%s: %s %s at %s is there twice (variable '%s')", f->path, aur__wx_group_name[v->group], v->name,
                                  aur__wx_time_str(f->time[j], t1, sizeof t1), w->file_name);
        }
        for (int t = 0; t < s->T && !rc; t++)
            if (!seen[t])
                rc = aur__err(AUR_EFORMAT, "%s: %s %s ('%s') has no data at %s, which other variables have", s->files[v->file].path,
                              aur__wx_group_name[v->group], v->name, v->file_name, aur__wx_time_str(s->times[t], t1, sizeof t1));
    }
    for (int i = 0; i < s->n_vars && !rc; i++)
        for (int e = i + 1; e < s->n_vars && !rc; e++)
            if (s->vars[i].group == AUR__WX_STATIC && s->vars[e].group == AUR__WX_STATIC && !strcmp(s->vars[i].name, s->vars[e].name))
                rc = aur__err(AUR_EFORMAT, "static %s is in both %s and %s", s->vars[i].name, s->files[s->vars[i].file].path, s->files[s->vars[e].file].path);
    AUR_FREE(seen);
    return rc;
}

/* ---- reading ---- */

/* Step j of a NetCDF variable, decoded, into work; the strides of its time, level, latitude and longitude there. */
static int aur__wx_nc_read_step(const aur__wx_file *f, const aur__wx_var *v, size_t j, double *work, size_t *stride)
{
    size_t start[NC_MAX_VAR_DIMS] = {0}, count[NC_MAX_VAR_DIMS] = {0}, n = 1;
    for (int d = 0; d < v->ndims; d++) {
        int time = v->role[d] == AUR__WX_TIME;
        start[d] = time ? j : 0, count[d] = time ? 1 : v->len[d];
    }
    for (int d = v->ndims - 1; d >= 0; d--) stride[v->role[d]] = n, n *= count[d];
    int st = nc_get_vara_double(f->nc, v->cf.id, start, count, work);
    if (st != NC_NOERR) return aur__nc_err(st, f->path, v->file_name);
    aur__cf_decode(&v->cf, work, n);
    return 0;
}

/* Reads step j of a file's variable (or its only step) into (C, H, W) floats in the conventions' order. */
static int aur__wx_read_step(const aur__wx_set *s, const aur__wx_var *v, size_t j, double *work, float *out)
{
    const aur__wx_file *f = &s->files[v->file];
    size_t stride[5] = {0, 0, 0, 0, 0};
    int rc = f->grib ? aur__grib_read_step(f, j, work, stride) : aur__wx_nc_read_step(f, v, j, work, stride);
    if (rc) return rc;
    int C = v->group == AUR__WX_ATMOS ? s->C : 1, H = s->H, W = s->W, shift = s->lon_shift;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++) {
            const double *row = work + c * stride[AUR__WX_LEVEL] + (size_t)(s->flip_lat ? H - 1 - y : y) * stride[AUR__WX_LAT];
            float *o = out + ((size_t)c * H + y) * W;
            if (stride[AUR__WX_LON] == 1) { /* longitude fastest (every store's layout): the roll as two runs */
                for (int x = 0; x < W - shift; x++) o[x] = (float)row[x + shift];
                for (int x = W - shift; x < W; x++) o[x] = (float)row[x + shift - W];
            } else
                for (int x = 0; x < W; x++) o[x] = (float)row[(size_t)((x + shift) % W) * stride[AUR__WX_LON]];
        }
    return 0;
}

/* Steps first..first+b->T-1 of every surface and atmospheric variable of
   the set into b's steps 0..b->T-1 (B = 1): a window read without the rest. */
static int aur__wx_fill_steps(aur__wx_set *s, aur_batch *b, int first)
{
    size_t plane = (size_t)s->H * s->W * (size_t)(s->C > 1 ? s->C : 1);
    if (s->work_len < plane) { /* once: a fresh buffer each window would be page faults the size of a field */
        AUR_FREE(s->work);
        s->work = (double *)aur__malloc(sizeof(double) * plane, "a field being read");
        s->work_len = s->work ? plane : 0;
    }
    double *work = s->work;
    int rc = work ? 0 : AUR_ENOMEM;
    for (int i = 0; i < s->n_vars && !rc; i++) {
        const aur__wx_var *v = &s->vars[i];
        const aur__wx_file *f = &s->files[v->file];
        if (v->group == AUR__WX_STATIC) continue;
        aur_tensor *t = v->group == AUR__WX_ATMOS ? aur_batch_atmos(b, v->name) : aur_batch_surf(b, v->name);
        size_t per_step = (size_t)s->H * s->W * (size_t)(v->group == AUR__WX_ATMOS ? s->C : 1);
        for (size_t j = 0; j < f->len[AUR__WX_TIME] && !rc; j++) {
            int k = aur__wx_step_of(s, f->time[j]) - first;
            if (k >= 0 && k < b->T) rc = aur__wx_read_step(s, v, j, work, (float *)t->data + (size_t)k * per_step);
        }
    }
    return rc;
}

/* The set's layout as a batch without its surface and atmospheric tensors:
   names in the files' order, the conventions' coordinates, the levels, the
   last step's time, and the static fields read. T is the series' length. */
static aur_batch *aur__wx_layout(const aur__wx_set *s)
{
    if (sizeof(aur_real) != sizeof(float)) return aur__err(AUR_EUNSUPPORTED, "weather files: a float32 build is needed"), (aur_batch *)NULL;
    aur_batch *b = aur__batch_shell(1, s->T, s->C, s->H, s->W, 0, 0);
    if (!b) return NULL;
    b->owns_tensors = 1;
    aur_var_list *lists[3] = {&b->surf_names, &b->atmos_names, &b->static_names};
    int rc = 0;
    for (int i = 0; i < s->n_vars && !rc; i++)
        if (aur__vl_find(lists[s->vars[i].group], s->vars[i].name) < 0) rc = aur__vl_add(lists[s->vars[i].group], s->vars[i].name);
    const aur__wx_file *g = &s->files[s->grid_file];
    for (int y = 0; y < s->H; y++) b->lat[y] = (float)g->lat[s->flip_lat ? s->H - 1 - y : y];
    for (int x = 0; x < s->W; x++) b->lon[x] = (float)aur__lon360(g->lon[(x + s->lon_shift) % s->W]);
    for (int c = 0; c < s->C; c++) b->levels[c] = s->files[s->vars[s->level_var].file].level[c];
    b->time[0] = s->times[s->T - 1];
    b->step_seconds = s->step;
    double *work = rc ? NULL : (double *)aur__malloc(sizeof(double) * (size_t)s->H * s->W, "a field being read");
    rc = rc ? rc : work ? 0 : AUR_ENOMEM;
    for (int i = 0; i < s->n_vars && !rc; i++) {
        const aur__wx_var *v = &s->vars[i];
        if (v->group != AUR__WX_STATIC) continue;
        int k = aur__vl_find(&b->static_names, v->name);
        b->statics[k] = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape2(s->H, s->W));
        rc = b->statics[k] ? aur__wx_read_step(s, v, 0, work, (float *)b->statics[k]->data) : AUR_ENOMEM;
    }
    AUR_FREE(work);
    if (rc) aur_batch_free(b);
    return rc ? NULL : b;
}

/* What was read, and how it was turned into the conventions. */
static void aur__wx_describe(const aur__wx_set *s, FILE *out)
{
    char t1[32], t2[32];
    fprintf(out, "weather data: %d file%s, %d step%s", s->n_paths, s->n_paths > 1 ? "s" : "", s->T, s->T > 1 ? "s" : "");
    if (s->T > 1) fprintf(out, " %g h apart", s->step / 3600);
    fprintf(out, " from %s to %s, grid %d x %d", aur__wx_time_str(s->times[0], t1, sizeof t1), aur__wx_time_str(s->times[s->T - 1], t2, sizeof t2),
            s->H, s->W);
    if (s->C) {
        const aur__wx_file *f = &s->files[s->vars[s->level_var].file];
        fprintf(out, ", %d levels (", s->C);
        for (int c = 0; c < s->C; c++) fprintf(out, c ? ", %g" : "%g", f->level[c]);
        fprintf(out, " hPa%s)", f->level_in_pa ? ", from Pa" : "");
    }
    fprintf(out, "\n");
    for (int g = 0; g < 3; g++) {
        int any = 0;
        for (int i = 0; i < s->n_vars; i++) {
            const aur__wx_var *v = &s->vars[i];
            if (v->group != g || !aur__wx_first_of_name(s, i)) continue;
            fprintf(out, any ? ", " : "  %-6s ", aur__wx_group_name[g]);
            if (strcmp(v->name, v->file_name)) fprintf(out, "%s (%s)", v->name, v->file_name);
            else fprintf(out, "%s", v->name);
            any = 1;
        }
        if (any) fprintf(out, "\n");
    }
    if (s->flip_lat || s->lon_shift) {
        fprintf(out, "  conventions:%s", s->flip_lat ? " latitudes reversed to decrease" : "");
        if (s->lon_shift) fprintf(out, "%s longitudes rolled by %d columns into [0, 360)", s->flip_lat ? ";" : "", s->lon_shift);
        fprintf(out, "\n");
    }
}

/* Scans weather files into a set: each file's variables, then one grid, one set of levels and the times. */
static int aur__wx_scan(aur__wx_set *s, const char *const *paths, int n, const char *renames)
{
    memset(s, 0, sizeof *s);
    s->n_paths = n;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        int kind = aur__data_kind(paths[i]), fi = kind == 2 || kind < 0 ? kind : aur__wx_add_file(s, paths[i]);
        rc = kind == 2 ? aur__grib_scan(s, paths[i], renames) : fi < 0 ? fi : aur__wx_scan_file(s, fi, renames);
    }
    if (!rc) rc = aur__wx_grid(s);
    if (!rc) rc = aur__wx_levels(s);
    if (!rc) rc = aur__wx_times(s);
    return rc;
}

static void aur__wx_free(aur__wx_set *s)
{
    for (int i = 0; i < s->n_files; i++) aur__wx_close(&s->files[i]);
    AUR_FREE(s->files);
    AUR_FREE(s->vars);
    AUR_FREE(s->times);
    AUR_FREE(s->work);
    memset(s, 0, sizeof *s);
}

#endif
