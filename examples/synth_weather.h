/* synth_weather.h - a small, synthetic but physically plausible weather
   dataset for the demos and tests (NOT real data).

   Smooth fields on a regular lat/lon grid, advected eastward by a jet that is
   strongest in mid-latitudes and grows with height, with the standard Aurora
   variable names: surface 2t, 10u, 10v, msl; static lsm, z, slt; atmospheric
   z, u, v, t, q on a few pressure levels. Each field is its climatology (the
   model's normalisation statistics) plus a latitude profile plus travelling
   waves, so the normalised data has mean near 0 and std near 1, and the next
   step is predictable from the last two (the waves move at a fixed speed).
   One extra variable, "tcwv" (total column water vapour), is a function of
   the humidity column: a new variable for fine-tuning to learn.

   Include after aurora.h; needs an Aurora model only for its statistics. */
#ifndef SYNTH_WEATHER_H
#define SYNTH_WEATHER_H

#include <math.h>

#define SYNTH_PI 3.14159265358979323846
#define SYNTH_STEP_SECONDS (6 * 3600.0)
#define SYNTH_TCWV_LOC 25.0 /* kg m-2: register these as tcwv's statistics */
#define SYNTH_TCWV_SCALE 16.0

typedef struct synth_wave {
    int k;             /* zonal wavenumber */
    double phase, amp; /* radians, normalised units */
    int m;             /* meridional mode */
} synth_wave;

typedef struct synth_world {
    synth_wave waves[4];
    double jet;        /* angular speed of the jet core, radians of longitude per step */
} synth_world;

static double synth_uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static synth_world synth_make_world(uint64_t seed)
{
    synth_world w;
    uint64_t s = seed * 2654435761ull + 17;
    for (int i = 0; i < 4; i++) {
        w.waves[i].k = 1 + i % 3 + (i == 3 ? 2 : 0);
        w.waves[i].m = 1 + (i * 7 + (int)(seed % 3)) % 3;
        w.waves[i].phase = 2 * SYNTH_PI * synth_uniform(&s);
        w.waves[i].amp = 0.5 + 0.6 * synth_uniform(&s);
    }
    w.jet = 0.10 + 0.04 * synth_uniform(&s);
    return w;
}

/* Angular speed at a latitude and height (level index from the top, 0..1). */
static double synth_speed(const synth_world *w, double lat, double height)
{
    double c = cos(lat);
    return w->jet * (0.4 + 0.6 * height) * c * c;
}

/* The travelling-wave anomaly of variable v (a phase offset) at one point and step. */
static double synth_waves(const synth_world *w, int v, double lat, double lon, double step, double height)
{
    double shift = synth_speed(w, lat, height) * step, sum = 0;
    for (int i = 0; i < 4; i++) {
        const synth_wave *q = &w->waves[i];
        sum += q->amp * cos(q->k * (lon - shift) + q->phase + 0.7 * v) * sin(q->m * (lat + SYNTH_PI / 2));
    }
    return sum / 1.6;
}

/* The normalised value of a variable; var codes: 0 2t/t, 1 u, 2 v, 3 msl/z, 4 q. */
static double synth_value(const synth_world *w, int var, double lat, double lon, double step, double height)
{
    double a = synth_waves(w, var, lat, lon, step, height);
    switch (var) {
    case 0: return 1.1 * cos(2 * lat) + 0.3 - 0.5 * height + 0.6 * a;         /* warm tropics */
    case 1: return 2.0 * synth_speed(w, lat, height) / w->jet - 0.6 + 0.3 * a; /* the jet itself */
    case 2: return 0.8 * a;
    case 3: return 0.8 * cos(2 * lat) + 0.7 * a;
    default: return 1.2 * cos(lat) * cos(lat) - 0.7 + 0.5 * a - 0.4 * height;  /* moist tropics */
    }
}

static int synth_code(const char *name)
{
    if (!strcmp(name, "2t") || !strcmp(name, "t")) return 0;
    if (!strcmp(name, "10u") || !strcmp(name, "u")) return 1;
    if (!strcmp(name, "10v") || !strcmp(name, "v")) return 2;
    if (!strcmp(name, "msl") || !strcmp(name, "z")) return 3;
    return 4;
}

/* Static fields: a land-sea mask of smooth blobs, orography on land, soil type. */
static double synth_static(const char *name, double lat, double lon)
{
    double blob = sin(2 * lon + 1.0) * cos(3 * lat) + 0.6 * sin(lon - 2 * lat + 0.5);
    int land = blob > 0.35;
    if (!strcmp(name, "lsm")) return land;
    if (!strcmp(name, "z")) return land ? 2500.0 * (blob - 0.35) : 0.0; /* m2 s-2 scale comes from the stats below */
    return land ? 1.0 + floor(3 * fabs(sin(5 * lon))) : 0.0;           /* slt */
}

/* Column water vapour from the normalised humidity of every level, weighted to the lowest. */
static double synth_tcwv(const synth_world *w, double lat, double lon, double step, const double *levels, int C)
{
    double sum = 0, wsum = 0;
    for (int c = 0; c < C; c++) {
        double height = 1.0 - levels[c] / 1000.0, weight = levels[c] / 1000.0;
        sum += weight * synth_value(w, 4, lat, lon, step, height);
        wsum += weight;
    }
    return SYNTH_TCWV_LOC + SYNTH_TCWV_SCALE * 1.4 * sum / (wsum > 0 ? wsum : 1);
}

/* A series of T steps (one model step apart) of the batch's variables, at
   C levels on an H x W grid, in physical units (climatology from the model's
   statistics). The variable "tcwv" may be listed among the surface ones. */
static aur_batch *synth_series(const aur_model *m, int T, int C, const double *levels, int H, int W, const aur_var_list *surf,
                               const aur_var_list *statics, const aur_var_list *atmos, uint64_t seed)
{
    aur_batch *b = aur_batch_create(1, T, C, H, W, surf, statics, atmos);
    if (!b) return NULL;
    synth_world w = synth_make_world(seed);
    for (int c = 0; c < C; c++) b->levels[c] = levels[c];
    for (int i = 0; i < H; i++) b->lat[i] = (float)(90.0 - 180.0 * i / (H - 1));
    for (int j = 0; j < W; j++) b->lon[j] = (float)(360.0 * j / W);
    b->time[0] = 1577836800.0 + (double)(seed % 1000) * 86400.0 + (T - 1) * SYNTH_STEP_SECONDS; /* from 2020 */
    uint64_t noise = seed + 99;
    char key[64], lv[32];
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            double lat = b->lat[i] * SYNTH_PI / 180, lon = b->lon[j] * SYNTH_PI / 180;
            int64_t ij = (int64_t)i * W + j;
            for (int t = 0; t < T; t++) {
                for (int v = 0; v < surf->n; v++) {
                    double loc = SYNTH_TCWV_LOC, scale = SYNTH_TCWV_SCALE, x;
                    if (!strcmp(surf->name[v], "tcwv")) x = synth_tcwv(&w, lat, lon, t, levels, C);
                    else {
                        aur_aurora_get_stats(m, surf->name[v], &loc, &scale);
                        x = loc + scale * (synth_value(&w, synth_code(surf->name[v]), lat, lon, t, 0) +
                                           0.02 * (synth_uniform(&noise) - 0.5));
                    }
                    aur_tensor_f32(b->surf[v])[(int64_t)t * H * W + ij] = (aur_real)x;
                }
                for (int v = 0; v < atmos->n; v++)
                    for (int c = 0; c < C; c++) {
                        double loc = 0, scale = 1, height = 1.0 - levels[c] / 1000.0;
                        aur_level_to_str(levels[c], lv, sizeof lv);
                        snprintf(key, sizeof key, "%s_%s", atmos->name[v], lv);
                        aur_aurora_get_stats(m, key, &loc, &scale);
                        double x = synth_value(&w, synth_code(atmos->name[v]), lat, lon, t, height);
                        aur_tensor_f32(b->atmos[v])[((int64_t)t * C + c) * H * W + ij] = (aur_real)(loc + scale * x);
                    }
            }
            for (int v = 0; v < statics->n; v++) {
                double loc = 0, scale = 1, x = synth_static(statics->name[v], lat, lon);
                if (!strcmp(statics->name[v], "z")) aur_aurora_get_stats(m, "z", &loc, &scale), x = x * scale / 2500.0;
                aur_tensor_f32(b->statics[v])[ij] = (aur_real)x;
            }
        }
    return b;
}

#endif /* SYNTH_WEATHER_H */
