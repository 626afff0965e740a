/* fuzz_torch_pickle.c - libFuzzer target for a PyTorch checkpoint's data.pkl,
   the untrusted pickle inside a .ckpt / .pt archive.
   make fuzz && ./build/fuzz/fuzz_torch_pickle tests/fuzz_corpus/torch_pickle -max_total_time=60
   Any bytes must be refused with a message or leave one value, whose state
   dict (if any) holds tensors of at most AUR_ST_MAX_DIMS dimensions over storages. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aur__unpickler u;
    aur__pk *root = NULL;
    int rc = aur__unpickle(&u, data, size, "fuzz.pkl", &root);
    if (rc && !aur_last_error()[0]) abort();
    const aur__pk *sd = rc ? NULL : aur__pk_state_dict(root);
    for (int i = 0; sd && i + 1 < sd->n; i += 2) {
        const aur__pk *t = sd->v[i + 1];
        if (t->kind == AUR__PK_TENSOR && (t->ndim < 0 || t->ndim > AUR_ST_MAX_DIMS || !t->storage || t->storage->kind != AUR__PK_STORAGE)) abort();
    }
    aur__pk_free_all(&u);
    return 0;
}
