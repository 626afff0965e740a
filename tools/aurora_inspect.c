/* aurora-inspect - list the tensors of a safetensors file.

   usage: aurora-inspect FILE

   Prints "name dtype [shape]" for every tensor (sorted by name), then the
   tensor and element counts. A malformed file gives one line naming the
   problem and exit status 1; the reader never trusts the file, so this is
   also a quick validity check. */
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

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: aurora-inspect FILE.safetensors\n");
        return 2;
    }
    return inspect_file(argv[1]);
}
