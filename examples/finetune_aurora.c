/* finetune_aurora.c - fine-tune a small Aurora end to end on the CPU.

   usage: finetune_aurora [OUTDIR]      (default demo-out)

   Walks through the reference's fine-tuning guide with a model small enough
   for a laptop:
     1. memory plan: what each memory saver buys for AuroraSmallPretrained and
        AuroraPretrained at 0.25 degrees, computed before anything is allocated;
     2. data: synthetic advected weather on a 32 x 64 grid (synth_weather.h,
        NOT real data), written as series files, checked variable by
        variable; a batch with a NaN, a zeroed field or a missing variable is
        refused with the variable's name;
     3. pretraining a tiny base model on the standard variables (the stand-in
        for the pretrained checkpoint);
     4. fine-tuning: a new surface variable "tcwv" with its statistics, its
        new patch embedding zero-initialised, the base checkpoint loaded
        non-strictly (the report lists what is new), LoRA in the backbone,
        only LoRA and the new variable's weights trained with a separate
        learning rate, a 2-step rollout loss, clipping, activation
        checkpointing, gradient alarm; metrics, curves, maps, checkpoints.
   Both runs are driven by JSON configs written to OUTDIR (read them). */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "synth_weather.h"

#include <stdlib.h>
#include <sys/stat.h>

static const double LEVELS[3] = {250, 500, 850};
enum { H = 32, W = 64, C = 3, SERIES_T = 14 };

static void die(const char *what)
{
    fprintf(stderr, "finetune_aurora: %s: %s\n", what, aur_last_error());
    exit(1);
}

/* The tiny architecture both runs share (the preset's variables and statistics). */
static const char *TINY_KWARGS =
    "\"embed_dim\": 32, \"num_heads\": 4, \"patch_size\": 4, \"window_size\": [2, 4, 4],"
    "\"encoder_depths\": [2, 2], \"encoder_num_heads\": [2, 4], \"decoder_depths\": [2, 2], \"decoder_num_heads\": [4, 2],"
    "\"latent_levels\": 2";

/* Prints the memory each saver needs for a preset at 0.25 degrees. */
static void print_memory_plans(const char *preset)
{
    aur_aurora_config cfg;
    if (aur_aurora_preset(preset, &cfg)) die(preset);
    struct { const char *name; aur_memory_choice ch; } rows[] = {
        {"AdamW, fp32", {AUR_ADAMW, 0, 0, 0, 0, 1}},
        {"AdamW, autocast", {AUR_ADAMW, 0, 1, 0, 0, 1}},
        {"AdamW, autocast + checkpointing", {AUR_ADAMW, AUR_CHECKPOINT_ALL, 1, 0, 0, 1}},
        {"Adafactor, autocast + checkpointing", {AUR_ADAFACTOR, AUR_CHECKPOINT_ALL, 1, 0, 0, 1}},
        {"AdamW offloaded, autocast + ckpt", {AUR_ADAMW, AUR_CHECKPOINT_ALL, 1, 0, 1, 1}},
        {"pure BF16, AdamW + checkpointing", {AUR_ADAMW, AUR_CHECKPOINT_ALL, 1, 1, 0, 1}},
        {"LoRA (1%), autocast + checkpointing", {AUR_ADAMW, AUR_CHECKPOINT_ALL, 1, 0, 0, 0.01}},
    };
    printf("memory plan of a training step: %s, 721 x 1440, 13 levels, B 1, T 2 (GiB)\n", preset);
    printf("  %-38s %8s %8s %8s %8s %8s\n", "choice", "weights", "grads", "optim", "activ", "total");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        aur_memory_plan p = {0, 0, 0, 0, 0, 0};
        if (aur_aurora_memory_plan(&cfg, 1, 2, 13, 721, 1440, &rows[i].ch, &p)) die("memory plan");
        double G = 1024.0 * 1024 * 1024;
        printf("  %-38s %8.2f %8.2f %8.2f %8.2f %8.2f\n", rows[i].name, p.params / G, p.grads / G, p.optimiser / G,
               p.activations / G, p.total / G);
    }
}

/* Writes n series files OUTDIR/data/{stem}_{i}.safetensors. */
static void write_series(const char *out, const char *stem, int n, uint64_t seed0, const aur_var_list *surf)
{
    aur_aurora_config cfg;
    aur_aurora_preset("aurora-small-pretrained", &cfg);
    aur_model *stats = aur_aurora_declare_model(&cfg);
    char path[512];
    for (int i = 0; i < n; i++) {
        aur_batch *b = synth_series(stats, SERIES_T, C, LEVELS, H, W, surf, &cfg.static_vars, &cfg.atmos_vars, seed0 + (uint64_t)i);
        snprintf(path, sizeof path, "%s/data/%s_%d.safetensors", out, stem, i);
        if (!b || aur_batch_save(b, path)) die(path);
        aur_batch_free(b);
    }
    aur_model_free(stats);
}

/* Shows the data checks refusing three broken copies of a good file. */
static void show_refusals(const char *out)
{
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/data/finetune_0.safetensors", out);
    snprintf(bad, sizeof bad, "%s/data/broken.safetensors", out);
    aur_aurora_config cfg;
    aur_aurora_preset("aurora-small-pretrained", &cfg);
    aur_var_list tcwv = {1, {"tcwv"}};
    cfg.surf_vars.n = 4;
    memcpy(cfg.surf_vars.name[cfg.surf_vars.n++], tcwv.name[0], AUR_NAME_LEN);
    aur_model *m = aur_aurora_declare_model(&cfg);
    aur_aurora_set_stats(m, "tcwv", SYNTH_TCWV_LOC, SYNTH_TCWV_SCALE);
    const char *what[3] = {"a NaN in 2t", "a zeroed field of t", "no msl"};
    for (int k = 0; k < 3; k++) {
        aur_batch *b = aur_batch_load(good);
        if (!b) die(good);
        if (k == 0) aur_tensor_f32(aur_batch_surf(b, "2t"))[123] = NAN;
        if (k == 1) memset(aur_tensor_f32(aur_batch_atmos(b, "t")), 0, sizeof(aur_real) * H * W);
        if (k == 2) b->surf_names.n = 3, aur_tensor_free(b->surf[3]), b->surf[3] = b->surf[4], strcpy(b->surf_names.name[3], "tcwv");
        if (aur_batch_save(b, bad)) die(bad);
        aur_batch_free(b);
        aur_batch *loaded = aur_batch_load_unchecked(bad);
        int rc = loaded ? aur_aurora_check_batch(m, loaded, NULL, NULL) : -1;
        printf("  %-20s -> %s\n", what[k], rc ? aur_last_error() : "accepted (WRONG)");
        aur_batch_free(loaded);
    }
    unlink(bad);
    aur_model_free(m);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(text, fp) < 0 || fclose(fp)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* Runs a trainer from a config file (it prints its setup first). */
static void run(const char *config)
{
    aur_trainer *tr = aur_trainer_create(config);
    if (!tr) die(config);
    if (aur_trainer_run(tr)) die("training");
    aur_trainer_free(tr);
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "demo-out";
    char path[512], cfg[4096];
    mkdir(out, 0755);
    snprintf(path, sizeof path, "%s/data", out);
    mkdir(path, 0755);
    print_memory_plans("aurora-small-pretrained");
    print_memory_plans("aurora-pretrained");

    aur_aurora_config base;
    aur_aurora_preset("aurora-small-pretrained", &base);
    aur_var_list surf_new = base.surf_vars;
    snprintf(surf_new.name[surf_new.n++], AUR_NAME_LEN, "tcwv");
    write_series(out, "pretrain", 4, 100, &base.surf_vars);
    write_series(out, "finetune", 3, 200, &surf_new);
    write_series(out, "val", 1, 300, &surf_new);
    printf("\ndata: synthetic advected fields, %d x %d grid, levels 250/500/850 hPa, %d steps of 6 h per series\n", H, W, SERIES_T);
    printf("data checks refuse broken batches:\n");
    show_refusals(out);

    printf("\n== pretraining the tiny base model (standard variables) ==\n");
    snprintf(cfg, sizeof cfg,
             "{\"model\": {\"preset\": \"aurora-small-pretrained\", \"kwargs\": {%s}},\n"
             " \"data\": {\"train\": [\"data/pretrain_0.safetensors\", \"data/pretrain_1.safetensors\", \"data/pretrain_2.safetensors\","
             " \"data/pretrain_3.safetensors\"], \"history\": 2},\n"
             " \"optimizer\": {\"name\": \"adamw\", \"lr\": 3e-3, \"weight_decay\": 0.0},\n"
             " \"schedule\": {\"kind\": \"cosine\", \"warmup_steps\": 10, \"final_factor\": 0.1},\n"
             " \"steps\": 400, \"seed\": 1, \"clip_grad_norm\": 1.0, \"log_every\": 50, \"keep_last\": 1,\n"
             " \"output_dir\": \"pretrain\", \"overwrite_output_dir\": true}\n",
             TINY_KWARGS);
    snprintf(path, sizeof path, "%s/pretrain.json", out);
    write_text(path, cfg);
    run(path);

    printf("\n== fine-tuning: new variable tcwv, LoRA, 2-step rollout ==\n");
    snprintf(cfg, sizeof cfg,
             "{\"model\": {\"preset\": \"aurora-small-pretrained\",\n"
             "   \"kwargs\": {%s, \"surf_vars\": [\"2t\", \"10u\", \"10v\", \"msl\", \"tcwv\"],\n"
             "              \"use_lora\": true, \"lora_mode\": \"all\", \"lora_steps\": 2},\n"
             "   \"checkpoint\": \"pretrain/checkpoint-000400/model.safetensors\", \"load\": \"non-strict\",\n"
             "   \"stats\": {\"tcwv\": [%g, %g]}, \"new_embeddings\": \"zero\",\n"
             "   \"train_only\": \"*lora*,decoder.surf_heads.*,@new_vars\"},\n"
             " \"data\": {\"train\": [\"data/finetune_0.safetensors\", \"data/finetune_1.safetensors\", \"data/finetune_2.safetensors\"],\n"
             "   \"val\": \"data/val_0.safetensors\", \"history\": 2, \"rollout_steps\": 2, \"eval_windows\": 4},\n"
             " \"optimizer\": {\"name\": \"adamw\", \"lr\": 2e-3, \"weight_decay\": 0.0, \"new_vars_lr\": 1e-2},\n"
             " \"schedule\": {\"kind\": \"cosine\", \"warmup_steps\": 5, \"final_factor\": 0.1},\n"
             " \"steps\": 200, \"seed\": 2, \"clip_grad_norm\": 1.0, \"activation_checkpointing\": true,\n"
             " \"alarm\": {\"window\": 30, \"z\": 6, \"skip\": true},\n"
             " \"log_every\": 25, \"eval_every\": 25, \"save_every\": 100, \"keep_last\": 2,\n"
             " \"map_vars\": [\"tcwv\", \"2t\", \"t@850\"], \"output_dir\": \".\", \"overwrite_output_dir\": true}\n",
             TINY_KWARGS, SYNTH_TCWV_LOC, SYNTH_TCWV_SCALE);
    snprintf(path, sizeof path, "%s/finetune.json", out);
    write_text(path, cfg);
    run(path);
    printf("\nwrote %s/metrics.jsonl, curves.png, maps_*.png, checkpoint-*/ (and pretrain/)\n", out);
    return 0;
}
