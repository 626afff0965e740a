/* finetune_surya_1d.c - Surya's 1D heads on a synthetic Sun: flare
   forecasting (binary classification) and solar-wind speed (regression).

   usage: finetune_surya_1d [OUTDIR] [FLARE.json] [WIND.json]
          (defaults demo-out-surya, examples/configs/surya_flare.json, examples/configs/surya_wind.json)

   The configs use the reference YAML's keys (model.*, lora_config, optimizer.learning_rate, ...).
   Steps: pretrain a tiny backbone on next-frame forecasting (the stand-in for
   Surya-1.0's checkpoint), load it filtered into HelioSpectformer1D, add
   LoRA to fc1/fc2 (the targets q_proj, k_proj, v_proj, out_proj match
   nothing in Surya and are reported), train the head in full, for each
   learning rate in the config; then full fine-tuning at the first learning
   rate; compare with a linear baseline on image
   statistics ("compare against the linear baseline"). Writes
   OUTDIR/{flare,wind}_metrics.jsonl, {flare,wind}_curves.png and the best
   flare adapter in PEFT's format (OUTDIR/flare_adapter/). Synthetic data. */
#define AURORA_IMPLEMENTATION
#include "../surya.h"
#include "../lora.h"
#include "surya_demo.h"

typedef struct task_spec {
    const char *name;
    int task;
} task_spec;

/* One task: every learning rate, then the baseline; metrics and curves. */
static void run_task(const char *out, const char *config_path, task_spec spec, const char *base)
{
    cJSON *cfg = aur_json_load(config_path);
    if (!cfg) demo_die(config_path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(cfg, "model"), *opt = cJSON_GetObjectItemCaseSensitive(cfg, "optimizer");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cfg, "data"), *lrs = cJSON_GetObjectItemCaseSensitive(opt, "learning_rate");
    int ntr = (int)demo_num(data, "n_train", 192), nva = (int)demo_num(data, "n_valid", 96), B = (int)demo_num(data, "batch_size", 8);
    int steps = (int)demo_num(opt, "max_steps", 80), warm = (int)demo_num(opt, "warm_up_steps", 0);
    double min_lr = demo_num(opt, "min_lr", 1e-5);
    aur_surya_config c;
    demo_surya_config(model, AUR_SURYA_1D, &c);
    c.squeeze_output = spec.task == TASK_FLARE;
    sun_sample *tr = sun_dataset(ntr, 100 + (uint64_t)spec.task), *va = sun_dataset(nva, 900 + (uint64_t)spec.task);
    char base_t[600];
    snprintf(base_t, sizeof base_t, "%s_T%d.safetensors", base, c.time_dim);
    base = base_t;
    demo_pretrain(&c, base, tr, ntr);
    int n_lr = cJSON_IsArray(lrs) ? cJSON_GetArraySize(lrs) : 1;
    double *curves[8] = {0}, best = -1e30;
    const char *labels[8];
    char label_buf[8][48], path[512];
    float *pred = (float *)malloc(sizeof(float) * (size_t)nva), *label = (float *)malloc(sizeof(float) * (size_t)nva);
    for (int i = 0; i < nva; i++) label[i] = spec.task == TASK_FLARE ? va[i].flare : va[i].wind;
    snprintf(path, sizeof path, "%s/%s_metrics.jsonl", out, spec.name);
    FILE *jl = fopen(path, "w");
    printf("\n== %s (%s) ==\n", spec.name, spec.task == TASK_FLARE ? "binary classification" : "regression");
    int runs = n_lr + 2; /* every learning rate, full fine-tuning at the first one, the baseline */
    for (int r = 0; r < runs && r < 8; r++) {
        int baseline = r == runs - 1, full = r == runs - 2;
        double lr = baseline ? 1e-2 : cJSON_IsArray(lrs) ? cJSON_GetArrayItem(lrs, full ? 0 : r)->valuedouble : demo_num(opt, "learning_rate", 1e-3);
        curves[r] = (double *)calloc((size_t)steps, sizeof(double));
        aur_lora_config lc;
        aur_model *m = NULL;
        if (baseline) demo_baseline(tr, ntr, va, nva, spec.task, pred, curves[r], steps);
        else {
            m = demo_head_model(&c, model, base, &lc, full);
            if (r == 0) printf("  trainable %lld of %lld parameters (LoRA + head)\n", (long long)aur_model_numel(m, 1), (long long)aur_model_numel(m, 0));
            demo_train(m, tr, ntr, c.time_dim, spec.task, lr, min_lr, warm, steps, B, curves[r]);
            demo_predict(m, va, nva, c.time_dim, spec.task, pred);
        }
        snprintf(label_buf[r], sizeof label_buf[r], baseline ? "linear baseline" : full ? "full FT lr %g" : "LoRA lr %g", lr);
        labels[r] = label_buf[r];
        for (int s = 0; s < steps && jl; s++)
            write_line(jl, "{\"task\": \"%s\", \"run\": \"%s\", \"step\": %d, \"loss\": %.6g}\n", spec.name, labels[r], s + 1, curves[r][s]);
        if (spec.task == TASK_FLARE) {
            binary_metrics bm = binary_scores(pred, label, nva);
            printf("  %-16s accuracy %.3f  precision %.3f  recall %.3f  F1 %.3f  TSS %.3f  HSS %.3f\n", labels[r], bm.accuracy, bm.precision,
                   bm.recall, bm.f1, bm.tss, bm.hss);
            if (jl)
                write_line(jl, "{\"task\": \"%s\", \"run\": \"%s\", \"valid\": {\"accuracy\": %.4f, \"precision\": %.4f, \"recall\": %.4f, "
                               "\"f1\": %.4f, \"tss\": %.4f, \"hss\": %.4f}}\n",
                           spec.name, labels[r], bm.accuracy, bm.precision, bm.recall, bm.f1, bm.tss, bm.hss);
            if (m && !full && bm.tss > best) { /* the best run's adapter, in PEFT's format */
                best = bm.tss;
                snprintf(path, sizeof path, "%s/flare_adapter", out);
                if (aur_lora_save(m, &lc, path)) demo_die(path);
            }
        } else {
            double mae = 0, mse = 0;
            for (int i = 0; i < nva; i++) mae += fabs(pred[i] - label[i]), mse += (pred[i] - label[i]) * (pred[i] - label[i]);
            printf("  %-16s MAE %.4f  RMSE %.4f (speed scaled to [0, 1])\n", labels[r], mae / nva, sqrt(mse / nva));
            if (jl) write_line(jl, "{\"task\": \"%s\", \"run\": \"%s\", \"valid\": {\"mae\": %.5f, \"rmse\": %.5f}}\n", spec.name, labels[r], mae / nva, sqrt(mse / nva));
        }
        aur_model_free(m);
    }
    if (jl) fclose(jl);
    snprintf(path, sizeof path, "%s/%s_curves.png", out, spec.name);
    char title[128];
    snprintf(title, sizeof title, "%s: training loss for each learning rate", spec.name);
    demo_plot_curves(path, title, curves, labels, runs < 8 ? runs : 8, steps);
    for (int r = 0; r < runs && r < 8; r++) free(curves[r]);
    free(pred);
    free(label);
    free(tr);
    free(va);
    cJSON_Delete(cfg);
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "demo-out-surya";
    const char *flare = argc > 2 ? argv[2] : "examples/configs/surya_flare.json";
    const char *wind = argc > 3 ? argv[3] : "examples/configs/surya_wind.json";
    char base[512];
    mkdir(out, 0755);
    snprintf(base, sizeof base, "%s/base", out);
    run_task(out, flare, (task_spec){"flare", TASK_FLARE}, base);
    run_task(out, wind, (task_spec){"wind", TASK_WIND}, base);
    printf("\nwrote %s/{flare,wind}_metrics.jsonl, {flare,wind}_curves.png, flare_adapter/ (synthetic data)\n", out);
    return 0;
}
