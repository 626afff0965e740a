/* fuzz_lora_config.c - libFuzzer target for PEFT's adapter_config.json.
   make fuzz && ./build/fuzz_lora_config tests/fuzz_corpus/lora_config -max_total_time=60
   Any text must be refused with a message or give a rank >= 1, a dropout
   in [0, 1), lists within their slots, and a target regex that compiles or
   is refused when used. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "../lora.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = aur_json_parse((const char *)data, size, "fuzz-adapter");
    if (!j) return 0;
    aur_lora_config c = aur_lora_defaults();
    char *warnings = NULL;
    if (aur_lora_config_json(j, &c, &warnings) == 0) {
        int ok = c.r >= 1 && c.lora_dropout >= 0 && c.lora_dropout < 1 && c.n_targets <= AUR_LORA_MAX_TARGETS &&
                 c.n_modules_to_save <= AUR_LORA_MAX_TARGETS && strlen(c.target_regex) < sizeof c.target_regex;
        if (!ok) abort();
        regex_t rx;
        if (c.target_regex[0] && aur__lora_regex(c.target_regex, &rx) == 0) regfree(&rx);
    } else if (!aur_last_error()[0]) {
        abort();
    }
    free(warnings);
    cJSON_Delete(j);
    return 0;
}
