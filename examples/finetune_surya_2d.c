/* finetune_surya_2d.c - Surya's 2D head on a synthetic Sun: active-region
   segmentation (a mask per pixel), IoU and Dice against a per-pixel linear
   baseline.

   usage: finetune_surya_2d [OUTDIR] [CONFIG.json]
          (defaults demo-out-surya, examples/configs/surya_ar_segmentation.json)

   As the 1D example: a tiny pretrained backbone, loaded filtered into
   HelioSpectformer2D (linear decoder + pixel shuffle, or the Perceiver
   decoder with "ft_unembedding_type": "perceiver"); for each seed LoRA with
   the decoder trained in full (modules_to_save) at 10x the LoRA rate, full
   fine-tuning, and the baseline (a logistic regression on each pixel's 13
   channel values), all with the same samples in the same order. Writes
   OUTDIR/ar_metrics.jsonl, ar_curves.png, ar_result.txt and ar_masks.png
   (target mask, LoRA's, full fine-tuning's and the baseline's probabilities
   on a validation Sun, seed 0). Synthetic data. */
#define AURORA_IMPLEMENTATION
#include "../surya.h"
#include "../lora.h"
#include "surya_demo.h"

static float shown[N_METHODS][SUN * SUN]; /* seed 0's probabilities on validation Sun 0, per method */

/* IoU and Dice of probabilities thresholded at 0.5, over all pixels (aur_segmentation_scores, as the
   trainer logs them); IoU is the headline. */
static double ar_score(const float *prob, const sun_sample *va, int n, FILE *jl, const char *run, int seed, int method)
{
    float *mask = (float *)malloc(sizeof(float) * SUN * SUN * (size_t)n);
    for (int k = 0; k < n; k++) memcpy(mask + (size_t)k * SUN * SUN, va[k].mask, sizeof(float) * SUN * SUN);
    double s[AUR_SEGMENTATION_SCORES];
    aur_segmentation_scores(prob, mask, (int64_t)n * SUN * SUN, s);
    free(mask);
    double iou = s[0], dice = s[1];
    printf("    %-22s seed %d  IoU %.3f  Dice %.3f\n", run, seed, iou, dice);
    if (jl) write_line(jl, "{\"task\": \"ar\", \"run\": \"%s\", \"seed\": %d, \"valid\": {\"iou\": %.4f, \"dice\": %.4f}}\n", run, seed, iou, dice);
    if (seed == 0 && method >= 0) memcpy(shown[method], prob, sizeof shown[0]);
    return iou;
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "demo-out-surya";
    const char *config = argc > 2 ? argv[2] : "examples/configs/surya_ar_segmentation.json";
    mkdir(out, 0755);
    demo_config dc;
    demo_read_config(config, AUR_SURYA_2D, 64, &dc);
    sun_sample *tr = sun_dataset(dc.n_train, 300), *va = sun_dataset(dc.n_valid, 800);
    char base[600], path[700];
    snprintf(base, sizeof base, "%s/base_T%d.safetensors", out, dc.surya.time_dim);
    demo_pretrain(&dc.surya, base, tr, dc.n_train);
    printf("\n== ar: active-region segmentation (%s decoder): %d steps of batch %d, %d seeds ==\n",
           dc.surya.perceiver_decoder ? "Perceiver" : "linear", dc.steps, dc.batch, dc.seeds);
    float *prob = (float *)malloc(sizeof(float) * (size_t)dc.n_valid * SUN * SUN);
    demo_task ar_task = {"ar", "IoU", TASK_SEGMENT, 1, ar_score, NULL};
    demo_compare(&dc, &ar_task, tr, va, base, out, prob);
    float target[SUN * SUN];
    for (int i = 0; i < SUN * SUN; i++) target[i] = (&va[0].mask[0][0])[i];
    const float *maps[4] = {target, shown[RUN_LORA], shown[RUN_FULL], shown[RUN_BASELINE]};
    const char *titles[4] = {"target mask", "LoRA", "full fine-tuning", "linear baseline"};
    snprintf(path, sizeof path, "%s/ar_masks.png", out);
    if (aur_plot_maps(path, maps, titles, 4, SUN, SUN, 8, 0, 1, 0, "active-region probability, validation Sun 0, seed 0")) demo_die(path);
    printf("\nwrote %s/ar_metrics.jsonl, ar_curves.png, ar_result.txt, ar_masks.png (synthetic data)\n", out);
    free(prob);
    free(tr);
    free(va);
    demo_config_free(&dc);
    return 0;
}
