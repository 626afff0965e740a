/* aurora-inspect - list the tensors of a safetensors file, or of a model.

   usage: aurora-inspect FILE
          aurora-inspect --model PRESET
          aurora-inspect --check-batch FILE... [--model PRESET] [--stats KEY=LOC,SCALE]... [--nan-ok PATTERNS]
                         [--rename FILE_NAME=AURORA_NAME,...]

   FILE: prints "name dtype [shape]" for every tensor (sorted by name), then
   the tensor and element counts. A malformed file gives one line naming the
   problem and exit status 1; the reader never trusts the file, so this is
   also a quick validity check.

   --model: prints the parameter table of a preset in state_dict order
   without allocating the weights (so the 1.3 B models list instantly).

   --check-batch: the data checks of the fine-tuning guide on a batch or
   series file (or NetCDF / GRIB files and Zarr stores read together as one series,
   with a summary of how their names and grids were mapped), against a preset's variables and statistics (default
   aurora-pretrained): missing variables, NaN/Inf, all-zero fields, outliers,
   and whether the statistics fit. A batch variable the preset lacks joins
   the model's variables when --stats gives its statistics (new variables).
   One line per variable; exit status 1 if any is in error. */
#define AURORA_IMPLEMENTATION
#include "../surya.h"

static int inspect_file(const char *path)
{
    aur_st_file *f = aur_st_open(path);
    if (!f) {
        fprintf(stderr, "aurora-inspect: %s\n", aur_last_error());
        return 1;
    }
    int64_t total = 0;
    char shape[256];
    for (int i = 0; i < f->n; i++) {
        const aur_st_tensor *e = &f->tensors[i];
        printf("%s %s %s\n", e->name, e->dtype, aur_shape_str(e->shape, e->ndim, shape, sizeof shape));
        total += e->numel;
    }
    printf("%d tensors, %lld parameters", f->n, (long long)total);
    for (int i = 0; i < f->n_meta; i++) printf("%s %s=%s", i ? "," : "; metadata", f->meta_keys[i], f->meta_values[i]);
    printf("\n");
    aur_st_close(f);
    return 0;
}

static int inspect_model(const char *preset)
{
    aur_aurora_config cfg;
    aur_surya_config sc;
    aur_model *m = NULL;
    if (!strncmp(preset, "surya", 5) || !strncmp(preset, "Surya", 5)) m = aur_surya_preset(preset, &sc) ? NULL : aur_surya_declare_model(&sc);
    else if (!aur_aurora_preset(preset, &cfg)) m = aur_aurora_declare_model(&cfg);
    if (!m) {
        fprintf(stderr, "aurora-inspect: %s\n", aur_last_error());
        aur_model_free(m);
        return 1;
    }
    char shape[256];
    for (int i = 0; i < aur_model_count(m); i++) {
        const aur_tensor *p = aur_model_at(m, i);
        printf("%s F32 %s\n", p->name, aur_shape_str(p->shape, p->ndim, shape, sizeof shape));
    }
    printf("%d tensors, %lld parameters\n", aur_model_count(m), (long long)aur_model_numel(m, 0));
    aur_model_free(m);
    return 0;
}

/* Adds a batch variable missing from the model's list to it (a new variable). */
static void add_var(aur_var_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->name[i], name)) return;
    if (l->n < AUR_MAX_VARS) snprintf(l->name[l->n++], AUR_NAME_LEN, "%.47s", name);
}

static int check_batch(int argc, char **argv)
{
    const char *path = argv[2], *preset = "aurora-pretrained", *renames = NULL;
    aur_check_opts opts = aur_check_defaults();
    char keys[AUR_MAX_VARS][AUR_NAME_LEN];
    double loc[AUR_MAX_VARS], scale[AUR_MAX_VARS];
    int n_stats = 0, n_files = 1;
    while (2 + n_files < argc && strncmp(argv[2 + n_files], "--", 2)) n_files++; /* a series may be several NetCDF files */
    for (int i = 2 + n_files; i < argc; i += 2) {
        if (i + 1 >= argc) return fprintf(stderr, "aurora-inspect: %s needs a value\n", argv[i]), 2;
        if (!strcmp(argv[i], "--model")) preset = argv[i + 1];
        else if (!strcmp(argv[i], "--nan-ok")) opts.nan_ok = argv[i + 1];
        else if (!strcmp(argv[i], "--rename")) renames = argv[i + 1];
        else if (!strcmp(argv[i], "--stats") && n_stats < AUR_MAX_VARS &&
                 sscanf(argv[i + 1], "%47[^=]=%lf,%lf", keys[n_stats], &loc[n_stats], &scale[n_stats]) == 3)
            n_stats++;
        else return fprintf(stderr, "aurora-inspect: bad option '%s %s'\n", argv[i], argv[i + 1]), 2;
    }
    /* the series is checked a chunk of steps at a time (aur_aurora_check_series): a year of ERA5 need not fit in memory */
    aur_series *s = aur_series_open((const char *const *)argv + 2, n_files, renames, stdout);
    aur_batch *b = s ? aur_series_read(s, 0, 1, 0) : NULL; /* the variables and sizes */
    aur_aurora_config cfg;
    if (!b || aur_aurora_preset(preset, &cfg)) {
        fprintf(stderr, "aurora-inspect: %s\n", aur_last_error());
        aur_batch_free(b);
        aur_series_close(s);
        return 1;
    }
    for (int k = 0; k < n_stats; k++) { /* new variables: those with --stats (atmospheric: "v_850" keys) */
        for (int i = 0; i < b->surf_names.n; i++)
            if (!strcmp(b->surf_names.name[i], keys[k])) add_var(&cfg.surf_vars, keys[k]);
        for (int i = 0; i < b->static_names.n; i++)
            if (!strcmp(b->static_names.name[i], keys[k])) add_var(&cfg.static_vars, keys[k]);
        for (int i = 0; i < b->atmos_names.n; i++) {
            size_t n = strlen(b->atmos_names.name[i]);
            if (!strncmp(b->atmos_names.name[i], keys[k], n) && keys[k][n] == '_') add_var(&cfg.atmos_vars, b->atmos_names.name[i]);
        }
    }
    aur_model *m = aur_aurora_declare_model(&cfg);
    int rc = m ? 0 : 1;
    for (int k = 0; k < n_stats && !rc; k++) rc = aur_aurora_set_stats(m, keys[k], loc[k], scale[k]) ? 1 : 0;
    aur_check_report rep;
    memset(&rep, 0, sizeof rep);
    if (!rc) {
        printf("%s%s: B %d, T %d, %d levels, %d x %d; checked against %s\n", path, n_files > 1 ? " (and the others)" : "", b->B,
               aur_series_length(s), b->C, b->H, b->W, preset);
        rc = aur_aurora_check_series(m, s, &opts, &rep) ? 1 : 0;
        aur_check_report_print(&rep, stdout);
    }
    if (rc) fprintf(stderr, "aurora-inspect: %s\n", aur_last_error());
    aur_check_report_free(&rep);
    aur_model_free(m);
    aur_batch_free(b);
    aur_series_close(s);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: aurora-inspect FILE.safetensors\n       aurora-inspect --model PRESET\n"
                    "       aurora-inspect --check-batch FILE... [--model PRESET] [--stats KEY=LOC,SCALE]... [--nan-ok PATTERNS]\n"
                    "                  [--rename FILE_NAME=AURORA_NAME,...]\n"
                    "  FILE: a safetensors batch or series, or NetCDF / GRIB files and Zarr stores read together as one series\npresets:");
    for (const char *const *p = aur_aurora_preset_names(); *p; p++) fprintf(stderr, " %s", *p);
    fprintf(stderr, " surya-1.0 surya-tiny");
    fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--model")) return inspect_model(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "--check-batch")) return check_batch(argc, argv);
    if (argc != 2 || argv[1][0] == '-') {
        usage();
        return 2;
    }
    return inspect_file(argv[1]);
}
