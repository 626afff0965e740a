#include "api.h"
#include "../core/platform.h"

/* ==== Surya: the downstream tasks' metrics ====
   As the reference's downstream examples report them, from counts and sums
   over a whole validation set (not averages of per-batch values). A ratio
   with a zero denominator is 0 here (torch gives NaN, which JSON cannot
   carry), except R^2 of a constant target, NaN as in the reference. */

AURDEF void aur_binary_scores(const aur_real *prob, const aur_real *label, int64_t n, double out[AUR_BINARY_SCORES])
{
    double tp = 0, tn = 0, fp = 0, fn = 0;
    for (int64_t i = 0; i < n; i++) {
        /* solar_flare_forcasting/metrics.py: prediction > threshold, target cast to int.
           Its script compares the logits with 0.5; here the probability is compared (logit > 0). */
        int p = prob[i] > 0.5f, y = (int)label[i] != 0;
        tp += p && y, tn += !p && !y, fp += p && !y, fn += !p && y;
    }
    double tpr = tp + fn > 0 ? tp / (tp + fn) : 0, fpr = fp + tn > 0 ? fp / (fp + tn) : 0;
    double hss_den = (tp + fn) * (fn + tn) + (tp + fp) * (tn + fp);
    out[0] = n > 0 ? (tp + tn) / (double)n : 0;                      /* accuracy */
    out[1] = tp + fp > 0 ? tp / (tp + fp) : 0;                       /* precision */
    out[2] = tpr;                                                    /* recall */
    out[3] = 2 * tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 0; /* F1 */
    out[4] = tpr - fpr;                                              /* TSS, the true skill statistic */
    out[5] = hss_den > 0 ? 2 * (tp * tn - fn * fp) / hss_den : 0;    /* HSS, the Heidke skill score */
}

AURDEF void aur_regression_scores(const aur_real *pred, const aur_real *target, int64_t n, double out[AUR_REGRESSION_SCORES])
{
    /* solar_wind_forcasting/finetune.py evaluate_model: sums of |d|, d^2, y, y^2 */
    double abs_sum = 0, sq_sum = 0, y_sum = 0, y_sq = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)pred[i] - target[i];
        abs_sum += fabs(d), sq_sum += d * d, y_sum += target[i], y_sq += (double)target[i] * target[i];
    }
    double mse = n ? sq_sum / (double)n : 0, var_y = n ? (y_sq - y_sum * y_sum / (double)n) / (double)n : 0;
    out[0] = n ? abs_sum / (double)n : 0; /* MAE */
    out[1] = sqrt(mse);                   /* RMSE */
    out[2] = var_y == 0 ? NAN : 1 - mse / var_y; /* R^2 */
}

AURDEF void aur_segmentation_scores(const aur_real *prob, const aur_real *mask, int64_t n, double out[AUR_SEGMENTATION_SCORES])
{
    double tp = 0, fp = 0, fn = 0;
    for (int64_t i = 0; i < n; i++) {
        int p = prob[i] > 0.5f, y = mask[i] > 0.5f;
        tp += p && y, fp += p && !y, fn += !p && y;
    }
    out[0] = tp + fp + fn > 0 ? tp / (tp + fp + fn) : 1;         /* IoU of the positive class (both empty: a perfect 1) */
    out[1] = tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 1; /* Dice */
}
