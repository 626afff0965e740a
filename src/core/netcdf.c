#include "api.h"
#include "platform.h"

/* ==== NetCDF variables as xarray decodes them ====
   Weather files (aurora.h) and SDO files (surya.h) are read with libnetcdf
   (HDF5, the HDF5 filter plugins, and NCZarr for Zarr stores). xarray's
   CF decoding (xarray/coding/variables.py) decides what the Python stack
   sees: fill values become NaN, packed integers are unpacked with
   scale_factor and add_offset, each in the dtype xarray chooses. The
   helpers here reproduce that, value for value. */

#ifdef AUR_NETCDF
#include <dlfcn.h>
#include <netcdf.h>
#include <netcdf_filter.h>

/* Debian's HDF5 is built thread-safe, so its switch for printing error
   stacks is per thread, and libnetcdf turns it off only on the thread that
   first opened a file: on any other (a loader's), every attribute libnetcdf
   looks for and does not find prints an HDF5-DIAG trace. This turns it off
   on the calling thread, once. HDF5 is already loaded with libnetcdf, so
   its H5Eset_auto2 (herr_t (hid_t stack, H5E_auto2_t func, void *data);
   hid_t is 64-bit) is looked up rather than linked. */
static void aur__nc_quiet_thread(void)
{
    static AUR__TLS int done;
    if (done) return;
    done = 1;
    typedef int (*set_auto_fn)(int64_t, void *, void *);
    set_auto_fn set_auto;
    void *sym = dlsym(RTLD_DEFAULT, "H5Eset_auto2");
    memcpy(&set_auto, &sym, sizeof set_auto); /* a data pointer to a function pointer, as POSIX dlsym allows */
    if (set_auto) set_auto(0 /* H5E_DEFAULT */, NULL, NULL);
}

/* What a variable's values become in numpy (xarray's decoding). */
enum { AUR__DT_SMALLINT = 1, AUR__DT_BIGINT = 2, AUR__DT_F32 = 3, AUR__DT_F64 = 4 };

typedef struct aur__cf_var {
    int id, dtype, nfill;
    nc_type type;
    size_t H, W;                   /* a 2-D variable's sizes (SDO channels) */
    double scale, offset, fill[4]; /* fill: _FillValue and missing_value, as raw values */
    int has_scale, has_offset;
} aur__cf_var;

static int aur__nc_err(int status, const char *path, const char *what)
{
    return aur__err(status == NC_ENOMEM ? AUR_ENOMEM : AUR_EFORMAT, "%s: %s: %s", path, what, nc_strerror(status));
}

static int aur__nc_is_int(nc_type t) { return t != NC_FLOAT && t != NC_DOUBLE; }
static int aur__nc_size(nc_type t)
{
    return t == NC_BYTE || t == NC_UBYTE ? 1 : t == NC_SHORT || t == NC_USHORT ? 2 : t == NC_INT || t == NC_UINT || t == NC_FLOAT ? 4 : 8;
}
static int aur__nc_numeric(nc_type t) { return t >= NC_BYTE && t <= NC_UINT64 && t != NC_CHAR; }

/* A numeric attribute's values, at most max of them (*len how many); *type its type (NC_NAT if absent). */
static int aur__nc_att(int nc, int id, const char *name, double *v, size_t max, size_t *len, nc_type *type)
{
    *type = NC_NAT, *len = 0;
    if (nc_inq_att(nc, id, name, type, len) != NC_NOERR) return *type = NC_NAT, *len = 0, 0;
    if (*type == NC_CHAR || *type == NC_STRING || *len < 1 || *len > max) return AUR_EFORMAT;
    return nc_get_att_double(nc, id, name, v) == NC_NOERR ? 0 : AUR_EFORMAT;
}

/* A text attribute into buf ("" if absent or not text). */
static const char *aur__nc_text_att(int nc, int id, const char *name, char *buf, size_t size)
{
    nc_type t;
    size_t len;
    buf[0] = 0;
    if (nc_inq_att(nc, id, name, &t, &len) != NC_NOERR) return buf;
    if (t == NC_CHAR && len < size) {
        if (nc_get_att_text(nc, id, name, buf) == NC_NOERR) buf[len] = 0;
        else buf[0] = 0;
    } else if (t == NC_STRING && len == 1) {
        char *s = NULL;
        if (nc_get_att_string(nc, id, name, &s) == NC_NOERR && s) snprintf(buf, size, "%s", s);
        if (s) nc_free_string(1, &s);
    }
    return buf;
}

/* xarray's dtype for a variable: with a scale or an offset, _choose_float_dtype
   of the stored type: the scale's float type (float64 for a 4-byte integer,
   or a lone offset); else CFMaskCoder promotes masked integers to float (32
   bits for 1-2 byte ones); else the stored type. */
static int aur__cf_dtype(const aur__cf_var *v, nc_type scale_type, nc_type offset_type)
{
    int is_int = aur__nc_is_int(v->type), size = aur__nc_size(v->type);
    int masked = is_int && v->nfill ? (size <= 2 ? AUR__DT_F32 : AUR__DT_F64) : 0;
    if (v->has_scale || v->has_offset) {
        if (v->has_scale && v->has_offset && scale_type == offset_type)
            return is_int && size == 4 ? AUR__DT_F64 : scale_type == NC_FLOAT ? AUR__DT_F32 : AUR__DT_F64;
        if (v->has_offset) return AUR__DT_F64;
        return scale_type == NC_FLOAT ? AUR__DT_F32 : AUR__DT_F64;
    }
    if (masked) return masked;
    if (!is_int) return v->type == NC_FLOAT ? AUR__DT_F32 : AUR__DT_F64;
    return size <= 2 ? AUR__DT_SMALLINT : AUR__DT_BIGINT;
}

/* The filters a variable was written with must be installed (HDF5 filter plugins). */
static int aur__nc_filters(int nc, int id, const char *path, const char *name)
{
    unsigned ids[16];
    size_t n = 0;
    if (nc_inq_var_filter_ids(nc, id, &n, NULL) != NC_NOERR || n > 16 || nc_inq_var_filter_ids(nc, id, &n, ids) != NC_NOERR)
        return aur__err(AUR_EFORMAT, "%s: variable '%s': cannot list its HDF5 filters (or more than 16)", path, name);
    for (size_t k = 0; k < n; k++)
        if (nc_inq_filter_avail(nc, ids[k]) != NC_NOERR)
            return aur__err(AUR_EUNSUPPORTED, "%s: variable '%s' is compressed with HDF5 filter %u, which is not installed (Debian: "
                            "hdf5-filter-plugin, hdf5-filter-plugin-blosc-serial; or point HDF5_PLUGIN_PATH at hdf5plugin's plugins)",
                            path, name, ids[k]);
    return 0;
}

/* A numeric variable's CF attributes (fill values, packing) and decoded dtype; v->id and v->type set first. */
static int aur__cf_attributes(int nc, const char *path, const char *name, aur__cf_var *v)
{
    static const char *const fills[] = {"_FillValue", "missing_value"};
    nc_type scale_type, offset_type, t;
    size_t len;
    for (int k = 0; k < 2; k++) { /* CF allows a list of missing values */
        if (aur__nc_att(nc, v->id, fills[k], v->fill + v->nfill, 4 - (size_t)v->nfill, &len, &t))
            return aur__err(AUR_EFORMAT, "%s: variable '%s': attribute %s is not 1 to %d numbers", path, name, fills[k], 4 - v->nfill);
        v->nfill += (int)len;
    }
    int bad = aur__nc_att(nc, v->id, "scale_factor", &v->scale, 1, &len, &scale_type);
    bad = bad || aur__nc_att(nc, v->id, "add_offset", &v->offset, 1, &len, &offset_type);
    if (bad || (scale_type != NC_NAT && scale_type != NC_FLOAT && scale_type != NC_DOUBLE) ||
        (offset_type != NC_NAT && offset_type != NC_FLOAT && offset_type != NC_DOUBLE))
        return aur__err(AUR_EUNSUPPORTED, "%s: variable '%s': scale_factor and add_offset must be one float or double number each", path, name);
    if (nc_inq_att(nc, v->id, "_Unsigned", &t, &len) == NC_NOERR)
        return aur__err(AUR_EUNSUPPORTED, "%s: variable '%s' has the _Unsigned attribute; store it as an unsigned type instead", path, name);
    v->has_scale = scale_type != NC_NAT, v->has_offset = offset_type != NC_NAT;
    v->dtype = aur__cf_dtype(v, scale_type, offset_type);
    return aur__nc_filters(nc, v->id, path, name);
}

/* numpy's float32 / float64 rounding of a result (f32: round to float). */
static double aur__rnd(double x, int f32) { return f32 ? (double)(float)x : x; }

/* Values as xarray decodes them: fill values to NaN, then * scale_factor + add_offset,
   rounded to the decoded dtype. */
static void aur__cf_decode(const aur__cf_var *v, double *x, size_t n)
{
    int f32 = v->dtype == AUR__DT_F32;
    if (!v->has_scale && !v->has_offset) { /* float data (the newer stores'): fill values and the rounding only */
        for (size_t i = 0; i < n; i++) {
            int fill = 0;
            for (int k = 0; k < v->nfill; k++) fill |= x[i] == v->fill[k];
            x[i] = fill ? NAN : aur__rnd(x[i], f32);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int fill = 0;
        for (int k = 0; k < v->nfill; k++) fill |= x[i] == v->fill[k];
        /* volatile: numpy multiplies, rounds, then adds; a fused multiply-add (-ffp-contract) would not round between */
        volatile double y = fill ? NAN : aur__rnd(x[i], f32);
        if (v->has_scale) y = aur__rnd(y * aur__rnd(v->scale, f32), f32);
        if (v->has_offset) y = aur__rnd(y + aur__rnd(v->offset, f32), f32);
        x[i] = y;
    }
}
#endif
