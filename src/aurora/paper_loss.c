#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: the paper's training loss ====
   Bodnar et al., "A foundation model for the Earth system" (Nature 2025;
   arXiv:2405.13063), training objective: a weighted mean absolute error of
   the normalised prediction,
     L = gamma / (V_S + V_A) * ( alpha * sum_k w_k MAE(S_k) + beta * sum_k w_k MAE(A_k) ),
   over the V_S surface and V_A atmospheric variables (an atmospheric MAE is
   over all its levels), with per-variable weights w_k, alpha = 1/4 for the
   surface, beta = 1 for the atmosphere and gamma the dataset's weight. Each
   MAE is here also weighted by latitude, with WeatherBench2's cell-area
   weights (mean 1), so that the poles' many small cells do not dominate;
   latitude = 0 turns that off. The reference repository publishes no
   training code; the MSE the golden cases were made with stays the
   default (aur_aurora_loss). */

AURDEF void aur_aurora_mae_defaults(aur_aurora_mae_weights *w)
{
    static const char *const surf[] = {"2t", "10u", "10v", "msl"}, *const atmos[] = {"z", "q", "t", "u", "v"};
    static const double surf_w[] = {3.0, 0.77, 0.66, 1.5}, atmos_w[] = {2.8, 0.78, 1.7, 0.87, 0.6};
    memset(w, 0, sizeof *w);
    w->surf = 0.25, w->atmos = 1, w->dataset = 1, w->latitude = 1;
    for (int i = 0; i < 4; i++) aur__vl_add(&w->surf_names, surf[i]), w->surf_weight[i] = surf_w[i];
    for (int i = 0; i < 5; i++) aur__vl_add(&w->atmos_names, atmos[i]), w->atmos_weight[i] = atmos_w[i];
}

/* A variable's weight: listed, or 1. */
static double aur__mae_weight(const aur_var_list *names, const double *weights, const char *v)
{
    int i = aur__vl_find(names, v);
    return i >= 0 ? weights[i] : 1;
}

/* The (H, 1) latitude weights on the prediction's device, or NULL (no weighting). */
static aur_tensor *aur__mae_lat_weights(aur_tape *t, const aur_batch *pred, aur_device dev)
{
    aur_tensor *w = aur_tensor_new(t, AUR_CPU, aur_shape2(pred->H, 1));
    double *lw = (double *)aur__malloc(sizeof(double) * (size_t)pred->H, "latitude weights");
    int rc = w && lw ? aur_lat_weights(pred->lat, pred->H, lw) : AUR_ENOMEM;
    for (int y = 0; !rc && y < pred->H; y++) aur_tensor_f32(w)[y] = (aur_real)lw[y];
    AUR_FREE(lw);
    return rc ? NULL : aur_to_device(t, w, dev);
}

/* MAE of normalised x and y, weighted by the (H, 1) latitude weights lw when given: |x lw - y lw| = lw |x - y|. */
static aur_tensor *aur__mae_term(aur_tape *t, aur_tensor *x, aur_tensor *y, aur_tensor *lw)
{
    if (lw) x = aur_mul(t, x, lw), y = aur_mul(t, y, lw);
    return aur_mae_loss(t, x, y);
}

AURDEF aur_tensor *aur_aurora_loss_mae(aur_model *m, aur_tape *t, const aur_batch *pred, const aur_batch *target, const aur_aurora_mae_weights *w)
{
    aur__aurora *A = aur__A(m);
    if (!A || !pred || !target || !w) return NULL;
    aur__fwd F;
    memset(&F, 0, sizeof F);
    F.A = A, F.t = t, F.c = &A->cfg, F.C = pred->C;
    memcpy(F.levels, pred->levels, sizeof F.levels);
    int n = pred->surf_names.n + pred->atmos_names.n;
    if (!n) return aur__err(AUR_EINVAL, "loss: the prediction has no variables"), (aur_tensor *)NULL;
    if (w->latitude && (pred->lat_2d || pred->lon_2d))
        return aur__err(AUR_EUNSUPPORTED, "loss aurora_mae: latitude weights need a 1-D latitude grid (set latitude_weights false)"), (aur_tensor *)NULL;
    aur_device dev = pred->surf_names.n ? pred->surf[0]->device : pred->atmos[0]->device;
    aur_tensor *lw = w->latitude ? aur__mae_lat_weights(t, pred, dev) : NULL, *sum = NULL;
    if (w->latitude && !lw) return NULL;
    for (int g = 0; g < 2; g++) {
        const aur_var_list *names = g ? &pred->atmos_names : &pred->surf_names;
        for (int i = 0; i < names->n; i++) {
            const char *v = names->name[i];
            aur_tensor *y = g ? aur_batch_atmos(target, v) : aur_batch_surf(target, v);
            if (!y) return aur__err(AUR_EINVAL, "loss: the target has no %s variable '%s'", g ? "atmospheric" : "surface", v), (aur_tensor *)NULL;
            y = aur__target_like(t, y, g ? pred->atmos[i] : pred->surf[i]);
            aur_tensor *px = g ? aur__norm_atmos(&F, pred->atmos[i], v, 0) : aur__norm_surf(&F, pred->surf[i], v, 0);
            aur_tensor *py = g ? aur__norm_atmos(&F, y, v, 0) : aur__norm_surf(&F, y, v, 0);
            double k = (g ? w->atmos * aur__mae_weight(&w->atmos_names, w->atmos_weight, v)
                          : w->surf * aur__mae_weight(&w->surf_names, w->surf_weight, v)) * w->dataset / n;
            aur_tensor *term = aur_scale(t, aur__mae_term(t, px, py, lw), k);
            if (!term) return NULL;
            sum = sum ? aur_add(t, sum, term) : term;
        }
    }
    return sum;
}
