/* train_data.h - the small training setup test_train and test_crash share:
   a reduced Aurora (AuroraSmallPretrained's variables, a 16-wide model) with
   the new variable tcwv and LoRA, over synthetic series (examples/synth_weather.h)
   on a 16 x 32 grid. Include after aurora.h and aur_test.h. */
#ifndef TRAIN_DATA_H
#define TRAIN_DATA_H

#include "../examples/synth_weather.h"

enum { H = 16, W = 32, C = 3, T = 8 };
static const double LEVELS[3] = {250, 500, 850};

static const char *TINY_KWARGS = "\"embed_dim\": 16, \"num_heads\": 2, \"patch_size\": 4, \"window_size\": [2, 2, 4],"
                                 "\"encoder_depths\": [1, 1], \"encoder_num_heads\": [2, 4], \"decoder_depths\": [1, 1],"
                                 "\"decoder_num_heads\": [4, 2], \"latent_levels\": 2";

static aur_model *stats_model(int with_tcwv)
{
    aur_aurora_config c;
    aur_aurora_preset("aurora-small-pretrained", &c);
    if (with_tcwv) snprintf(c.surf_vars.name[c.surf_vars.n++], AUR_NAME_LEN, "tcwv");
    aur_model *m = aur_aurora_declare_model(&c);
    if (with_tcwv) aur_aurora_set_stats(m, "tcwv", SYNTH_TCWV_LOC, SYNTH_TCWV_SCALE);
    return m;
}

static aur_batch *series(const aur_model *m, int steps, uint64_t seed)
{
    const aur_aurora_config *c = aur_aurora_config_of(m);
    return synth_series(m, steps, C, LEVELS, H, W, &c->surf_vars, &c->static_vars, &c->atmos_vars, seed);
}

/* series_0..2.safetensors in the test directory: T steps each (seeds 10, 11, 12);
   with nan_copy, also nan.safetensors: series_0 with a NaN in msl. */
static void write_train_series(int nan_copy)
{
    aur_model *m = stats_model(1);
    for (int i = 0; i < 3; i++) {
        aur_batch *b = series(m, T, 10 + (uint64_t)i);
        char name[64];
        snprintf(name, sizeof name, "series_%d.safetensors", i);
        aur_batch_save(b, aur_test_tmp(name));
        if (i == 0 && nan_copy) {
            aur_tensor_f32(aur_batch_surf(b, "msl"))[3] = NAN;
            aur_batch_save(b, aur_test_tmp("nan.safetensors"));
        }
        aur_batch_free(b);
    }
    aur_model_free(m);
}

/* The run config over series_0..2.safetensors (relative to the config's
   directory) writing into output_dir `out`: LoRA on every module, a head group,
   cosine schedule, clipping, activation checkpointing. */
static void train_config_text(char *text, size_t size, const char *out)
{
    snprintf(text, size,
             "{\"model\": {\"preset\": \"aurora-small-pretrained\", \"kwargs\": {%s, \"surf_vars\": [\"2t\", \"10u\", \"10v\", \"msl\", \"tcwv\"],"
             " \"use_lora\": true, \"lora_mode\": \"all\", \"lora_steps\": 2}, \"stats\": {\"tcwv\": [25, 16]}},"
             " \"data\": {\"train\": [\"series_0.safetensors\", \"series_1.safetensors\"], \"val\": \"series_2.safetensors\","
             " \"rollout_steps\": 2, \"eval_windows\": 2},"
             " \"optimizer\": {\"name\": \"adamw\", \"lr\": 1e-3, \"groups\": [{\"name\": \"heads\", \"params\": \"decoder.*_heads.*\", \"lr\": 3e-3}]},"
             " \"schedule\": {\"kind\": \"cosine\", \"warmup_steps\": 2, \"final_factor\": 0.1},"
             " \"steps\": 6, \"seed\": 5, \"clip_grad_norm\": 0.5, \"activation_checkpointing\": true, \"output_dir\": \"%s\"}",
             TINY_KWARGS, out);
}

#endif
