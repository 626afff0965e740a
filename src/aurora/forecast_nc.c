#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: forecasts as CF NetCDF ====
   The reference's examples turn predictions into xarray datasets with
   Aurora's variable names; here they are written step by step as a
   CF-1.8 NetCDF-4 file that xarray opens as such: dimensions time
   (unlimited: one entry per step, valid times), level (hPa), latitude
   (decreasing) and longitude ([0, 360)); the CF coordinates
   forecast_reference_time and forecast_period; units, standard and long
   names for the variables Aurora knows; static fields without time. The
   library's weather reader reads the file back as a series. */

#ifdef AUR_NETCDF

/* CF's names and units of Aurora's variables (as ERA5 files give them). */
static const struct { const char *group, *name, *standard, *long_name, *units; } aur__fc_attrs[] = {
    {"surf", "2t", "air_temperature", "2 metre temperature", "K"},
    {"surf", "10u", "eastward_wind", "10 metre U wind component", "m s**-1"},
    {"surf", "10v", "northward_wind", "10 metre V wind component", "m s**-1"},
    {"surf", "msl", "air_pressure_at_mean_sea_level", "Mean sea level pressure", "Pa"},
    {"atmos", "t", "air_temperature", "Temperature", "K"},
    {"atmos", "u", "eastward_wind", "U component of wind", "m s**-1"},
    {"atmos", "v", "northward_wind", "V component of wind", "m s**-1"},
    {"atmos", "q", "specific_humidity", "Specific humidity", "kg kg**-1"},
    {"atmos", "z", "geopotential", "Geopotential", "m**2 s**-2"},
    {"static", "z", "surface_geopotential", "Geopotential at the surface", "m**2 s**-2"},
    {"static", "lsm", "land_binary_mask", "Land-sea mask", "(0 - 1)"},
    {"static", "slt", NULL, "Soil type", "~"},
};

struct aur_forecast_nc {
    char path[1024];
    int nc, dim[4], time_var, period_var; /* dims: time, level, latitude, longitude */
    int surf[AUR_MAX_VARS], atmos[AUR_MAX_VARS];
    aur_var_list surf_names, atmos_names;
    int H, W, C;
    size_t steps;
    int defined;
    double init_time, levels[AUR_MAX_LEVELS];
};

static int aur__fc_put_text(aur_forecast_nc *f, int var, const char *name, const char *value)
{
    int st = nc_put_att_text(f->nc, var, name, strlen(value), value);
    return st == NC_NOERR ? 0 : aur__nc_err(st, f->path, name);
}

static int aur__fc_var_attrs(aur_forecast_nc *f, int var, const char *group, const char *name)
{
    for (size_t i = 0; i < sizeof aur__fc_attrs / sizeof aur__fc_attrs[0]; i++) {
        if (strcmp(aur__fc_attrs[i].group, group) || strcmp(aur__fc_attrs[i].name, name)) continue;
        int rc = aur__fc_put_text(f, var, "units", aur__fc_attrs[i].units);
        if (!rc) rc = aur__fc_put_text(f, var, "long_name", aur__fc_attrs[i].long_name);
        if (!rc && aur__fc_attrs[i].standard) rc = aur__fc_put_text(f, var, "standard_name", aur__fc_attrs[i].standard);
        return rc;
    }
    return 0;
}

/* A data variable over the given dimensions, compressed (zlib level 1, shuffle), one chunk per step;
   one over time names its auxiliary coordinates as CF does. */
static int aur__fc_def_var(aur_forecast_nc *f, const char *name, nc_type type, int ndims, const int *dims, int *id)
{
    int st = nc_def_var(f->nc, name, type, ndims, dims, id);
    if (st == NC_NOERR && ndims >= 3) {
        static const char aux[] = "forecast_period forecast_reference_time";
        st = nc_put_att_text(f->nc, *id, "coordinates", sizeof aux - 1, aux);
    }
    if (st == NC_NOERR && ndims >= 2) {
        size_t chunk[4];
        for (int d = 0; d < ndims; d++) {
            size_t len = 1;
            nc_inq_dimlen(f->nc, dims[d], &len);
            chunk[d] = dims[d] == f->dim[0] ? 1 : len;
        }
        st = nc_def_var_chunking(f->nc, *id, NC_CHUNKED, chunk);
        if (st == NC_NOERR) st = nc_def_var_deflate(f->nc, *id, 1, 1, 1);
    }
    return st == NC_NOERR ? 0 : aur__nc_err(st, f->path, name);
}

/* The coordinates: dimensions, their variables and the reference time. */
static int aur__fc_define_coords(aur_forecast_nc *f, const aur_batch *p, int *lat, int *lon, int *lev, int *ref)
{
    static const char *const names[4] = {"time", "level", "latitude", "longitude"};
    const size_t len[4] = {NC_UNLIMITED, (size_t)f->C, (size_t)f->H, (size_t)f->W};
    for (int d = 0; d < 4; d++) {
        if (d == 1 && !f->C) { f->dim[d] = -1; continue; }
        int st = nc_def_dim(f->nc, names[d], len[d], &f->dim[d]);
        if (st != NC_NOERR) return aur__nc_err(st, f->path, names[d]);
    }
    char units[64], when[32];
    aur__format_time((int64_t)llround(f->init_time) * 1000000000LL, when, sizeof when);
    snprintf(units, sizeof units, "hours since %s", when);
    int rc = aur__fc_def_var(f, "time", NC_DOUBLE, 1, &f->dim[0], &f->time_var);
    if (!rc) rc = aur__fc_put_text(f, f->time_var, "units", units);
    if (!rc) rc = aur__fc_put_text(f, f->time_var, "calendar", "proleptic_gregorian");
    if (!rc) rc = aur__fc_put_text(f, f->time_var, "standard_name", "time");
    if (!rc) rc = aur__fc_put_text(f, f->time_var, "long_name", "valid time");
    if (!rc) rc = aur__fc_def_var(f, "forecast_period", NC_DOUBLE, 1, &f->dim[0], &f->period_var);
    if (!rc) rc = aur__fc_put_text(f, f->period_var, "units", "hours");
    if (!rc) rc = aur__fc_put_text(f, f->period_var, "standard_name", "forecast_period");
    if (!rc) rc = aur__fc_def_var(f, "forecast_reference_time", NC_DOUBLE, 0, NULL, ref);
    if (!rc) rc = aur__fc_put_text(f, *ref, "units", units);
    if (!rc) rc = aur__fc_put_text(f, *ref, "calendar", "proleptic_gregorian");
    if (!rc) rc = aur__fc_put_text(f, *ref, "standard_name", "forecast_reference_time");
    if (!rc && f->C) rc = aur__fc_def_var(f, "level", NC_DOUBLE, 1, &f->dim[1], lev);
    if (!rc && f->C) rc = aur__fc_put_text(f, *lev, "units", "hPa");
    if (!rc && f->C) rc = aur__fc_put_text(f, *lev, "standard_name", "air_pressure");
    if (!rc && f->C) rc = aur__fc_put_text(f, *lev, "long_name", "pressure");
    if (!rc && f->C) rc = aur__fc_put_text(f, *lev, "positive", "down");
    if (!rc) rc = aur__fc_def_var(f, "latitude", NC_FLOAT, 1, &f->dim[2], lat);
    if (!rc) rc = aur__fc_put_text(f, *lat, "units", "degrees_north");
    if (!rc) rc = aur__fc_put_text(f, *lat, "standard_name", "latitude");
    if (!rc) rc = aur__fc_def_var(f, "longitude", NC_FLOAT, 1, &f->dim[3], lon);
    if (!rc) rc = aur__fc_put_text(f, *lon, "units", "degrees_east");
    if (!rc) rc = aur__fc_put_text(f, *lon, "standard_name", "longitude");
    (void)p;
    return rc;
}

/* Defines the whole file from the first prediction and writes its coordinates and static fields. */
static int aur__fc_define(aur_forecast_nc *f, const aur_batch *p)
{
    f->H = p->H, f->W = p->W, f->C = p->atmos_names.n ? p->C : 0;
    f->surf_names = p->surf_names, f->atmos_names = p->atmos_names;
    int lat, lon, lev = -1, ref, statics[AUR_MAX_VARS];
    int rc = aur__fc_define_coords(f, p, &lat, &lon, &lev, &ref);
    const int surf_dims[3] = {f->dim[0], f->dim[2], f->dim[3]}, atmos_dims[4] = {f->dim[0], f->dim[1], f->dim[2], f->dim[3]};
    for (int i = 0; !rc && i < p->surf_names.n; i++) {
        rc = aur__fc_def_var(f, p->surf_names.name[i], NC_FLOAT, 3, surf_dims, &f->surf[i]);
        if (!rc) rc = aur__fc_var_attrs(f, f->surf[i], "surf", p->surf_names.name[i]);
    }
    for (int i = 0; !rc && i < p->atmos_names.n; i++) {
        if (aur__vl_find(&p->surf_names, p->atmos_names.name[i]) >= 0)
            rc = aur__err(AUR_EINVAL, "%s: '%s' is both a surface and an atmospheric variable; one NetCDF name cannot hold both", f->path,
                          p->atmos_names.name[i]);
        if (!rc) rc = aur__fc_def_var(f, p->atmos_names.name[i], NC_FLOAT, 4, atmos_dims, &f->atmos[i]);
        if (!rc) rc = aur__fc_var_attrs(f, f->atmos[i], "atmos", p->atmos_names.name[i]);
    }
    /* a static field's name may be taken (static z and atmospheric z): then static z is WeatherBench2's
       geopotential_at_surface (which the weather reader maps back to static z), any other "<name>_static" */
    char sname[AUR_NAME_LEN + 32];
    for (int i = 0; !rc && i < p->static_names.n; i++) {
        const char *v = p->static_names.name[i];
        int taken = aur__vl_find(&p->surf_names, v) >= 0 || aur__vl_find(&p->atmos_names, v) >= 0;
        snprintf(sname, sizeof sname, !taken ? "%s" : !strcmp(v, "z") ? "geopotential_at_surface" : "%s_static", v);
        rc = aur__fc_def_var(f, sname, NC_FLOAT, 2, surf_dims + 1, &statics[i]);
        if (!rc) rc = aur__fc_var_attrs(f, statics[i], "static", v);
    }
    if (!rc) rc = aur__fc_put_text(f, NC_GLOBAL, "Conventions", "CF-1.8");
    if (!rc) rc = aur__fc_put_text(f, NC_GLOBAL, "title", "Aurora forecast");
    if (!rc) rc = aur__fc_put_text(f, NC_GLOBAL, "source", "aurora.h (aur_aurora_forecast)");
    int st = rc ? NC_NOERR : nc_enddef(f->nc);
    if (st != NC_NOERR) return aur__nc_err(st, f->path, "defining the file");
    double zero = 0, lev_hpa[AUR_MAX_LEVELS];
    for (int c = 0; c < f->C; c++) lev_hpa[c] = p->levels[c];
    if (!rc && (st = nc_put_var_float(f->nc, lat, p->lat)) == NC_NOERR && (st = nc_put_var_float(f->nc, lon, p->lon)) == NC_NOERR &&
        (st = nc_put_var_double(f->nc, ref, &zero)) == NC_NOERR && f->C)
        st = nc_put_var_double(f->nc, lev, lev_hpa);
    for (int i = 0; !rc && st == NC_NOERR && i < p->static_names.n; i++) {
        const aur_real *x = aur_tensor_f32(p->statics[i]);
        st = x ? nc_put_var_float(f->nc, statics[i], x) : NC_EINVAL;
    }
    return rc ? rc : st == NC_NOERR ? 0 : aur__nc_err(st, f->path, "writing the coordinates and static fields");
}

AURDEF aur_forecast_nc *aur_forecast_nc_create(const char *path, double init_time)
{
    aur_forecast_nc *f = (aur_forecast_nc *)aur__calloc(sizeof *f, "a forecast file");
    if (!f) return NULL;
    if (snprintf(f->path, sizeof f->path, "%s", path) >= (int)sizeof f->path) {
        AUR_FREE(f);
        return aur__err(AUR_EINVAL, "%s: path too long", path), (aur_forecast_nc *)NULL;
    }
    int st = nc_create(path, NC_NETCDF4 | NC_CLOBBER, &f->nc);
    if (st != NC_NOERR) {
        AUR_FREE(f);
        return aur__nc_err(st, path, "cannot create"), (aur_forecast_nc *)NULL;
    }
    f->init_time = init_time;
    return f;
}

AURDEF int aur_forecast_nc_add(aur_forecast_nc *f, const aur_batch *pred)
{
    if (!f || !pred) return aur__err(AUR_EINVAL, "aur_forecast_nc_add: no file or prediction");
    if (pred->B != 1 || pred->T != 1) return aur__err(AUR_EINVAL, "%s: a prediction of B = 1 and one step is written (B %d, T %d)", f->path, pred->B, pred->T);
    if (!f->defined) {
        int rc = aur__fc_define(f, pred);
        if (rc) return rc;
        f->defined = 1;
        memcpy(f->levels, pred->levels, sizeof f->levels);
    }
    int same = pred->H == f->H && pred->W == f->W && (pred->atmos_names.n ? pred->C : 0) == f->C && pred->surf_names.n == f->surf_names.n &&
               pred->atmos_names.n == f->atmos_names.n;
    for (int c = 0; same && c < f->C; c++) same = pred->levels[c] == f->levels[c];
    for (int i = 0; same && i < f->surf_names.n; i++) same = aur__vl_find(&pred->surf_names, f->surf_names.name[i]) >= 0;
    for (int i = 0; same && i < f->atmos_names.n; i++) same = aur__vl_find(&pred->atmos_names, f->atmos_names.name[i]) >= 0;
    if (!same) return aur__err(AUR_EINVAL, "%s: step %zu has another grid, levels or variables than the first", f->path, f->steps + 1);
    size_t at = f->steps;
    double hours = (pred->time[0] - f->init_time) / 3600;
    int st = nc_put_var1_double(f->nc, f->time_var, &at, &hours);
    if (st == NC_NOERR) st = nc_put_var1_double(f->nc, f->period_var, &at, &hours);
    size_t start[4] = {at, 0, 0, 0}, count[4] = {1, (size_t)f->C, (size_t)f->H, (size_t)f->W}, scount[3] = {1, (size_t)f->H, (size_t)f->W};
    for (int i = 0; st == NC_NOERR && i < f->surf_names.n; i++) {
        const aur_real *x = aur_tensor_f32(aur_batch_surf(pred, f->surf_names.name[i]));
        st = x ? nc_put_vara_float(f->nc, f->surf[i], start, scount, x) : NC_EINVAL;
    }
    for (int i = 0; st == NC_NOERR && i < f->atmos_names.n; i++) {
        const aur_real *x = aur_tensor_f32(aur_batch_atmos(pred, f->atmos_names.name[i]));
        st = x ? nc_put_vara_float(f->nc, f->atmos[i], start, count, x) : NC_EINVAL;
    }
    if (st == NC_EINVAL) return aur__err(AUR_EINVAL, "%s: step %zu: a variable is missing or not F32 in host memory", f->path, at + 1);
    if (st != NC_NOERR) return aur__nc_err(st, f->path, "writing a step");
    f->steps++;
    return nc_sync(f->nc) == NC_NOERR ? 0 : aur__err(AUR_EIO, "%s: cannot flush step %zu", f->path, at + 1);
}

AURDEF int aur_forecast_nc_close(aur_forecast_nc *f)
{
    if (!f) return 0;
    int st = nc_close(f->nc);
    int rc = st == NC_NOERR ? 0 : aur__nc_err(st, f->path, "closing");
    AUR_FREE(f);
    return rc;
}

#else /* built without libnetcdf */

struct aur_forecast_nc {
    int unused;
};
AURDEF aur_forecast_nc *aur_forecast_nc_create(const char *path, double init_time)
{
    (void)init_time;
    aur__err(AUR_EUNSUPPORTED, "%s: writing NetCDF needs the implementation compiled with -DAUR_NETCDF and linked with -lnetcdf", path);
    return NULL;
}
AURDEF int aur_forecast_nc_add(aur_forecast_nc *f, const aur_batch *pred)
{
    (void)f, (void)pred;
    return aur__err(AUR_EUNSUPPORTED, "writing NetCDF needs -DAUR_NETCDF");
}
AURDEF int aur_forecast_nc_close(aur_forecast_nc *f)
{
    (void)f;
    return 0;
}
#endif
