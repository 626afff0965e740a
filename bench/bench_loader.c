/* bench_loader.c - the data loader against the training step (issue 15).

   Writes an ERA5 series as the Copernicus data store delivers it (NetCDF-4,
   float32, valid_time x pressure_level x latitude x longitude, zlib level 1
   with shuffle, one chunk per field; surface, atmospheric and static files)
   with AuroraSmallPretrained's variables at 13 levels, values at the model's
   own statistics, and measures on it, in one run:
   - the whole series read into memory, as the trainer did before the loader:
     seconds, and the bytes it holds (exact);
   - windows (history 2 + 1 target step) read from the open series one after
     another, as the loader's thread does: windows per second, bytes per
     window buffer (exact);
   - with --step (at 128 x 256): the trainer on these files, the real
     AuroraSmallPretrained training step beside its window reads: each
     step's time and the time it waited for its window, with the windows read
     at each step (data.prefetch 0) and read ahead (data.prefetch 2).
   make bench-data runs 128 x 256 with the step, then 721 x 1440 (0.25
   degrees) without it (a CPU step there takes minutes: that is GPU work).
     usage: bench_loader [--grid H W] [--steps T] [--step] [--dir DIR] [--reuse] */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#include <netcdf.h>
#include <stdlib.h>

static const double LEVELS[13] = {50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000};
enum { L = 13 };

#define NC_TRY(call)                                                                              \
    do {                                                                                          \
        int st_ = (call);                                                                         \
        if (st_ != NC_NOERR) {                                                                    \
            fprintf(stderr, "bench_loader: %s: %s (%s)\n", path, nc_strerror(st_), #call);         \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

typedef struct nc_out {
    const char *path;
    int nc, dims[4]; /* valid_time, pressure_level, latitude, longitude */
} nc_out;

/* A file with the store's coordinates (levels only if atmospheric). */
static nc_out nc_begin(const char *path, int T, int H, int W, int levels)
{
    nc_out o = {path, -1, {-1, -1, -1, -1}};
    int id;
    NC_TRY(nc_create(path, NC_NETCDF4 | NC_CLOBBER, &o.nc));
    NC_TRY(nc_def_dim(o.nc, "valid_time", (size_t)T, &o.dims[0]));
    if (levels) NC_TRY(nc_def_dim(o.nc, "pressure_level", L, &o.dims[1]));
    NC_TRY(nc_def_dim(o.nc, "latitude", (size_t)H, &o.dims[2]));
    NC_TRY(nc_def_dim(o.nc, "longitude", (size_t)W, &o.dims[3]));
    NC_TRY(nc_def_var(o.nc, "valid_time", NC_INT64, 1, &o.dims[0], &id));
    NC_TRY(nc_put_att_text(o.nc, id, "units", 29, "seconds since 1970-01-01 00:00"));
    if (levels) {
        NC_TRY(nc_def_var(o.nc, "pressure_level", NC_DOUBLE, 1, &o.dims[1], &id));
        NC_TRY(nc_put_att_text(o.nc, id, "units", 3, "hPa"));
    }
    NC_TRY(nc_def_var(o.nc, "latitude", NC_DOUBLE, 1, &o.dims[2], &id));
    NC_TRY(nc_put_att_text(o.nc, id, "units", 13, "degrees_north"));
    NC_TRY(nc_def_var(o.nc, "longitude", NC_DOUBLE, 1, &o.dims[3], &id));
    NC_TRY(nc_put_att_text(o.nc, id, "units", 12, "degrees_east"));
    return o;
}

/* A data variable: (valid_time, [pressure_level,] latitude, longitude), compressed one field per chunk. */
static int nc_var(nc_out *o, const char *name, const char *units, int levels)
{
    const char *path = o->path;
    int dims[4] = {o->dims[0], o->dims[1], o->dims[2], o->dims[3]}, id, n = levels ? 4 : 3;
    if (!levels) dims[1] = dims[2], dims[2] = dims[3];
    size_t chunk[4] = {1, 1, 0, 0}, len;
    NC_TRY(nc_inq_dimlen(o->nc, o->dims[2], &len));
    chunk[n - 2] = len;
    NC_TRY(nc_inq_dimlen(o->nc, o->dims[3], &len));
    chunk[n - 1] = len;
    NC_TRY(nc_def_var(o->nc, name, NC_FLOAT, n, dims, &id));
    NC_TRY(nc_def_var_chunking(o->nc, id, NC_CHUNKED, chunk));
    NC_TRY(nc_def_var_deflate(o->nc, id, 1, 1, 1));
    NC_TRY(nc_put_att_text(o->nc, id, "units", strlen(units), units));
    return id;
}

/* Coordinates: times 6 h apart from 2023-01-01, levels, latitudes 90..-90, longitudes from 0. */
static void nc_coords(nc_out *o, int T, int H, int W, int levels)
{
    const char *path = o->path;
    NC_TRY(nc_enddef(o->nc));
    int id;
    long long *t = (long long *)malloc(sizeof(long long) * (size_t)T);
    double *lat = (double *)malloc(sizeof(double) * (size_t)H), *lon = (double *)malloc(sizeof(double) * (size_t)W);
    for (int i = 0; i < T; i++) t[i] = 1672531200LL + 21600LL * i;
    for (int i = 0; i < H; i++) lat[i] = 90.0 - 180.0 * i / (H - 1);
    for (int i = 0; i < W; i++) lon[i] = 360.0 * i / W;
    NC_TRY(nc_inq_varid(o->nc, "valid_time", &id));
    NC_TRY(nc_put_var_longlong(o->nc, id, t));
    if (levels) {
        NC_TRY(nc_inq_varid(o->nc, "pressure_level", &id));
        NC_TRY(nc_put_var_double(o->nc, id, LEVELS));
    }
    NC_TRY(nc_inq_varid(o->nc, "latitude", &id));
    NC_TRY(nc_put_var_double(o->nc, id, lat));
    NC_TRY(nc_inq_varid(o->nc, "longitude", &id));
    NC_TRY(nc_put_var_double(o->nc, id, lon));
    free(t), free(lat), free(lon);
}

/* One field: the variable's location plus a scale times a smooth pattern that moves with time, and a little noise. */
static void fill_field(float *f, int H, int W, double loc, double scale, int step, int k, uint64_t *rng)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
            double noise = (double)(*rng >> 40) / 16777216.0 - 0.5;
            double p = sin(3.14159265 * y / H * (1 + k % 3)) * cos(6.2831853 * x / W * (1 + k % 2) + 0.3 * step);
            f[(size_t)y * W + x] = (float)(loc + scale * (p + 0.1 * noise));
        }
}

static void put_fields(nc_out *o, int id, int T, int H, int W, int levels, double *loc, double *scale, int k, uint64_t *rng)
{
    const char *path = o->path;
    float *f = (float *)malloc(sizeof(float) * (size_t)H * W);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < (levels ? L : 1); c++) {
            fill_field(f, H, W, loc[c], scale[c], t, k + c, rng);
            size_t start[4] = {(size_t)t, (size_t)c, 0, 0}, count[4] = {1, 1, (size_t)H, (size_t)W};
            if (!levels) start[1] = 0, count[1] = (size_t)H, count[2] = (size_t)W;
            NC_TRY(nc_put_vara_float(o->nc, id, start, count, f));
        }
    free(f);
}

/* The three files at the model's statistics (path stays valid while its file is open). */
static void write_series(const aur_model *m, const char *dir, int T, int H, int W)
{
    const aur__aurora *A = aur__A(m);
    const aur_aurora_config *c = &A->cfg;
    static const char *const file_names[4][2] = {{"2t", "t2m"}, {"10u", "u10"}, {"10v", "v10"}, {"msl", "msl"}};
    static const char *const units[] = {"K", "m s**-1", "m s**-1", "Pa"};
    static const char *const atmos_units[] = {"m**2 s**-2", "m s**-1", "m s**-1", "K", "kg kg**-1"}; /* z u v t q */
    char path[1200];
    uint64_t rng = 7;
    double loc[L], scale[L];
    for (int k = 0; k < L; k++) loc[k] = 0, scale[k] = 1; /* where the preset has no statistics */
    snprintf(path, sizeof path, "%s/surface.nc", dir);
    nc_out o = nc_begin(path, T, H, W, 0);
    int ids[16];
    for (int i = 0; i < c->surf_vars.n; i++) ids[i] = nc_var(&o, file_names[i][1], units[i], 0);
    nc_coords(&o, T, H, W, 0);
    for (int i = 0; i < c->surf_vars.n; i++) {
        aur__surf_stats(A, c->surf_vars.name[i], loc, scale);
        put_fields(&o, ids[i], T, H, W, 0, loc, scale, i, &rng);
    }
    nc_close(o.nc);
    snprintf(path, sizeof path, "%s/atmospheric.nc", dir);
    o = nc_begin(path, T, H, W, 1);
    for (int i = 0; i < c->atmos_vars.n; i++) ids[i] = nc_var(&o, c->atmos_vars.name[i], atmos_units[i], 1);
    nc_coords(&o, T, H, W, 1);
    for (int i = 0; i < c->atmos_vars.n; i++) {
        aur__atmos_stats(A, c->atmos_vars.name[i], LEVELS, L, loc, scale);
        put_fields(&o, ids[i], T, H, W, 1, loc, scale, 10 * i, &rng);
    }
    nc_close(o.nc);
    snprintf(path, sizeof path, "%s/static.nc", dir); /* the stores' static fields, one time step */
    o = nc_begin(path, 1, H, W, 0);
    for (int i = 0; i < c->static_vars.n; i++) /* z; lsm and slt carry no unit the reader checks */
        ids[i] = nc_var(&o, c->static_vars.name[i], !strcmp(c->static_vars.name[i], "z") ? "m**2 s**-2" : "(0 - 1)", 0);
    nc_coords(&o, 1, H, W, 0);
    for (int i = 0; i < c->static_vars.n; i++) {
        aur__surf_stats(A, c->static_vars.name[i], loc, scale);
        put_fields(&o, ids[i], 1, H, W, 0, loc, scale, 100 + i, &rng);
    }
    nc_close(o.nc);
}

static double file_bytes(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) ? 0 : (double)st.st_size;
}

static int64_t batch_bytes(const aur_batch *b)
{
    int64_t n = 0;
    for (int i = 0; i < b->surf_names.n; i++) n += b->surf[i]->numel;
    for (int i = 0; i < b->atmos_names.n; i++) n += b->atmos[i]->numel;
    for (int i = 0; i < b->static_names.n; i++) n += b->statics[i]->numel;
    return n * (int64_t)sizeof(aur_real);
}

static int cmp_double(const void *a, const void *b) { return (*(const double *)a > *(const double *)b) - (*(const double *)a < *(const double *)b); }

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : 0;
}

/* The trainer on the files, `steps` steps: the median step time and the median time a step waited for its window. */
static int train(const char *dir, int prefetch, int steps, double *step_s, double *wait_s, double *setup_s)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"model\": {\"preset\": \"aurora-small-pretrained\"},"
             " \"data\": {\"train\": [[\"%s/surface.nc\", \"%s/atmospheric.nc\", \"%s/static.nc\"]], \"history\": 2, \"prefetch\": %d},"
             " \"optimizer\": {\"name\": \"adamw\", \"lr\": 1e-4}, \"steps\": %d, \"seed\": 1, \"activation_checkpointing\": true,"
             " \"output_dir\": \"%s/run\", \"overwrite_output_dir\": true}",
             dir, dir, dir, prefetch, steps, dir);
    cJSON *j = cJSON_Parse(text);
    double t0 = aur__wall();
    aur_trainer *tr = aur_trainer_create_json(j, ".");
    *setup_s = aur__wall() - t0;
    cJSON_Delete(j);
    if (!tr) return fprintf(stderr, "bench_loader: trainer: %s\n", aur_last_error()), 1;
    double st[64], wt[64];
    aur_step_info si;
    int rc = 0;
    for (int s = 0; s < steps && !rc; s++) {
        rc = aur_trainer_step(tr, &si);
        st[s] = si.seconds, wt[s] = si.data_seconds;
    }
    if (rc) fprintf(stderr, "bench_loader: step: %s\n", aur_last_error());
    aur_trainer_free(tr);
    *step_s = median(st, steps), *wait_s = median(wt, steps);
    return rc;
}

int main(int argc, char **argv)
{
    int H = 128, W = 256, T = 8, with_step = 0, reuse = 0;
    const char *dir = "build/bench_data";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--grid") && i + 2 < argc) H = atoi(argv[i + 1]), W = atoi(argv[i + 2]), i += 2;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--step")) with_step = 1;
        else if (!strcmp(argv[i], "--reuse")) reuse = 1; /* the files of an earlier run with the same grid and steps */
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else return fprintf(stderr, "usage: bench_loader [--grid H W] [--steps T] [--step] [--dir DIR] [--reuse]\n"), 2;
    }
    if (H < 2 || W < 2 || T < 4 || T > 60) return fprintf(stderr, "bench_loader: a grid of at least 2 x 2 and 4..60 steps\n"), 2;
    if (aur__mkdirs(dir)) return fprintf(stderr, "bench_loader: %s\n", aur_last_error()), 1;
    aur_aurora_config c;
    aur_aurora_preset("aurora-small-pretrained", &c);
    aur_model *m = aur_aurora_declare_model(&c);
    double t0 = aur__wall();
    if (!reuse) write_series(m, dir, T, H, W);
    double disk = file_bytes(dir, "surface.nc") + file_bytes(dir, "atmospheric.nc") + file_bytes(dir, "static.nc");
    printf("grid %d x %d, %d levels, %d steps 6 h apart: NetCDF-4 (zlib 1, shuffle) %.1f MB on disk, written in %.1f s\n", H, W, L, T,
           disk / 1e6, aur__wall() - t0);
    fflush(stdout);

    char p[3][1200];
    const char *paths[3] = {p[0], p[1], p[2]};
    snprintf(p[0], sizeof p[0], "%s/surface.nc", dir);
    snprintf(p[1], sizeof p[1], "%s/atmospheric.nc", dir);
    snprintf(p[2], sizeof p[2], "%s/static.nc", dir);
    t0 = aur__wall();
    aur_batch *whole = aur_batch_load_files(paths, 3, NULL, NULL);
    double whole_s = aur__wall() - t0;
    if (!whole) return fprintf(stderr, "bench_loader: %s\n", aur_last_error()), 1;
    printf("  whole series in memory (aur_batch_load_files, before the loader): %.3f s, %lld bytes held\n", whole_s, (long long)batch_bytes(whole));
    aur_batch_free(whole);
    fflush(stdout);

    aur_series *s = aur_series_open(paths, 3, NULL, NULL);
    aur_window w;
    memset(&w, 0, sizeof w);
    int n = T - 3 + 1, rc = 0;
    t0 = aur__wall();
    for (int i = 0; i < n && !rc && s; i++) rc = aur_window_read(s, (aur_window_ref){0, i}, 2, 1, 21600, 0, &w);
    double win_s = (aur__wall() - t0) / n;
    if (!s || rc) return fprintf(stderr, "bench_loader: %s\n", aur_last_error()), 1;
    int64_t win_bytes = batch_bytes(w.input) + batch_bytes(w.target[0]);
    printf("  one window (history 2 + 1 target) from the open series: %.3f s, %.2f windows/s; %lld bytes per window buffer\n", win_s, 1 / win_s,
           (long long)win_bytes);
    printf("  the trainer holds (data.prefetch 2): 3 window buffers for training + 1 for evaluation = %lld bytes\n", (long long)(4 * win_bytes));
    aur_window_free(&w);
    aur_series_close(s);
    fflush(stdout);

    if (with_step) {
        double step0, wait0, setup0, step2, wait2, setup2;
        int steps = 3;
        if (train(dir, 0, steps, &step0, &wait0, &setup0) || train(dir, 2, steps, &step2, &wait2, &setup2)) return 1;
        printf("  AuroraSmallPretrained training step (AdamW, checkpointing), median of %d: %.2f s\n", steps, 0.5 * (step0 + step2));
        printf("    windows read at each step (prefetch 0): the step waits %.3f s for its window (%.1f%% of the step)\n", wait0,
               100 * wait0 / step0);
        printf("    windows read ahead (prefetch 2):        the step waits %.3f s for its window (%.1f%% of the step)\n", wait2,
               100 * wait2 / step2);
        printf("    window read / step time: %.4f; trainer setup (opening and checking every value of the series): %.2f s\n", win_s / step2,
               setup2);
    }
    aur_model_free(m);
    return 0;
}
