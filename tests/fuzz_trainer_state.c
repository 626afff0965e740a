/* fuzz_trainer_state.c - libFuzzer target for trainer_state.json, read on --resume.
   make fuzz && ./build/fuzz_trainer_state tests/fuzz_corpus/trainer_state -max_total_time=60
   Any text must be refused with a message or restore a step >= 0 and
   histories of whole rows, into a trainer of two parameter groups. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *s = aur_json_parse((const char *)data, size, "fuzz-state");
    if (!s) return 0;
    aur_trainer *tr = (aur_trainer *)calloc(1, sizeof *tr);
    tr->n_groups = 2;
    aur_grad_alarm_init(&tr->alarm, 4, 6, 1);
    tr->hist.cols = 4 + tr->n_groups;
    tr->val_hist.cols = 2;
    if (aur__trainer_restore_json(tr, s, "fuzz-state") == 0) {
        if (tr->step < 0 || tr->hist.rows < 0 || tr->val_hist.rows < 0) abort();
    } else if (!aur_last_error()[0]) {
        abort();
    }
    cJSON_Delete(s);
    aur_trainer_free(tr);
    return 0;
}
