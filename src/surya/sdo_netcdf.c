#include "api.h"
#include "../core/platform.h"

/* ==== Surya: one SDO NetCDF file ====
   HelioNetCDFDataset.load_nc_data opens a file with xarray (engine
   "h5netcdf") and stacks the channels' 2-D variables into (C, H, W), CF
   decoded; transform_data pools it with skimage.measure.block_reduce(mean)
   and applies the signum-log scalers. Done here with libnetcdf (HDF5 and the
   HDF5 filter plugins the files were compressed with), in the precision
   numpy would use: float32 unless a channel decodes to float64. */

#ifdef AUR_NETCDF
#include <netcdf.h>
#include <netcdf_filter.h>

/* What a channel's values become in numpy (xarray's decoding, then stacking). */
enum { AUR__DT_SMALLINT = 1, AUR__DT_BIGINT = 2, AUR__DT_F32 = 3, AUR__DT_F64 = 4 };

typedef struct aur__cf_var {
    int id, dtype, nfill;
    nc_type type;
    size_t H, W;
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

/* A numeric attribute's values, at most max of them (*len how many); *type its type (NC_NAT if absent). */
static int aur__nc_att(int nc, int id, const char *name, double *v, size_t max, size_t *len, nc_type *type)
{
    *type = NC_NAT, *len = 0;
    if (nc_inq_att(nc, id, name, type, len) != NC_NOERR) return *type = NC_NAT, *len = 0, 0;
    if (*type == NC_CHAR || *type == NC_STRING || *len < 1 || *len > max) return AUR_EFORMAT;
    return nc_get_att_double(nc, id, name, v) == NC_NOERR ? 0 : AUR_EFORMAT;
}

/* xarray's dtype for a variable (xarray/coding/variables.py): with a scale or
   an offset, _choose_float_dtype of the stored type: the scale's float type
   (float64 for a 4-byte integer, or a lone offset); else CFMaskCoder promotes
   masked integers to float (32 bits for 1-2 byte ones); else the stored type. */
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

/* A channel's variable: 2-D, numeric, its CF attributes read. */
static int aur__cf_inspect(int nc, const char *path, const char *name, aur__cf_var *v)
{
    int dims[NC_MAX_VAR_DIMS], ndims = 0, nvars = 0;
    memset(v, 0, sizeof *v);
    if (nc_inq_varid(nc, name, &v->id) != NC_NOERR) {
        char list[256] = "", var[NC_MAX_NAME + 1];
        nc_inq_nvars(nc, &nvars);
        for (int i = 0; i < nvars && strlen(list) < 200; i++)
            if (nc_inq_varname(nc, i, var) == NC_NOERR) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.40s", i ? ", " : "", var);
        return aur__err(AUR_EFORMAT, "%s: no variable '%s' (it has: %s)", path, name, list);
    }
    int st = nc_inq_var(nc, v->id, NULL, &v->type, &ndims, dims, NULL);
    if (st != NC_NOERR) return aur__nc_err(st, path, name);
    if (ndims != 2) return aur__err(AUR_EFORMAT, "%s: variable '%s' has %d dimensions; a channel is 2-D (y, x)", path, name, ndims);
    if (v->type == NC_CHAR || v->type == NC_STRING || v->type > NC_STRING)
        return aur__err(AUR_EFORMAT, "%s: variable '%s' is not numeric", path, name);
    if (nc_inq_dimlen(nc, dims[0], &v->H) != NC_NOERR || nc_inq_dimlen(nc, dims[1], &v->W) != NC_NOERR || !v->H || !v->W) return aur__err(AUR_EFORMAT, "%s: variable '%s' is empty (%zu x %zu)", path, name, v->H, v->W);
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

/* The stacked array's dtype (numpy promotion over the channels). */
static int aur__stack_dtype(const aur__cf_var *v, int C)
{
    int f64 = 0, f32 = 0, big = 0;
    for (int c = 0; c < C; c++) f64 |= v[c].dtype == AUR__DT_F64, f32 |= v[c].dtype == AUR__DT_F32, big |= v[c].dtype == AUR__DT_BIGINT;
    return f64 || (f32 && big) ? AUR__DT_F64 : f32 ? AUR__DT_F32 : big ? AUR__DT_BIGINT : AUR__DT_SMALLINT;
}

/* Opens a file and inspects its channels; all must have one shape. */
static int aur__sdo_open_file(const char *path, const char *const *names, int C, int *nc, aur__cf_var *v)
{
    int st = nc_open(path, NC_NOWRITE, nc);
    if (st != NC_NOERR) return aur__nc_err(st, path, "cannot open as NetCDF");
    int rc = 0;
    for (int c = 0; c < C && !rc; c++) {
        rc = aur__cf_inspect(*nc, path, names[c], &v[c]);
        if (!rc && (v[c].H != v[0].H || v[c].W != v[0].W))
            rc = aur__err(AUR_EFORMAT, "%s: variable '%s' is %zu x %zu but '%s' is %zu x %zu", path, names[c], v[c].H, v[c].W, names[0],
                          v[0].H, v[0].W);
    }
    if (rc) nc_close(*nc);
    return rc;
}

/* numpy's float32 / float64 rounding of a sum (f32: round every addition to float). */
static double aur__rnd(double x, int f32) { return f32 ? (double)(float)x : x; }

/* numpy's pairwise summation of a contiguous run (umath loops: 8 partial
   sums below 128 values, halves above), each addition rounded as numpy's. */
static double aur__np_sum(const double *a, int n, int f32)
{
    if (n < 8) {
        double s = 0;
        for (int i = 0; i < n; i++) s = aur__rnd(s + a[i], f32);
        return s;
    }
    if (n <= 128) {
        double r[8];
        int i;
        for (i = 0; i < 8; i++) r[i] = a[i];
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] = aur__rnd(r[j] + a[i + j], f32);
        double s = aur__rnd(aur__rnd(aur__rnd(r[0] + r[1], f32) + aur__rnd(r[2] + r[3], f32), f32) +
                                aur__rnd(aur__rnd(r[4] + r[5], f32) + aur__rnd(r[6] + r[7], f32), f32), f32);
        for (; i < n; i++) s = aur__rnd(s + a[i], f32);
        return s;
    }
    int half = n / 2;
    half -= half % 8;
    return aur__rnd(aur__np_sum(a, half, f32) + aur__np_sum(a + half, n - half, f32), f32);
}

/* skimage.measure.block_reduce(x, (p, p), np.mean) in place: zero padding to
   a multiple of p, each block's rows summed pairwise then added in order
   (numpy's reduction over the block axes), divided by p*p. When the padded
   width is p, a block's rows follow each other in memory and numpy's
   iterator sums the block as one pairwise run of p*p. */
static int aur__block_mean(double *x, int H, int W, int p, int f32)
{
    int Hp = (H + p - 1) / p, Wp = (W + p - 1) / p, one_run = Wp == 1;
    double *run = (double *)aur__malloc(sizeof *run * (size_t)p * (one_run ? p : 1), "a pooling block");
    if (!run) return AUR_ENOMEM;
    for (int i = 0; i < Hp; i++)
        for (int j = 0; j < Wp; j++) {
            double s = 0;
            for (int r = 0; r < p; r++) {
                double *row = run + (one_run ? (size_t)r * p : 0);
                for (int c = 0; c < p; c++) {
                    int y = i * p + r, xx = j * p + c;
                    row[c] = y < H && xx < W ? x[(size_t)y * W + xx] : 0;
                }
                if (!one_run) s = aur__rnd(s + aur__np_sum(row, p, f32), f32);
            }
            if (one_run) s = aur__np_sum(run, p * p, f32);
            x[(size_t)i * Wp + j] = aur__rnd(s / ((double)p * p), f32); /* in place: block (i, j) was read before it is written */
        }
    AUR_FREE(run);
    return 0;
}

/* One channel's values as xarray decodes them: fill values to NaN, then * scale_factor + add_offset,
   rounded to the decoded dtype. */
static void aur__cf_decode(const aur__cf_var *v, double *x, size_t n)
{
    int f32 = v->dtype == AUR__DT_F32;
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

/* helio.py transform(): signum-log, then standardise, in float32 or float64 as numpy's promotion
   gives (the scalers are float32 numbers). Writes floats; counts values that are not finite. */
static int64_t aur__sdo_transform(const double *x, size_t n, const aur_surya_scaler *s, int f64, float *out)
{
    float sl = (float)s->sl_scale_factor, mean = (float)s->mean, den = (float)s->std + (float)s->epsilon;
    int64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (f64) {
            double y = x[i] * sl;
            y = y >= 0 ? log1p(y) : -log1p(-y);
            out[i] = (float)((y - mean) / den);
        } else {
            out[i] = aur__surya_scale_f32((float)x[i], sl, mean, den);
        }
        bad += !isfinite(out[i]);
    }
    return bad;
}

/* The shape of a file's channels (and that it can be read: variables, types, filters). */
static int aur__sdo_file_shape(const char *path, const char *const *names, int C, int *H, int *W)
{
    aur__cf_var v[AUR_SDO_MAX_CHANNELS];
    int nc, rc = C > AUR_SDO_MAX_CHANNELS ? aur__err(AUR_EINVAL, "at most %d channels", AUR_SDO_MAX_CHANNELS)
                                          : aur__sdo_open_file(path, names, C, &nc, v);
    if (rc) return rc;
    nc_close(nc);
    if (v[0].H > INT_MAX / 2 || v[0].W > INT_MAX / 2 || v[0].H * v[0].W > ((size_t)1 << 31))
        return aur__err(AUR_EFORMAT, "%s: channels of %zu x %zu are too large", path, v[0].H, v[0].W);
    *H = (int)v[0].H, *W = (int)v[0].W;
    return 0;
}

/* Reads a file's C channels, pooled by p and scaled, into out + c * stride (Hp x Wp floats each).
   work: H x W doubles. */
static int aur__sdo_file_read(const char *path, const char *const *names, int C, int p, const aur_surya_scaler *s, int H, int W,
                              double *work, float *out, size_t stride)
{
    aur__cf_var v[AUR_SDO_MAX_CHANNELS];
    int nc, rc = aur__sdo_open_file(path, names, C, &nc, v);
    if (rc) return rc;
    if (v[0].H != (size_t)H || v[0].W != (size_t)W) {
        nc_close(nc);
        return aur__err(AUR_EFORMAT, "%s: channels of %zu x %zu now, %d x %d when the data were opened (was the file replaced?)", path, v[0].H,
                        v[0].W, H, W);
    }
    int stacked = aur__stack_dtype(v, C);
    int pooled = p > 1 && stacked <= AUR__DT_BIGINT ? AUR__DT_F64 : stacked; /* np.mean of integers is float64 */
    int f64 = pooled == AUR__DT_F64 || pooled == AUR__DT_BIGINT; /* small integers times float32 scalers stay float32 */
    size_t n = (size_t)((H + p - 1) / p) * ((W + p - 1) / p);
    for (int c = 0; c < C && !rc; c++) {
        int st = nc_get_var_double(nc, v[c].id, work);
        if (st != NC_NOERR) { rc = aur__nc_err(st, path, names[c]); break; }
        aur__cf_decode(&v[c], work, (size_t)H * W);
        if (p > 1 && (rc = aur__block_mean(work, H, W, p, pooled == AUR__DT_F32))) break;
        int64_t bad = aur__sdo_transform(work, n, &s[c], f64, out + (size_t)c * stride);
        if (bad) rc = aur__err(AUR_EFORMAT, "%s: channel '%s' has %lld values that are NaN (a _FillValue) or infinite after scaling", path,
                               names[c], (long long)bad);
    }
    nc_close(nc);
    return rc;
}

#else /* built without libnetcdf */

static int aur__sdo_no_netcdf(const char *path)
{
    return aur__err(AUR_EUNSUPPORTED, "%s: reading NetCDF needs the implementation compiled with -DAUR_NETCDF and linked with "
                    "-lnetcdf -lyaml (Debian: libnetcdf-dev libyaml-dev)", path);
}
static int aur__sdo_file_shape(const char *path, const char *const *names, int C, int *H, int *W)
{
    (void)names, (void)C, (void)H, (void)W;
    return aur__sdo_no_netcdf(path);
}
static int aur__sdo_file_read(const char *path, const char *const *names, int C, int p, const aur_surya_scaler *s, int H, int W,
                              double *work, float *out, size_t stride)
{
    (void)names, (void)C, (void)p, (void)s, (void)H, (void)W, (void)work, (void)out, (void)stride;
    return aur__sdo_no_netcdf(path);
}
#endif
