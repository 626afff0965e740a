/* fuzz_run_config.c - libFuzzer target for the run config reader.
   make fuzz && ./build/fuzz_run_config tests/fuzz_corpus/run_config -max_total_time=60
   Any text must be refused with a message or read into values within their
   documented ranges. The reader is the trainer's first stage (every key
   checked before a model is built or a file is read), so this runs it alone. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = aur_json_parse((const char *)data, size, "fuzz-config");
    if (!j) return 0;
    aur_trainer *tr = (aur_trainer *)calloc(1, sizeof *tr);
    tr->config = j; /* freed with the trainer */
    if (aur__trainer_read_config(tr) == 0) {
        /* what the later stages rely on; a value outside its range that got through stops here, named */
        struct { int ok; const char *what; } rules[] = {
            {tr->steps >= 0, "steps >= 0"},
            {tr->train.n_files >= 1, "a training file"},
            {tr->n_maps <= AUR__MAX_MAPS, "map_vars fit"},
            {tr->out_dir[0] != 0, "an output_dir"},
            {tr->history >= 1 && tr->history <= tr->mcfg.max_history_size, "history in [1, max_history_size]"},
            {tr->rollout >= 1, "rollout_steps >= 1"},
            {tr->opt.lr >= 0, "lr >= 0"},
            {tr->keep_last >= 1, "keep_last >= 1"},
            {cJSON_GetArraySize(tr->groups) <= AUR__MAX_GROUPS - 1, "groups fit"},
        };
        for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
            if (!rules[i].ok) {
                fprintf(stderr, "accepted, but not: %s\n", rules[i].what);
                abort();
            }
        aur__trainer_check_maps(tr);
    } else if (!aur_last_error()[0]) {
        abort(); /* a refusal says why */
    }
    aur_trainer_free(tr);
    return 0;
}
