/* test_weather.c - weather files read as a series: ERA5 NetCDF as the
   Copernicus stores deliver it (the newer float files with valid_time,
   the older packed shorts split over days), a file with increasing
   latitudes, longitudes in [-180, 180) and Pa levels, and a WeatherBench2
   Zarr v2 store, all written by xarray/netCDF4/zarr
   (tests/fixtures/weather, tools/make_weather_fixtures.py); and GRIB 2
   analyses in three files and a GRIB 1 forecast in one, written by ecCodes
   (tests/fixtures/grib, tools/make_grib_fixtures.py) and read by cfgrib. Each must give,
   bit for bit, the batch the Python stack reads with the reference's
   conventions (expected.safetensors); then a series converted to
   safetensors reads back the same, a run config trains from the NetCDF
   files, and bad files are refused with the file and variable named. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"

#include <fcntl.h>
#include <unistd.h>

/* A small Aurora over the fixtures' 9 x 16 grid and 3 levels */
#define SMALL_KWARGS "\"embed_dim\": 16, \"num_heads\": 2, \"patch_size\": 4, \"window_size\": [2, 2, 4], \"encoder_depths\": [1, 1]," \
                     " \"encoder_num_heads\": [2, 4], \"decoder_depths\": [1, 1], \"decoder_num_heads\": [4, 2], \"latent_levels\": 2"

#define FIX "tests/fixtures/weather"
#define GRIB "tests/fixtures/grib"

static int64_t bits_total, bits_differ;

/* Bitwise equality of floats, NaN equal to NaN. */
static int64_t differing(const float *a, const float *b, int64_t n)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += !(isnan(a[i]) && isnan(b[i])) && memcmp(&a[i], &b[i], sizeof(float));
    return k;
}

static void compare_tensor(const char *what, const char *name, aur_tensor *got, const aur_st_file *f, const char *key)
{
    const aur_st_tensor *e = aur_st_find(f, key);
    AUR_CHECK(e != NULL, "%s: the expected file has %s", what, key);
    AUR_CHECK(got != NULL, "%s: the batch has %s", what, name);
    if (!e || !got) return;
    int same_shape = e->ndim == got->ndim;
    for (int d = 0; same_shape && d < e->ndim; d++) same_shape = e->shape[d] == got->shape[d];
    AUR_CHECK(same_shape, "%s: %s has the expected shape", what, key);
    if (!same_shape) return;
    float *want = (float *)malloc(sizeof(float) * (size_t)e->numel);
    AUR_CHECK(want && !aur_st_read(f, e, AUR_F32, want), "%s: %s reads", what, key);
    int64_t k = differing(aur_tensor_f32(got), want, e->numel);
    bits_total += e->numel, bits_differ += k;
    AUR_CHECK(k == 0, "%s: %s: %lld of %lld values differ", what, key, (long long)k, (long long)e->numel);
    free(want);
}

/* A batch against the expected file: every variable, coordinates, levels, times and step. */
static void compare_batch(const char *what, const aur_batch *b, const char *expected)
{
    aur_st_file *f = aur_st_open(expected);
    AUR_CHECK(f != NULL, "%s: %s opens: %s", what, expected, aur_last_error());
    if (!f || !b) {
        aur_st_close(f);
        return;
    }
    static const char *const groups[] = {"surf", "static", "atmos"};
    const aur_var_list *lists[] = {&b->surf_names, &b->static_names, &b->atmos_names};
    for (int g = 0; g < 3; g++) {
        char key[64];
        snprintf(key, sizeof key, "%s_vars", groups[g]);
        aur_var_list want;
        memset(&want, 0, sizeof want);
        aur__vl_split(&want, aur_st_meta(f, key) ? aur_st_meta(f, key) : "", ",");
        AUR_CHECK(want.n == lists[g]->n, "%s: %d %s variables (%d expected)", what, lists[g]->n, groups[g], want.n);
        for (int i = 0; i < want.n; i++) {
            char name[96];
            snprintf(name, sizeof name, "%s/%s", groups[g], want.name[i]);
            aur_tensor *t = g == 0 ? aur_batch_surf(b, want.name[i]) : g == 1 ? aur_batch_static(b, want.name[i]) : aur_batch_atmos(b, want.name[i]);
            compare_tensor(what, name, t, f, name);
        }
    }
    aur_batch *meta = aur_batch_load_unchecked(expected);
    AUR_CHECK(meta != NULL, "%s: the expected batch loads: %s", what, aur_last_error());
    if (meta) {
        AUR_CHECK(meta->H == b->H && meta->W == b->W && meta->C == b->C && meta->T == b->T, "%s: sizes T %d C %d H %d W %d", what, b->T, b->C, b->H, b->W);
        AUR_CHECK(meta->H == b->H && !differing(meta->lat, b->lat, b->H), "%s: latitudes", what);
        AUR_CHECK(meta->W == b->W && !differing(meta->lon, b->lon, b->W), "%s: longitudes", what);
        int lev = meta->C == b->C;
        for (int c = 0; lev && c < b->C; c++) lev = (float)meta->levels[c] == (float)b->levels[c];
        AUR_CHECK(lev, "%s: levels (first %g)", what, b->C ? b->levels[0] : 0);
        AUR_CHECK(meta->time[0] == b->time[0], "%s: time of the last step %.0f (expected %.0f)", what, b->time[0], meta->time[0]);
        AUR_CHECK(meta->step_seconds == b->step_seconds, "%s: step %g s (expected %g)", what, b->step_seconds, meta->step_seconds);
    }
    aur_batch_free(meta);
    aur_st_close(f);
}

static aur_batch *load(const char *what, const char *const *paths, int n)
{
    aur_batch *b = aur_batch_load_files(paths, n, NULL, stdout);
    AUR_CHECK(b != NULL, "%s loads: %s", what, aur_last_error());
    return b;
}

/* The fixtures' series, each as the Python stack reads it (expected.safetensors) */
static const char *cds_new[] = {FIX "/era5_cds_new/surface.nc", FIX "/era5_cds_new/atmospheric.nc", FIX "/era5_cds_new/static.nc"};
static const char *cds_old[] = {FIX "/era5_cds_old/static.nc", FIX "/era5_cds_old/surface_day2.nc", FIX "/era5_cds_old/atmospheric.nc",
                                FIX "/era5_cds_old/surface_day1.nc"};
static const char *flip[] = {FIX "/flip_roll/all.nc"}, *wb2[] = {FIX "/wb2_zarr/era5.zarr"};
static const char *hres[] = {GRIB "/hres/surface.grib2", GRIB "/hres/atmospheric.grib2", GRIB "/hres/static.grib2"};
static const char *forecast[] = {GRIB "/forecast/all.grib1"};
static const struct { const char *name, *const *paths; int n; const char *expected; } cases[] = {
    {"ERA5 (CDS, NetCDF-4, valid_time)", cds_new, 3, FIX "/era5_cds_new/expected.safetensors"},
    {"ERA5 (CDS, packed shorts, two days)", cds_old, 4, FIX "/era5_cds_old/expected.safetensors"},
    {"flipped latitudes, rolled longitudes, Pa", flip, 1, FIX "/flip_roll/expected.safetensors"},
    {"WeatherBench2 Zarr v2", wb2, 1, FIX "/wb2_zarr/expected.safetensors"},
    {"HRES-like GRIB 2 (three files, shuffled messages)", hres, 3, GRIB "/hres/expected.safetensors"},
    {"GRIB 1 forecast steps (south first, from -180, bitmap)", forecast, 1, GRIB "/forecast/expected.safetensors"},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static void test_cases(void)
{
    for (int i = 0; i < N_CASES; i++) {
        aur_batch *b = load(cases[i].name, cases[i].paths, cases[i].n);
        compare_batch(cases[i].name, b, cases[i].expected);
        aur_batch_free(b);
    }
    printf("weather fixtures: %lld values compared, %lld not bit-identical\n", (long long)bits_total, (long long)bits_differ);
}

/* Every window of each fixture series, read from the open series (only its
   own steps: hyperslabs, GRIB messages), equals the window cut from the whole. */
static void test_series_windows(void)
{
    for (int i = 0; i < N_CASES; i++) {
        aur_batch *whole = aur_batch_load_files(cases[i].paths, cases[i].n, NULL, NULL);
        aur_series *s = aur_series_open(cases[i].paths, cases[i].n, NULL, NULL);
        int T = s ? aur_series_length(s) : 0, windows = 0, same = 0;
        AUR_CHECK(whole && s && T == whole->T && aur_series_step_seconds(s) == whole->step_seconds, "%s: the series opens with %d steps: %s",
                  cases[i].name, T, aur_last_error());
        for (int start = 0; whole && start < T; start++)
            for (int steps = 1; start + steps <= T; steps++, windows++) {
                aur_batch *w = aur_series_read(s, start, steps, 3600), *ref = aur_batch_window(whole, start, steps, 3600);
                same += aur_test_same_batch(w, ref);
                aur_batch_free(w);
                aur_batch_free(ref);
            }
        AUR_CHECK(windows > 0 && same == windows, "%s: %d of %d windows equal the whole series' bit for bit", cases[i].name, same, windows);
        aur_series_close(s);
        aur_batch_free(whole);
    }
    aur_series *a = aur_series_open(cds_new, 3, NULL, NULL), *b = aur_series_open(hres, 3, NULL, NULL);
    aur_batch *buf = a ? aur_series_window_alloc(a, 1, 0) : NULL;
    AUR_CHECK(b && buf && aur_series_read_into(b, 0, 3600, buf) == AUR_ESHAPE && strstr(aur_last_error(), "hres/surface.grib2"),
              "a window buffer of another grid is refused, naming the file: %s", aur_last_error());
    aur_batch_free(buf);
    aur_series_close(a);
    aur_series_close(b);
}

/* GRIB and NetCDF files in one series: the GRIB surface and atmosphere with a NetCDF static file on the same grid. */
static void test_mixed_formats(void)
{
    const char *paths[] = {GRIB "/hres/surface.grib2", GRIB "/hres/atmospheric.grib2", FIX "/era5_cds_new/static.nc"};
    aur_batch *b = load("GRIB with a NetCDF static file", paths, 3);
    aur_st_file *grib = aur_st_open(GRIB "/hres/expected.safetensors"), *nc = aur_st_open(FIX "/era5_cds_new/expected.safetensors");
    AUR_CHECK(grib && nc, "the expected files open: %s", aur_last_error());
    if (b && grib && nc) {
        compare_tensor("mixed", "surf/2t", aur_batch_surf(b, "2t"), grib, "surf/2t");
        compare_tensor("mixed", "atmos/q", aur_batch_atmos(b, "q"), grib, "atmos/q");
        compare_tensor("mixed", "static/lsm", aur_batch_static(b, "lsm"), nc, "static/lsm");
        compare_tensor("mixed", "static/z", aur_batch_static(b, "z"), nc, "static/z");
    }
    aur_st_close(grib);
    aur_st_close(nc);
    aur_batch_free(b);
}

/* aur_batch_save of a weather series reads back as the same series (step_seconds included). */
static void test_round_trip(void)
{
    const char *cds_new[] = {FIX "/era5_cds_new/surface.nc", FIX "/era5_cds_new/atmospheric.nc", FIX "/era5_cds_new/static.nc"};
    aur_batch *b = aur_batch_load_files(cds_new, 3, NULL, NULL);
    const char *out = aur_test_tmp("series.safetensors");
    AUR_CHECK(b && !aur_batch_save(b, out), "the series saves: %s", aur_last_error());
    const char *one[] = {out};
    aur_batch *r = b ? aur_batch_load_files(one, 1, NULL, NULL) : NULL;
    AUR_CHECK(r != NULL, "the saved series loads: %s", aur_last_error());
    if (b && r) {
        int64_t k = 0;
        for (int i = 0; i < b->surf_names.n; i++) k += differing(aur_tensor_f32(b->surf[i]), aur_tensor_f32(aur_batch_surf(r, b->surf_names.name[i])), b->surf[i]->numel);
        for (int i = 0; i < b->atmos_names.n; i++) k += differing(aur_tensor_f32(b->atmos[i]), aur_tensor_f32(aur_batch_atmos(r, b->atmos_names.name[i])), b->atmos[i]->numel);
        AUR_CHECK(k == 0, "the saved series has the same values (%lld differ)", (long long)k);
        AUR_CHECK(r->step_seconds == 6 * 3600 && r->time[0] == b->time[0], "step %g s and time kept", r->step_seconds);
    }
    aur_batch_free(b);
    aur_batch_free(r);
}

/* A rename maps a file's name to Aurora's; renames come before the table. */
static void test_renames(void)
{
    const char *surf[] = {FIX "/era5_cds_new/surface.nc"};
    aur_batch *b = aur_batch_load_files(surf, 1, "t2m=temp2m,msl=mslp", NULL);
    AUR_CHECK(b && aur_batch_surf(b, "temp2m") && aur_batch_surf(b, "mslp") && aur_batch_surf(b, "10u") && !aur_batch_surf(b, "2t"),
              "renames apply first, the table for the rest: %s", b ? "" : aur_last_error());
    aur_batch_free(b);
    b = aur_batch_load_files(surf, 1, "t2m=", NULL);
    AUR_CHECK(!b && strstr(aur_last_error(), "rename"), "an empty new name is refused: %s", aur_last_error());
    aur_batch_free(b);
}

/* Each bad file: refused, with the file and the problem named. */
static void test_errors(void)
{
    struct { const char *paths[3]; int n; const char *want1, *want2; } bad[] = {
        {{FIX "/bad/grid_mismatch_surface.nc", FIX "/bad/grid_mismatch_atmos.nc"}, 2, "grid_mismatch_atmos.nc", "grid"},
        {{FIX "/bad/uneven_time.nc"}, 1, "uneven_time.nc", "evenly spaced"},
        {{FIX "/bad/duplicate_time.nc"}, 1, "duplicate_time.nc", "twice"},
        {{FIX "/bad/z_in_metres.nc"}, 1, "'z'", "9.80665"},
        {{FIX "/bad/noleap.nc"}, 1, "noleap.nc", "calendar 'noleap'"},
        {{FIX "/bad/three_d_lat.nc"}, 1, "'t2m'", "'ensemble' of size 2"},
        {{FIX "/wb2_zarr/era5_blosc.zarr"}, 1, "era5_blosc.zarr", "blosc"},
        {{FIX "/era5_cds_new/surface.nc", FIX "/era5_cds_old/atmospheric.nc"}, 2, "era5_cds_old/atmospheric.nc", "grid"},
        {{FIX "/era5_cds_new/surface.nc", FIX "/era5_cds_new/surface.nc"}, 2, "surface.nc", "twice"},
        {{FIX "/era5_cds_old/surface_day1.nc", FIX "/era5_cds_old/atmospheric.nc"}, 2, "surface_day1.nc", "2t ('t2m') has no data at 2023-01-02 00:00"},
        {{FIX "/era5_cds_new/expected.safetensors", FIX "/era5_cds_new/static.nc"}, 2, "expected.safetensors", "one file on its own"},
        {{FIX "/missing.nc", FIX "/era5_cds_new/static.nc"}, 2, "missing.nc", "No such file"},
        {{FIX "/era5_cds_new/static.nc"}, 1, "static.nc", "no surface or atmospheric variable"},
        {{FIX}, 1, FIX, "not a Zarr v2 store"},
        {{GRIB "/bad/reduced_gg.grib2"}, 1, "reduced_gg.grib2", "grid 'reduced_gg'"},
        {{GRIB "/bad/truncated.grib2"}, 1, "truncated.grib2", "GRIB message 2"},
        {{GRIB "/bad/missing_level.grib2"}, 1, "missing_level.grib2", "no message at level 850 at 2023-01-01 06:00"},
        {{GRIB "/bad/twice.grib2"}, 1, "twice.grib2", "2t at level 2 at 2023-01-01 06:00:00 is there twice"},
        {{GRIB "/bad/model_levels.grib2"}, 1, "model_levels.grib2", "model levels"},
        {{GRIB "/hres/surface.grib2", FIX "/era5_cds_old/atmospheric.nc"}, 2, "era5_cds_old/atmospheric.nc", "grid"},
        {{GRIB "/hres/static.grib2"}, 1, "static.grib2", "no surface or atmospheric variable"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aur_batch *b = aur_batch_load_files(bad[i].paths, bad[i].n, NULL, NULL);
        const char *e = aur_last_error();
        AUR_CHECK(!b && strstr(e, bad[i].want1) && strstr(e, bad[i].want2), "%s: refused naming '%s' and '%s': %s", bad[i].paths[bad[i].n - 1],
                  bad[i].want1, bad[i].want2, b ? "(loaded)" : e);
        aur_batch_free(b);
    }
    /* fill values are NaN in the series, and the data check reports them by name */
    const char *nan[] = {FIX "/bad/nan_fill.nc"};
    aur_batch *b = aur_batch_load_files(nan, 1, NULL, NULL);
    AUR_CHECK(b != NULL, "a file with fill values loads: %s", aur_last_error());
    if (b) {
        int64_t n = 0;
        aur_tensor *t = aur_batch_surf(b, "2t");
        for (int64_t i = 0; t && i < t->numel; i++) n += isnan(aur_tensor_f32(t)[i]);
        AUR_CHECK(n == 3, "its 3 fill values are NaN (%lld)", (long long)n);
    }
    aur_batch_free(b);
}

/* CF time units: the forms the data stores and xarray write, and what is refused. */
static void test_time_units(void)
{
    struct { const char *units, *calendar; double unit, epoch; const char *error; } cases[] = {
        {"hours since 1900-01-01 00:00:00.0", "gregorian", 3600, -2208988800.0, NULL}, /* the former CDS files */
        {"seconds since 1970-01-01", "", 1, 0, NULL},                                 /* the current ones */
        {"days since 2000-01-01T00:00:00Z", "proleptic_gregorian", 86400, 946684800.0, NULL},
        {"minutes since 2020-01-01 06:30", "standard", 60, 1577860200.0, NULL},
        {"hours since 2020-01-01 00:00:00 UTC", "", 3600, 1577836800.0, NULL},
        {"hours since 1500-01-01", "gregorian", 0, 0, "Julian"},
        {"hours since 1500-01-01", "proleptic_gregorian", 3600, -14831769600.0, NULL},
        {"fortnights since 2000-01-01", "", 0, 0, "unknown unit 'fortnights'"},
        {"hours since 2000-13-01", "", 0, 0, "not a valid date"},
        {"hours", "", 0, 0, "not 'UNIT since DATE'"},
        {"hours since 2000-01-01 00:00 +01:00", "", 0, 0, "only UTC"},
        {"days since 2000-01-01", "360_day", 0, 0, "calendar '360_day'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double unit = -1, epoch = -1;
        int rc = aur__cf_time_units(cases[i].units, cases[i].calendar, &unit, &epoch);
        if (cases[i].error)
            AUR_CHECK(rc && strstr(aur_last_error(), cases[i].error), "'%s' (%s) refused: %s", cases[i].units, cases[i].calendar, aur_last_error());
        else
            AUR_CHECK(!rc && unit == cases[i].unit && epoch == cases[i].epoch, "'%s': %g s per unit from %.0f (rc %d)", cases[i].units, unit, epoch, rc);
    }
}

/* A run whose data.train is the three ERA5 files of one series (and data.rename), then the errors a run config meets. */
static aur_trainer *weather_trainer(const char *kwargs_extra, const char *train, const char *rename, const char *top)
{
    char text[4096], cwd[1024];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    /* the fixture's fields are random, not weather: the outlier check is loosened so that they pass */
    snprintf(text, sizeof text,
             "{\"model\": {\"preset\": \"aurora-small-pretrained\", \"kwargs\": {%s%s}},"
             " \"data\": {\"train\": %s, %s \"history\": 2, \"outlier_z\": 1e6},"
             " \"optimizer\": {\"name\": \"adamw\", \"lr\": 1e-3}, \"steps\": 2, \"seed\": 1, \"output_dir\": \"%s/run\", \"overwrite_output_dir\": true%s}",
             SMALL_KWARGS, kwargs_extra, train, rename, aur_test_dir, top);
    cJSON *j = cJSON_Parse(text);
    AUR_CHECK(j != NULL, "the weather run config parses");
    aur_trainer *tr = j ? aur_trainer_create_json(j, cwd) : NULL;
    cJSON_Delete(j);
    return tr;
}

static void test_training(void)
{
    const char *files = "[[\"" FIX "/era5_cds_new/surface.nc\", \"" FIX "/era5_cds_new/atmospheric.nc\", \"" FIX "/era5_cds_new/static.nc\"]]";
    /* the loader's thread reads the files: HDF5 must stay as quiet there as on the main thread */
    const char *err_path = aur_test_tmp("train_stderr.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    aur_trainer *tr = weather_trainer("", files, "", "");
    int rc = tr ? aur_trainer_run(tr) : -1;
    fflush(stderr);
    dup2(saved, 2);
    close(fd), close(saved);
    AUR_CHECK(tr != NULL, "a run config with NetCDF data.train is accepted: %s", aur_last_error());
    AUR_CHECK(rc == 0, "two steps train on the NetCDF series: %s", aur_last_error());
    AUR_CHECK(tr && aur_trainer_steps_done(tr) == 2, "the run made its 2 steps");
    aur_trainer_free(tr);
    FILE *ef = fopen(err_path, "r");
    char line[512];
    int diag = 0;
    while (ef && fgets(line, sizeof line, ef)) diag += strstr(line, "HDF5-DIAG") != NULL;
    if (ef) fclose(ef);
    AUR_CHECK(ef && diag == 0, "no HDF5 diagnostics from the loader's thread (%d)", diag);
    const char *grib = "[[\"" GRIB "/hres/surface.grib2\", \"" GRIB "/hres/atmospheric.grib2\", \"" GRIB "/hres/static.grib2\"]]";
    tr = weather_trainer("", grib, "", "");
    rc = tr ? aur_trainer_run(tr) : -1;
    AUR_CHECK(rc == 0 && aur_trainer_steps_done(tr) == 2, "two steps train on the GRIB series: %s", rc ? aur_last_error() : "");
    aur_trainer_free(tr);
    tr = weather_trainer(", \"timestep\": 3600", files, "", "");
    AUR_CHECK(!tr && strstr(aur_last_error(), "6 h apart; the model steps 1 h"), "files 6 h apart refused for a 1-hour model: %s",
              aur_last_error());
    aur_trainer_free(tr);
    tr = weather_trainer("", files, "\"rename\": {\"t2m\": 7},", "");
    AUR_CHECK(!tr && strstr(aur_last_error(), "rename"), "a rename that is not a name is refused: %s", aur_last_error());
    aur_trainer_free(tr);
    tr = weather_trainer("", files, "\"rename\": {\"msl\": \"pressure\"},", "");
    AUR_CHECK(!tr && strstr(aur_last_error(), "msl"), "renamed away from Aurora's name, msl is missing: %s", aur_last_error());
    aur_trainer_free(tr);
    tr = weather_trainer("", "[[\"" FIX "/era5_cds_new/surface.nc\", 3]]", "", "");
    AUR_CHECK(!tr && strstr(aur_last_error(), "train[0][1]"), "a series list with a non-name is refused: %s", aur_last_error());
    aur_trainer_free(tr);
}

/* The paper's loss as the run's loss, with its weights; and what the "loss" key refuses. */
static void test_paper_loss(void)
{
    const char *files = "[[\"" FIX "/era5_cds_new/surface.nc\", \"" FIX "/era5_cds_new/atmospheric.nc\", \"" FIX "/era5_cds_new/static.nc\"]]";
    aur_trainer *tr = weather_trainer("", files, "", ", \"loss\": {\"name\": \"aurora_mae\", \"surf_weights\": {\"2t\": 1.5}}, \"eval_every\": 1,"
                                                 " \"map_vars\": [\"2t\", \"z@500\"]"); /* 9-row targets mapped on 8-row predictions */
    int rc = tr ? aur_trainer_run(tr) : -1;
    AUR_CHECK(rc == 0 && aur_trainer_steps_done(tr) == 2, "two steps train on the paper's loss: %s", rc ? aur_last_error() : "");
    aur_trainer_free(tr);
    /* the evaluation's WeatherBench2 RMSE per variable and lead went to metrics.jsonl, with a plot per variable */
    char path[1200];
    snprintf(path, sizeof path, "%s/run/metrics.jsonl", aur_test_dir);
    size_t len = 0;
    char *text = aur__read_text_file(path, 1 << 22, "metrics", &len);
    AUR_CHECK(text && strstr(text, "\"val_rmse/2t/6h\": ") && strstr(text, "\"val_rmse/z500/6h\": "), "metrics.jsonl has val_rmse/2t/6h and z500");
    AUR_FREE(text);
    snprintf(path, sizeof path, "%s/run/val_rmse_z_levels.png", aur_test_dir);
    AUR_CHECK(access(path, F_OK) == 0, "the RMSE plot of z against lead time is there: %s", path);
    snprintf(path, sizeof path, "%s/run/maps_z_500_error.png", aur_test_dir);
    AUR_CHECK(access(path, F_OK) == 0, "the map of z at 500 hPa is there: %s", path);
    struct { const char *top, *want; } bad[] = {
        {", \"loss\": \"mae\"", "\"mse\" or \"aurora_mae\""},
        {", \"loss\": {\"name\": \"mse\", \"surf_weight\": 2}", "the MSE takes none"},
        {", \"loss\": {\"name\": \"aurora_mae\", \"atmos_weights\": {\"z\": -1}}", "atmos_weights.z"},
        {", \"loss\": {\"name\": \"aurora_mae\", \"weight\": 1}", "weight"},
        {", \"loss\": {\"surf_weight\": 0.5}", "the MSE takes none"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tr = weather_trainer("", files, "", bad[i].top);
        AUR_CHECK(!tr && strstr(aur_last_error(), bad[i].want), "%s refused: %s", bad[i].top, aur_last_error());
        aur_trainer_free(tr);
    }
    tr = weather_trainer("", files, "\"nan_ok\": \"2t\",", ", \"loss\": \"aurora_mae\"");
    AUR_CHECK(!tr && strstr(aur_last_error(), "needs finite data"), "the paper's loss with nan_ok is refused: %s", aur_last_error());
    aur_trainer_free(tr);
}

int main(void)
{
    aur_test_tmpdir_begin("weather");
    test_cases();
    test_series_windows();
    test_mixed_formats();
    test_round_trip();
    test_renames();
    test_errors();
    test_time_units();
    test_training();
    test_paper_loss();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
