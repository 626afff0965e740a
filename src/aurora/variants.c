#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: the variants' hooks (aurora/model/aurora.py) ====
   Aurora.forward calls three hooks that the plain model leaves empty:
   batch_transform_hook on the raw batch, _pre_encoder_hook on the encoder's
   normalised inputs and _post_decoder_hook on the normalised predictions.
   AuroraAirPollution and AuroraWave fill them in. */

static int aur__air_pollution_pre_encoder(aur__fwd *F);
static int aur__air_pollution_post(const aur__fwd *F, aur__decoded *d);
static int aur__wave_transform(aur_tape *t, aur_batch *w);
static int aur__wave_pre_encoder(aur__fwd *F);
static int aur__wave_post(const aur__fwd *F, aur__decoded *d);

static int aur__batch_transform_hook(aur_tape *t, const aur_aurora_config *c, aur_batch *b)
{
    return c->wave ? aur__wave_transform(t, b) : 0;
}

static int aur__pre_encoder_hook(aur__fwd *F)
{
    if (F->c->air_pollution) return aur__air_pollution_pre_encoder(F);
    return F->c->wave ? aur__wave_pre_encoder(F) : 0;
}

static int aur__post_decoder_hook(aur__fwd *F, aur__decoded *d)
{
    if (F->c->air_pollution) return aur__air_pollution_post(F, d);
    return F->c->wave ? aur__wave_post(F, d) : 0;
}

/* ---- AuroraAirPollution ---- */

/* The transform of a positive variable z before the encoder, its spikes
   tamed by a log: Linear_v([clamp(z, 0, 2.5), (ln(max(z, 1e-4)) - ln(1e-4)) / -ln(1e-4)]). */
static aur_tensor *aur__feature_combine(const aur__fwd *F, aur_tensor *z, const char *group, const char *v)
{
    aur_tape *t = F->t;
    char p[160];
    if (!z) return NULL;
    aur_shape s = aur_tensor_shape(z), s1 = s;
    s1.d[s1.ndim++] = 1;
    aur_tensor *f1 = aur_clamp(t, z, 0, 2.5);
    aur_tensor *f2 = aur__norm1(t, aur_log(t, aur_clamp(t, z, 1e-4, INFINITY)), log(1e-4), -log(1e-4), 0);
    aur_tensor *both[2] = {aur_reshape(t, f1, s1), aur_reshape(t, f2, s1)};
    snprintf(p, sizeof p, "%s_feature_combiner.%s", group, v);
    return aur_reshape(t, aur__lin(F, aur_concat(t, both, 2, -1), p, 1), s);
}

/* _pre_encoder_hook: the feature combiner of every positive variable (they have one each). */
static int aur__air_pollution_pre_encoder(aur__fwd *F)
{
    const aur_batch *b = F->in;
    for (int i = 0; i < b->surf_names.n; i++)
        if (aur__vl_find(&F->c->positive_surf_vars, b->surf_names.name[i]) >= 0 &&
            !(F->enc_surf[i] = aur__feature_combine(F, F->enc_surf[i], "surf", b->surf_names.name[i])))
            return AUR_EINVAL;
    for (int i = 0; i < b->atmos_names.n; i++)
        if (aur__vl_find(&F->c->positive_atmos_vars, b->atmos_names.name[i]) >= 0 &&
            !(F->enc_atmos[i] = aur__feature_combine(F, F->enc_atmos[i], "atmos", b->atmos_names.name[i])))
            return AUR_EINVAL;
    return 0;
}

/* The history step each difference-predicting variable is relative to. */
static int aur__difference_index(const char *v)
{
    static const char *const zero[] = {"pm1", "pm2p5", "pm10", "no", "tc_no", "no2", "tcno2"};
    static const char *const one[] = {"co", "tcco", "so2", "tcso2", "go3", "gtco3"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (!strcmp(v, zero[i])) return 0;
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++)
        if (!strcmp(v, one[i])) return 1;
    return -1;
}

/* y + (1 + mod) * x_hist: the prediction as a modulated difference to a past step. The
   reference indexes the history without keeping its axis (batch[v][:, idx]), which
   broadcasts to (B, B, ...) when B > 1; this takes the evident intent, [:, idx:idx+1]. */
static aur_tensor *aur__difference(const aur__fwd *F, aur_tensor *y, aur_tensor *mod, aur_tensor *hist, int idx, const char *v)
{
    aur_tape *t = F->t;
    if (!mod) return aur__err(AUR_EINVAL, "AirPollution: '%s' predicts a difference but has no %s_mod head", v, v), (aur_tensor *)NULL;
    if (idx >= F->T) return aur__err(AUR_ESHAPE, "AirPollution: '%s' needs history step %d, the batch has %d", v, idx, F->T), (aur_tensor *)NULL;
    aur_tensor *h = aur_reshape(t, aur_slice(t, hist, 1, idx, 1), aur_tensor_shape(y));
    return aur_add(t, y, aur_mul(t, aur__norm1(t, mod, -1, 1, 0), h)); /* (mod - (-1)) / 1 = 1 + mod */
}

/* so2 at levels >= 850 hPa clamped to <= 1 (normalised), when LoRA is on. */
static aur_tensor *aur__clamp_so2(const aur__fwd *F, aur_tensor *y)
{
    aur_tensor *per[AUR_MAX_LEVELS];
    for (int c = 0; c < F->C; c++) {
        per[c] = aur_slice(F->t, y, 1, c, 1);
        if (F->levels[c] >= 850) per[c] = aur_clamp(F->t, per[c], -INFINITY, 1);
    }
    return aur_concat(F->t, per, F->C, 1);
}

/* _post_decoder_hook: the difference-predicting variables from their history
   step and modulation head; with LoRA, so2's lower levels clamped (they can blow up). */
static int aur__air_pollution_post(const aur__fwd *F, aur__decoded *d)
{
    const aur_batch *b = F->in;
    for (int i = 0; i < b->surf_names.n; i++) {
        int idx = aur__difference_index(b->surf_names.name[i]);
        if (idx >= 0 && !(d->surf[i] = aur__difference(F, d->surf[i], d->surf_mod[i], F->surf[i], idx, b->surf_names.name[i])))
            return AUR_EINVAL;
    }
    for (int i = 0; i < b->atmos_names.n; i++) {
        int idx = aur__difference_index(b->atmos_names.name[i]);
        if (idx >= 0 && !(d->atmos[i] = aur__difference(F, d->atmos[i], d->atmos_mod[i], F->atmos[i], idx, b->atmos_names.name[i])))
            return AUR_EINVAL;
        if (F->c->use_lora && !strcmp(b->atmos_names.name[i], "so2") && !(d->atmos[i] = aur__clamp_so2(F, d->atmos[i]))) return AUR_EINVAL;
    }
    return 0;
}

/* ---- AuroraWave ---- */

#define AUR__DEG2RAD 0.017453292519943295
#define AUR__RAD2DEG 57.295779513082323

/* Sets a surface variable of a working list (replacing it in place, or appending). */
static int aur__set_var(aur_var_list *names, aur_tensor **xs, const char *v, aur_tensor *x)
{
    int i = aur__vl_find(names, v);
    if (!x) return AUR_EINVAL;
    if (i >= 0) {
        xs[i] = x;
        return 0;
    }
    if (aur__vl_add(names, v)) return AUR_EINVAL;
    xs[names->n - 1] = x;
    return 0;
}

static void aur__drop_var(aur_var_list *names, aur_tensor **xs, const char *v)
{
    int i = aur__vl_find(names, v);
    if (i < 0) return;
    for (int k = i; k + 1 < names->n; k++) {
        memcpy(names->name[k], names->name[k + 1], AUR_NAME_LEN);
        xs[k] = xs[k + 1];
    }
    names->n--;
}

/* A constant 0/1 tensor: 1 where test(x) holds. */
static aur_tensor *aur__mask_of(aur_tape *t, const aur_tensor *x, int (*test)(aur_real v, double arg), double arg, int64_t *count)
{
    aur_tensor *m = x ? aur_tensor_new(t, AUR_CPU, aur_tensor_shape(x)) : NULL;
    const aur_real *xv = m ? aur__host_copy(t, x) : NULL;
    *count = 0;
    for (int64_t i = 0; xv && i < x->numel; i++)
        if (test(xv[i], arg)) aur__wr(m)[i] = 1, (*count)++;
    return xv ? aur__on(t, m, x->device) : NULL;
}
static int aur__is_below(aur_real v, double arg) { return v < arg; }
static int aur__is_above(aur_real v, double arg) { return v > arg; }
static int aur__is_number(aur_real v, double arg) { return (void)arg, !isnan(v); }

/* batch_transform_hook, in physical units: the wind's u and v from dwi, and
   NaN where a wave system is absent (at the first step only). */
static int aur__wave_transform(aur_tape *t, aur_batch *w)
{
    static const char *const systems[5][4] = {{"swh", "mwd", "mwp", "pp1d"}, {"shww", "mdww", "mpww", NULL},
                                              {"shts", "mdts", NULL, NULL},   {"swh1", "mwd1", "mwp1", NULL},
                                              {"swh2", "mwd2", "mwp2", NULL}};
    aur_tensor *dwi = aur_batch_surf(w, "dwi"), *wind = aur_batch_surf(w, "wind");
    if (dwi && wind) {
        aur_tensor *rad = aur_scale(t, dwi, AUR__DEG2RAD), *neg = aur_scale(t, wind, -1);
        if (aur__set_var(&w->surf_names, w->surf, "10u_wave", aur_mul(t, neg, aur_sin(t, rad))) ||
            aur__set_var(&w->surf_names, w->surf, "10v_wave", aur_mul(t, neg, aur_cos(t, rad))))
            return AUR_EINVAL;
        aur__drop_var(&w->surf_names, w->surf, "dwi");
    }
    if (w->rollout_step != 0) return 0;
    for (int s = 0; s < 5; s++) {
        int64_t n = 0;
        aur_tensor *mask = aur__mask_of(t, aur_batch_surf(w, systems[s][0]), aur__is_below, 1e-4, &n);
        if (!mask) return aur__err(AUR_EINVAL, "Wave: the batch needs '%s' (wave heights mark absent waves)", systems[s][0]);
        for (int k = 0; n && k < 4 && systems[s][k]; k++) {
            aur_tensor *x = aur_batch_surf(w, systems[s][k]);
            if (!x) return aur__err(AUR_EINVAL, "Wave: the batch needs '%s' with '%s'", systems[s][k], systems[s][0]);
            if (aur__set_var(&w->surf_names, w->surf, systems[s][k], aur_masked_fill(t, x, mask, NAN))) return AUR_EINVAL;
            int64_t small = 0;
            if (!aur__listed(aur__wave_angles, AUR__COUNT(aur__wave_angles), systems[s][k]))
                aur__mask_of(t, aur_batch_surf(w, systems[s][k]), aur__is_below, 1e-4, &small);
            if (small) return aur__err(AUR_EINVAL, "Wave: '%s' has %lld values below 1e-4 where '%s' is present", systems[s][k], (long long)small, systems[s][0]);
        }
    }
    return 0;
}

/* _pre_encoder_hook, on normalised inputs: density channels and NaN -> 0;
   angles as sin and cos. The reference's hook changes the batch itself (with
   no positive variables, transformed_batch is the batch), so the decoder
   predicts the new channels too: this changes F->in and F->surf, and the
   encoder's inputs follow. */
static int aur__wave_pre_encoder(aur__fwd *F)
{
    aur_tape *t = F->t;
    aur_batch *w = F->in;
    char name[AUR_NAME_LEN + 16];
    aur_var_list snapshot = w->surf_names;
    for (int k = 0; k < snapshot.n; k++) {
        const char *v = snapshot.name[k];
        aur_tensor *x = F->surf[aur__vl_find(&w->surf_names, v)]; /* as it was before this variable's changes */
        int64_t n;
        snprintf(name, sizeof name, "%s_density", v);
        if (aur__listed(aur__wave_density, AUR__COUNT(aur__wave_density), v) && aur__vl_find(&w->surf_names, name) < 0) {
            aur_tensor *dens = aur__mask_of(t, x, aur__is_number, 0, &n);
            if (aur__set_var(&w->surf_names, F->surf, v, aur_nan_to_num(t, x, 0)) || aur__set_var(&w->surf_names, F->surf, name, dens))
                return AUR_EINVAL;
        }
        char sn[AUR_NAME_LEN + 8], cn[AUR_NAME_LEN + 8];
        snprintf(sn, sizeof sn, "%s_sin", v);
        snprintf(cn, sizeof cn, "%s_cos", v);
        if (aur__listed(aur__wave_angles, AUR__COUNT(aur__wave_angles), v) &&
            !(aur__vl_find(&w->surf_names, sn) >= 0 && aur__vl_find(&w->surf_names, cn) >= 0)) {
            aur_tensor *rad = aur_scale(t, x, AUR__DEG2RAD);
            if (aur__set_var(&w->surf_names, F->surf, sn, aur_nan_to_num(t, aur_sin(t, rad), 0)) ||
                aur__set_var(&w->surf_names, F->surf, cn, aur_nan_to_num(t, aur_cos(t, rad), 0)))
                return AUR_EINVAL;
            aur__drop_var(&w->surf_names, F->surf, v);
        }
    }
    for (int i = 0; i < w->surf_names.n; i++) F->enc_surf[i] = F->surf[i]; /* no positive variables (the config check) */
    return aur__check_names(&w->surf_names, &F->c->surf_vars, "surf");
}

/* _post_decoder_hook, on normalised predictions: angles from sin and cos; NaN
   where the density says there are no waves (and over land, wmb <= 0). */
static int aur__wave_post(const aur__fwd *F, aur__decoded *dec)
{
    aur_tape *t = F->t;
    aur_var_list *names = &dec->surf_names;
    aur_tensor **surf = dec->surf;
    char sn[AUR_NAME_LEN + 8], cn[AUR_NAME_LEN + 8];
    aur_tensor *wmb = aur_batch_static(F->in, "wmb");
    int64_t n;
    wmb = wmb ? F->statics[aur__vl_find(&F->in->static_names, "wmb")] : NULL;
    aur_tensor *water = aur__mask_of(t, wmb, aur__is_above, 0, &n);
    if (!water) return aur__err(AUR_EINVAL, "Wave: the batch needs the static variable 'wmb'");
    for (int a = 0; a < AUR__COUNT(aur__wave_angles); a++) {
        const char *v = aur__wave_angles[a];
        snprintf(sn, sizeof sn, "%s_sin", v);
        snprintf(cn, sizeof cn, "%s_cos", v);
        int is = aur__vl_find(names, sn), ic = aur__vl_find(names, cn);
        if (is < 0 || ic < 0) continue;
        aur_tensor *deg = aur_remainder(t, aur_scale(t, aur_atan2(t, surf[is], surf[ic]), AUR__RAD2DEG), 360);
        aur__drop_var(names, surf, sn);
        aur__drop_var(names, surf, cn);
        if (aur__set_var(names, surf, v, deg)) return AUR_EINVAL;
    }
    for (int d = 0; d < AUR__COUNT(aur__wave_density); d++) {
        const char *v = aur__wave_density[d];
        int i = aur__vl_find(names, v), id;
        snprintf(sn, sizeof sn, "%s_density", v);
        if (i < 0) continue;
        if ((id = aur__vl_find(names, sn)) < 0) return aur__err(AUR_EINVAL, "Wave: no '%s' prediction for '%s'", sn, v);
        aur_tensor *dens = aur_mul(t, aur_sigmoid(t, surf[id]), water);
        aur_tensor *data = aur_mul(t, surf[i], water);
        aur_tensor *absent = aur__mask_of(t, dens, aur__is_below, 0.5, &n);
        surf[i] = aur_masked_fill(t, data, absent, NAN);
        aur__drop_var(names, surf, sn);
        if (!surf[aur__vl_find(names, v)]) return AUR_EINVAL;
    }
    return 0;
}
