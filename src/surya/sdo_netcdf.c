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
    return aur__cf_attributes(nc, path, name, v);
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
