/* test_cuda.cu - every op with a CUDA path, GPU against CPU.
   Forward outputs and gradients must agree to 1e-5 (max-normalised). The
   loss is taken on the CPU after aur_to_device, so gradients cross devices. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"

#include <pthread.h>
#include <stdlib.h>

#define MAX_IN 4

typedef aur_tensor *(*op_fn)(aur_tape *t, aur_tensor **in, int arg);

static aur_tensor *f_linear(aur_tape *t, aur_tensor **x, int arg) { return aur_linear(t, x[0], x[1], arg ? x[2] : NULL); }
static aur_tensor *f_matmul(aur_tape *t, aur_tensor **x, int arg) { return aur_matmul(t, x[0], x[1], arg & 1, (arg >> 1) & 1); }
static aur_tensor *f_add(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_add(t, x[0], x[1]); }
static aur_tensor *f_sub(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_sub(t, x[0], x[1]); }
static aur_tensor *f_mul(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_mul(t, x[0], x[1]); }
static aur_tensor *f_scale(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_scale(t, x[0], -1.7); }
static aur_tensor *f_unary(aur_tape *t, aur_tensor **x, int arg)
{
    aur_tensor *y = x[0];
    return arg == 0 ? aur_gelu(t, y) : arg == 1 ? aur_gelu_tanh(t, y) : arg == 2 ? aur_silu(t, y) : aur_sigmoid(t, y);
}
static aur_tensor *f_mlp(aur_tape *t, aur_tensor **x, int arg)
{
    (void)arg; /* reshape, linear, gelu, linear: a little network on the GPU */
    aur_tensor *h = aur_gelu(t, aur_linear(t, aur_reshape(t, x[0], aur_shape2(-1, 16)), x[1], x[2]));
    return aur_linear(t, h, x[1], x[2]);
}

/* A constant tensor on x's device with values f(i). */
static aur_tensor *constant_like(aur_tape *t, aur_tensor *x, aur_shape s, float (*f)(int64_t))
{
    aur_tensor *c = aur_tensor_new(t, x->device, s);
    float *tmp = (float *)malloc(sizeof(float) * (size_t)c->numel);
    for (int64_t i = 0; i < c->numel; i++) tmp[i] = f(i);
    aur_tensor_set(c, tmp, c->numel);
    free(tmp);
    return c;
}
static float every_third(int64_t i) { return i % 3 == 0; }
static float class_label(int64_t i) { return i == 4 ? -100.0f : (float)((i * 7) % 5); }
static float half_ones(int64_t i) { return (float)((i * 5) % 2); }
static float keys_off(int64_t i) { return i == 0 || i == 2 ? -INFINITY : 0.0f; } /* keys 0 and 2 masked out */

static aur_tensor *f_layernorm(aur_tape *t, aur_tensor **x, int arg) { return aur_layernorm(t, x[0], arg ? x[1] : NULL, arg ? x[2] : NULL, 1e-5); }
static aur_tensor *f_softmax(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_softmax(t, x[0]); }
static aur_tensor *f_sdpa(aur_tape *t, aur_tensor **x, int arg) { return aur_sdpa(t, x[0], x[1], x[2], arg ? x[3] : NULL, arg == 2 ? 0.3 : 0); }
static aur_tensor *f_sdpa_inf(aur_tape *t, aur_tensor **x, int arg)
{
    (void)arg;
    return aur_sdpa(t, x[0], x[1], x[2], constant_like(t, x[0], aur_shape2(1, x[1]->shape[1]), keys_off), 0);
}
static aur_tensor *f_dropout(aur_tape *t, aur_tensor **x, int arg)
{
    (void)arg;
    aur_tape_seed(t, 1234);
    return aur_dropout(t, x[0], 0.3);
}
static aur_tensor *f_concat(aur_tape *t, aur_tensor **x, int arg) { return aur_concat(t, x, 3, arg); }
static aur_tensor *f_slice(aur_tape *t, aur_tensor **x, int arg) { return aur_slice(t, x[0], arg, 1, 3); }
static aur_tensor *f_pad(aur_tape *t, aur_tensor **x, int arg)
{
    (void)arg;
    int64_t before[4] = {0, 1, 2, 0}, after[4] = {1, 0, 3, 2};
    return aur_pad(t, x[0], before, after, -0.5);
}
static aur_tensor *f_permute(aur_tape *t, aur_tensor **x, int arg)
{
    int p1[4] = {2, 0, 3, 1}, p2[4] = {0, 1, 3, 2};
    return aur_permute(t, x[0], arg ? p2 : p1);
}
static aur_tensor *f_roll(aur_tape *t, aur_tensor **x, int arg)
{
    (void)arg;
    int64_t shifts[3] = {1, -3, 7};
    return aur_roll(t, x[0], shifts);
}
static aur_tensor *f_sum(aur_tape *t, aur_tensor **x, int arg) { return arg == 2 ? aur_mean_all(t, x[0]) : arg ? aur_mean(t, x[0], 1, 1) : aur_sum(t, x[0], -1, 0); }
static aur_tensor *f_max(aur_tape *t, aur_tensor **x, int arg) { return aur_max(t, x[0], arg, 0); }
static aur_tensor *f_loss(aur_tape *t, aur_tensor **x, int arg)
{
    switch (arg) {
    case 0: return aur_mse_loss(t, x[0], x[1]);
    case 1: return aur_mae_loss(t, x[0], x[1]);
    case 2: return aur_bce_logits_loss(t, x[0], aur_sigmoid(t, x[1]), x[2]);
    default: return aur_mse_loss_finite(t, aur_log(t, x[0]), x[1]); /* log of negatives: NaN, masked out */
    }
}
static aur_tensor *f_cross_entropy(aur_tape *t, aur_tensor **x, int arg)
{
    aur_tensor *lab = constant_like(t, x[0], aur_shape1(x[0]->shape[0]), class_label);
    return aur_cross_entropy(t, x[0], lab, -100, arg ? 0.1 : 0);
}
static aur_tensor *f_clamp(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_clamp(t, x[0], -0.5, 0.8); }
static aur_tensor *f_expand(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_expand(t, x[0], aur_shape4(3, 5, 4, 6)); }
static aur_tensor *f_normalise(aur_tape *t, aur_tensor **x, int arg)
{
    double loc[5] = {0.1, -2, 3, 0.5, 7}, scale[5] = {2, 0.5, 3, 1.5, 0.25};
    return aur_normalise(t, x[0], 1, loc, scale, arg);
}
static aur_tensor *f_gather(aur_tape *t, aur_tensor **x, int arg)
{
    static int64_t inj[6] = {3, -1, 0, 4, 1, 2}, rep[7] = {3, 3, 0, -1, 4, 3, 1};
    static aur_index ix_inj = {6, 5, inj, 1}, ix_rep = {7, 5, rep, 0};
    const aur_index *ix = arg ? &ix_rep : &ix_inj;
    return aur_gather(t, x[0], 2, 3, ix, aur_shape3(2, ix->n_out, 3));
}
static aur_tensor *f_atan2(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_atan2(t, x[0], x[1]); }
static aur_tensor *f_grid_sample(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_grid_sample(t, x[0], aur_scale(t, x[1], 0.7)); }
static aur_tensor *f_nan_to_num(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_nan_to_num(t, aur_log(t, x[0]), 0.25); }
static aur_tensor *f_masked_fill(aur_tape *t, aur_tensor **x, int arg)
{
    (void)arg;
    return aur_masked_fill(t, x[0], constant_like(t, x[0], aur_tensor_shape(x[0]), every_third), 2.5);
}
static aur_tensor *f_remainder(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_remainder(t, aur_scale(t, x[0], 3), 1.7); }
static aur_tensor *f_cast(aur_tape *t, aur_tensor **x, int arg) { (void)arg; return aur_cast(t, aur_cast(t, x[0], AUR_BF16), AUR_F32); }
static aur_tensor *f_sincos(aur_tape *t, aur_tensor **x, int arg) { return arg ? aur_cos(t, x[0]) : aur_sin(t, x[0]); }
/* A pre-norm attention block: most of what a Swin block does, on one device. */
/* arg 1: in a scope that keeps only the output, so under autocast backward gets q, k, v and o back from BF16 copies */
static aur_tensor *f_block(aur_tape *t, aur_tensor **x, int arg)
{
    aur_scope s = aur_scope_begin(t);
    aur_tensor *h = aur_layernorm(t, x[0], NULL, NULL, 1e-5);
    /* weights at a trained network's scale: N(0, 1) weights make scores near 50, where the
       softmax turns every rounding into a 1e-5 difference on any two machines */
    aur_tensor *qkv = aur_linear(t, h, aur_scale(t, x[1], 0.25), x[2]);
    aur_tensor *parts[3];
    int64_t sizes[3] = {16, 16, 16};
    aur_split(t, qkv, -1, 3, sizes, parts);
    aur_shape hs = aur_shape4(2, 9, 2, 8);
    int perm[4] = {0, 2, 1, 3};
    aur_tensor *q = aur_permute(t, aur_reshape(t, parts[0], hs), perm), *k = aur_permute(t, aur_reshape(t, parts[1], hs), perm);
    aur_tensor *v = aur_permute(t, aur_reshape(t, parts[2], hs), perm);
    aur_tensor *mask = constant_like(t, x[0], aur_shape2(9, 9), half_ones);
    aur_tensor *o = aur_permute(t, aur_sdpa(t, q, k, v, aur_scale(t, mask, -3), 0), perm);
    aur_tensor *y = aur_add(t, x[0], aur_gelu(t, aur_reshape(t, o, aur_shape3(2, 9, 16))));
    if (arg) aur_scope_end(t, s, &y, 1);
    return y;
}

typedef struct gpu_case {
    const char *name;
    op_fn fn;
    int arg, n_in;
    aur_shape shape[MAX_IN];
    int autocast; /* BF16 operands on both devices: agreement within what the rounding implies */
} gpu_case;

static gpu_case cases[] = {
    {"linear", f_linear, 1, 3, {{3, {4, 33, 70}}, {2, {129, 70}}, {1, {129}}}, 0},
    {"linear_nobias", f_linear, 0, 2, {{2, {300, 64}}, {2, {48, 64}}}, 0},
    {"linear_many_rows", f_linear, 1, 3, {{2, {600, 8}}, {2, {40, 8}}, {1, {40}}}, 0},
    {"matmul", f_matmul, 0, 2, {{3, {6, 17, 9}}, {3, {6, 9, 23}}}, 0},
    {"matmul_ta", f_matmul, 1, 2, {{3, {6, 9, 17}}, {3, {6, 9, 23}}}, 0},
    {"matmul_tb", f_matmul, 2, 2, {{4, {2, 3, 17, 9}}, {4, {2, 3, 23, 9}}}, 0},
    {"matmul_ta_tb", f_matmul, 3, 2, {{3, {5, 9, 17}}, {3, {5, 23, 9}}}, 0},
    {"matmul_shared_b", f_matmul, 0, 2, {{3, {7, 12, 9}}, {2, {9, 31}}}, 0},
    {"add_same", f_add, 0, 2, {{2, {37, 41}}, {2, {37, 41}}}, 0},
    {"add_bias", f_add, 0, 2, {{3, {5, 7, 64}}, {1, {64}}}, 0},
    {"sub_mid", f_sub, 0, 2, {{4, {3, 5, 7, 8}}, {4, {3, 1, 7, 1}}}, 0},
    {"mul_both", f_mul, 0, 2, {{2, {9, 1}}, {3, {4, 1, 13}}}, 0},
    {"add_rows_bias", f_add, 0, 2, {{3, {70, 41, 37}}, {2, {41, 37}}}, 0},
    {"add_mid_broadcast", f_add, 0, 2, {{3, {6, 50, 8}}, {3, {6, 1, 8}}}, 0},
    {"sub_bias", f_sub, 0, 2, {{2, {300, 5}}, {1, {5}}}, 0},
    {"mul_rows_scale", f_mul, 0, 2, {{3, {1, 400, 12}}, {3, {1, 1, 12}}}, 0},
    {"mul_scale_first", f_mul, 0, 2, {{2, {1, 12}}, {3, {3, 200, 12}}}, 0},
    {"scale", f_scale, 0, 1, {{1, {1000}}}, 0},
    {"gelu", f_unary, 0, 1, {{2, {50, 70}}}, 0},
    {"gelu_tanh", f_unary, 1, 1, {{2, {50, 70}}}, 0},
    {"silu", f_unary, 2, 1, {{2, {50, 70}}}, 0},
    {"sigmoid", f_unary, 3, 1, {{2, {50, 70}}}, 0},
    {"mlp", f_mlp, 0, 3, {{3, {4, 8, 16}}, {2, {16, 16}}, {1, {16}}}, 0},
    {"layernorm", f_layernorm, 1, 3, {{2, {37, 70}}, {1, {70}}, {1, {70}}}, 0},
    {"layernorm_plain", f_layernorm, 0, 1, {{3, {5, 3, 64}}}, 0},
    {"layernorm_many_rows", f_layernorm, 1, 3, {{2, {700, 40}}, {1, {40}}, {1, {40}}}, 0},
    {"softmax", f_softmax, 0, 1, {{2, {13, 77}}}, 0},
    {"sdpa", f_sdpa, 0, 3, {{4, {2, 3, 17, 8}}, {4, {2, 3, 19, 8}}, {4, {2, 3, 19, 5}}}, 0},
    {"sdpa_mask", f_sdpa, 1, 4, {{4, {2, 3, 17, 8}}, {4, {2, 3, 19, 8}}, {4, {2, 3, 19, 5}}, {3, {3, 17, 19}}}, 0},
    {"sdpa_masked_keys", f_sdpa_inf, 0, 3, {{3, {2, 5, 8}}, {3, {2, 6, 8}}, {3, {2, 6, 3}}}, 0},
    {"sdpa_long", f_sdpa, 0, 3, {{3, {2, 150, 8}}, {3, {2, 130, 8}}, {3, {2, 130, 6}}}, 0},
    {"sdpa_key_mask", f_sdpa, 2, 4, {{3, {4, 6, 8}}, {3, {4, 7, 8}}, {3, {4, 7, 3}}, {3, {4, 1, 7}}}, 0},
    {"dropout", f_dropout, 0, 1, {{2, {33, 40}}}, 0},
    {"concat_0", f_concat, 0, 3, {{3, {2, 3, 4}}, {3, {5, 3, 4}}, {3, {1, 3, 4}}}, 0},
    {"concat_2", f_concat, 2, 3, {{3, {2, 3, 4}}, {3, {2, 3, 1}}, {3, {2, 3, 7}}}, 0},
    {"slice", f_slice, 2, 1, {{3, {3, 4, 6}}}, 0},
    {"pad", f_pad, 0, 1, {{4, {2, 3, 4, 5}}}, 0},
    {"permute", f_permute, 0, 1, {{4, {2, 3, 4, 5}}}, 0},
    {"permute_last", f_permute, 1, 1, {{4, {2, 3, 4, 5}}}, 0},
    {"roll", f_roll, 0, 1, {{3, {3, 5, 9}}}, 0},
    {"sum_last", f_sum, 0, 1, {{3, {3, 5, 9}}}, 0},
    {"mean_keep", f_sum, 1, 1, {{3, {3, 5, 9}}}, 0},
    {"mean_all", f_sum, 2, 1, {{3, {3, 5, 9}}}, 0},
    {"max_0", f_max, 0, 1, {{3, {4, 5, 6}}}, 0},
    {"max_1", f_max, 1, 1, {{3, {4, 5, 6}}}, 0},
    {"mse", f_loss, 0, 2, {{3, {4, 5, 6}}, {3, {4, 5, 6}}}, 0},
    {"mae", f_loss, 1, 2, {{2, {300, 7}}, {2, {300, 7}}}, 0},
    {"bce", f_loss, 2, 3, {{2, {30, 7}}, {2, {30, 7}}, {1, {7}}}, 0},
    {"mse_finite", f_loss, 3, 2, {{2, {30, 7}}, {2, {30, 7}}}, 0},
    {"cross_entropy", f_cross_entropy, 0, 1, {{2, {9, 5}}}, 0},
    {"cross_entropy_smooth", f_cross_entropy, 1, 1, {{2, {9, 5}}}, 0},
    {"clamp", f_clamp, 0, 1, {{2, {20, 21}}}, 0},
    {"expand", f_expand, 0, 1, {{3, {5, 1, 6}}}, 0},
    {"expand_leading", f_expand, 0, 1, {{2, {4, 6}}}, 0},
    {"normalise", f_normalise, 0, 1, {{3, {3, 5, 7}}}, 0},
    {"normalise_inverse", f_normalise, 1, 1, {{3, {3, 5, 7}}}, 0},
    {"gather", f_gather, 0, 1, {{3, {2, 5, 3}}}, 0},
    {"gather_repeats", f_gather, 1, 1, {{3, {2, 5, 3}}}, 0},
    {"atan2", f_atan2, 0, 2, {{2, {11, 13}}, {2, {11, 13}}}, 0},
    {"grid_sample", f_grid_sample, 0, 2, {{4, {2, 3, 5, 7}}, {4, {2, 4, 6, 2}}}, 0},
    {"nan_to_num", f_nan_to_num, 0, 1, {{2, {10, 10}}}, 0},
    {"masked_fill", f_masked_fill, 0, 1, {{2, {10, 11}}}, 0},
    {"remainder", f_remainder, 0, 1, {{2, {10, 11}}}, 0},
    {"cast", f_cast, 0, 1, {{2, {10, 11}}}, 0},
    {"sin", f_sincos, 0, 1, {{1, {100}}}, 0},
    {"cos", f_sincos, 1, 1, {{1, {100}}}, 0},
    {"attention_block", f_block, 0, 3, {{3, {2, 9, 16}}, {2, {48, 16}}, {1, {48}}}, 0},
    {"autocast_linear", f_linear, 1, 3, {{3, {4, 33, 70}}, {2, {129, 70}}, {1, {129}}}, 1},
    {"autocast_matmul_tb", f_matmul, 2, 2, {{4, {2, 3, 17, 9}}, {4, {2, 3, 23, 9}}}, 1},
    {"autocast_matmul_shared_b", f_matmul, 0, 2, {{3, {7, 12, 9}}, {2, {9, 31}}}, 1},
    {"autocast_sdpa_mask", f_sdpa, 1, 4, {{4, {2, 3, 17, 8}}, {4, {2, 3, 19, 8}}, {4, {2, 3, 19, 5}}, {3, {3, 17, 19}}}, 1},
    {"autocast_attention_block", f_block, 0, 3, {{3, {2, 9, 16}}, {2, {48, 16}}, {1, {48}}}, 1},
    {"autocast_attention_block_packed", f_block, 1, 3, {{3, {2, 9, 16}}, {2, {48, 16}}, {1, {48}}}, 1},
};

/* How a run's tape does attention on the GPU: fused, through cuBLAS, or fused
   with the tape switched to cuBLAS between forward and backward. */
enum { ATTN_FUSED, ATTN_CUBLAS, ATTN_SWITCHED };

/* Runs a case on one device: inputs from host data, loss on the CPU. */
static int run(const gpu_case *c, aur_device dev, int attn, double **host_in, double *out, double **grads, int64_t *out_n)
{
    aur_tape *t = aur_tape_create();
    aur_tape_set_autocast(t, c->autocast);
    aur_tape_set_fused_attention(t, attn != ATTN_CUBLAS);
    aur_tensor *in[MAX_IN];
    for (int i = 0; i < c->n_in; i++) {
        in[i] = aur_tensor_create(AUR_F32, dev, c->shape[i]);
        int64_t n = in[i]->numel;
        float *tmp = (float *)malloc(sizeof(float) * (size_t)n);
        for (int64_t k = 0; k < n; k++) tmp[k] = (float)host_in[i][k];
        aur_tensor_set(in[i], tmp, n);
        free(tmp);
        in[i]->requires_grad = 1;
    }
    aur_tensor *y = c->fn(t, in, c->arg);
    if (attn == ATTN_SWITCHED) aur_tape_set_fused_attention(t, 0); /* backward must keep the forward's path */
    aur_tensor *yc = aur_to_device(t, y, AUR_CPU);
    if (!yc) {
        printf("FAIL %s on %s: %s\n", c->name, dev == AUR_CUDA ? "cuda" : "cpu", aur_last_error());
        aur_tape_free(t);
        return 1;
    }
    /* loss = sum(y * w) for a fixed w: w_k = sin(k) */
    aur_tensor *w = aur_tensor_create(AUR_F32, AUR_CPU, aur_tensor_shape(yc));
    for (int64_t k = 0; k < w->numel; k++) aur_tensor_f32(w)[k] = (float)sin((double)k);
    int rc = aur_backward(t, aur_sum_all(t, aur_mul(t, yc, w)));
    *out_n = yc->numel;
    for (int64_t k = 0; k < yc->numel; k++) out[k] = aur_tensor_f32(yc)[k];
    for (int i = 0; i < c->n_in && !rc; i++) {
        int64_t n = in[i]->numel;
        float *tmp = (float *)malloc(sizeof(float) * (size_t)n);
        rc = aur__copy_bytes(tmp, AUR_CPU, in[i]->grad, dev, sizeof(float) * (size_t)n);
        for (int64_t k = 0; k < n; k++) grads[i][k] = tmp[k];
        free(tmp);
    }
    if (rc) printf("FAIL %s backward on %s: %s\n", c->name, dev == AUR_CUDA ? "cuda" : "cpu", aur_last_error());
    for (int i = 0; i < c->n_in; i++) aur_tensor_free(in[i]);
    aur_tensor_free(w);
    aur_tape_free(t);
    return rc;
}

/* A model of three parameters with fixed values on a device. */
static aur_model *opt_model(aur_device dev)
{
    aur_model *m = aur_model_create();
    aur_model_add(m, "w", aur_shape2(7, 5), 0);
    aur_model_add(m, "k", aur_shape3(3, 4, 6), 0);
    aur_model_add(m, "b", aur_shape1(9), 0);
    if (aur_model_alloc(m, dev)) return NULL;
    for (int i = 0; i < aur_model_count(m); i++) {
        aur_tensor *p = aur_model_at(m, i);
        float v[200];
        for (int64_t k = 0; k < p->numel; k++) v[k] = (float)sin(1.0 + 0.37 * (double)k + (double)i);
        aur_tensor_set(p, v, p->numel);
    }
    return m;
}

/* Three steps of an optimiser with given gradients; returns the parameters (host) in out. */
static int opt_run(aur_device dev, aur_optim_kind kind, int offload, double *out, size_t *state_gpu_bytes)
{
    aur_model *m = opt_model(dev);
    aur_optim_opts o = kind == AUR_ADAFACTOR ? aur_adafactor_defaults() : aur_adamw_defaults();
    o.offload = offload;
    size_t before, after, peak;
    aur_cuda_memory(&before, &peak);
    aur_optim *opt = m ? aur_optim_create(m, &o) : NULL;
    aur_cuda_memory(&after, &peak);
    if (state_gpu_bytes) *state_gpu_bytes = after - before;
    int rc = opt ? 0 : 1;
    for (int s = 0; s < 3 && !rc; s++) {
        for (int i = 0; i < aur_model_count(m); i++) {
            aur_tensor *p = aur_model_at(m, i);
            float g[200];
            for (int64_t k = 0; k < p->numel; k++) g[k] = (float)cos(0.11 * (double)k * (s + 1) + (double)i);
            rc |= aur__copy_bytes(p->grad, dev, g, AUR_CPU, sizeof(float) * (size_t)p->numel);
            p->grad_written = 1;
        }
        double norm = 0;
        rc |= aur_clip_grad_norm(m, 2.0, &norm) | aur_optim_step(opt);
    }
    int64_t n = 0;
    for (int i = 0; i < aur_model_count(m) && !rc; i++) {
        aur_tensor *p = aur_model_at(m, i);
        float v[200];
        aur_tensor_get(p, v, p->numel);
        for (int64_t k = 0; k < p->numel; k++) out[n++] = v[k];
    }
    aur_optim_free(opt);
    aur_model_free(m);
    return rc;
}

/* AdamW and Adafactor (with clipping) on the GPU against the CPU, with the state on the GPU or offloaded. */
static void test_optimisers(void)
{
    const aur_optim_kind kinds[2] = {AUR_ADAMW, AUR_ADAFACTOR};
    const char *names[2] = {"adamw", "adafactor"};
    for (int k = 0; k < 2; k++) {
        double cpu[200], gpu[200], off[200];
        size_t on_gpu = 0, offloaded = 0;
        int rc = opt_run(AUR_CPU, kinds[k], 0, cpu, NULL) | opt_run(AUR_CUDA, kinds[k], 0, gpu, &on_gpu) |
                 opt_run(AUR_CUDA, kinds[k], 1, off, &offloaded);
        AUR_CHECK(rc == 0, "%s runs on both devices: %s", names[k], aur_last_error());
        if (rc) continue;
        char label[64];
        snprintf(label, sizeof label, "%s GPU vs CPU", names[k]);
        aur_test_close(label, gpu, cpu, 35 + 72 + 9, 1e-6);
        AUR_CHECK(!memcmp(gpu, off, sizeof(double) * (35 + 72 + 9)), "%s with offloaded state equals the GPU state bit for bit", names[k]);
        AUR_CHECK(offloaded < on_gpu, "%s offload keeps the state off the GPU (%zu vs %zu GPU bytes)", names[k], offloaded, on_gpu);
    }
}

/* Two runs of a case agree: the output and each input's gradient, named "<case><label> forward" and "... grad i". */
static void compare_runs(const gpu_case *c, const char *label, const double *o, const double *o_ref, int64_t n,
                         double *const *g, double *const *g_ref)
{
    char name[96];
    /* F32: round-off; BF16 autocast: a few rounding flips (2^-8 each) between the devices' sums */
    double tol = c->autocast ? 2e-2 : 1e-5;
    snprintf(name, sizeof name, "%s%s forward", c->name, label);
    aur_test_close(name, o, o_ref, n, tol);
    for (int i = 0; i < c->n_in; i++) {
        snprintf(name, sizeof name, "%s%s grad %d", c->name, label, i);
        aur_test_close(name, g[i], g_ref[i], aur_shape_numel(c->shape[i]), tol);
    }
}

/* One case on both devices: outputs and input gradients compared. */
static void check_case(const gpu_case *c, int attn, const char *label)
{
    double *host[MAX_IN], *g_cpu[MAX_IN], *g_gpu[MAX_IN];
    double *o_cpu = (double *)malloc(sizeof(double) * 1000000), *o_gpu = (double *)malloc(sizeof(double) * 1000000);
    for (int i = 0; i < c->n_in; i++) {
        int64_t n = aur_shape_numel(c->shape[i]);
        host[i] = (double *)malloc(sizeof(double) * (size_t)n);
        g_cpu[i] = (double *)malloc(sizeof(double) * (size_t)n);
        g_gpu[i] = (double *)malloc(sizeof(double) * (size_t)n);
        for (int64_t k = 0; k < n; k++) host[i][k] = aur_test_normal();
    }
    int64_t n1 = 0, n2 = 0;
    int bad = run(c, AUR_CPU, attn, host, o_cpu, g_cpu, &n1) | run(c, AUR_CUDA, attn, host, o_gpu, g_gpu, &n2);
    AUR_CHECK(!bad && n1 == n2, "%s ran on both devices", c->name);
    if (!bad) compare_runs(c, label, o_gpu, o_cpu, n1, g_gpu, g_cpu);
    for (int i = 0; i < c->n_in; i++) {
        free(host[i]);
        free(g_cpu[i]);
        free(g_gpu[i]);
    }
    free(o_cpu);
    free(o_gpu);
}

/* Attention chosen per tape: fused and cuBLAS agree, and a tape switched to
   cuBLAS between forward and backward still runs the fused backward its
   forward recorded (bit for bit what a fused tape computes). */
static void test_attention_per_tape(void)
{
    enum { MAX_OUT = 1000000 };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const gpu_case *c = &cases[ci];
        if (!strstr(c->name, "sdpa") && !strstr(c->name, "attention")) continue;
        double *host[MAX_IN], *g[3][MAX_IN], *o[3];
        int64_t n[3], sizes[MAX_IN];
        for (int i = 0; i < c->n_in; i++) {
            sizes[i] = aur_shape_numel(c->shape[i]);
            host[i] = (double *)malloc(sizeof(double) * (size_t)sizes[i]);
            for (int64_t k = 0; k < sizes[i]; k++) host[i][k] = aur_test_normal();
        }
        int bad = 0;
        for (int a = 0; a < 3; a++) {
            o[a] = (double *)malloc(sizeof(double) * MAX_OUT);
            for (int i = 0; i < c->n_in; i++) g[a][i] = (double *)malloc(sizeof(double) * (size_t)sizes[i]);
            bad |= run(c, AUR_CUDA, a, host, o[a], g[a], &n[a]);
        }
        AUR_CHECK(!bad, "%s ran on the GPU with each attention path", c->name);
        if (!bad) {
            compare_runs(c, " fused vs cuBLAS tape", o[1], o[0], n[0], g[1], g[0]);
            int same = n[2] == n[0] && !memcmp(o[2], o[0], sizeof(double) * (size_t)n[0]);
            for (int i = 0; i < c->n_in; i++) same = same && !memcmp(g[2][i], g[0][i], sizeof(double) * (size_t)sizes[i]);
            AUR_CHECK(same, "%s: a tape switched after the forward runs the forward's backward", c->name);
        }
        for (int a = 0; a < 3; a++) {
            free(o[a]);
            for (int i = 0; i < c->n_in; i++) free(g[a][i]);
        }
        for (int i = 0; i < c->n_in; i++) free(host[i]);
    }
}

/* Threads that allocate and free GPU memory at once keep the library's
   table and counters right (they are the process's, under one lock). */
enum { ALLOC_THREADS = 4, ALLOC_ROUNDS = 200, ALLOC_LIVE = 8 };

static void *alloc_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    intptr_t failed = 0;
    void *live[ALLOC_LIVE] = {NULL};
    for (int r = 0; r < ALLOC_ROUNDS; r++) {
        int slot = r % ALLOC_LIVE;
        aur__dev_free(AUR_CUDA, live[slot]);
        live[slot] = aur__dev_alloc(AUR_CUDA, sizeof(float) * (size_t)(1 + (r * 37 + id * 101) % 5000), "a test block");
        failed |= live[slot] == NULL;
    }
    for (int k = 0; k < ALLOC_LIVE; k++) aur__dev_free(AUR_CUDA, live[k]);
    return (void *)failed;
}

static void test_concurrent_alloc(void)
{
    size_t before, after, peak;
    pthread_t th[ALLOC_THREADS];
    int started = 0, failed = 0;
    aur_cuda_memory(&before, &peak);
    for (int i = 0; i < ALLOC_THREADS; i++) started += pthread_create(&th[started], NULL, alloc_worker, (void *)(intptr_t)i) == 0;
    for (int i = 0; i < started; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        failed |= r != NULL;
    }
    aur_cuda_memory(&after, &peak);
    AUR_CHECK(started == ALLOC_THREADS && !failed && after == before,
              "%d threads allocating GPU memory at once: every block counted and freed (%zu bytes before, %zu after)",
              started, before, after);
}

/* The errors a GPU user meets are clear messages, not crashes. */
static void test_errors(void)
{
    aur_tape *t = aur_tape_create();
    aur_tensor *a = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape1(4)), *b = aur_tensor_create(AUR_F32, AUR_CUDA, aur_shape1(4));
    AUR_CHECK(!aur_add(t, a, b) && strstr(aur_last_error(), "different devices"), "mixing devices is refused: %s", aur_last_error());
    aur_tensor *huge = aur_tensor_create(AUR_F32, AUR_CUDA, aur_shape2(1 << 20, 1 << 20)); /* 4 TiB */
    AUR_CHECK(!huge && strstr(aur_last_error(), "memory"), "an allocation the GPU cannot hold fails with a message: %s",
              aur_last_error());
    aur_tensor_free(a);
    aur_tensor_free(b);
    aur_tape_free(t);
}

int main(void)
{
    if (!aur_cuda_available()) {
        printf("no CUDA device: the GPU tests need one\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) check_case(&cases[ci], ATTN_FUSED, "");
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) /* the attention cases again through the cuBLAS path */
        if (strstr(cases[ci].name, "sdpa") || strstr(cases[ci].name, "attention")) check_case(&cases[ci], ATTN_CUBLAS, " (cuBLAS)");
    test_attention_per_tape();
    test_optimisers();
    test_concurrent_alloc();
    test_errors();
    size_t cur, peak;
    aur_cuda_memory(&cur, &peak);
    printf("GPU memory through the library: %zu bytes now, %zu at peak\n", cur, peak);
    AUR_CHECK(cur == 0, "every GPU block was freed (%zu bytes left)", cur);
    return aur_test_summary();
}
