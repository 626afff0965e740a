/* test_ops.c - every op against PyTorch, forward and gradient, in F32.

   tests/fixtures/ops/ was made by tools/make_op_fixtures.py with torch on a
   CPU: for each case C, inputs C/<name>, the output C/out, a random C/dout,
   and C/grad/<name> = d sum(out * dout) / d input. cases.json says which op
   and which arguments. Also: BF16 rounding and the CPU autocast path. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"

#include <stdlib.h>

#define FIXTURES "tests/fixtures/ops/"
#define MAX_IN 4


static const cJSON *arg(const cJSON *args, const char *k) { return cJSON_GetObjectItemCaseSensitive(args, k); }
static int64_t iarg(const cJSON *args, const char *k, int64_t dflt)
{
    const cJSON *v = arg(args, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}
static double farg(const cJSON *args, const char *k, double dflt)
{
    const cJSON *v = arg(args, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}
static int ilist(const cJSON *args, const char *k, int64_t *out)
{
    int n = 0;
    for (const cJSON *v = arg(args, k) ? arg(args, k)->child : NULL; v; v = v->next) out[n++] = (int64_t)v->valuedouble;
    return n;
}

/* Runs the op a case names on its inputs. */
static aur_tensor *run_op(aur_tape *t, const char *op, aur_tensor **x, int n, const cJSON *args)
{
    int64_t v[16];
    if (!strcmp(op, "linear")) return aur_linear(t, x[0], x[1], n > 2 ? x[2] : NULL);
    if (!strcmp(op, "matmul")) return aur_matmul(t, x[0], x[1], (int)iarg(args, "ta", 0), (int)iarg(args, "tb", 0));
    if (!strcmp(op, "add")) return aur_add(t, x[0], x[1]);
    if (!strcmp(op, "sub")) return aur_sub(t, x[0], x[1]);
    if (!strcmp(op, "mul")) return aur_mul(t, x[0], x[1]);
    if (!strcmp(op, "scale")) return aur_scale(t, x[0], farg(args, "s", 1));
    if (!strcmp(op, "layernorm")) return aur_layernorm(t, x[0], n > 1 ? x[1] : NULL, n > 1 ? x[2] : NULL, farg(args, "eps", 1e-5));
    if (!strcmp(op, "gelu")) return aur_gelu(t, x[0]);
    if (!strcmp(op, "gelu_tanh")) return aur_gelu_tanh(t, x[0]);
    if (!strcmp(op, "silu")) return aur_silu(t, x[0]);
    if (!strcmp(op, "sigmoid")) return aur_sigmoid(t, x[0]);
    if (!strcmp(op, "softmax")) return aur_softmax(t, x[0]);
    if (!strcmp(op, "log")) return aur_log(t, x[0]);
    if (!strcmp(op, "sin")) return aur_sin(t, x[0]);
    if (!strcmp(op, "cos")) return aur_cos(t, x[0]);
    if (!strcmp(op, "sdpa")) {
        const cJSON *mode = arg(args, "mask_mode");
        if (cJSON_IsString(mode) && !strcmp(mode->valuestring, "window")) {
            /* batch = (B, nW) flattened: split it so the (nW, 1, N, N) mask broadcasts numpy-style */
            int64_t nw = n > 3 ? x[3]->shape[0] : 1, bt = x[0]->shape[0];
            aur_shape s = aur_shape5(bt / nw, nw, x[0]->shape[1], x[0]->shape[2], x[0]->shape[3]);
            aur_tensor *q = aur_reshape(t, x[0], s), *k = aur_reshape(t, x[1], s), *vv = aur_reshape(t, x[2], s);
            return aur_reshape(t, aur_sdpa(t, q, k, vv, n > 3 ? x[3] : NULL, farg(args, "scale", 0)), aur_tensor_shape(x[0]));
        }
        return aur_sdpa(t, x[0], x[1], x[2], n > 3 ? x[3] : NULL, farg(args, "scale", 0));
    }
    if (!strcmp(op, "concat")) return aur_concat(t, x, n, (int)iarg(args, "axis", 0));
    if (!strcmp(op, "slice")) return aur_slice(t, x[0], (int)iarg(args, "axis", 0), iarg(args, "start", 0), iarg(args, "len", 0));
    if (!strcmp(op, "pad")) {
        int64_t before[AUR_MAX_DIMS], after[AUR_MAX_DIMS];
        int d = 0;
        for (const cJSON *p = arg(args, "pads")->child; p; p = p->next, d++) {
            before[d] = (int64_t)cJSON_GetArrayItem(p, 0)->valuedouble;
            after[d] = (int64_t)cJSON_GetArrayItem(p, 1)->valuedouble;
        }
        return aur_pad(t, x[0], before, after, farg(args, "value", 0));
    }
    if (!strcmp(op, "permute")) {
        int perm[AUR_MAX_DIMS], k = ilist(args, "perm", v);
        for (int i = 0; i < k; i++) perm[i] = (int)v[i];
        return aur_permute(t, x[0], perm);
    }
    if (!strcmp(op, "reshape")) {
        int k = ilist(args, "shape", v);
        return aur_reshape(t, x[0], aur_shapev(k, v));
    }
    if (!strcmp(op, "atan2")) return aur_atan2(t, x[0], x[1]);
    if (!strcmp(op, "remainder")) return aur_remainder(t, x[0], farg(args, "m", 1));
    if (!strcmp(op, "nan_to_num")) return aur_nan_to_num(t, x[0], farg(args, "nan", 0));
    if (!strcmp(op, "clamp")) return aur_clamp(t, x[0], farg(args, "lo", -INFINITY), farg(args, "hi", INFINITY));
    if (!strcmp(op, "expand")) {
        int k = ilist(args, "shape", v);
        return aur_expand(t, x[0], aur_shapev(k, v));
    }
    if (!strcmp(op, "roll")) {
        ilist(args, "shifts", v);
        return aur_roll(t, x[0], v);
    }
    if (!strcmp(op, "sum") || !strcmp(op, "mean") || !strcmp(op, "max")) {
        const cJSON *ax = arg(args, "axis");
        int keep = (int)iarg(args, "keepdim", 0);
        if (!cJSON_IsNumber(ax)) return op[1] == 'u' ? aur_sum_all(t, x[0]) : aur_mean_all(t, x[0]);
        if (op[1] == 'u') return aur_sum(t, x[0], ax->valueint, keep);
        return op[1] == 'e' ? aur_mean(t, x[0], ax->valueint, keep) : aur_max(t, x[0], ax->valueint, keep);
    }
    if (!strcmp(op, "mse")) return aur_mse_loss(t, x[0], x[1]);
    if (!strcmp(op, "mae")) return aur_mae_loss(t, x[0], x[1]);
    if (!strcmp(op, "bce_logits")) return aur_bce_logits_loss(t, x[0], x[1], n > 2 ? x[2] : NULL);
    if (!strcmp(op, "cross_entropy"))
        return aur_cross_entropy(t, x[0], x[1], iarg(args, "ignore_index", -100), farg(args, "label_smoothing", 0));
    printf("unknown op '%s'\n", op);
    return NULL;
}

static aur_tensor *load(const aur_st_file *f, const char *name)
{
    const aur_st_tensor *e = aur_st_find(f, name);
    if (!e) return NULL;
    aur_tensor *t = aur_tensor_create(AUR_F32, AUR_CPU, aur_shapev(e->ndim, e->shape));
    aur_st_read(f, e, AUR_F32, t->data);
    return t;
}

static void compare(const char *label, const aur_real *got, const aur_tensor *want, double tol)
{
    double *g = (double *)malloc(sizeof(double) * (size_t)(want->numel + 1)), *w = (double *)malloc(sizeof(double) * (size_t)(want->numel + 1));
    for (int64_t i = 0; i < want->numel; i++) {
        g[i] = got[i];
        w[i] = ((const aur_real *)want->data)[i];
    }
    aur_test_close(label, g, w, want->numel, tol);
    free(g);
    free(w);
}

static int in_list(const cJSON *list, const char *s)
{
    for (const cJSON *v = list ? list->child : NULL; v; v = v->next)
        if (!strcmp(v->valuestring, s)) return 1;
    return 0;
}

static void run_case(aur_tape *t, const aur_st_file *f, const cJSON *c)
{
    const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
    const char *op = cJSON_GetObjectItemCaseSensitive(c, "op")->valuestring;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(c, "inputs"), *grads = cJSON_GetObjectItemCaseSensitive(c, "grads");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(c, "args");
    aur_tensor *x[MAX_IN] = {0};
    char key[256];
    int n = 0;
    for (const cJSON *in = inputs->child; in && n < MAX_IN; in = in->next, n++) {
        snprintf(key, sizeof key, "%s/%s", name, in->valuestring);
        x[n] = load(f, key);
        AUR_CHECK(x[n] != NULL, "%s: missing %s", name, key);
        if (!x[n]) return;
        x[n]->requires_grad = in_list(grads, in->valuestring);
    }
    snprintf(key, sizeof key, "%s/out", name);
    aur_tensor *want = load(f, key);
    snprintf(key, sizeof key, "%s/dout", name);
    aur_tensor *dout = load(f, key);
    aur_tape_reset(t);
    aur_tensor *y = run_op(t, op, x, n, args);
    AUR_CHECK(y && want && y->numel == want->numel, "%s: ran with the reference's size: %s", name, y ? "size differs" : aur_last_error());
    if (y && want && dout && y->numel == want->numel) {
        snprintf(key, sizeof key, "%s out", name);
        compare(key, (const aur_real *)y->data, want, 1e-5);
        aur_tensor *dflat = aur_reshape(t, dout, aur_tensor_shape(y));
        int rc = aur_backward(t, aur_sum_all(t, aur_mul(t, y, dflat)));
        AUR_CHECK(rc == 0, "%s backward: %s", name, aur_last_error());
        int i = 0;
        for (const cJSON *in = inputs->child; in && !rc; in = in->next, i++) {
            if (!in_list(grads, in->valuestring)) continue;
            snprintf(key, sizeof key, "%s/grad/%s", name, in->valuestring);
            aur_tensor *gw = load(f, key);
            AUR_CHECK(gw && x[i]->grad, "%s: gradient %s", name, key);
            snprintf(key, sizeof key, "%s grad %s", name, in->valuestring);
            if (gw && x[i]->grad) compare(key, x[i]->grad, gw, 1e-5);
            aur_tensor_free(gw);
        }
    }
    for (int i = 0; i < n; i++) aur_tensor_free(x[i]);
    aur_tensor_free(want);
    aur_tensor_free(dout);
}

static void test_against_torch(void)
{
    cJSON *cases = aur_json_load(FIXTURES "cases.json");
    aur_st_file *f = aur_st_open(FIXTURES "ops.safetensors");
    AUR_CHECK(cases && f, "the op fixtures load: %s", aur_last_error());
    if (!cases || !f) return;
    aur_tape *t = aur_tape_create();
    int n = 0;
    for (const cJSON *c = cJSON_GetObjectItemCaseSensitive(cases, "cases")->child; c; c = c->next, n++) run_case(t, f, c);
    printf("%d op cases against torch\n", n);
    aur_tape_free(t);
    aur_st_close(f);
    cJSON_Delete(cases);
}

/* ---- BF16 and the CPU autocast path ---- */

static void test_bf16(void)
{
    AUR_CHECK(aur_f32_to_bf16(1.0f) == 0x3F80, "1.0");
    AUR_CHECK(aur_f32_to_bf16(1.00390625f) == 0x3F80, "a tie rounds to even (down)");
    AUR_CHECK(aur_f32_to_bf16(1.01171875f) == 0x3F82, "a tie rounds to even (up)");
    AUR_CHECK(aur_f32_to_bf16(nextafterf(1.00390625f, 2.0f)) == 0x3F81, "just above the tie rounds up");
    AUR_CHECK(isnan(aur_bf16_to_f32(aur_f32_to_bf16(NAN))), "NaN stays NaN");
    AUR_CHECK(aur_f32_to_bf16(3.4e38f) == 0x7F80, "overflow rounds to inf");
    aur_tape *t = aur_tape_create();
    aur_tensor *x = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape1(4));
    aur_real v[4] = {1.0f, 1.00390625f, -2.7182817f, 65504.0f};
    aur_tensor_set(x, v, 4);
    aur_tensor *b = aur_cast(t, x, AUR_BF16), *back = aur_cast(t, b, AUR_F32);
    AUR_CHECK(b && back && b->dtype == AUR_BF16 && aur_tensor_f32(back)[2] == aur_round_bf16(-2.7182817f), "cast F32 -> BF16 -> F32");
    aur_tensor_free(x);
    aur_tape_free(t);
}

/* Under autocast a linear layer equals one computed on BF16-rounded operands, rounded to BF16. */
static void test_autocast_linear(void)
{
    aur_tape *t = aur_tape_create();
    aur_tensor *x = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape2(5, 7)), *w = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape2(3, 7));
    aur_tensor *b = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape1(3));
    for (int64_t i = 0; i < 35; i++) aur_tensor_f32(x)[i] = (aur_real)aur_test_normal();
    for (int64_t i = 0; i < 21; i++) aur_tensor_f32(w)[i] = (aur_real)aur_test_normal();
    for (int64_t i = 0; i < 3; i++) aur_tensor_f32(b)[i] = (aur_real)aur_test_normal();
    w->requires_grad = 1;
    aur_tape_set_autocast(t, 1);
    aur_tensor *y = aur_linear(t, x, w, b);
    aur_tape_set_autocast(t, 0);
    int exact = 1, rounded = 1, differs = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++) {
            float s = 0;
            for (int k = 0; k < 7; k++) s += aur_round_bf16(aur_tensor_f32(x)[i * 7 + k]) * aur_round_bf16(aur_tensor_f32(w)[j * 7 + k]);
            s += aur_round_bf16(aur_tensor_f32(b)[j]);
            float got = aur_tensor_f32(y)[i * 3 + j];
            exact &= fabsf(got - aur_round_bf16(s)) <= 1e-2f * fabsf(s) + 1e-6f;
            rounded &= aur_round_bf16(got) == got;
            float full = 0;
            for (int k = 0; k < 7; k++) full += aur_tensor_f32(x)[i * 7 + k] * aur_tensor_f32(w)[j * 7 + k];
            differs |= got != full + aur_tensor_f32(b)[j];
        }
    AUR_CHECK(exact && rounded && differs, "autocast linear: BF16 operands, F32 accumulation, BF16 result");
    AUR_CHECK(aur_backward(t, aur_sum_all(t, y)) == 0, "autocast backward");
    int grad_rounded = 1;
    for (int64_t i = 0; i < 21; i++) grad_rounded &= aur_round_bf16(w->grad[i]) == w->grad[i];
    AUR_CHECK(grad_rounded, "the weight gradient of an autocast product is a BF16 value");
    aur_tensor_free(x);
    aur_tensor_free(w);
    aur_tensor_free(b);
    aur_tape_free(t);
}

int main(void)
{
    test_against_torch();
    test_bf16();
    test_autocast_linear();
    return aur_test_summary();
}
