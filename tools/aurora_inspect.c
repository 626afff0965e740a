/* aurora-inspect - list the tensors of a safetensors file, or of a model.

   usage: aurora-inspect FILE
          aurora-inspect --model PRESET

   FILE: prints "name dtype [shape]" for every tensor (sorted by name), then
   the tensor and element counts. A malformed file gives one line naming the
   problem and exit status 1; the reader never trusts the file, so this is
   also a quick validity check.

   --model: prints the parameter table of a preset in state_dict order
   without allocating the weights (so the 1.3 B models list instantly). */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

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
    aur_model *m = aur_model_create();
    if (!m || aur_aurora_preset(preset, &cfg) || aur_aurora_declare(m, &cfg)) {
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

static void usage(void)
{
    fprintf(stderr, "usage: aurora-inspect FILE.safetensors\n       aurora-inspect --model PRESET\npresets:");
    for (const char *const *p = aur_aurora_preset_names(); *p; p++) fprintf(stderr, " %s", *p);
    fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--model")) return inspect_model(argv[2]);
    if (argc != 2 || argv[1][0] == '-') {
        usage();
        return 2;
    }
    return inspect_file(argv[1]);
}
