/* test_cuda.cu - every op with a CUDA path, GPU against CPU.
   Forward outputs and gradients must agree to 1e-5 (max-normalised). The
   loss is taken on the CPU after aur_to_device, so gradients cross devices. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"

#include <stdlib.h>

#define MAX_IN 3

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

typedef struct gpu_case {
    const char *name;
    op_fn fn;
    int arg, n_in;
    aur_shape shape[MAX_IN];
} gpu_case;

static gpu_case cases[] = {
    {"linear", f_linear, 1, 3, {{3, {4, 33, 70}}, {2, {129, 70}}, {1, {129}}}},
    {"linear_nobias", f_linear, 0, 2, {{2, {300, 64}}, {2, {48, 64}}}},
    {"matmul", f_matmul, 0, 2, {{3, {6, 17, 9}}, {3, {6, 9, 23}}}},
    {"matmul_ta", f_matmul, 1, 2, {{3, {6, 9, 17}}, {3, {6, 9, 23}}}},
    {"matmul_tb", f_matmul, 2, 2, {{4, {2, 3, 17, 9}}, {4, {2, 3, 23, 9}}}},
    {"matmul_ta_tb", f_matmul, 3, 2, {{3, {5, 9, 17}}, {3, {5, 23, 9}}}},
    {"matmul_shared_b", f_matmul, 0, 2, {{3, {7, 12, 9}}, {2, {9, 31}}}},
    {"add_same", f_add, 0, 2, {{2, {37, 41}}, {2, {37, 41}}}},
    {"add_bias", f_add, 0, 2, {{3, {5, 7, 64}}, {1, {64}}}},
    {"sub_mid", f_sub, 0, 2, {{4, {3, 5, 7, 8}}, {4, {3, 1, 7, 1}}}},
    {"mul_both", f_mul, 0, 2, {{2, {9, 1}}, {3, {4, 1, 13}}}},
    {"scale", f_scale, 0, 1, {{1, {1000}}}},
    {"gelu", f_unary, 0, 1, {{2, {50, 70}}}},
    {"gelu_tanh", f_unary, 1, 1, {{2, {50, 70}}}},
    {"silu", f_unary, 2, 1, {{2, {50, 70}}}},
    {"sigmoid", f_unary, 3, 1, {{2, {50, 70}}}},
    {"mlp", f_mlp, 0, 3, {{3, {4, 8, 16}}, {2, {16, 16}}, {1, {16}}}},
};

/* Runs a case on one device: inputs from host data, loss on the CPU. */
static int run(const gpu_case *c, aur_device dev, double **host_in, double *out, double **grads, int64_t *out_n)
{
    aur_tape *t = aur_tape_create();
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

int main(void)
{
    if (!aur_cuda_available()) {
        printf("no CUDA device: the GPU tests need one\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const gpu_case *c = &cases[ci];
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
        int bad = run(c, AUR_CPU, host, o_cpu, g_cpu, &n1) | run(c, AUR_CUDA, host, o_gpu, g_gpu, &n2);
        AUR_CHECK(!bad && n1 == n2, "%s ran on both devices", c->name);
        if (!bad) {
            char name[96];
            snprintf(name, sizeof name, "%s forward", c->name);
            aur_test_close(name, o_gpu, o_cpu, n1, 1e-5);
            for (int i = 0; i < c->n_in; i++) {
                snprintf(name, sizeof name, "%s grad %d", c->name, i);
                aur_test_close(name, g_gpu[i], g_cpu[i], aur_shape_numel(c->shape[i]), 1e-5);
            }
        }
        for (int i = 0; i < c->n_in; i++) {
            free(host[i]);
            free(g_cpu[i]);
            free(g_gpu[i]);
        }
        free(o_cpu);
        free(o_gpu);
    }
    size_t cur, peak;
    aur_cuda_memory(&cur, &peak);
    printf("GPU memory through the library: %zu bytes now, %zu at peak\n", cur, peak);
    AUR_CHECK(cur == 0, "every GPU block was freed (%zu bytes left)", cur);
    return aur_test_summary();
}
