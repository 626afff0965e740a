/* aurora-forecast - a forecast from initial conditions, as CF NetCDF, maps and scores.

   usage: aurora-forecast --init FILE... --steps N -o OUT.nc
                          [--config RUN.json | --model PRESET [--kwargs JSON] [--stats KEY=LOC,SCALE]...] [--weights FILE]
                          [--init-step K] [--truth FILE...] [--climatology FILE...] [--rename A=B,...]
                          [--maps VAR[@LEVEL],...] [--map-steps S,...]

   --init: the initial conditions, any files aur_batch_load_files reads
   (a safetensors series, NetCDF / GRIB files, Zarr stores) read as one
   series; the forecast starts from the model's history ending at step K
   of it (--init-step, default: the first step with a full history).
   --config takes the model of a run config (its "model" section: preset,
   kwargs, stats; and data.outlier_z and data.nan_ok for the data check of
   the initial conditions, the trainer's), or --model and --kwargs give them (preset, then its
   keyword arguments as JSON); --weights loads a
   checkpoint strictly (the trainer's checkpoint-N/model.safetensors, or a
   released .ckpt). The forecast (aur_aurora_forecast: no gradients, one
   step in memory) goes to OUT.nc step by step (aur_forecast_nc). Against
   the truth (--truth, default the --init series itself) every lead time
   the truth holds is scored as WeatherBench2 does: OUT_scores.jsonl
   (latitude-weighted RMSE, and ACC with a --climatology), a table, and
   OUT_rmse_VAR.png per variable against lead time. --maps draws forecast,
   truth and error side by side for each named variable (atmospheric ones
   at a level in hPa, default 500) at the --map-steps (default: the first
   and the last): OUT_map_VAR_LEADh.png. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#define MAX_FILES 256
#define MAX_MAPS 16

typedef struct stat_arg { /* --stats KEY=LOC,SCALE, as aurora-inspect takes it */
    char key[48];
    double loc, scale;
} stat_arg;

typedef struct map_spec {
    char var[AUR_NAME_LEN];
    double level; /* hPa; 0 for a surface variable */
} map_spec;

typedef struct forecast {
    const char *out, *stem_end;
    aur_forecast_nc *nc;
    const aur_batch *truth, *clim;
    aur_scores scores;
    map_spec maps[MAX_MAPS];
    int n_maps, map_steps[64], n_map_steps, steps;
    double init_time;
} forecast;

static int usage(void)
{
    fprintf(stderr, "usage: aurora-forecast --init FILE... --steps N -o OUT.nc [--config RUN.json | --model PRESET [--kwargs JSON]\n"
                    "         [--stats KEY=LOC,SCALE]...] [--weights FILE] [--init-step K] [--truth FILE...] [--climatology FILE...]\n"
                    "         [--rename A=B,...]\n"
                    "         [--maps VAR[@LEVEL],...] [--map-steps S,...]\n");
    return 2;
}

/* OUT.nc -> OUT_<suffix> */
static void out_path(const forecast *f, const char *suffix, char *buf, size_t size)
{
    size_t stem = (size_t)(f->stem_end - f->out);
    snprintf(buf, size, "%.*s_%s", (int)stem, f->out, suffix);
}

/* The (H, W) field of a variable at level (hPa) and step k of a batch; NULL if absent. */
static const float *field(const aur_batch *b, const map_spec *m, int k)
{
    aur_tensor *t = m->level > 0 ? aur_batch_atmos(b, m->var) : aur_batch_surf(b, m->var);
    if (!t || k < 0 || k >= b->T) return NULL;
    int c = 0, C = m->level > 0 ? b->C : 1;
    if (m->level > 0) {
        while (c < b->C && fabs(b->levels[c] - m->level) > 1e-6) c++;
        if (c == b->C) return NULL;
    }
    return aur_tensor_f32(t) + ((size_t)k * C + c) * (size_t)b->H * b->W;
}

/* OUT_map_VAR[LEVEL]_LEADh.png and its _error.png: the forecast beside the truth (at truth step k; -1: none). */
static int draw_map(forecast *f, const aur_batch *pred, const map_spec *m, double lead, int k)
{
    const float *fc = field(pred, m, 0), *tr = k >= 0 ? field(f->truth, m, k) : NULL;
    if (!fc) return aur__err(AUR_EINVAL, "--maps: the forecast has no %s%s%g", m->var, m->level > 0 ? " at " : "", m->level);
    char name[128], title[160], stem[1200], what[96], tag[AUR_NAME_LEN + 16];
    if (m->level > 0) snprintf(what, sizeof what, "%s %g hPa", m->var, m->level), snprintf(tag, sizeof tag, "%s%g", m->var, m->level);
    else snprintf(what, sizeof what, "%s", m->var), snprintf(tag, sizeof tag, "%s", m->var);
    snprintf(title, sizeof title, "%s, lead %g h", what, lead);
    snprintf(name, sizeof name, "map_%s_%03gh", tag, lead);
    out_path(f, name, stem, sizeof stem);
    return aur_plot_versus(stem, fc, tr, pred->H, pred->W, "forecast", "truth", title);
}

/* Each step: into the NetCDF file, scored where the truth has its valid time, drawn at the chosen steps. */
static int on_step(void *ctx, int step, const aur_batch *pred)
{
    forecast *f = (forecast *)ctx;
    double lead = (pred->time[0] - f->init_time) / 3600;
    int rc = aur_forecast_nc_add(f->nc, pred);
    int k = rc || !f->truth ? -1 : aur_series_step_at(f->truth, pred->time[0]);
    int kc = k >= 0 && f->clim ? aur_climatology_step(f->clim, pred->time[0]) : -1;
    if (k >= 0 && f->clim && kc < 0) {
        char when[32];
        fprintf(stderr, "aurora-forecast: the climatology has no step for %s (month, day and time of day); ACC left out\n",
                aur__format_time((int64_t)llround(pred->time[0]) * 1000000000LL, when, sizeof when));
    }
    if (!rc && k >= 0) rc = aur_scores_add(&f->scores, lead, pred, f->truth, k, kc >= 0 ? f->clim : NULL, kc);
    int draw = 0;
    for (int i = 0; i < f->n_map_steps; i++) draw |= f->map_steps[i] == step + 1;
    for (int i = 0; !rc && draw && i < f->n_maps; i++) rc = draw_map(f, pred, &f->maps[i], lead, k);
    printf("step %d/%d  lead %g h%s\n", step + 1, f->steps, lead, k >= 0 ? "  scored" : "");
    fflush(stdout);
    return rc;
}

static void print_scores(const aur_scores *s)
{
    printf("%-8s %8s %10s %4s %14s %8s\n", "variable", "level", "lead (h)", "n", "RMSE", "ACC");
    for (int i = 0; i < s->n; i++) {
        const aur_score *r = &s->rows[i];
        char level[16] = "-", acc[16] = "-";
        if (r->atmos) snprintf(level, sizeof level, "%g", r->level);
        if (isfinite(r->acc)) snprintf(acc, sizeof acc, "%.4f", r->acc);
        printf("%-8s %8s %10g %4d %14.6g %8s\n", r->var, level, r->lead_hours, r->n, r->rmse, acc);
    }
}

static int parse_maps(forecast *f, const char *list)
{
    while (*list && f->n_maps < MAX_MAPS) {
        map_spec *m = &f->maps[f->n_maps];
        size_t n = strcspn(list, ","), at = strcspn(list, "@");
        size_t name = at < n ? at : n;
        if (!name || name >= AUR_NAME_LEN) return fprintf(stderr, "aurora-forecast: --maps: '%.*s' is not VAR or VAR@LEVEL\n", (int)n, list), 1;
        memcpy(m->var, list, name);
        m->var[name] = 0;
        m->level = at < n ? atof(list + at + 1) : 0;
        if (at < n && !(m->level > 0)) return fprintf(stderr, "aurora-forecast: --maps: '%.*s': the level must be a pressure in hPa\n", (int)n, list), 1;
        f->n_maps++;
        list += n + (list[n] == ',');
    }
    return 0;
}

/* A run config's model section (its preset, kwargs and stats, {"key": [loc, scale]}) and its data checks' outlier_z and nan_ok. */
static int read_run_model(const char *path, cJSON **root, const char **preset, const cJSON **kwargs, const cJSON **stats, aur_check_opts *check)
{
    size_t len = 0;
    char *text = aur__read_text_file(path, (size_t)1 << 24, "a run config", &len);
    *root = text ? cJSON_Parse(text) : NULL;
    int read = text != NULL;
    AUR_FREE(text);
    if (!*root) return !read ? AUR_EIO : aur__err(AUR_EINVAL, "%s: not JSON", path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(*root, "model"), *p = cJSON_GetObjectItemCaseSensitive(model, "preset");
    if (!cJSON_IsObject(model)) return aur__err(AUR_EINVAL, "%s: no \"model\" section", path);
    if (p && !cJSON_IsString(p)) return aur__err(AUR_EINVAL, "%s: model.preset must be a name", path);
    if (p) *preset = p->valuestring;
    *kwargs = cJSON_GetObjectItemCaseSensitive(model, "kwargs");
    *stats = cJSON_GetObjectItemCaseSensitive(model, "stats");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(*root, "data");
    const cJSON *z = cJSON_GetObjectItemCaseSensitive(data, "outlier_z"), *nan_ok = cJSON_GetObjectItemCaseSensitive(data, "nan_ok");
    if (cJSON_IsNumber(z)) check->outlier_z = z->valuedouble;
    if (cJSON_IsString(nan_ok)) check->nan_ok = nan_ok->valuestring;
    return 0;
}

/* The model of --config or --model/--kwargs/--stats, with --weights loaded; *root keeps the config (check's strings live in it). */
static aur_model *build_model(const char *config, const char *preset, const char *kwargs, const stat_arg *stats, int n_stats, const char *weights,
                              cJSON **root, aur_check_opts *check)
{
    aur_aurora_config cfg;
    cJSON *kw_json = kwargs ? cJSON_Parse(kwargs) : NULL;
    const cJSON *kw = kw_json, *run_stats = NULL;
    int rc = kwargs && !kw_json ? aur__err(AUR_EINVAL, "--kwargs: not JSON: %.80s", kwargs) : 0;
    if (!rc && config) rc = read_run_model(config, root, &preset, &kw, &run_stats, check);
    if (!rc) rc = aur_aurora_preset(preset, &cfg);
    if (!rc && kw) rc = aur_aurora_config_json(kw, &cfg);
    aur_model *m = rc ? NULL : aur_aurora_create(&cfg, AUR_CPU, 0);
    for (const cJSON *s = cJSON_IsObject(run_stats) ? run_stats->child : NULL; m && s; s = s->next) {
        const cJSON *loc = cJSON_GetArrayItem(s, 0), *scale = cJSON_GetArrayItem(s, 1);
        if (!cJSON_IsNumber(loc) || !cJSON_IsNumber(scale) || aur_aurora_set_stats(m, s->string, loc->valuedouble, scale->valuedouble)) {
            if (!cJSON_IsNumber(loc) || !cJSON_IsNumber(scale)) aur__err(AUR_EINVAL, "%s: model.stats.%s: [location, scale] expected", config, s->string);
            aur_model_free(m);
            m = NULL;
        }
    }
    cJSON_Delete(kw_json);
    for (int i = 0; m && i < n_stats; i++)
        if (aur_aurora_set_stats(m, stats[i].key, stats[i].loc, stats[i].scale)) return aur_model_free(m), (aur_model *)NULL;
    if (m && weights && aur_aurora_load(m, weights, AUR_LOAD_STRICT, NULL)) return aur_model_free(m), (aur_model *)NULL;
    return m;
}

/* Before the first step: the trainer's data check of the initial conditions (every variable the model
   takes, finite, not all zero, no outliers), and --maps names predicted variables at levels the data has. */
static int check_inputs(const aur_model *model, const aur_batch *b, const aur_check_opts *check, const forecast *f, const char *what)
{
    aur_check_report rep;
    if (aur_aurora_check_batch(model, b, check, &rep)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%.1000s", aur_last_error());
        fprintf(stderr, "initial conditions %s:\n", what);
        aur_check_report_print(&rep, stderr);
        aur_check_report_free(&rep);
        return aur__err(AUR_EFORMAT, "%s: %s", what, msg);
    }
    aur_check_report_free(&rep);
    const aur_aurora_config *cfg = aur_aurora_config_of(model);
    for (int i = 0; i < f->n_maps; i++) {
        const map_spec *m = &f->maps[i];
        int found = m->level > 0 ? aur__vl_find(&cfg->atmos_vars, m->var) >= 0 : aur__vl_find(&cfg->surf_vars, m->var) >= 0;
        for (int c = 0, at = 0; found && m->level > 0 && !at; c++) {
            if (c == b->C) found = 0;
            else at = fabs(b->levels[c] - m->level) < 1e-6;
        }
        if (found) continue;
        if (m->level > 0) return aur__err(AUR_EINVAL, "--maps: '%s@%g' is not a predicted atmospheric variable at a level of the data", m->var, m->level);
        return aur__err(AUR_EINVAL, "--maps: '%s' is not a predicted surface variable (atmospheric ones take @LEVEL)", m->var);
    }
    return 0;
}

/* Collects FILE... after a flag, up to the next flag. */
static int take_files(int argc, char **argv, int *i, const char **out, int *n)
{
    while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) && strcmp(argv[*i + 1], "-o") && *n < MAX_FILES) out[(*n)++] = argv[++*i];
    return *n ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *init[MAX_FILES], *truth_files[MAX_FILES], *clim_files[MAX_FILES];
    stat_arg stats[AUR_MAX_VARS];
    int n_init = 0, n_truth = 0, n_clim = 0, n_stats = 0, steps = 0, init_step = -1;
    const char *out = NULL, *config = NULL, *preset = "aurora-small-pretrained", *kwargs = NULL, *weights = NULL, *renames = NULL, *maps = NULL, *map_steps = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--init")) { if (take_files(argc, argv, &i, init, &n_init)) return usage(); }
        else if (!strcmp(a, "--truth")) { if (take_files(argc, argv, &i, truth_files, &n_truth)) return usage(); }
        else if (!strcmp(a, "--climatology")) { if (take_files(argc, argv, &i, clim_files, &n_clim)) return usage(); }
        else if (!strcmp(a, "--steps") && has) steps = atoi(argv[++i]);
        else if (!strcmp(a, "--init-step") && has) init_step = atoi(argv[++i]);
        else if (!strcmp(a, "-o") && has) out = argv[++i];
        else if (!strcmp(a, "--model") && has) preset = argv[++i];
        else if (!strcmp(a, "--config") && has) config = argv[++i];
        else if (!strcmp(a, "--kwargs") && has) kwargs = argv[++i];
        else if (!strcmp(a, "--weights") && has) weights = argv[++i];
        else if (!strcmp(a, "--stats") && has && n_stats < AUR_MAX_VARS &&
                 sscanf(argv[i + 1], "%47[^=]=%lf,%lf", stats[n_stats].key, &stats[n_stats].loc, &stats[n_stats].scale) == 3)
            n_stats++, i++;
        else if (!strcmp(a, "--rename") && has) renames = argv[++i];
        else if (!strcmp(a, "--maps") && has) maps = argv[++i];
        else if (!strcmp(a, "--map-steps") && has) map_steps = argv[++i];
        else return usage();
    }
    if (!n_init || !out || steps < 1) return usage();
    const char *dot = strrchr(out, '.');
    forecast f;
    memset(&f, 0, sizeof f);
    f.out = out, f.stem_end = dot && dot > strrchr(out, '/') ? dot : out + strlen(out), f.steps = steps;
    if (maps && parse_maps(&f, maps)) return 1;
    for (const char *s = map_steps; s && *s && f.n_map_steps < 64; s += strcspn(s, ","), s += *s == ',') f.map_steps[f.n_map_steps++] = atoi(s);
    if (!map_steps) f.map_steps[f.n_map_steps++] = 1, f.map_steps[f.n_map_steps++] = steps;

    int rc = 1;
    aur_batch *series = NULL, *window = NULL, *truth = NULL, *clim = NULL;
    if (config && (kwargs || n_stats)) {
        fprintf(stderr, "aurora-forecast: --config gives the model; --kwargs and --stats go with --model\n");
        return 2;
    }
    cJSON *run_config = NULL;
    aur_check_opts check = aur_check_defaults();
    aur_model *m = build_model(config, preset, kwargs, stats, n_stats, weights, &run_config, &check);
    if (!m) goto fail;
    const aur_aurora_config *cfg = aur_aurora_config_of(m);
    if (!(series = aur_batch_load_files(init, n_init, renames, stdout))) goto fail;
    int history = cfg->max_history_size < series->T ? cfg->max_history_size : series->T;
    if (init_step < 0) init_step = history - 1;
    if (init_step < history - 1 || init_step >= series->T) {
        aur__err(AUR_EINVAL, "--init-step %d: the series has steps 0..%d and the model needs %d of history", init_step, series->T - 1, history);
        goto fail;
    }
    if (series->step_seconds > 0 && series->T > 1 && fabs(series->step_seconds - cfg->timestep_seconds) > 1e-3) {
        aur__err(AUR_EINVAL, "%s: the steps are %g h apart; the model steps %g h", init[0], series->step_seconds / 3600, cfg->timestep_seconds / 3600);
        goto fail;
    }
    if (!(window = aur_batch_window(series, init_step - history + 1, history, cfg->timestep_seconds))) goto fail;
    if (check_inputs(m, window, &check, &f, init[0])) goto fail;
    f.init_time = window->time[0];
    if (n_truth && !(truth = aur_batch_load_files(truth_files, n_truth, renames, stdout))) goto fail;
    if (n_clim && !(clim = aur_batch_load_files(clim_files, n_clim, renames, stdout))) goto fail;
    /* a safetensors series without step_seconds is one model step apart */
    if (series->step_seconds <= 0) series->step_seconds = cfg->timestep_seconds;
    if (truth && truth->step_seconds <= 0) truth->step_seconds = cfg->timestep_seconds;
    f.truth = truth ? truth : series, f.clim = clim;
    if (!(f.nc = aur_forecast_nc_create(out, f.init_time))) goto fail;
    char when[32];
    printf("forecast: %d steps of %g h from %s (step %d of the initial series)\n", steps, cfg->timestep_seconds / 3600,
           aur__format_time((int64_t)llround(f.init_time) * 1000000000LL, when, sizeof when), init_step);
    fflush(stdout);
    if (aur_aurora_forecast(m, window, steps, on_step, &f)) goto fail;
    if (aur_forecast_nc_close(f.nc)) { f.nc = NULL; goto fail; }
    f.nc = NULL;
    printf("wrote %s\n", out);
    if (f.scores.n) {
        char path[1200];
        aur_scores_finish(&f.scores);
        print_scores(&f.scores);
        out_path(&f, "scores.jsonl", path, sizeof path);
        char prefix[1200];
        out_path(&f, "", prefix, sizeof prefix);
        if (aur_scores_write_jsonl(&f.scores, path)) goto fail;
        int plotted = aur_scores_plot(&f.scores, prefix);
        if (plotted && plotted != AUR_EUNSUPPORTED) goto fail;
        printf("wrote %s\n", path);
    }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "aurora-forecast: %s\n", aur_last_error());
    aur_forecast_nc_close(f.nc);
    aur_scores_free(&f.scores);
    aur_batch_free(series);
    aur_batch_free(window);
    aur_batch_free(truth);
    aur_batch_free(clim);
    aur_model_free(m);
    cJSON_Delete(run_config);
    return rc;
}
