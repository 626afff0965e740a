#include "aurora.h"

#define AUR_LORA_MAX_TARGETS 32

typedef struct aur_lora_config {
    int r;
    double lora_alpha, lora_dropout;
    int use_rslora;
    int n_targets;
    char target_modules[AUR_LORA_MAX_TARGETS][96]; /* a list: a module matches t when its name is t or ends in ".t" */
    char target_regex[256];                        /* or a string: a full-match regular expression (POSIX ERE) */
    int n_modules_to_save;
    char modules_to_save[AUR_LORA_MAX_TARGETS][96]; /* trained in full and saved with the adapter */
    char base_model_name_or_path[256];
} aur_lora_config;

AURDEF aur_lora_config aur_lora_defaults(void); /* r 8, alpha 8, dropout 0, no targets */
AURDEF int aur_lora_add_target(aur_lora_config *c, const char *module);
/* Reads PEFT's LoraConfig fields from JSON (adapter_config.json or a kwargs
   object). Unknown keys are ignored with a warning in *warnings (may be
   NULL; owned: free()); DoRA and other variants are AUR_EUNSUPPORTED. */
AURDEF int aur_lora_config_json(const struct cJSON *j, aur_lora_config *c, char **warnings);

typedef struct aur_lora_report {
    int n_matched, n_unmatched;
    char **matched;   /* module names that got an adapter */
    char **unmatched; /* listed targets that matched no linear module (PEFT would raise only if none matched) */
} aur_lora_report;
AURDEF void aur_lora_report_free(aur_lora_report *rep);
AURDEF void aur_lora_report_print(const aur_lora_report *rep, FILE *out);

/* Declares an adapter on every matching linear module of a declared (not
   yet allocated) model. Nothing matching is an error. rep may be NULL. */
AURDEF int aur_lora_declare(aur_model *m, const aur_lora_config *c, aur_lora_report *rep);
/* PEFT's freezing: every parameter but the adapters and modules_to_save. */
AURDEF int aur_lora_freeze_base(aur_model *m, const aur_lora_config *c);
/* W += scaling B A for every adapter (inference without the extra products), and back. */
AURDEF int aur_lora_merge(aur_model *m);
AURDEF int aur_lora_unmerge(aur_model *m);

/* An adapter directory in PEFT's format: adapter_config.json (PEFT's keys,
   sorted, indent 2) and adapter_model.safetensors ("base_model.model.{module}.lora_A.weight", ...). */
AURDEF int aur_lora_save(const aur_model *m, const aur_lora_config *c, const char *dir);
/* Reads an adapter directory's config (to declare the adapters before allocating). */
AURDEF int aur_lora_load_config(const char *dir, aur_lora_config *c, char **warnings);
/* Loads an adapter directory's tensors into the model's declared adapters (strict). */
AURDEF int aur_lora_load(aur_model *m, const char *dir);
/* A PEFT name as the model names it: no "base_model.model." prefix,
   "{m}.base_layer.{p}" -> "{m}.{p}", "{m}.lora_A[.{adapter}].weight" ->
   "{m}.lora_A.default.weight". Writes buf, returns it. */
AURDEF const char *aur_lora_model_name(const char *peft_name, char *buf, size_t size);
/* Loads a whole PEFT-wrapped state dict ("base_model.model.{m}.base_layer.weight",
   "...lora_A.{adapter}.weight") into the model's names. */
AURDEF int aur_lora_load_peft_state_dict(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep);
