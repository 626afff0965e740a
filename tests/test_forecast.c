/* test_forecast.c - forecasts and their scores. A forecast without
   gradients (aur_aurora_forecast) gives the predictions of
   aur_aurora_rollout bit for bit while holding one step; its CF NetCDF
   file carries the names, units and coordinates xarray expects and reads
   back through the weather reader as the same numbers; WeatherBench2's
   latitude weights, RMSE and ACC match cases worked by hand. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"

#include <netcdf.h>

#define SMALL_KWARGS "{\"embed_dim\": 16, \"num_heads\": 2, \"patch_size\": 4, \"window_size\": [2, 2, 4], \"encoder_depths\": [1, 1]," \
                     " \"encoder_num_heads\": [2, 4], \"decoder_depths\": [1, 1], \"decoder_num_heads\": [4, 2], \"latent_levels\": 2," \
                     " \"timestep\": 21600}"
#define GRIB "tests/fixtures/grib/hres"

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

/* ---- latitude weights, RMSE and ACC by hand ---- */

static void test_lat_weights(void)
{
    /* rows at 60, 0, -60: cells [30, 90], [-30, 30], [-90, -30]; areas 1 - 1/2, 1, 1/2; mean 2/3 */
    const float down[3] = {60, 0, -60}, up[3] = {-60, 0, 60}, poles[3] = {90, 0, -90};
    double w[3];
    AUR_CHECK(!aur_lat_weights(down, 3, w) && close_to(w[0], 0.75, 1e-12) && close_to(w[1], 1.5, 1e-12) && close_to(w[2], 0.75, 1e-12),
              "weights at 60, 0, -60: %g %g %g (0.75 1.5 0.75)", w[0], w[1], w[2]);
    AUR_CHECK(!aur_lat_weights(up, 3, w) && close_to(w[0], 0.75, 1e-12) && close_to(w[1], 1.5, 1e-12), "increasing latitudes: the same");
    /* rows at 90, 0, -90: cells [45, 90], [-45, 45], [-90, -45]: areas 1 - sqrt(2)/2, sqrt(2), 1 - sqrt(2)/2; mean 2/3 */
    double pole = 1.5 * (1 - sqrt(0.5)), mid = 1.5 * sqrt(2);
    AUR_CHECK(!aur_lat_weights(poles, 3, w) && close_to(w[0], pole, 1e-12) && close_to(w[1], mid, 1e-12) && close_to(w[2], pole, 1e-12),
              "weights with the poles: %g %g %g (%g %g)", w[0], w[1], w[2], pole, mid);
    const float bad[3] = {60, 70, -60};
    AUR_CHECK(aur_lat_weights(bad, 3, w) && strstr(aur_last_error(), "monotonic"), "non-monotonic latitudes refused: %s", aur_last_error());
}

/* A one-variable surface batch on the 60, 0, -60 x 2 grid with these values per step. */
static aur_batch *grid_batch(int T, const float *values, double last_time)
{
    aur_var_list surf, none;
    memset(&surf, 0, sizeof surf);
    memset(&none, 0, sizeof none);
    aur__vl_add(&surf, "2t");
    aur_batch *b = aur_batch_create(1, T, 0, 3, 2, &surf, &none, &none);
    if (!b) return NULL;
    const float lat[3] = {60, 0, -60};
    memcpy(b->lat, lat, sizeof lat);
    b->lon[0] = 0, b->lon[1] = 180;
    memcpy(aur_tensor_f32(b->surf[0]), values, sizeof(float) * 6 * (size_t)T);
    b->time[0] = last_time, b->step_seconds = 21600;
    return b;
}

static void test_scores(void)
{
    /* errors 1, 2, 3 by row: weighted MSE (0.75*1 + 1.5*4 + 0.75*9) / 3 = 4.5; then errors all 1: MSE 1 */
    const float f1[6] = {1, 1, 2, 2, 3, 3}, zero[6] = {0}, ones[6] = {1, 1, 1, 1, 1, 1};
    float truth_v[12];
    memcpy(truth_v, zero, sizeof zero);
    memcpy(truth_v + 6, zero, sizeof zero);
    aur_batch *p1 = grid_batch(1, f1, 21600), *p2 = grid_batch(1, ones, 43200), *truth = grid_batch(2, truth_v, 43200);
    aur_scores s;
    memset(&s, 0, sizeof s);
    AUR_CHECK(!aur_scores_add(&s, 6, p1, truth, 0, NULL, 0) && !aur_scores_add(&s, 6, p2, truth, 1, NULL, 0), "two forecasts scored: %s",
              aur_last_error());
    aur_scores_finish(&s);
    AUR_CHECK(s.n == 1 && s.rows[0].n == 2 && close_to(s.rows[0].rmse, sqrt(2.75), 1e-12),
              "RMSE = sqrt of the mean MSE: %.9g (sqrt 2.75 = %.9g, not the mean RMSE %.9g)", s.n ? s.rows[0].rmse : 0, sqrt(2.75),
              (sqrt(4.5) + 1) / 2);
    AUR_CHECK(s.n == 1 && isnan(s.rows[0].acc), "no ACC without a climatology");
    aur_scores_free(&s);

    /* ACC with climatology 0: f = (1, -1 | 0, 0 | 2, 2), o = (1, -1 | 1, 1 | 2, 2):
       sum w f o = 7.5, sum w f^2 = 7.5, sum w o^2 = 10.5 (x 1/3 each): ACC = sqrt(7.5 / 10.5) */
    const float f[6] = {1, -1, 0, 0, 2, 2}, o[6] = {1, -1, 1, 1, 2, 2};
    aur_batch *pf = grid_batch(1, f, 21600), *po = grid_batch(1, o, 21600), *clim = grid_batch(1, zero, 0);
    AUR_CHECK(!aur_scores_add(&s, 6, pf, po, 0, clim, 0), "scored with a climatology: %s", aur_last_error());
    aur_scores_finish(&s);
    AUR_CHECK(s.n == 1 && close_to(s.rows[0].acc, sqrt(7.5 / 10.5), 1e-12), "ACC %.9g (%.9g)", s.n ? s.rows[0].acc : 0, sqrt(7.5 / 10.5));
    aur_scores_free(&s);

    /* a NaN in the truth leaves its cell out of that forecast: errors 1, 1 | 2, 2 | 3 and the NaN:
       (0.75*2 + 1.5*8 + 0.75*9) / (0.75*2 + 1.5*2 + 0.75) = 20.25 / 5.25 */
    float o_nan[6] = {0, 0, 0, 0, 0, NAN};
    aur_batch *pn = grid_batch(1, o_nan, 21600);
    AUR_CHECK(!aur_scores_add(&s, 6, p1, pn, 0, NULL, 0), "scored with a NaN");
    aur_scores_finish(&s);
    AUR_CHECK(s.n == 1 && close_to(s.rows[0].rmse, sqrt(20.25 / 5.25), 1e-12), "the NaN cell is left out: RMSE %.9g (%.9g)", s.n ? s.rows[0].rmse : 0,
              sqrt(20.25 / 5.25));
    const char *path = aur_test_tmp("scores.jsonl");
    AUR_CHECK(!aur_scores_write_jsonl(&s, path), "scores written: %s", aur_last_error());
    size_t len = 0;
    char *text = aur__read_text_file(path, 1 << 20, "scores", &len);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    const cJSON *rmse = cJSON_GetObjectItemCaseSensitive(j, "rmse");
    AUR_CHECK(cJSON_IsNumber(rmse) && close_to(rmse->valuedouble, sqrt(20.25 / 5.25), 1e-8) && !cJSON_GetObjectItemCaseSensitive(j, "acc"),
              "the JSON line holds the RMSE and no ACC: %s", text ? text : "");
    cJSON_Delete(j);
    AUR_FREE(text);
    aur_scores_free(&s);

    /* what is refused */
    aur_var_list other, none;
    memset(&other, 0, sizeof other);
    memset(&none, 0, sizeof none);
    aur__vl_add(&other, "msl");
    aur_batch *wrong = aur_batch_create(1, 1, 0, 3, 2, &other, &none, &none);
    memcpy(wrong->lat, p1->lat, sizeof(float) * 3);
    memcpy(wrong->lon, p1->lon, sizeof(float) * 2);
    AUR_CHECK(aur_scores_add(&s, 6, p1, wrong, 0, NULL, 0) && strstr(aur_last_error(), "truth has no surface variable '2t'"), "a truth without the variable: %s",
              aur_last_error());
    AUR_CHECK(aur_scores_add(&s, 6, p1, truth, 2, NULL, 0) && strstr(aur_last_error(), "one step"), "a truth step out of range: %s", aur_last_error());
    truth->lat[1] = 1;
    AUR_CHECK(aur_scores_add(&s, 6, p1, truth, 0, NULL, 0) && strstr(aur_last_error(), "latitude 1 is not the forecast's 0"), "a truth on another grid: %s",
              aur_last_error());
    truth->lat[1] = 0;
    aur_scores_free(&s);
    AUR_CHECK(aur_series_step_at(truth, 21600) == 0 && aur_series_step_at(truth, 43200) == 1 && aur_series_step_at(truth, 0) < 0, "series steps by time");
    AUR_CHECK(aur_climatology_step(clim, 12345) == 0, "a one-step climatology serves every time");
    truth->step_seconds = 0; /* spacing unknown: only the last step has a time */
    AUR_CHECK(aur_series_step_at(truth, 43200) == 1 && aur_series_step_at(truth, 21600) < 0 && aur_series_step_at(truth, 43200 - 1e9) < 0,
              "without step_seconds only the last step is matched");
    truth->step_seconds = 21600;
    aur_batch *year = grid_batch(2, truth_v, 86400.0 * 365 + 21600); /* 1971-01-01 00:00 and 06:00 */
    AUR_CHECK(aur_climatology_step(year, 86400.0 * 365 * 10 + 86400 * 2 + 21600) == 1 && aur_climatology_step(year, 3600) < 0,
              "a climatology step by month, day and hour in another year");
    aur_batch *all[] = {p1, p2, truth, pf, po, clim, pn, wrong, year};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) aur_batch_free(all[i]);
}

/* The paper's MAE on the 60, 0, -60 grid: errors 1 | 2 | 6 by row; latitude-weighted mean
   (0.75*1 + 1.5*2 + 0.75*6) / 3 = 2.75, plain 3; times surface 1/4 and 2t's 3.0, over 1 variable. */
static void test_paper_loss(void)
{
    aur_aurora_config cfg;
    cJSON *kw = cJSON_Parse(SMALL_KWARGS);
    aur_aurora_preset("aurora-small-pretrained", &cfg);
    aur_aurora_config_json(kw, &cfg);
    cJSON_Delete(kw);
    aur_model *m = aur_aurora_create(&cfg, AUR_CPU, 1);
    AUR_CHECK(m && !aur_aurora_set_stats(m, "2t", 0, 1), "a model with 2t unnormalised: %s", aur_last_error());
    const float f[6] = {1, 1, 2, 2, 6, 6}, zero[6] = {0};
    aur_batch *p = grid_batch(1, f, 0), *o = grid_batch(1, zero, 0);
    aur_tape *t = aur_tape_create();
    aur_aurora_mae_weights w;
    aur_aurora_mae_defaults(&w);
    aur_tensor *l = m ? aur_aurora_loss_mae(m, t, p, o, &w) : NULL;
    AUR_CHECK(l && close_to(aur_tensor_f32(l)[0], 0.25 * 3.0 * 2.75, 1e-6), "latitude-weighted: %g (%g)", l ? aur_tensor_f32(l)[0] : 0, 0.25 * 3.0 * 2.75);
    w.latitude = 0;
    l = m ? aur_aurora_loss_mae(m, t, p, o, &w) : NULL;
    AUR_CHECK(l && close_to(aur_tensor_f32(l)[0], 0.25 * 3.0 * 3, 1e-6), "plain: %g (%g)", l ? aur_tensor_f32(l)[0] : 0, 0.25 * 3.0 * 3);
    w.latitude = 1, w.surf = 0.5, w.dataset = 2, w.surf_weight[aur__vl_find(&w.surf_names, "2t")] = 2;
    l = m ? aur_aurora_loss_mae(m, t, p, o, &w) : NULL;
    AUR_CHECK(l && close_to(aur_tensor_f32(l)[0], 2 * 0.5 * 2 * 2.75, 1e-6), "other weights: %g (%g)", l ? aur_tensor_f32(l)[0] : 0, 2 * 0.5 * 2 * 2.75);
    aur_tape_free(t);
    aur_batch_free(p);
    aur_batch_free(o);
    aur_model_free(m);
}

/* ---- the forecast ---- */

typedef struct collected {
    aur_batch *pred[4];
    aur_forecast_nc *nc;
    int n;
    aur_tape *t; /* for copies */
} collected;

/* Keeps each prediction (an owned copy) and writes it to the NetCDF file. */
static int collect(void *ctx, int step, const aur_batch *pred)
{
    collected *c = (collected *)ctx;
    AUR_CHECK(step == c->n, "steps come in order (%d)", step);
    c->pred[c->n++] = aur__batch_owned_copy(c->t, pred);
    return aur_forecast_nc_add(c->nc, pred);
}

static int64_t differing(const aur_tensor *a, const aur_tensor *b)
{
    if (!a || !b || a->numel != b->numel) return -1;
    int64_t k = 0;
    for (int64_t i = 0; i < a->numel; i++) k += memcmp((const float *)a->data + i, (const float *)b->data + i, sizeof(float)) != 0;
    return k;
}

static void check_attr(int nc, const char *var, const char *att, const char *want)
{
    int id = NC_GLOBAL;
    char got[256] = "";
    if (var && nc_inq_varid(nc, var, &id) != NC_NOERR) id = -2;
    size_t n = 0;
    if (id != -2 && nc_inq_attlen(nc, id, att, &n) == NC_NOERR && n < sizeof got && nc_get_att_text(nc, id, att, got) == NC_NOERR) got[n] = 0;
    AUR_CHECK(!strcmp(got, want), "%s:%s is '%s' ('%s' expected)", var ? var : "global", att, got, want);
}

static void test_forecast(void)
{
    aur_aurora_config cfg;
    cJSON *kw = cJSON_Parse(SMALL_KWARGS);
    AUR_CHECK(!aur_aurora_preset("aurora-small-pretrained", &cfg) && !aur_aurora_config_json(kw, &cfg), "small config: %s", aur_last_error());
    cJSON_Delete(kw);
    aur_model *m = aur_aurora_create(&cfg, AUR_CPU, 7);
    const char *paths[] = {GRIB "/surface.grib2", GRIB "/atmospheric.grib2", GRIB "/static.grib2"};
    aur_batch *series = aur_batch_load_files(paths, 3, NULL, NULL);
    aur_batch *window = series ? aur_batch_window(series, 0, 2, cfg.timestep_seconds) : NULL;
    AUR_CHECK(m && window, "model and initial conditions: %s", aur_last_error());
    if (!m || !window) {
        aur_model_free(m);
        aur_batch_free(series);
        return;
    }
    enum { STEPS = 3 };
    aur_tape *t = aur_tape_create();
    aur_tape_set_grad(t, 0);
    aur_tape_set_training(t, 0);
    aur_batch *ref[STEPS];
    AUR_CHECK(!aur_aurora_rollout(m, t, window, STEPS, ref), "the rollout runs: %s", aur_last_error());

    collected c;
    memset(&c, 0, sizeof c);
    c.t = aur_tape_create();
    const char *path = aur_test_tmp("forecast.nc");
    c.nc = aur_forecast_nc_create(path, window->time[0]);
    AUR_CHECK(c.nc && !aur_aurora_forecast(m, window, STEPS, collect, &c), "the forecast runs: %s", aur_last_error());
    AUR_CHECK(!aur_forecast_nc_close(c.nc), "the NetCDF file closes: %s", aur_last_error());
    AUR_CHECK(c.n == STEPS, "%d steps handed over", c.n);
    int64_t k = 0;
    for (int s = 0; s < c.n && s < STEPS; s++) {
        for (int i = 0; i < ref[s]->surf_names.n; i++) k += differing(ref[s]->surf[i], aur_batch_surf(c.pred[s], ref[s]->surf_names.name[i]));
        for (int i = 0; i < ref[s]->atmos_names.n; i++) k += differing(ref[s]->atmos[i], aur_batch_atmos(c.pred[s], ref[s]->atmos_names.name[i]));
        AUR_CHECK(c.pred[s] && c.pred[s]->time[0] == window->time[0] + (s + 1) * 21600.0, "step %d's valid time", s + 1);
    }
    AUR_CHECK(k == 0, "the forecast's predictions are the rollout's, bit for bit (%lld values differ)", (long long)k);

    /* the file: CF names and units, then read back as a series */
    int nc;
    AUR_CHECK(nc_open(path, NC_NOWRITE, &nc) == NC_NOERR, "the forecast file opens");
    check_attr(nc, NULL, "Conventions", "CF-1.8");
    check_attr(nc, "time", "units", "hours since 2023-01-01 06:00:00");
    check_attr(nc, "time", "standard_name", "time");
    check_attr(nc, "2t", "units", "K");
    check_attr(nc, "2t", "standard_name", "air_temperature");
    check_attr(nc, "z", "units", "m**2 s**-2");
    check_attr(nc, "level", "units", "hPa");
    check_attr(nc, "latitude", "units", "degrees_north");
    check_attr(nc, "geopotential_at_surface", "standard_name", "surface_geopotential");
    check_attr(nc, "msl", "coordinates", "forecast_period forecast_reference_time");
    nc_close(nc);
    const char *one[] = {path};
    aur_batch *back = aur_batch_load_files(one, 1, NULL, NULL);
    AUR_CHECK(back && back->T == STEPS && back->step_seconds == 21600 && back->time[0] == c.pred[STEPS - 1]->time[0], "read back as a %d-step series: %s",
              back ? back->T : 0, back ? "" : aur_last_error());
    if (back && back->T == STEPS) {
        int64_t d = 0;
        size_t plane = (size_t)back->H * back->W;
        for (int s = 0; s < STEPS; s++) {
            const aur_batch *p = c.pred[s];
            for (int i = 0; i < p->surf_names.n; i++)
                d += memcmp(aur_tensor_f32(aur_batch_surf(back, p->surf_names.name[i])) + s * plane, p->surf[i]->data, plane * sizeof(float)) != 0;
            for (int i = 0; i < p->atmos_names.n; i++)
                d += memcmp(aur_tensor_f32(aur_batch_atmos(back, p->atmos_names.name[i])) + s * plane * p->C, p->atmos[i]->data,
                            plane * p->C * sizeof(float)) != 0;
        }
        AUR_CHECK(d == 0 && aur_batch_static(back, "z") && back->C == 3 && back->levels[0] == 1000, "the same fields, static z, levels (%lld differ)",
                  (long long)d);
    }
    aur_batch_free(back);

    /* a callback's error stops the forecast; a batch of two samples is not written */
    aur_forecast_nc *bad = aur_forecast_nc_create(aur_test_tmp("bad.nc"), 0);
    AUR_CHECK(bad && aur_forecast_nc_add(bad, series) && strstr(aur_last_error(), "one step"), "a series is not one prediction: %s", aur_last_error());
    aur_forecast_nc_close(bad);
    AUR_CHECK(!aur_forecast_nc_create("/nonexistent/dir/x.nc", 0) && strstr(aur_last_error(), "/nonexistent/dir/x.nc"), "an unwritable path: %s",
              aur_last_error());
    for (int s = 0; s < c.n; s++) aur_batch_free(c.pred[s]);
    aur_tape_free(c.t);
    aur_tape_free(t);
    aur_batch_free(window);
    aur_batch_free(series);
    aur_model_free(m);
}

int main(void)
{
    aur_test_tmpdir_begin("forecast");
    test_lat_weights();
    test_scores();
    test_paper_loss();
    test_forecast();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
