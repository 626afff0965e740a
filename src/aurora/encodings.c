#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: Fourier encodings ====
   Computed once per call on the host in double precision (aurora/model/fourier.py:
   FourierExpansion, aurora/model/posencoding.py): the phases
   reach 1e8 rad, so float32 sin would not be reproducible between builds. */

#define AUR__PI 3.14159265358979323846
#define AUR__EARTH_R 6378.137
#define AUR__A_MIN 1.0814085263058073e-04

/* d/2 log-spaced wavelengths in [lower, upper], as torch.logspace computes them (two-sided). */
static void aur__wavenumbers(double lower, double upper, int d, double *k)
{
    int n = d / 2;
    double a = log10(lower), b = log10(upper), s = n > 1 ? (b - a) / (n - 1) : 0;
    for (int i = 0; i < n; i++) {
        double lam = i < n / 2 ? pow(10, a + s * i) : pow(10, b - s * (n - 1 - i));
        k[i] = (1.0 / lam) * 6.283185307179586; /* reciprocal first, as torch evaluates 2 pi / lambda */
    }
}

/* FourierExpansion: [sin(x k_0..k_{n-1}), cos(...)], each rounded to float32. */
static int aur__fourier(const double *x, int64_t count, double lower, double upper, int d, int check, float *out, const char *what)
{
    double k[4096];
    if (d % 2 || d / 2 > 4096) return aur__err(AUR_EINVAL, "%s encoding: dimension %d must be even (and <= 8192)", what, d);
    double mx = 0;
    for (int64_t j = 0; j < count; j++) mx = fabs(x[j]) > mx ? fabs(x[j]) : mx;
    for (int64_t j = 0; check && j < count; j++)
        if (x[j] != 0 && !(fabs(x[j]) >= lower && mx <= upper))
            return aur__err(AUR_EINVAL, "%s encoding: value %.9g is outside [%g, %g] (and not 0)", what, x[j], lower, upper);
    aur__wavenumbers(lower, upper, d, k);
    for (int64_t j = 0; j < count; j++)
        for (int i = 0; i < d / 2; i++) {
            double ph = x[j] * k[i];
            out[j * d + i] = (float)sin(ph);
            out[j * d + d / 2 + i] = (float)cos(ph);
        }
    return 0;
}

/* Levels in hPa: integers exactly, and any fractional level rounded to float32 (as torch builds the tensor). */
static void aur__levels_input(const double *levels, int C, double *x)
{
    int any_frac = 0;
    for (int c = 0; c < C; c++) any_frac |= levels[c] != floor(levels[c]);
    for (int c = 0; c < C; c++) x[c] = any_frac ? (double)(float)levels[c] : levels[c];
}

/* The float32 lat/lon grid value at (i, j). */
static float aur__grid(const float *g, int is_2d, int64_t i, int64_t j, int64_t W, int along_rows)
{
    if (is_2d) return g[i * W + j];
    return along_rows ? g[i] : g[j];
}

/* Position and scale encodings of every patch (aurora/model/posencoding.py:
   pos_scale_enc): (L, D) each, with scratch from the tape's arena. */
static int aur__patch_encodings(aur_tape *t, const aur_batch *b, int64_t H, int64_t W, int P, int D, float *pos, float *scl)
{
    const int64_t h = H / P, w = W / P;
    const float cdeg = (float)0.017453292519943295;
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
    double *mlat = (double *)aur__alloc(t, AUR_CPU, sizeof(double) * (size_t)(3 * h * w + 1));
    float *tmp = (float *)aur__alloc(t, AUR_CPU, sizeof(float) * (size_t)(D / 2));
    if (!mlat || !tmp) {
        aur__arena_release(&t->main[AUR_CPU], mk);
        return AUR_ENOMEM;
    }
    double *mlon = mlat + h * w, *root = mlon + h * w;
    int rc = 0;
    for (int64_t pi = 0; pi < h && !rc; pi++)
        for (int64_t pj = 0; pj < w && !rc; pj++) {
            float slat = 0, slon = 0, lat_max = -INFINITY, lat_min = INFINITY, lon_max = -INFINITY, lon_min = INFINITY;
            for (int64_t r = pi * P; r < (pi + 1) * P; r++) /* the CPU average-pool order */
                for (int64_t c = pj * P; c < (pj + 1) * P; c++) {
                    float la = aur__grid(b->lat, b->lat_2d, r, c, W, 1), lo = aur__grid(b->lon, b->lon_2d, r, c, W, 0);
                    slat = slat + la;
                    slon = slon + lo;
                    lat_max = la > lat_max ? la : lat_max;
                    lat_min = la < lat_min ? la : lat_min;
                    lon_max = lo > lon_max ? lo : lon_max;
                    lon_min = lo < lon_min ? lo : lon_min;
                }
            int64_t l = pi * w + pj;
            mlat[l] = (double)(float)(slat / (float)(P * P));
            mlon[l] = (double)(float)(slon / (float)(P * P));
            if (!(lat_max > lat_min && lon_max > lon_min && fabsf(lat_max) <= 90 && fabsf(lat_min) <= 90 && lon_min >= 0 && lon_max <= 360)) {
                rc = aur__err(AUR_EINVAL, "patch (%lld, %lld): latitudes [%g, %g], longitudes [%g, %g] do not span a valid area",
                              (long long)pi, (long long)pj, lat_min, lat_max, lon_min, lon_max);
                break;
            }
            /* the area in float32, one rounding per operation, as posencoding.py: patch_root_area */
            float a1 = lat_max * cdeg, a2 = lat_min * cdeg, o1 = lon_max * cdeg, o2 = lon_min * cdeg;
            float ds = (float)sin((double)a1) - (float)sin((double)a2), dl = o1 - o2;
            float area = ((float)127516117.97744706 * ds) * dl;
            if (!(area > 0)) rc = aur__err(AUR_EINVAL, "patch (%lld, %lld) has area %g", (long long)pi, (long long)pj, area);
            root[l] = (double)(float)sqrt((double)area);
        }
    for (int64_t l = 0; l < h * w && !rc; l++) {
        rc = aur__fourier(&mlat[l], 1, 0.01, 720, D / 2, 1, tmp, "position (latitude)");
        if (!rc) memcpy(pos + l * D, tmp, sizeof(float) * (size_t)(D / 2));
        if (!rc) rc = aur__fourier(&mlon[l], 1, 0.01, 720, D / 2, 1, tmp, "position (longitude)");
        if (!rc) memcpy(pos + l * D + D / 2, tmp, sizeof(float) * (size_t)(D / 2));
    }
    if (!rc) rc = aur__fourier(root, h * w, AUR__A_MIN, 4 * AUR__PI * AUR__EARTH_R * AUR__EARTH_R, D, 1, scl, "scale");
    aur__arena_release(&t->main[AUR_CPU], mk);
    return rc;
}
