/* finetune_surya_1d.c - Surya's 1D heads on a synthetic Sun: flare
   forecasting (binary classification) and solar-wind speed (regression).

   usage: finetune_surya_1d [OUTDIR] [FLARE.json] [WIND.json]
          (defaults demo-out-surya, examples/configs/surya_flare.json, examples/configs/surya_wind.json)

   The configs use the reference YAML's keys (model.*, lora_config,
   optimizer.learning_rate, ...) plus the recipe's (lora_config.modules_to_save,
   optimizer.head_lr_multiplier, seeds). Steps: pretrain a tiny backbone on
   next-frame forecasting (the stand-in for Surya-1.0's checkpoint), load it
   filtered into HelioSpectformer1D, then for each seed: LoRA on the
   configured targets with the new head (class token, penultimate linear,
   unembed) trained in full at 10x the LoRA rate; full fine-tuning; and the
   linear baseline on image statistics, all with the same samples in the same
   order ("compare against the linear baseline"). Then the LoRA learning-rate
   sweep on seed 0. Writes OUTDIR/{flare,wind}_metrics.jsonl,
   {flare,wind}_curves.png, {flare,wind}_result.txt and the seed-0 flare
   adapter in PEFT's format (OUTDIR/flare_adapter/). Synthetic data. */
#define AURORA_IMPLEMENTATION
#include "../surya.h"
#include "../lora.h"
#include "surya_demo.h"

/* Flare: accuracy, precision, recall, F1, TSS and HSS at threshold 0.5 (aur_binary_scores, as the trainer
   logs them); TSS is the headline. */
static double flare_score(const float *prob, const sun_sample *va, int n, FILE *jl, const char *run, int seed, int method)
{
    (void)method;
    float *label = (float *)malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) label[i] = va[i].flare;
    double s[AUR_BINARY_SCORES]; /* accuracy, precision, recall, F1, TSS, HSS */
    aur_binary_scores(prob, label, n, s);
    free(label);
    printf("    %-22s seed %d  accuracy %.3f  precision %.3f  recall %.3f  F1 %.3f  TSS %.3f  HSS %.3f\n", run, seed, s[0], s[1], s[2],
           s[3], s[4], s[5]);
    if (jl)
        write_line(jl, "{\"task\": \"flare\", \"run\": \"%s\", \"seed\": %d, \"valid\": {\"accuracy\": %.4f, \"precision\": %.4f, "
                       "\"recall\": %.4f, \"f1\": %.4f, \"tss\": %.4f, \"hss\": %.4f}}\n",
                   run, seed, s[0], s[1], s[2], s[3], s[4], s[5]);
    return s[4];
}

/* Wind: MAE, RMSE and R^2 of the scaled speed (aur_regression_scores); MAE is the headline. */
static double wind_score(const float *pred, const sun_sample *va, int n, FILE *jl, const char *run, int seed, int method)
{
    (void)method;
    float *speed = (float *)malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) speed[i] = va[i].wind;
    double s[AUR_REGRESSION_SCORES]; /* MAE, RMSE, R^2 */
    aur_regression_scores(pred, speed, n, s);
    free(speed);
    printf("    %-22s seed %d  MAE %.4f  RMSE %.4f  R2 %.3f (speed scaled to [0, 1])\n", run, seed, s[0], s[1], s[2]);
    if (jl)
        write_line(jl, "{\"task\": \"wind\", \"run\": \"%s\", \"seed\": %d, \"valid\": {\"mae\": %.5f, \"rmse\": %.5f, \"r2\": %.4f}}\n", run,
                   seed, s[0], s[1], s[2]);
    return s[0];
}

static void run_task(const char *out, const char *config_path, const demo_task *tk, const char *base)
{
    demo_config dc;
    demo_read_config(config_path, AUR_SURYA_1D, 96, &dc);
    dc.surya.squeeze_output = tk->task == TASK_FLARE;
    sun_sample *tr = sun_dataset(dc.n_train, 100 + (uint64_t)tk->task), *va = sun_dataset(dc.n_valid, 900 + (uint64_t)tk->task);
    char base_t[600];
    snprintf(base_t, sizeof base_t, "%s_T%d.safetensors", base, dc.surya.time_dim);
    demo_pretrain(&dc.surya, base_t, tr, dc.n_train);
    printf("\n== %s (%s): %d steps of batch %d, %d seeds ==\n", tk->name, tk->task == TASK_FLARE ? "binary classification" : "regression",
           dc.steps, dc.batch, dc.seeds);
    float *pred = (float *)malloc(sizeof(float) * (size_t)dc.n_valid);
    demo_compare(&dc, tk, tr, va, base_t, out, pred);
    free(pred);
    free(tr);
    free(va);
    demo_config_free(&dc);
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "demo-out-surya";
    const char *flare = argc > 2 ? argv[2] : "examples/configs/surya_flare.json";
    const char *wind = argc > 3 ? argv[3] : "examples/configs/surya_wind.json";
    char base[512], adapter[600];
    mkdir(out, 0755);
    snprintf(base, sizeof base, "%s/base", out);
    snprintf(adapter, sizeof adapter, "%s/flare_adapter", out);
    demo_task flare_task = {"flare", "TSS", TASK_FLARE, 1, flare_score, adapter}, wind_task = {"wind", "MAE", TASK_WIND, 0, wind_score, NULL};
    run_task(out, flare, &flare_task, base);
    run_task(out, wind, &wind_task, base);
    printf("\nwrote %s/{flare,wind}_metrics.jsonl, _curves.png, _result.txt, flare_adapter/ (synthetic data)\n", out);
    return 0;
}
