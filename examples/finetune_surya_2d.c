/* finetune_surya_2d.c - Surya's 2D head on a synthetic Sun: active-region
   segmentation (a mask per pixel), IoU and Dice against a per-pixel linear
   baseline.

   usage: finetune_surya_2d [OUTDIR] [CONFIG.json]
          (defaults demo-out-surya, examples/configs/surya_ar_segmentation.json)

   As the 1D example: a tiny pretrained backbone, loaded filtered into
   HelioSpectformer2D (linear decoder + pixel shuffle, or the Perceiver
   decoder with "ft_unembedding_type": "perceiver"), LoRA on fc1/fc2 with the
   decoder trained in full, each learning rate of the config, full
   fine-tuning, and the baseline (a logistic regression on each pixel's 13
   channel values). Writes OUTDIR/ar_metrics.jsonl, ar_curves.png and
   ar_masks.png (target mask, the model's and the baseline's probabilities
   on a validation Sun). Synthetic data. */
#define AURORA_IMPLEMENTATION
#include "../surya.h"
#include "../lora.h"
#include "surya_demo.h"

/* IoU and Dice of probabilities thresholded at 0.5, over all pixels. */
static void seg_scores(const float *prob, const sun_sample *va, int n, double *iou, double *dice)
{
    double inter = 0, p = 0, y = 0;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < SUN * SUN; i++) {
            int a = prob[(int64_t)k * SUN * SUN + i] >= 0.5f, b = (&va[k].mask[0][0])[i] >= 0.5f;
            inter += a && b, p += a, y += b;
        }
    *iou = p + y - inter > 0 ? inter / (p + y - inter) : 1;
    *dice = p + y > 0 ? 2 * inter / (p + y) : 1;
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "demo-out-surya";
    const char *config = argc > 2 ? argv[2] : "examples/configs/surya_ar_segmentation.json";
    mkdir(out, 0755);
    demo_config dc;
    demo_read_config(config, AUR_SURYA_2D, 64, &dc);
    int nva = dc.n_valid;
    sun_sample *tr = sun_dataset(dc.n_train, 300), *va = sun_dataset(nva, 800);
    char base[600], path[700];
    snprintf(base, sizeof base, "%s/base_T%d.safetensors", out, dc.surya.time_dim);
    demo_pretrain(&dc.surya, base, tr, dc.n_train);
    float *prob = (float *)malloc(sizeof(float) * (size_t)nva * SUN * SUN), *shown[3];
    for (int k = 0; k < 3; k++) shown[k] = (float *)calloc(SUN * SUN, sizeof(float));
    for (int i = 0; i < SUN * SUN; i++) shown[0][i] = (&va[0].mask[0][0])[i];
    snprintf(path, sizeof path, "%s/ar_metrics.jsonl", out);
    FILE *jl = fopen(path, "w");
    printf("\n== active-region segmentation (%s decoder) ==\n", dc.surya.perceiver_decoder ? "Perceiver" : "linear");
    double best = -1;
    for (int r = 0; r < dc.runs; r++) {
        aur_lora_config lc;
        int full;
        aur_model *m = demo_fit(&dc, r, TASK_SEGMENT, tr, va, base, prob, &lc, &full);
        double iou, dice;
        seg_scores(prob, va, nva, &iou, &dice);
        printf("  %-16s IoU %.3f  Dice %.3f\n", dc.label[r], iou, dice);
        demo_log_curve(jl, "ar_segmentation", &dc, r);
        if (jl) write_line(jl, "{\"task\": \"ar_segmentation\", \"run\": \"%s\", \"valid\": {\"iou\": %.4f, \"dice\": %.4f}}\n", dc.label[r], iou, dice);
        if (!m) memcpy(shown[2], prob, sizeof(float) * SUN * SUN); /* the baseline */
        else if (iou > best) best = iou, memcpy(shown[1], prob, sizeof(float) * SUN * SUN);
        aur_model_free(m);
    }
    if (jl) fclose(jl);
    snprintf(path, sizeof path, "%s/ar_curves.png", out);
    demo_plot_curves(path, "active regions: training loss (BCE) for each learning rate", dc.curve, dc.labels, dc.runs, dc.steps);
    const float *maps[3] = {shown[0], shown[1], shown[2]};
    const char *titles[3] = {"target mask", "Surya (best run)", "linear baseline"};
    snprintf(path, sizeof path, "%s/ar_masks.png", out);
    if (aur_plot_maps(path, maps, titles, 3, SUN, SUN, 8, 0, 1, 0, "active-region probability, validation Sun 0")) demo_die(path);
    printf("\nwrote %s/ar_metrics.jsonl, ar_curves.png, ar_masks.png (synthetic data)\n", out);
    for (int k = 0; k < 3; k++) free(shown[k]);
    free(prob);
    free(tr);
    free(va);
    demo_config_free(&dc);
    return 0;
}
