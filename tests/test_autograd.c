/* test_autograd.c - the tape: accumulation, checkpointing, the arena, errors. */
#define _POSIX_C_SOURCE 200809L /* system headers come before aurora.h here */
#include <stdlib.h>

/* Count allocations to prove the training loop stops calling malloc after step 1. */
static long n_mallocs;
static void *count_malloc(size_t n)
{
    n_mallocs++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n)
{
    n_mallocs++;
    return realloc(p, n);
}
#define AUR_MALLOC(n) count_malloc(n)
#define AUR_REALLOC(p, n) count_realloc(p, n)
#define AUR_FREE(p) free(p)
#define AURORA_IMPLEMENTATION
#include "../surya.h" /* includes aurora.h */
#include "aur_test.h"

typedef struct mlp {
    aur_model *m;
    aur_tensor *w1, *b1, *w2, *b2, *ln_w, *ln_b;
} mlp;

static mlp make_mlp(int d, int hidden)
{
    mlp n;
    n.m = aur_model_create();
    n.w1 = aur_model_add(n.m, "fc1.weight", aur_shape2(hidden, d), 0);
    n.b1 = aur_model_add(n.m, "fc1.bias", aur_shape1(hidden), 0);
    n.w2 = aur_model_add(n.m, "fc2.weight", aur_shape2(d, hidden), 0);
    n.b2 = aur_model_add(n.m, "fc2.bias", aur_shape1(d), 0);
    n.ln_w = aur_model_add(n.m, "norm.weight", aur_shape1(d), 0);
    n.ln_b = aur_model_add(n.m, "norm.bias", aur_shape1(d), 0);
    aur_model_alloc(n.m, AUR_CPU);
    aur_test_rng = 12345;
    for (int i = 0; i < aur_model_count(n.m); i++) {
        aur_tensor *p = aur_model_at(n.m, i);
        for (int64_t k = 0; k < p->numel; k++) aur_tensor_f32(p)[k] = (aur_real)(0.3 * aur_test_normal());
    }
    return n;
}

/* One residual block: x + fc2(dropout(gelu(fc1(LN(x))))). */
static aur_tensor *block(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    mlp *n = (mlp *)ctx;
    (void)n_in;
    aur_tensor *h = aur_layernorm(t, in[0], n->ln_w, n->ln_b, 1e-5);
    h = aur_dropout(t, aur_gelu(t, aur_linear(t, h, n->w1, n->b1)), 0.2);
    return aur_add(t, in[0], aur_linear(t, h, n->w2, n->b2));
}

/* Three blocks sharing weights (so parameters are used several times), then MSE. */
static aur_tensor *forward(aur_tape *t, mlp *n, aur_tensor *x, aur_tensor *y, int checkpoint)
{
    aur_tensor *h = x;
    for (int i = 0; i < 3; i++) h = checkpoint ? aur_checkpoint(t, block, n, &h, 1) : block(t, n, &h, 1);
    return aur_mse_loss(t, h, y);
}

static aur_tensor *random_tensor(aur_shape s)
{
    aur_tensor *x = aur_tensor_create(AUR_F32, AUR_CPU, s);
    for (int64_t k = 0; k < x->numel; k++) aur_tensor_f32(x)[k] = (aur_real)aur_test_normal();
    return x;
}

static void test_checkpoint_identical(void)
{
    mlp n = make_mlp(16, 64);
    aur_tensor *x = random_tensor(aur_shape3(2, 10, 16)), *y = random_tensor(aur_shape3(2, 10, 16));
    x->requires_grad = 1; /* also check the gradient reaching the input */
    aur_real *grads[2];
    aur_real loss[2], dx[2][8];
    size_t peak[2];
    int64_t total = aur_model_numel(n.m, 1);
    for (int c = 0; c < 2; c++) {
        aur_tape *t = aur_tape_create();
        aur_tape_seed(t, 99);
        aur_model_zero_grad(n.m);
        aur_tensor_zero_grad(x);
        aur_tensor *l = forward(t, &n, x, y, c);
        AUR_CHECK(l && aur_backward(t, l) == 0, "forward/backward %s: %s", c ? "checkpointed" : "plain", aur_last_error());
        loss[c] = aur_tensor_f32(l)[0];
        grads[c] = (aur_real *)malloc(sizeof(aur_real) * (size_t)total);
        memcpy(grads[c], n.w1->grad, sizeof(aur_real) * (size_t)total); /* the whole gradient slab */
        memcpy(dx[c], x->grad, sizeof dx[c]);
        aur_memory_stats ms;
        aur_tape_memory_stats(t, &ms);
        peak[c] = ms.peak_shared; /* without the per-thread scratch: the same on any thread count */
        aur_tape_free(t);
    }
    AUR_CHECK(loss[0] == loss[1], "checkpointing leaves the loss unchanged");
    AUR_CHECK(!memcmp(grads[0], grads[1], sizeof(aur_real) * (size_t)total), "checkpointed gradients are bit-identical");
    AUR_CHECK(!memcmp(dx[0], dx[1], sizeof dx[0]), "the input gradient is bit-identical");
    printf("tape peak (without per-thread scratch): plain %zu bytes, checkpointed %zu bytes\n", peak[0], peak[1]);
    free(grads[0]);
    free(grads[1]);
    aur_tensor_free(x);
    aur_tensor_free(y);
    aur_model_free(n.m);
}

static aur_tensor *identity_segment(aur_tape *t, void *ctx, aur_tensor *const *in, int n)
{
    (void)ctx;
    (void)n;
    return aur_dropout(t, in[0], 0.5); /* not training: returns its input */
}

static void test_checkpoint_identity(void)
{
    aur_tape *t = aur_tape_create();
    aur_tape_set_training(t, 0);
    aur_tensor *x = random_tensor(aur_shape1(4));
    x->requires_grad = 1;
    aur_tensor *h = aur_scale(t, x, 3.0);
    aur_tensor *y = aur_checkpoint(t, identity_segment, NULL, &h, 1);
    AUR_CHECK(aur_backward(t, aur_sum_all(t, y)) == 0 && x->grad[2] == 3, "a checkpointed identity passes the gradient through");
    aur_tensor_free(x);
    aur_tape_free(t);
}

/* Window attention's shape under autocast: h = x W1^T + b1 split into q, k, v
   (views into one permuted copy), o = attention, out = GELU(o) * q. With
   pack, the forward lets go of all but out, so backward holds the permuted
   copy and o as BF16; otherwise it keeps every tensor. */
static aur_tensor *packed_attention(aur_tape *t, mlp *n, aur_tensor *x, int pack, size_t *saved)
{
    aur_scope s = aur_scope_begin(t);
    static const int perm[4] = {2, 0, 1, 3};
    aur_tensor *h = aur_permute(t, aur_reshape(t, aur_linear(t, x, n->w1, n->b1), aur_shape4(2, 10, 4, 16)), perm);
    aur_tensor *q = aur_reshape(t, aur_slice(t, h, 0, 0, 1), aur_shape3(2, 10, 16));
    aur_tensor *k = aur_reshape(t, aur_slice(t, h, 0, 1, 1), aur_shape3(2, 10, 16));
    aur_tensor *v = aur_reshape(t, aur_slice(t, h, 0, 2, 1), aur_shape3(2, 10, 16));
    aur_tensor *out = aur_mul(t, aur_gelu(t, aur_sdpa(t, q, k, v, NULL, 0)), q);
    if (pack) aur_scope_end(t, s, &out, 1);
    aur_memory_stats ms;
    aur_tape_memory_now(t, &ms);
    *saved = ms.saved;
    return out;
}

static void test_autocast_packs(void)
{
    mlp n = make_mlp(16, 64);
    aur_tensor *x = random_tensor(aur_shape3(2, 10, 16)), *y = random_tensor(aur_shape3(2, 10, 16));
    int64_t total = aur_model_numel(n.m, 1);
    aur_real *grads[2];
    size_t saved[2];
    for (int pack = 0; pack < 2; pack++) {
        aur_tape *t = aur_tape_create();
        aur_tape_set_autocast(t, 1);
        aur_model_zero_grad(n.m);
        aur_tensor *l = aur_mse_loss(t, packed_attention(t, &n, x, pack, &saved[pack]), y);
        AUR_CHECK(l && aur_backward(t, l) == 0, "autocast attention, %s: %s", pack ? "packed" : "kept", aur_last_error());
        grads[pack] = (aur_real *)malloc(sizeof(aur_real) * (size_t)total);
        memcpy(grads[pack], n.w1->grad, sizeof(aur_real) * (size_t)total);
        aur_tape_free(t);
    }
    /* q, k, v's copy (4 x 2 x 10 x 16) and o (2 x 10 x 16), two bytes a value */
    AUR_CHECK(saved[0] == 0 && saved[1] == 2 * (1280 + 320), "backward keeps BF16 copies of what only it reads (%zu bytes, want %d)", saved[1],
              2 * (1280 + 320));
    AUR_CHECK(!memcmp(grads[0], grads[1], sizeof(aur_real) * (size_t)total), "gradients from BF16-kept values equal the F32-kept ones bit for bit");
    free(grads[0]);
    free(grads[1]);
    aur_tensor_free(x);
    aur_tensor_free(y);
    aur_model_free(n.m);
}

static void test_accumulation(void)
{
    aur_tape *t = aur_tape_create();
    aur_tensor *x = random_tensor(aur_shape1(5)), *a = random_tensor(aur_shape1(5));
    x->requires_grad = 1;
    /* L = sum(a*x + x) -> dL/dx = a + 1 */
    aur_tensor *l = aur_sum_all(t, aur_add(t, aur_mul(t, a, x), x));
    AUR_CHECK(aur_backward(t, l) == 0, "backward");
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= fabs(x->grad[i] - (aur_tensor_f32(a)[i] + 1)) < 1e-6;
    AUR_CHECK(ok, "a tensor used twice gets both gradients");
    AUR_CHECK(a->grad == NULL, "a constant gets no gradient buffer");
    AUR_CHECK(aur_backward(t, l) == AUR_EINVAL && strstr(aur_last_error(), "already"), "backward twice is refused");
    /* a second step accumulates into an owned tensor's gradient, as torch's .grad */
    aur_tape_reset(t);
    l = aur_sum_all(t, aur_mul(t, a, x));
    aur_backward(t, l);
    AUR_CHECK(fabs(x->grad[0] - (2 * aur_tensor_f32(a)[0] + 1)) < 1e-6, "gradients accumulate across steps until zeroed");
    aur_tensor_zero_grad(x);
    AUR_CHECK(x->grad[0] == 0 && x->grad_written == 0, "aur_tensor_zero_grad");
    /* errors */
    aur_tape_reset(t);
    AUR_CHECK(aur_backward(t, aur_mul(t, a, x)) == AUR_ESHAPE, "a non-scalar loss is refused");
    aur_tape_reset(t);
    AUR_CHECK(aur_backward(t, aur_sum_all(t, a)) == AUR_EINVAL && strstr(aur_last_error(), "trainable"), "a constant loss is refused");
    aur_tape_reset(t);
    aur_tape_set_grad(t, 0);
    aur_tensor *y = aur_mul(t, a, x);
    AUR_CHECK(y && !y->requires_grad, "with gradients off nothing is recorded");
    aur_tape_set_grad(t, 1);
    aur_tape_free(t);
    aur_tensor_free(x);
    aur_tensor_free(a);
}

static void test_errors_propagate(void)
{
    aur_tape *t = aur_tape_create();
    aur_tensor *x = random_tensor(aur_shape2(3, 4)), *w = random_tensor(aur_shape2(5, 3));
    aur_tensor *y = aur_linear(t, x, w, NULL);
    AUR_CHECK(y == NULL && strstr(aur_last_error(), "[3, 4]") && strstr(aur_last_error(), "[5, 3]"),
              "a shape mismatch names both shapes: %s", aur_last_error());
    char first[2048];
    snprintf(first, sizeof first, "%s", aur_last_error());
    aur_tensor *z = aur_gelu(t, aur_softmax(t, y));
    AUR_CHECK(z == NULL && !strcmp(first, aur_last_error()), "a NULL input propagates and keeps the first message");
    AUR_CHECK(aur_reshape(t, x, aur_shape2(5, 5)) == NULL && strstr(aur_last_error(), "reshape"), "bad reshape");
    AUR_CHECK(aur_slice(t, x, 1, 3, 2) == NULL && strstr(aur_last_error(), "outside"), "slice out of range");
    AUR_CHECK(aur_max(t, x, 2, 0) == NULL && strstr(aur_last_error(), "axis"), "axis out of range");
    aur_tensor *lab = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape1(3));
    aur_tensor_f32(lab)[1] = 9;
    AUR_CHECK(aur_cross_entropy(t, x, lab, -100, 0) == NULL && strstr(aur_last_error(), "label 1"), "a bad label is named");
    aur_tensor *bf = aur_tensor_create(AUR_BF16, AUR_CPU, aur_shape2(3, 4));
    AUR_CHECK(aur_gelu(t, bf) == NULL && strstr(aur_last_error(), "BF16"), "ops ask for F32 inputs");
    AUR_CHECK(aur_dropout(t, x, 1.0) == NULL && strstr(aur_last_error(), "p = 1"), "dropout p must be < 1");
    aur_tensor *cuda = aur_to_device(t, x, AUR_CUDA);
    AUR_CHECK(cuda == NULL && strstr(aur_last_error(), "CUDA"), "no CUDA in a CPU build: %s", aur_last_error());
    aur_tensor_free(lab);
    aur_tensor_free(bf);
    aur_tensor_free(x);
    aur_tensor_free(w);
    aur_tape_free(t);
}

static void test_dropout(void)
{
    aur_tape *t = aur_tape_create();
    aur_tensor *x = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape1(20000));
    for (int64_t i = 0; i < x->numel; i++) aur_tensor_f32(x)[i] = 1;
    aur_tape_seed(t, 5);
    aur_tensor *a = aur_dropout(t, x, 0.25), *b = aur_dropout(t, x, 0.25);
    long zeros = 0, differ = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        zeros += aur_tensor_f32(a)[i] == 0;
        differ += aur_tensor_f32(a)[i] != aur_tensor_f32(b)[i];
        if (aur_tensor_f32(a)[i] != 0 && fabs(aur_tensor_f32(a)[i] - 1 / 0.75) > 1e-6) differ = -1000000;
    }
    AUR_CHECK(fabs(zeros / 20000.0 - 0.25) < 0.02, "dropout drops about p of the values (%ld of 20000)", zeros);
    AUR_CHECK(differ > 1000, "two calls draw different masks; kept values are scaled by 1/(1-p)");
    aur_tape_reset(t);
    aur_tape_seed(t, 5);
    aur_tensor *c = aur_dropout(t, x, 0.25);
    AUR_CHECK(!memcmp(c->data, a->data, (size_t)x->numel * sizeof(aur_real)), "the same seed gives the same mask");
    aur_tape_set_training(t, 0);
    AUR_CHECK(aur_dropout(t, x, 0.25) == x, "dropout is the identity when not training");
    aur_tensor_free(x);
    aur_tape_free(t);
}

/* After the first step sizes the arena, training steps call malloc no more. */
static void test_no_malloc_after_first_step(void)
{
    mlp n = make_mlp(16, 32);
    aur_tensor *x = random_tensor(aur_shape2(64, 16)), *y = random_tensor(aur_shape2(64, 16));
    aur_optim_opts oo = aur_adafactor_defaults();
    aur_optim *opt = aur_optim_create(n.m, &oo);
    aur_tape *t = aur_tape_create();
    long counts[4];
    for (int step = 0; step < 4; step++) {
        long before = n_mallocs;
        aur_tensor *l = forward(t, &n, x, y, step % 2); /* plain and checkpointed steps alternate */
        aur_backward(t, l);
        double norm;
        aur_clip_grad_norm(n.m, 1.0, &norm);
        aur_optim_step(opt);
        aur_model_zero_grad(n.m);
        aur_tape_reset(t);
        counts[step] = n_mallocs - before;
    }
    AUR_CHECK(counts[0] > 0 && counts[2] == 0 && counts[3] == 0, "mallocs per step: %ld %ld %ld %ld", counts[0], counts[1],
              counts[2], counts[3]);
    aur_tape_free(t);
    aur_optim_free(opt);
    aur_tensor_free(x);
    aur_tensor_free(y);
    aur_model_free(n.m);
}

/* The mallocs of n training steps (forward and loss by fn, backward, clipping,
   an AdamW step, zero_grad, reset) of a model, into counts. */
typedef aur_tensor *(*step_loss_fn)(aur_model *m, aur_tape *t, void *ctx);
static void count_step_mallocs(aur_model *m, step_loss_fn fn, void *ctx, long *counts, int n)
{
    aur_optim_opts oo = aur_adamw_defaults();
    aur_optim *opt = aur_optim_create(m, &oo);
    aur_tape *t = aur_tape_create();
    for (int step = 0; step < n; step++) {
        long before = n_mallocs;
        aur_tensor *l = fn(m, t, ctx);
        double norm;
        int rc = !l || aur_backward(t, l) || aur_clip_grad_norm(m, 1.0, &norm) || aur_optim_step(opt);
        AUR_CHECK(!rc, "training step %d runs: %s", step, rc ? aur_last_error() : "");
        aur_model_zero_grad(m);
        aur_tape_reset(t);
        counts[step] = n_mallocs - before;
    }
    aur_tape_free(t);
    aur_optim_free(opt);
}

/* A 2-step rollout of a small Aurora and its loss against a target. */
typedef struct aurora_case {
    aur_batch *in, *target;
} aurora_case;

static aur_tensor *aurora_rollout_loss(aur_model *m, aur_tape *t, void *ctx)
{
    const aurora_case *k = (const aurora_case *)ctx;
    aur_batch *preds[2];
    if (aur_aurora_rollout(m, t, k->in, 2, preds)) return NULL;
    aur_tensor *l = aur_add(t, aur_aurora_loss(m, t, preds[0], k->target), aur_aurora_loss(m, t, preds[1], k->target));
    aur_batch_free(preds[0]); /* predictions live on the tape: this frees nothing */
    aur_batch_free(preds[1]);
    return l;
}

/* Random fields of H x W with T steps (H = 17: one row more than whole patches, which the rollout crops). */
static aur_batch *small_aurora_batch(const aur_model *m, int T, int H, int W)
{
    const aur_aurora_config *c = aur_aurora_config_of(m);
    aur_batch *b = aur_batch_create(1, T, 3, H, W, &c->surf_vars, &c->static_vars, &c->atmos_vars);
    double lv[3] = {250, 500, 850};
    memcpy(b->levels, lv, sizeof lv);
    for (int i = 0; i < H; i++) b->lat[i] = (float)(90.0 - 180.0 * i / (H - 1));
    for (int j = 0; j < W; j++) b->lon[j] = (float)(360.0 * j / W);
    b->time[0] = 1591012800;
    for (int v = 0; v < b->surf_names.n; v++)
        for (int64_t i = 0; i < b->surf[v]->numel; i++) aur_tensor_f32(b->surf[v])[i] = (aur_real)(280 + 10 * aur_test_normal());
    for (int v = 0; v < b->static_names.n; v++)
        for (int64_t i = 0; i < b->statics[v]->numel; i++) aur_tensor_f32(b->statics[v])[i] = (aur_real)aur_test_normal();
    for (int v = 0; v < b->atmos_names.n; v++)
        for (int64_t i = 0; i < b->atmos[v]->numel; i++) aur_tensor_f32(b->atmos[v])[i] = (aur_real)(10 * aur_test_normal());
    return b;
}

/* Surya's forecast of ts and its MSE against ts's last frame. */
static aur_tensor *surya_loss(aur_model *m, aur_tape *t, void *ctx)
{
    aur_tensor *ts = (aur_tensor *)ctx;
    aur_tensor *y = aur_surya_forward(m, t, ts);
    return y ? aur_mse_loss(t, y, aur_reshape(t, aur_slice(t, ts, 2, ts->shape[2] - 1, 1), aur_tensor_shape(y))) : NULL;
}

/* The same for Aurora (plain and with checkpointed blocks) and Surya: the
   models' constant tables are made in the first step, nothing after it. */
static void test_no_malloc_model_steps(void)
{
    for (int ck = 0; ck < 2; ck++) {
        aur_aurora_config c;
        aur_aurora_preset("aurora-pretrained", &c);
        c.embed_dim = 16, c.num_heads = 2, c.window_size[0] = 2, c.window_size[1] = 2, c.window_size[2] = 4;
        c.n_stages = 2, c.encoder_depths[0] = c.decoder_depths[1] = 2, c.encoder_depths[1] = c.decoder_depths[0] = 1;
        c.encoder_num_heads[0] = c.decoder_num_heads[1] = 2, c.encoder_num_heads[1] = c.decoder_num_heads[0] = 4;
        c.checkpoint = ck ? AUR_CHECKPOINT_ALL : 0;
        aur_model *m = aur_aurora_create(&c, AUR_CPU, 1);
        AUR_CHECK(m != NULL, "small Aurora: %s", m ? "" : aur_last_error());
        if (!m) continue;
        aur_test_rng = 77;
        aurora_case k = {small_aurora_batch(m, 2, 17, 32), small_aurora_batch(m, 1, 16, 32)};
        long counts[4];
        count_step_mallocs(m, aurora_rollout_loss, &k, counts, 4);
        AUR_CHECK(counts[0] > 0 && counts[2] == 0 && counts[3] == 0, "Aurora%s rollout steps: mallocs per step %ld %ld %ld %ld",
                  ck ? " (checkpointed blocks)" : "", counts[0], counts[1], counts[2], counts[3]);
        aur_batch_free(k.in);
        aur_batch_free(k.target);
        aur_model_free(m);
    }
    aur_surya_config sc;
    aur_surya_preset("surya-tiny", &sc);
    sc.img_size = 32, sc.embed_dim = 32, sc.time_dim = 1;
    aur_model *m = aur_surya_create(&sc, AUR_CPU, 1);
    AUR_CHECK(m != NULL, "small Surya: %s", m ? "" : aur_last_error());
    if (!m) return;
    aur_tensor *ts = random_tensor(aur_shape5(1, sc.in_chans, sc.time_dim, sc.img_size, sc.img_size));
    long counts[4];
    count_step_mallocs(m, surya_loss, ts, counts, 4);
    AUR_CHECK(counts[0] > 0 && counts[2] == 0 && counts[3] == 0, "Surya steps: mallocs per step %ld %ld %ld %ld", counts[0], counts[1],
              counts[2], counts[3]);
    aur_tensor_free(ts);
    aur_model_free(m);
}

static void test_unreached(void)
{
    mlp n = make_mlp(4, 8);
    aur_tape *t = aur_tape_create();
    aur_tensor *x = random_tensor(aur_shape2(3, 4));
    aur_tensor *side = aur_linear(t, x, n.w2, n.b2); /* computed but not part of the loss */
    (void)side;
    aur_tensor *l = aur_mean_all(t, aur_linear(t, x, n.w1, n.b1));
    aur_backward(t, l);
    AUR_CHECK(n.w1->grad_written && !n.w2->grad_written, "only parameters on the loss's path are marked");
    int zero = 1;
    for (int64_t i = 0; i < n.w2->numel; i++) zero &= n.w2->grad[i] == 0;
    AUR_CHECK(zero, "a branch off the loss's path gets no gradient");
    aur_tensor_free(x);
    aur_tape_free(t);
    aur_model_free(n.m);
}

int main(void)
{
    test_checkpoint_identical();
    test_checkpoint_identity();
    test_autocast_packs();
    test_accumulation();
    test_errors_propagate();
    test_dropout();
    test_no_malloc_after_first_step();
    test_no_malloc_model_steps();
    test_unreached();
    return aur_test_summary();
}
