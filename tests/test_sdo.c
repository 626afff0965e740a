/* test_sdo.c - SDO data in the reference's layout: the samples the
   reference's HelioNetCDFDataset and SolarFlareDataset return for files
   written by xarray + h5netcdf with gzip and HDF5 plugin filters
   (tests/fixtures/sdo, tools/make_sdo_fixtures.py), a flare run whose
   config points at an index CSV, and the errors bad files and tables give
   before anything is read. */
#define AURORA_IMPLEMENTATION
#include "../surya.h"
#include "aur_test.h"
#include <netcdf.h>
#include <dlfcn.h>

#define FIX "tests/fixtures/sdo"

static cJSON *read_json(const char *path)
{
    size_t n = 0;
    char *text = aur__read_small_file(path, &n);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    AUR_FREE(text);
    AUR_CHECK(j != NULL, "%s parses", path);
    return j;
}

/* A fixture case's options (the strings live in the JSON and in names). */
static aur_sdo_options case_options(const cJSON *c, const char **names, int *deltas)
{
    aur_sdo_options o;
    memset(&o, 0, sizeof o);
    const cJSON *ch = cJSON_GetObjectItem(c, "channels"), *dt = cJSON_GetObjectItem(c, "time_delta_input_minutes");
    for (int k = 0; k < cJSON_GetArraySize(ch); k++) names[k] = cJSON_GetArrayItem(ch, k)->valuestring;
    for (int k = 0; k < cJSON_GetArraySize(dt); k++) deltas[k] = cJSON_GetArrayItem(dt, k)->valueint;
    o.index_path = FIX "/index.csv", o.data_root = FIX "/data", o.scalers_path = FIX "/scalers.yaml";
    o.label_path = cJSON_IsTrue(cJSON_GetObjectItem(c, "flare")) ? FIX "/flare.csv" : NULL;
    o.channels = names, o.n_channels = cJSON_GetArraySize(ch);
    o.time_delta_input_minutes = deltas, o.n_inputs = cJSON_GetArraySize(dt);
    o.time_delta_target_minutes = cJSON_GetObjectItem(c, "time_delta_target_minutes")->valueint;
    o.rollout_steps = cJSON_GetObjectItem(c, "rollout_steps")->valueint;
    o.pooling = cJSON_GetObjectItem(c, "pooling")->valueint;
    return o;
}

static int64_t bits_total, bits_differ; /* over a case: values compared, values not bit-identical */

/* got (float) against the fixture's entry `key`: how many values differ in their bits, and the largest error. */
static void compare(const aur_st_file *f, const char *key, const float *got, int64_t n, const char *what)
{
    const aur_st_tensor *e = aur_st_find(f, key);
    AUR_CHECK(e && e->numel == n, "%s: the fixture has '%s' of %lld values (%lld)", what, key, (long long)n, e ? (long long)e->numel : -1LL);
    if (!e || e->numel != n) return;
    aur_real *want = (aur_real *)malloc(sizeof(aur_real) * (size_t)n);
    aur_st_read(f, e, AUR_F32, want);
    int64_t differ = 0;
    double worst = 0, scale = 1e-30;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)want[i]));
    for (int64_t i = 0; i < n; i++) {
        differ += got[i] != (float)want[i];
        bits_differ += got[i] != (float)want[i], bits_total++;
        worst = fmax(worst, fabs((double)got[i] - (double)want[i]) / scale);
    }
    /* numpy may take float32 log1p from SIMD code of its own (1 ulp from libm's); all else is the same arithmetic */
    AUR_CHECK(worst <= 2.5e-7, "%s '%s': %lld of %lld values differ from the reference's bits, max error %.3g (<= 2.5e-7)", what, key,
              (long long)differ, (long long)n, worst);
    free(want);
}

static void test_fixture_case(const char *name)
{
    char path[512], what[600];
    snprintf(path, sizeof path, FIX "/%s.json", name);
    cJSON *c = read_json(path);
    if (!c) return;
    const char *names[AUR_SDO_MAX_CHANNELS];
    int deltas[64];
    aur_sdo_options o = case_options(c, names, deltas);
    aur_sdo_dataset *d = NULL;
    int rc = aur_sdo_open(&o, &d);
    AUR_CHECK(!rc, "case %s opens: %s", name, rc ? aur_last_error() : "");
    int64_t start = 0;
    aur__parse_time(cJSON_GetObjectItem(c, "start")->valuestring, &start);
    snprintf(path, sizeof path, FIX "/%s.safetensors", name);
    aur_st_file *f = aur_st_open(path);
    if (!d || !f) { aur_sdo_close(d), aur_st_close(f), cJSON_Delete(c); return; }
    aur_sdo_info in = aur_sdo_describe(d);
    int want_n = cJSON_GetObjectItem(c, "samples")->valueint;
    AUR_CHECK(in.n == want_n, "case %s: %lld samples, as the reference's len() %d", name, (long long)in.n, want_n);
    int64_t ts_n = (int64_t)in.C * in.T * in.H * in.W, fc_n = (int64_t)in.C * in.L * in.H * in.W;
    float *ts = (float *)malloc(sizeof(float) * (size_t)ts_n), *fc = (float *)malloc(sizeof(float) * (size_t)fc_n), tdi[64], ltd[64];
    int64_t times[64];
    for (int64_t i = 0; i < in.n && i < want_n; i++) {
        aur_sdo_sample s = {ts, fc, tdi, ltd, times, 0};
        rc = aur_sdo_read(d, i, &s);
        AUR_CHECK(!rc, "case %s sample %lld reads: %s", name, (long long)i, rc ? aur_last_error() : "");
        snprintf(what, sizeof what, "case %s sample %lld", name, (long long)i);
        char key[64];
        snprintf(key, sizeof key, "%lld.ts", (long long)i), compare(f, key, ts, ts_n, what);
        snprintf(key, sizeof key, "%lld.forecast", (long long)i), compare(f, key, fc, fc_n, what);
        snprintf(key, sizeof key, "%lld.time_delta_input", (long long)i), compare(f, key, tdi, in.T, what);
        snprintf(key, sizeof key, "%lld.lead_time_delta", (long long)i), compare(f, key, ltd, in.L, what);
        float minutes[64], label = (float)s.label;
        for (int k = 0; k < in.T + in.L; k++) minutes[k] = (float)((times[k] - start) / (60 * 1000000000LL));
        snprintf(key, sizeof key, "%lld.minutes", (long long)i), compare(f, key, minutes, in.T + in.L, what);
        if (in.labelled) snprintf(key, sizeof key, "%lld.label", (long long)i), compare(f, key, &label, 1, what);
    }
    printf("case %s: %lld samples, %lld values, %lld not bit-identical to the reference's\n", name, (long long)in.n, (long long)bits_total,
           (long long)bits_differ);
    bits_total = bits_differ = 0;
    free(ts), free(fc);
    aur_st_close(f);
    aur_sdo_close(d);
    cJSON_Delete(c);
}

/* ---- files and tables written here, for the run and the errors ---- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    AUR_CHECK(f && fputs(text, f) >= 0, "writing %s", path);
    if (f) fclose(f);
}

/* A NetCDF-4 file of C float channels H x W; value (c, i) from the time k. bad: one pixel a _FillValue (1), a 3-D variable (2),
   a missing_value list of 3 holding one pixel's value (3) or a list of 6 (4). */
static void write_nc(const char *path, const char *const *names, int C, int H, int W, int k, int bad)
{
    int nc, dims[3], var;
    int ok = nc_create(path, NC_NETCDF4 | NC_CLOBBER, &nc) == NC_NOERR;
    ok = ok && nc_def_dim(nc, "t", 1, &dims[0]) == NC_NOERR && nc_def_dim(nc, "y", H, &dims[1]) == NC_NOERR && nc_def_dim(nc, "x", W, &dims[2]) == NC_NOERR;
    float *v = (float *)malloc(sizeof(float) * (size_t)H * W), fill = -1;
    for (int c = 0; ok && c < C; c++) {
        ok = nc_def_var(nc, names[c], NC_FLOAT, bad == 2 ? 3 : 2, bad == 2 ? dims : dims + 1, &var) == NC_NOERR;
        ok = ok && nc_def_var_deflate(nc, var, 1, 1, 2) == NC_NOERR && nc_put_att_float(nc, var, "_FillValue", NC_FLOAT, 1, &fill) == NC_NOERR;
        for (int i = 0; i < H * W; i++) v[i] = (float)(10 + 5 * c + ((i * 7 + k * 3 + c) % 11));
        if (bad == 1) v[3] = fill;
        float missing[6] = {-7, -8, v[5], -9, -10, -11};
        if (bad >= 3) ok = ok && nc_put_att_float(nc, var, "missing_value", NC_FLOAT, bad == 3 ? 3 : 6, missing) == NC_NOERR;
        ok = ok && nc_put_var_float(nc, var, v) == NC_NOERR;
    }
    AUR_CHECK(ok && nc_close(nc) == NC_NOERR, "writing %s", path);
    free(v);
}

static const char *const two[] = {"aia94", "hmi_m"};
static const char *scalers_yaml =
    "aia94: {base: surya.datasets.transformations, class: StandardScaler, epsilon: '1e-08', mean: '2.5', std: '0.5',"
    " is_fitted: true, min: '0.0', max: '1.0', sl_scale_factor: '1.0'}\n"
    "hmi_m: {base: surya.datasets.transformations, class: StandardScaler, epsilon: '1e-08', mean: '3.0', std: '0.25',"
    " is_fitted: true, min: '0.0', max: '1.0', sl_scale_factor: '1.0'}\n";

/* 12 hourly 16 x 16 files, labels alternating; the index written in reverse time order. */
static void write_square_set(void)
{
    char index[4096] = ",path,timestep,present\n", labels[4096] = "timestamp,max_goes_class,cumulative_index,label_max,label_cum\n", line[256];
    mkdir(aur_test_tmp("sq"), 0700);
    for (int k = 11; k >= 0; k--) {
        char rel[64];
        snprintf(rel, sizeof rel, "%02d.nc", k);
        snprintf(line, sizeof line, "sq/%s", rel);
        write_nc(aur_test_tmp(line), two, 2, 16, 16, k, 0);
        snprintf(line, sizeof line, "%d,%s,2014-01-07 %02d:00:00,1\n", k, rel, k + 1);
        strcat(index, line);
    }
    for (int k = 0; k < 12; k++) {
        snprintf(line, sizeof line, "2014-01-07 %02d:00:00,B1.0,0.0,%d,0\n", k + 1, k % 2);
        strcat(labels, line);
    }
    write_text(aur_test_tmp("sq_index.csv"), index);
    write_text(aur_test_tmp("sq_flare.csv"), labels);
    write_text(aur_test_tmp("sq_scalers.yaml"), scalers_yaml);
}

static const char *sdo_run_config =
    "{\"task\": \"flare\", \"seed\": 1, \"path_experiment\": \"run\","
    " \"data\": {\"train_data_path\": \"sq_index.csv\", \"valid_data_path\": \"sq_index.csv\", \"sdo_data_root_path\": \"sq\","
    "  \"flare_data_path\": \"sq_flare.csv\", \"scalers_path\": \"sq_scalers.yaml\", \"channels\": [\"aia94\", \"hmi_m\"],"
    "  \"time_delta_input_minutes\": [-60, 0], \"time_delta_target_minutes\": 60, \"n_input_timestamps\": 2, \"batch_size\": 2,"
    "  \"pooling\": 2, \"num_data_workers\": 4},"
    " \"model\": {\"model_type\": \"spectformer\", \"img_size\": 8, \"patch_size\": 4, \"in_channels\": 2,"
    "  \"time_embedding\": {\"type\": \"linear\", \"n_queries\": null, \"time_dim\": 2}, \"embed_dim\": 16, \"depth\": 2,"
    "  \"spectral_blocks\": 1, \"num_heads\": 2, \"mlp_ratio\": 2.0, \"drop_rate\": 0.0, \"window_size\": 2, \"dp_rank\": 2,"
    "  \"nglo\": 1, \"finetune\": true, \"global_class_token\": true, \"penultimate_linear_layer\": true, \"dropout\": 0.0,"
    "  \"freeze_backbone\": false, \"use_lora\": false},"
    " \"optimizer\": {\"learning_rate\": 0.001, \"max_epochs\": 1}, \"rollout_steps\": 0}";

static void test_run_from_index(void)
{
    write_square_set();
    cJSON *j = cJSON_Parse(sdo_run_config);
    aur_trainer *tr = aur_surya_trainer_create_json(j, aur_test_tmp(""));
    AUR_CHECK(tr != NULL, "a flare config whose train_data_path is an index CSV makes a run: %s", tr ? "" : aur_last_error());
    cJSON_Delete(j);
    if (!tr) return;
    const aur__surya_tune *r = aur__surya_tune_of(tr);
    /* times 01..12: a sample needs t-1h, t, t+1h, so 02..11: 10 samples, 5 steps of 2 */
    AUR_CHECK(r->train.sdo && r->train.n == 10 && r->train.H == 8 && r->train.C == 2 && r->train.T == 2,
              "10 samples of (2, 2, 8, 8) from the files, pooled by 2 (%lld, %d x %d)", (long long)r->train.n, r->train.H, r->train.W);
    AUR_CHECK(r->train.target[0] == 1 && r->train.target[1] == 0, "the labels are label_max at each sample's time (02:00 is 1, 03:00 is 0)");
    AUR_CHECK(!aur_trainer_run(tr) && aur_trainer_steps_done(tr) == 5, "the run does its 5 steps: %s", aur_last_error());
    aur_trainer_free(tr);
    FILE *m = fopen(aur_test_tmp("run/metrics.jsonl"), "r");
    AUR_CHECK(m != NULL, "the run writes its metrics");
    if (m) fclose(m);
    /* the other tasks' label tables are not read: said before anything is built */
    j = cJSON_Parse(sdo_run_config);
    cJSON_ReplaceItemInObject(j, "task", cJSON_CreateString("wind"));
    tr = aur_surya_trainer_create_json(j, aur_test_tmp(""));
    AUR_CHECK(!tr && strstr(aur_last_error(), "only the flare one (flare_data_path) is read here, not task wind's"),
              "a wind config with an index CSV is refused: %s", aur_last_error());
    aur_trainer_free(tr);
    cJSON_ReplaceItemInObject(j, "task", cJSON_CreateString("flare"));
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "data"), "scalers_path");
    tr = aur_surya_trainer_create_json(j, aur_test_tmp(""));
    AUR_CHECK(!tr && strstr(aur_last_error(), "needs scalers_path, flare_data_path"), "no scalers_path: %s", aur_last_error());
    aur_trainer_free(tr);
    cJSON_Delete(j);
}

/* ---- errors: each names the file and what was expected ---- */

/* aur_test_tmp's paths are reused: the options keep copies */
static const char *kept(const char *path, int slot)
{
    static char paths[4][512];
    return path ? strcpy(paths[slot], path) : NULL;
}

static aur_sdo_options square_options(const char *index, const char *labels)
{
    static const int deltas[2] = {-60, 0};
    aur_sdo_options o;
    memset(&o, 0, sizeof o);
    o.index_path = kept(index, 0), o.data_root = kept(aur_test_tmp("sq"), 1), o.scalers_path = kept(aur_test_tmp("sq_scalers.yaml"), 2);
    o.label_path = kept(labels, 3);
    o.channels = two, o.n_channels = 2, o.time_delta_input_minutes = deltas, o.n_inputs = 2;
    o.time_delta_target_minutes = 60, o.pooling = 1;
    return o;
}

static void expect_error(aur_sdo_options o, const char *needle, const char *what)
{
    aur_sdo_dataset *d = NULL;
    int rc = aur_sdo_open(&o, &d);
    AUR_CHECK(rc && !d && strstr(aur_last_error(), needle), "%s: refused with '%s' (%s)", what, needle, rc ? aur_last_error() : "opened");
    aur_sdo_close(d);
}

static void test_errors(void)
{
    char csv[512];
    snprintf(csv, sizeof csv, "%s", aur_test_tmp("e_index.csv"));
    write_text(csv, ",path,timestep,present\n0,01.nc,2014-01-07 01:00:00,1\n1,02.nc,2014-01-07 25:00:00,1\n");
    expect_error(square_options(csv, NULL), "line 3: '2014-01-07 25:00:00' is not a time", "an hour 25");
    write_text(csv, ",path,timestep,present\n0,01.nc,2014-02-29 01:00:00,1\n");
    expect_error(square_options(csv, NULL), "'2014-02-29 01:00:00' is not a time", "the 29th of February of 2014");
    write_text(csv, ",path,timestep,present\n0,01.nc,2014-01-07 01:00:00,1\n1,02.nc,2014-01-07 01:00:00,1\n");
    expect_error(square_options(csv, NULL), "time 2014-01-07 01:00:00 is on lines 2 and 3", "a time twice");
    write_text(csv, ",path,timestep\n0,01.nc,2014-01-07 01:00:00\n");
    expect_error(square_options(csv, NULL), "no column 'present'", "no present column");
    write_text(csv, ",path,timestep,present\n0,\"01.nc,2014-01-07 01:00:00,1\n");
    expect_error(square_options(csv, NULL), "line 2: an unclosed quote", "an unclosed quote");
    write_text(csv, ",path,timestep,present\n0,01.nc,2014-01-07 01:00:00,yes\n");
    expect_error(square_options(csv, NULL), "present 'yes' is not a finite number", "present not a number");
    write_text(csv, ",path,timestep,present\n0,01.nc,not a time,0\n1,01.nc,2014-01-07 02:00:00,\n");
    expect_error(square_options(csv, NULL), "no row has present == 1", "rows not present are not read further (an empty present is NaN)");
    write_text(aur_test_tmp("e_flare.csv"), "\xef\xbb\xbftimestamp,label_max\n2014-01-07 02:00:00,nan\n");
    expect_error(square_options(aur_test_tmp("sq_index.csv"), aur_test_tmp("e_flare.csv")), "the label 'nan' is not a finite number",
                 "a NaN label (after a byte-order mark)");
    write_text(csv, ",path,timestep,present\n0,01.nc,2014-01-07 02:00:00,1\n1,02.nc,2014-01-07 03:00:00,1\n2,missing.nc,2014-01-07 04:00:00,1\n");
    expect_error(square_options(csv, NULL), "missing.nc: cannot open as NetCDF", "a file that is not there");
    write_text(aur_test_tmp("sq/text.nc"), "not a NetCDF file\n");
    write_text(csv, ",path,timestep,present\n0,01.nc,2014-01-07 02:00:00,1\n1,02.nc,2014-01-07 03:00:00,1\n2,text.nc,2014-01-07 04:00:00,1\n");
    expect_error(square_options(csv, NULL), "text.nc: cannot open as NetCDF", "a text file");
    write_nc(aur_test_tmp("sq/small.nc"), two, 2, 8, 8, 0, 0);
    write_text(csv, ",path,timestep,present\n0,01.nc,2014-01-07 02:00:00,1\n1,02.nc,2014-01-07 03:00:00,1\n2,small.nc,2014-01-07 04:00:00,1\n");
    expect_error(square_options(csv, NULL), "small.nc: channels of 8 x 8, but the first file's are 16 x 16", "files of two shapes");
    write_nc(aur_test_tmp("sq/cube.nc"), two, 2, 16, 16, 0, 2);
    write_text(csv, ",path,timestep,present\n0,01.nc,2014-01-07 02:00:00,1\n1,cube.nc,2014-01-07 03:00:00,1\n2,02.nc,2014-01-07 04:00:00,1\n");
    expect_error(square_options(csv, NULL), "variable 'aia94' has 3 dimensions", "a 3-D variable");
    char zstd[2048], cwd[1024]; /* the fixture by an absolute path: the index's absolute paths are not joined to the root */
    snprintf(zstd, sizeof zstd, ",path,timestep,present\n0,01.nc,2014-01-07 02:00:00,1\n1,%s/" FIX "/zstd.nc,2014-01-07 03:00:00,1\n"
             "2,02.nc,2014-01-07 04:00:00,1\n", getcwd(cwd, sizeof cwd) ? cwd : ".");
    write_text(csv, zstd);
    aur_sdo_options o = square_options(csv, NULL);
    o.scalers_path = FIX "/scalers.yaml";
    expect_error(o, "is compressed with HDF5 filter 32015, which is not installed", "a Zstd file without its plugin");
    /* a pixel at its _FillValue becomes NaN (xarray's decoding); refused when the sample is read, naming the file */
    write_nc(aur_test_tmp("sq/holed.nc"), two, 2, 16, 16, 0, 1);
    write_text(csv, ",path,timestep,present\n0,01.nc,2014-01-07 02:00:00,1\n1,holed.nc,2014-01-07 03:00:00,1\n2,02.nc,2014-01-07 04:00:00,1\n");
    aur_sdo_dataset *d = NULL;
    float buf[2 * 2 * 16 * 16];
    aur_sdo_sample s = {buf, NULL, NULL, NULL, NULL, 0};
    o = square_options(csv, NULL);
    int rc = aur_sdo_open(&o, &d);
    AUR_CHECK(!rc && aur_sdo_read(d, 0, &s) && strstr(aur_last_error(), "holed.nc: channel 'aia94' has 1 values that are NaN"),
              "a fill value in a channel: %s", aur_last_error());
    aur_sdo_close(d), d = NULL;
    write_nc(aur_test_tmp("sq/holed.nc"), two, 2, 16, 16, 0, 3);
    rc = aur_sdo_open(&o, &d);
    AUR_CHECK(!rc && aur_sdo_read(d, 0, &s) && strstr(aur_last_error(), "has 23 values that are NaN"),
              "a missing_value list (CF): each of its values is masked (one pixel value, 23 pixels): %s", aur_last_error());
    aur_sdo_close(d), d = NULL;
    write_nc(aur_test_tmp("sq/holed.nc"), two, 2, 16, 16, 0, 4);
    expect_error(o, "attribute missing_value is not 1 to 3 numbers", "six missing values");
    /* the channels and the scalers */
    o = square_options(aur_test_tmp("sq_index.csv"), NULL);
    static const char *const wrong[] = {"aia94", "aia171"};
    o.channels = wrong;
    expect_error(o, "aia171: no scaler for this channel", "a channel the scalers lack");
    write_text(aur_test_tmp("e_scalers.yaml"), "aia94: {class: StandardScaler, epsilon: '1e-08', mean: None, std: '1', sl_scale_factor: '1'}\n"
                                               "aia171: {class: MinMaxScaler}\n");
    char scalers[512];
    o.scalers_path = strcpy(scalers, aur_test_tmp("e_scalers.yaml"));
    expect_error(o, "aia94.mean is 'None', not a number", "an unfitted scaler");
    write_text(aur_test_tmp("e_scalers.yaml"), scalers_yaml);
    FILE *f = fopen(aur_test_tmp("e_scalers.yaml"), "a");
    if (f) fputs("aia171: {class: StandardScaler, epsilon: '1e-08', mean: '1', std: '1', sl_scale_factor: '1'}\n", f), fclose(f);
    expect_error(o, "no variable 'aia171' (it has: aia94, hmi_m)", "a channel the files lack");
    write_text(aur_test_tmp("e_scalers.yaml"), "aia94: {mean: '1', std: '1'\n");
    expect_error(o, "e_scalers.yaml line", "a YAML syntax error");
    /* labels: none matching, and the valid times they leave */
    write_text(aur_test_tmp("e_flare.csv"), "timestamp,label_max\n2015-01-01 00:00:00,1\n");
    expect_error(square_options(aur_test_tmp("sq_index.csv"), aur_test_tmp("e_flare.csv")), "none of its times is in the index", "labels of other times");
    write_text(aur_test_tmp("e_flare.csv"), "timestamp,label_max\n2014-01-07 01:00:00,1\n2014-01-07 03:00:00,0\n");
    expect_error(square_options(aur_test_tmp("sq_index.csv"), aur_test_tmp("e_flare.csv")), "no time has all the files", "labels that leave no sample");
}

/* libblosc (under the Blosc HDF5 plugin) allocates its global context once and
   never frees it; HDF5 unloads the plugin at exit, before LeakSanitizer looks,
   which then cannot name the allocation. Kept loaded, tests/lsan.supp names it. */
static void keep_blosc_loaded(void) { (void)dlopen("libblosc.so.1", RTLD_LAZY | RTLD_NODELETE); }

int main(void)
{
    keep_blosc_loaded();
    aur_test_tmpdir_begin("sdo");
    test_fixture_case("flare");
    test_fixture_case("rollout_pool3");
    test_fixture_case("pool2");
    test_fixture_case("float32");
    test_fixture_case("float32_pool3");
    test_fixture_case("pool13");
    test_run_from_index();
    test_errors();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
