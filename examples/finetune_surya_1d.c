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

/* One task: every learning rate, full fine-tuning, the baseline; metrics and curves. */
static void run_task(const char *out, const char *config_path, task_spec spec, const char *base)
{
    demo_config dc;
    demo_read_config(config_path, AUR_SURYA_1D, 96, &dc);
    dc.surya.squeeze_output = spec.task == TASK_FLARE;
    int nva = dc.n_valid;
    sun_sample *tr = sun_dataset(dc.n_train, 100 + (uint64_t)spec.task), *va = sun_dataset(nva, 900 + (uint64_t)spec.task);
    char base_t[600], path[512];
    snprintf(base_t, sizeof base_t, "%s_T%d.safetensors", base, dc.surya.time_dim);
    demo_pretrain(&dc.surya, base_t, tr, dc.n_train);
    double best = -1e30;
    float *pred = (float *)malloc(sizeof(float) * (size_t)nva), *label = (float *)malloc(sizeof(float) * (size_t)nva);
    for (int i = 0; i < nva; i++) label[i] = spec.task == TASK_FLARE ? va[i].flare : va[i].wind;
    snprintf(path, sizeof path, "%s/%s_metrics.jsonl", out, spec.name);
    FILE *jl = fopen(path, "w");
    printf("\n== %s (%s) ==\n", spec.name, spec.task == TASK_FLARE ? "binary classification" : "regression");
    for (int r = 0; r < dc.runs; r++) {
        aur_lora_config lc;
        int full;
        aur_model *m = demo_fit(&dc, r, spec.task, tr, va, base_t, pred, &lc, &full);
        const char *name = dc.label[r];
        demo_log_curve(jl, spec.name, &dc, r);
        if (spec.task == TASK_FLARE) {
            binary_metrics bm = binary_scores(pred, label, nva);
            printf("  %-16s accuracy %.3f  precision %.3f  recall %.3f  F1 %.3f  TSS %.3f  HSS %.3f\n", name, bm.accuracy, bm.precision,
                   bm.recall, bm.f1, bm.tss, bm.hss);
            if (jl)
                write_line(jl, "{\"task\": \"%s\", \"run\": \"%s\", \"valid\": {\"accuracy\": %.4f, \"precision\": %.4f, \"recall\": %.4f, "
                               "\"f1\": %.4f, \"tss\": %.4f, \"hss\": %.4f}}\n",
                           spec.name, name, bm.accuracy, bm.precision, bm.recall, bm.f1, bm.tss, bm.hss);
            if (m && !full && bm.tss > best) { /* the best run's adapter, in PEFT's format */
                best = bm.tss;
                snprintf(path, sizeof path, "%s/flare_adapter", out);
                if (aur_lora_save(m, &lc, path)) demo_die(path);
            }
        } else {
            double mae = 0, mse = 0;
            for (int i = 0; i < nva; i++) mae += fabs(pred[i] - label[i]), mse += (pred[i] - label[i]) * (pred[i] - label[i]);
            printf("  %-16s MAE %.4f  RMSE %.4f (speed scaled to [0, 1])\n", name, mae / nva, sqrt(mse / nva));
            if (jl) write_line(jl, "{\"task\": \"%s\", \"run\": \"%s\", \"valid\": {\"mae\": %.5f, \"rmse\": %.5f}}\n", spec.name, name, mae / nva, sqrt(mse / nva));
        }
        aur_model_free(m);
    }
    if (jl) fclose(jl);
    snprintf(path, sizeof path, "%s/%s_curves.png", out, spec.name);
    char title[128];
    snprintf(title, sizeof title, "%s: training loss for each learning rate", spec.name);
    demo_plot_curves(path, title, dc.curve, dc.labels, dc.runs, dc.steps);
    free(pred);
    free(label);
    free(tr);
    free(va);
    demo_config_free(&dc);
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
