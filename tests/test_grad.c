/* test_grad.c - central finite-difference gradient checks of every op, in double.
   Built with -DAUR_REAL_DOUBLE: every F32 tensor holds doubles, so the
   numerical derivative (L(x+h) - L(x-h)) / 2h is accurate to ~1e-9 and the
   analytic gradient from backward must agree to 1e-6 (max-normalised).
   The scalar checked is L = sum(op(inputs) * w) with a fixed random w. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"

#ifndef AUR_REAL_DOUBLE
#error "test_grad.c needs -DAUR_REAL_DOUBLE"
#endif

#define MAX_IN 4
enum { INIT_NORMAL, INIT_UNIT, INIT_MASK, INIT_LABELS, INIT_POSITIVE };

typedef struct fd_case fd_case;
typedef aur_tensor *(*fd_fn)(aur_tape *t, aur_tensor **in, const fd_case *c);

struct fd_case {
    const char *name;
    fd_fn fn;
    int n_in;
    aur_shape shape[MAX_IN];
    int init[MAX_IN];   /* how each input is filled */
    int no_grad[MAX_IN]; /* inputs that are constants (masks, labels) */
    int64_t i0, i1, i2; /* op arguments */
    double f0;
};

/* ---- the ops under test, each as fn(inputs) ---- */
static aur_tensor *f_linear(aur_tape *t, aur_tensor **x, const fd_case *c) { return aur_linear(t, x[0], x[1], c->n_in > 2 ? x[2] : NULL); }
static aur_tensor *f_matmul(aur_tape *t, aur_tensor **x, const fd_case *c) { return aur_matmul(t, x[0], x[1], (int)c->i0, (int)c->i1); }
static aur_tensor *f_add(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_add(t, x[0], x[1]); }
static aur_tensor *f_sub(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_sub(t, x[0], x[1]); }
static aur_tensor *f_mul(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_mul(t, x[0], x[1]); }
static aur_tensor *f_scale(aur_tape *t, aur_tensor **x, const fd_case *c) { return aur_scale(t, x[0], c->f0); }
static aur_tensor *f_layernorm(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    return aur_layernorm(t, x[0], c->n_in > 1 ? x[1] : NULL, c->n_in > 1 ? x[2] : NULL, c->f0);
}
static aur_tensor *f_gelu(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_gelu(t, x[0]); }
static aur_tensor *f_gelu_tanh(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_gelu_tanh(t, x[0]); }
static aur_tensor *f_silu(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_silu(t, x[0]); }
static aur_tensor *f_sigmoid(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_sigmoid(t, x[0]); }
static aur_tensor *f_log(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_log(t, x[0]); }
static aur_tensor *f_sin(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_sin(t, x[0]); }
static aur_tensor *f_cos(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_cos(t, x[0]); }
static aur_tensor *f_softmax(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_softmax(t, x[0]); }
static aur_tensor *f_sdpa(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    return aur_sdpa(t, x[0], x[1], x[2], c->n_in > 3 ? x[3] : NULL, c->f0);
}
static aur_tensor *f_dropout(aur_tape *t, aur_tensor **x, const fd_case *c) { return aur_dropout(t, x[0], c->f0); }
static aur_tensor *f_concat(aur_tape *t, aur_tensor **x, const fd_case *c) { return aur_concat(t, x, c->n_in, (int)c->i0); }
static aur_tensor *f_slice(aur_tape *t, aur_tensor **x, const fd_case *c) { return aur_slice(t, x[0], (int)c->i0, c->i1, c->i2); }
static aur_tensor *f_split(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    int64_t sizes[3] = {1, 3, 2};
    aur_tensor *p[3];
    if (aur_split(t, x[0], (int)c->i0, 3, sizes, p)) return NULL;
    aur_tensor *rev[3] = {p[2], p[0], p[1]}; /* reorder so each piece lands somewhere else */
    return aur_concat(t, rev, 3, (int)c->i0);
}
static aur_tensor *f_pad(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    int64_t before[3] = {0, 1, 2}, after[3] = {1, 2, 0};
    return aur_pad(t, x[0], before, after, c->f0);
}
static aur_tensor *f_permute(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    int perm[4] = {2, 0, 3, 1};
    (void)c;
    return aur_permute(t, x[0], perm);
}
static aur_tensor *f_reshape_roll(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    int64_t shifts[3] = {1, -2, 3};
    (void)c;
    aur_tensor *r = aur_reshape(t, x[0], aur_shape3(2, -1, 5));
    return aur_roll(t, r, shifts);
}
static aur_tensor *f_sum(aur_tape *t, aur_tensor **x, const fd_case *c) { return aur_sum(t, x[0], (int)c->i0, (int)c->i1); }
static aur_tensor *f_mean(aur_tape *t, aur_tensor **x, const fd_case *c) { return aur_mean(t, x[0], (int)c->i0, (int)c->i1); }
static aur_tensor *f_sum_all(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_sum_all(t, x[0]); }
static aur_tensor *f_mean_all(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_mean_all(t, x[0]); }
static aur_tensor *f_max(aur_tape *t, aur_tensor **x, const fd_case *c) { return aur_max(t, x[0], (int)c->i0, (int)c->i1); }
static aur_tensor *f_mse(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_mse_loss(t, x[0], x[1]); }
static aur_tensor *f_mae(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_mae_loss(t, x[0], x[1]); }
static aur_tensor *f_bce(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    return aur_bce_logits_loss(t, x[0], x[1], c->n_in > 2 ? x[2] : NULL);
}
static aur_tensor *f_xent(aur_tape *t, aur_tensor **x, const fd_case *c) { return aur_cross_entropy(t, x[0], x[1], c->i0, c->f0); }
static aur_tensor *f_clamp(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_clamp(t, x[0], -0.5, 0.7); }
static aur_tensor *f_expand(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_expand(t, x[0], aur_shape4(2, 3, 4, 5)); }
static aur_tensor *f_normalise(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    double loc[3] = {0.5, -2, 10}, scale[3] = {2, 0.25, 3};
    return aur_normalise(t, x[0], 1, loc, scale, (int)c->i0);
}
static aur_tensor *f_gather(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    /* 6 source rows of width 3 per batch -> 8 rows: a permutation with two zero rows */
    static int64_t idx[8] = {5, -1, 0, 3, 1, -1, 2, 4};
    static aur_index ix = {8, 6, idx, 1};
    (void)c;
    return aur_gather(t, x[0], 2, 3, &ix, aur_shape3(2, 8, 3));
}
static aur_tensor *f_gather_repeat(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    static int64_t idx[5] = {1, 1, 0, 2, 1}; /* a row used three times: its gradient sums */
    static aur_index ix = {5, 3, idx, 0};
    (void)c;
    return aur_gather(t, x[0], 1, 4, &ix, aur_shape2(5, 4));
}
static aur_tensor *f_atan2(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_atan2(t, x[0], x[1]); }
/* grid within the image mostly, some past the border (clipped: no gradient there) */
static aur_tensor *f_grid_sample(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_grid_sample(t, x[0], aur_scale(t, x[1], 0.6)); }
static aur_tensor *f_remainder(aur_tape *t, aur_tensor **x, const fd_case *c) { (void)c; return aur_remainder(t, aur_scale(t, x[0], 100), 360); }
static aur_tensor *f_nan_to_num(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    (void)c; /* positions filled with NaN must give no gradient */
    aur_tensor *mask = aur_tensor_new(t, AUR_CPU, aur_tensor_shape(x[0]));
    aur__wr(mask)[2] = aur__wr(mask)[7] = 1;
    return aur_nan_to_num(t, aur_masked_fill(t, x[0], mask, NAN), 0.5);
}
static aur_tensor *f_mse_finite(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    (void)c;
    aur_tensor *mask = aur_tensor_new(t, AUR_CPU, aur_tensor_shape(x[0]));
    aur__wr(mask)[1] = aur__wr(mask)[5] = 1;
    return aur_mse_loss_finite(t, aur_masked_fill(t, x[0], mask, NAN), x[1]);
}
static aur_tensor *f_twice(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    (void)c; /* x used three times: x*x + gelu(x) */
    return aur_add(t, aur_mul(t, x[0], x[0]), aur_gelu(t, x[0]));
}
static aur_tensor *segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n)
{
    aur_tensor **w = (aur_tensor **)ctx;
    (void)n;
    aur_tensor *h = aur_gelu(t, aur_linear(t, in[0], w[0], w[1]));
    return aur_layernorm(t, aur_add(t, h, in[0]), NULL, NULL, 1e-5);
}
static aur_tensor *f_checkpoint(aur_tape *t, aur_tensor **x, const fd_case *c)
{
    static aur_tensor *w[2]; /* ctx must outlive backward */
    w[0] = x[1];
    w[1] = x[2];
    (void)c;
    aur_tensor *h = aur_checkpoint(t, segment, w, x, 1);
    return aur_scale(t, aur_checkpoint(t, segment, w, &h, 1), 2.0);
}

#define S1(a) {1, {a}}
#define S2(a, b) {2, {a, b}}
#define S3(a, b, c) {3, {a, b, c}}
#define S4(a, b, c, d) {4, {a, b, c, d}}
#define S5(a, b, c, d, e) {5, {a, b, c, d, e}}

static fd_case cases[] = {
    {"linear", f_linear, 3, {S3(2, 3, 4), S2(5, 4), S1(5)}, {0}, {0}, 0, 0, 0, 0},
    {"linear_nobias", f_linear, 2, {S2(3, 4), S2(2, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"matmul", f_matmul, 2, {S3(2, 3, 4), S3(2, 4, 5)}, {0}, {0}, 0, 0, 0, 0},
    {"matmul_ta", f_matmul, 2, {S3(2, 4, 3), S3(2, 4, 5)}, {0}, {0}, 1, 0, 0, 0},
    {"matmul_tb", f_matmul, 2, {S3(2, 3, 4), S3(2, 5, 4)}, {0}, {0}, 0, 1, 0, 0},
    {"matmul_ta_tb", f_matmul, 2, {S4(2, 2, 4, 3), S4(2, 2, 5, 4)}, {0}, {0}, 1, 1, 0, 0},
    {"matmul_shared_b", f_matmul, 2, {S3(3, 2, 4), S2(4, 5)}, {0}, {0}, 0, 0, 0, 0},
    {"matmul_shared_b_ta_tb", f_matmul, 2, {S3(3, 4, 2), S2(5, 4)}, {0}, {0}, 1, 1, 0, 0},
    {"add_same", f_add, 2, {S2(3, 4), S2(3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"add_bias", f_add, 2, {S3(2, 3, 4), S1(4)}, {0}, {0}, 0, 0, 0, 0},
    {"add_mid", f_add, 2, {S3(2, 3, 4), S3(2, 1, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"add_both_broadcast", f_add, 2, {S2(3, 1), S3(2, 1, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"sub_lead", f_sub, 2, {S3(2, 3, 4), S2(3, 1)}, {0}, {0}, 0, 0, 0, 0},
    {"mul_bias", f_mul, 2, {S3(2, 3, 4), S1(4)}, {0}, {0}, 0, 0, 0, 0},
    {"mul_mid", f_mul, 2, {S4(2, 3, 2, 4), S4(2, 1, 2, 1)}, {0}, {0}, 0, 0, 0, 0},
    {"scale", f_scale, 1, {S2(3, 5)}, {0}, {0}, 0, 0, 0, -0.37},
    {"layernorm", f_layernorm, 3, {S3(2, 3, 8), S1(8), S1(8)}, {0}, {0}, 0, 0, 0, 1e-5},
    {"layernorm_noaffine", f_layernorm, 1, {S2(4, 6)}, {0}, {0}, 0, 0, 0, 1e-6},
    {"gelu", f_gelu, 1, {S2(4, 7)}, {0}, {0}, 0, 0, 0, 0},
    {"gelu_tanh", f_gelu_tanh, 1, {S2(4, 7)}, {0}, {0}, 0, 0, 0, 0},
    {"silu", f_silu, 1, {S2(4, 7)}, {0}, {0}, 0, 0, 0, 0},
    {"sigmoid", f_sigmoid, 1, {S2(4, 7)}, {0}, {0}, 0, 0, 0, 0},
    {"log", f_log, 1, {S2(4, 7)}, {INIT_POSITIVE}, {0}, 0, 0, 0, 0},
    {"sin", f_sin, 1, {S2(4, 7)}, {0}, {0}, 0, 0, 0, 0},
    {"cos", f_cos, 1, {S2(4, 7)}, {0}, {0}, 0, 0, 0, 0},
    {"softmax", f_softmax, 1, {S3(2, 3, 7)}, {0}, {0}, 0, 0, 0, 0},
    {"sdpa", f_sdpa, 3, {S4(2, 2, 3, 4), S4(2, 2, 5, 4), S4(2, 2, 5, 3)}, {0}, {0}, 0, 0, 0, 0},
    {"sdpa_mask", f_sdpa, 4, {S3(3, 4, 4), S3(3, 5, 4), S3(3, 5, 2), S2(4, 5)}, {0, 0, 0, INIT_MASK}, {0, 0, 0, 1}, 0, 0, 0, 0.3},
    {"sdpa_bias", f_sdpa, 4, {S4(2, 3, 4, 2), S4(2, 3, 5, 2), S4(2, 3, 5, 2), S3(3, 4, 5)}, {0}, {0}, 0, 0, 0, 0},
    {"sdpa_window_bias", f_sdpa, 4, {S5(2, 3, 2, 4, 3), S5(2, 3, 2, 4, 3), S5(2, 3, 2, 4, 3), S4(3, 1, 4, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"dropout", f_dropout, 1, {S2(6, 7)}, {0}, {0}, 0, 0, 0, 0.3},
    {"concat", f_concat, 3, {S3(2, 3, 4), S3(2, 5, 4), S3(2, 1, 4)}, {0}, {0}, 1, 0, 0, 0},
    {"concat_last", f_concat, 2, {S2(3, 2), S2(3, 4)}, {0}, {0}, -1, 0, 0, 0},
    {"slice", f_slice, 1, {S3(3, 7, 2)}, {0}, {0}, 1, 2, 4, 0},
    {"split", f_split, 1, {S3(2, 6, 3)}, {0}, {0}, 1, 0, 0, 0},
    {"pad", f_pad, 1, {S3(2, 3, 4)}, {0}, {0}, 0, 0, 0, 0.5},
    {"permute", f_permute, 1, {S4(2, 3, 4, 5)}, {0}, {0}, 0, 0, 0, 0},
    {"reshape_roll", f_reshape_roll, 1, {S2(6, 10)}, {0}, {0}, 0, 0, 0, 0},
    {"sum_axis", f_sum, 1, {S3(3, 4, 5)}, {0}, {0}, 1, 0, 0, 0},
    {"sum_keepdim", f_sum, 1, {S3(3, 4, 5)}, {0}, {0}, -1, 1, 0, 0},
    {"mean_axis", f_mean, 1, {S3(3, 4, 5)}, {0}, {0}, 0, 0, 0, 0},
    {"sum_all", f_sum_all, 1, {S2(3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"mean_all", f_mean_all, 1, {S3(2, 3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"max_axis", f_max, 1, {S3(3, 4, 5)}, {0}, {0}, 1, 0, 0, 0},
    {"max_keepdim", f_max, 1, {S2(4, 6)}, {0}, {0}, -1, 1, 0, 0},
    {"mse", f_mse, 2, {S2(3, 4), S2(3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"mae", f_mae, 2, {S2(3, 4), S2(3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"bce_logits", f_bce, 2, {S2(4, 3), S2(4, 3)}, {0, INIT_UNIT}, {0}, 0, 0, 0, 0},
    {"bce_logits_posw", f_bce, 3, {S2(4, 3), S2(4, 3), S1(3)}, {0, INIT_UNIT, INIT_POSITIVE}, {0, 0, 1}, 0, 0, 0, 0},
    {"cross_entropy", f_xent, 2, {S2(5, 4), S1(5)}, {0, INIT_LABELS}, {0, 1}, -100, 0, 0, 0},
    {"cross_entropy_smooth_ignore", f_xent, 2, {S2(6, 4), S1(6)}, {0, INIT_LABELS}, {0, 1}, 2, 0, 0, 0.1},
    {"clamp", f_clamp, 1, {S2(5, 6)}, {0}, {0}, 0, 0, 0, 0},
    {"expand", f_expand, 1, {S3(3, 1, 5)}, {0}, {0}, 0, 0, 0, 0},
    {"normalise", f_normalise, 1, {S3(2, 3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"unnormalise", f_normalise, 1, {S3(2, 3, 4)}, {0}, {0}, 1, 0, 0, 0},
    {"gather", f_gather, 1, {S3(2, 6, 3)}, {0}, {0}, 0, 0, 0, 0},
    {"gather_repeat", f_gather_repeat, 1, {S2(3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"atan2", f_atan2, 2, {S2(3, 4), S2(3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"grid_sample", f_grid_sample, 2, {S4(2, 3, 4, 5), S4(2, 3, 4, 2)}, {0}, {0}, 0, 0, 0, 0},
    {"remainder", f_remainder, 1, {S2(3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"masked_fill_nan_to_num", f_nan_to_num, 1, {S2(3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"mse_finite", f_mse_finite, 2, {S2(3, 4), S2(3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"used_three_times", f_twice, 1, {S2(3, 4)}, {0}, {0}, 0, 0, 0, 0},
    {"checkpoint", f_checkpoint, 3, {S2(3, 4), S2(4, 4), S1(4)}, {0}, {0}, 0, 0, 0, 0},
};

static void fill(aur_tensor *x, int init)
{
    aur_real *d = aur_tensor_f32(x);
    for (int64_t i = 0; i < x->numel; i++) {
        switch (init) {
        case INIT_UNIT: d[i] = aur_test_uniform(); break;
        case INIT_MASK: d[i] = aur_test_uniform() < 0.3 ? -100 : 0; break;
        case INIT_LABELS: d[i] = (double)(int)(aur_test_uniform() * 4); break;
        case INIT_POSITIVE: d[i] = 0.5 + 1.5 * aur_test_uniform(); break;
        default: d[i] = aur_test_normal(); break;
        }
    }
}

/* L = sum(op(in) * w) with gradients off. */
static double loss_at(aur_tape *t, const fd_case *c, aur_tensor **in, const aur_real *w)
{
    aur_tape_reset(t);
    aur_tape_seed(t, 7);
    aur_tape_set_grad(t, 0);
    aur_tensor *y = c->fn(t, in, c);
    aur_tape_set_grad(t, 1);
    if (!y) return NAN;
    double s = 0;
    for (int64_t i = 0; i < y->numel; i++) s += aur_tensor_f32(y)[i] * w[i];
    return s;
}

static void check_case(aur_tape *t, const fd_case *c)
{
    aur_tensor *in[MAX_IN] = {0};
    for (int i = 0; i < c->n_in; i++) {
        in[i] = aur_tensor_create(AUR_F32, AUR_CPU, c->shape[i]);
        fill(in[i], c->init[i]);
        in[i]->requires_grad = !c->no_grad[i];
    }
    /* the weights w, then the analytic gradient through backward */
    aur_tape_reset(t);
    aur_tape_seed(t, 7);
    aur_tensor *y = c->fn(t, in, c);
    AUR_CHECK(y != NULL, "%s: forward failed: %s", c->name, aur_last_error());
    if (!y) goto done;
    aur_tensor *wt = aur_tensor_create(AUR_F32, AUR_CPU, aur_tensor_shape(y));
    fill(wt, INIT_NORMAL);
    aur_real *w = aur_tensor_f32(wt);
    aur_tensor *loss = aur_sum_all(t, aur_mul(t, y, wt));
    int rc = aur_backward(t, loss);
    AUR_CHECK(rc == 0, "%s: backward failed: %s", c->name, aur_last_error());
    for (int i = 0; i < c->n_in && !rc; i++) {
        if (c->no_grad[i]) continue;
        double *num = (double *)malloc(sizeof(double) * (size_t)in[i]->numel);
        double *ana = (double *)malloc(sizeof(double) * (size_t)in[i]->numel);
        aur_real *x = aur_tensor_f32(in[i]);
        for (int64_t k = 0; k < in[i]->numel; k++) {
            double h = 1e-6 * (1 + fabs(x[k])), keep = x[k];
            x[k] = keep + h;
            double lp = loss_at(t, c, in, w);
            x[k] = keep - h;
            double lm = loss_at(t, c, in, w);
            x[k] = keep;
            num[k] = (lp - lm) / (2 * h);
            ana[k] = in[i]->grad ? in[i]->grad[k] : 0;
        }
        char name[96];
        snprintf(name, sizeof name, "grad %s / input %d", c->name, i);
        aur_test_close(name, ana, num, in[i]->numel, 1e-6);
        free(num);
        free(ana);
    }
    aur_tensor_free(wt);
done:
    for (int i = 0; i < c->n_in; i++) aur_tensor_free(in[i]);
}

int main(void)
{
    aur_tape *t = aur_tape_create();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(t, &cases[i]);
    aur_tape_free(t);
    return aur_test_summary();
}
