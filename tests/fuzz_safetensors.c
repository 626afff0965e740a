/* fuzz_safetensors.c - libFuzzer target for the safetensors header parser.
   make fuzz && ./build/fuzz_safetensors -max_total_time=60
   Any input must be refused cleanly or accepted with every tensor readable. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aur_st_file *f = (aur_st_file *)calloc(1, sizeof *f);
    f->path = aur__strdup("fuzz-input");
    f->fd = -1; /* in memory: no file */
    if (aur__st_parse(f, data, size) == 0) {
        for (int i = 0; i < f->n; i++) {
            const aur_st_tensor *e = &f->tensors[i];
            if (e->end > f->buffer_size) abort(); /* the layout check must have caught this */
            aur_real *buf = (aur_real *)malloc(sizeof(aur_real) * (size_t)(e->numel ? e->numel : 1));
            if (aur__st_dtype_find(e->dtype)->readable && e->numel < (1 << 24)) aur_st_read(f, e, AUR_F32, buf);
            free(buf);
        }
    }
    aur_st_close(f);
    return 0;
}
