#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== Aurora: the building blocks of its modules ====
   Parameters and linear layers by their state_dict names, constants on the
   model's device, the Perceivers' MLP and PerceiverResampler
   (aurora/model/perceiver.py), and the head split of attention. */

/* A constant tensor in the arena from host floats (no gradient), on dev. */
static aur_tensor *aur__const(aur_tape *t, aur_device dev, aur_shape s, const float *v)
{
    aur_tensor *x = aur__tensor(t, AUR_F32, AUR_CPU, s);
    if (x)
        for (int64_t i = 0; i < x->numel; i++) aur__wr(x)[i] = (aur_real)v[i];
    return aur__on(t, x, dev);
}

/* A constant view of a table the model keeps (cached masks, DFT matrices), on the model's device. */
static aur_tensor *aur__const_view(aur_tape *t, aur_model *m, aur_shape s, const aur_real *data)
{
    aur_tensor *x = (aur_tensor *)aur__alloc(t, AUR_CPU, sizeof *x);
    if (!x) return NULL;
    aur__tensor_init(x, AUR_F32, m->device, s);
    x->data = (void *)aur__mirror_of(m, data, sizeof(aur_real) * (size_t)aur_shape_numel(s));
    return x->data ? x : NULL;
}

/* A linear module by name; a PEFT-style adapter on it (lora.h) applies too. */
static aur_tensor *aur__lin(const aur__fwd *F, aur_tensor *x, const char *prefix, int bias)
{
    return aur_model_linear(F->t, F->A->m, prefix, x, bias);
}

static aur_tensor *aur__ln(const aur__fwd *F, aur_tensor *x, const char *prefix, double eps)
{
    aur_tensor *w = aur__paramf(F->A->m, "%s.weight", prefix), *b = aur__paramf(F->A->m, "%s.bias", prefix);
    return w && b ? aur_layernorm(F->t, x, w, b, eps) : NULL;
}

/* Linear -> GELU -> Linear -> dropout: perceiver.py: MLP (the Perceivers' and the surface level's);
   the Swin blocks' MLP (swin3d.py: MLP) drops out after the GELU as well. */
static aur_tensor *aur__mlp(const aur__fwd *F, aur_tensor *x, const char *fc1, const char *fc2, int swin)
{
    aur_scope s = aur_scope_begin(F->t), pre = aur_scope_begin(F->t); /* the hidden layer's bytes go at once (backward holds what it reads) */
    aur_tensor *h = aur_gelu(F->t, aur__lin(F, x, fc1, 1));
    aur_scope_end(F->t, pre, &h, 1); /* fc1's output before fc2 runs (under autocast backward keeps it in BF16) */
    if (swin) h = aur_dropout(F->t, h, F->c->drop_rate);
    aur_tensor *y = aur_dropout(F->t, aur__lin(F, h, fc2, 1), F->c->drop_rate);
    aur_scope_end(F->t, s, &y, 1);
    return y;
}

/* (N, L, nh*hd) -> (N, nh, L, hd) and back. */
static aur_tensor *aur__split_heads(aur_tape *t, aur_tensor *x, int nh)
{
    if (!x) return NULL;
    static const int perm[4] = {0, 2, 1, 3};
    int64_t N = x->shape[0], L = x->shape[1], hd = x->shape[2] / nh;
    return aur_permute(t, aur_reshape(t, x, aur_shape4(N, L, nh, hd)), perm);
}

static aur_tensor *aur__merge_heads(aur_tape *t, aur_tensor *x)
{
    if (!x) return NULL;
    static const int perm[4] = {0, 2, 1, 3};
    int64_t N = x->shape[0], nh = x->shape[1], L = x->shape[2], hd = x->shape[3];
    return aur_reshape(t, aur_permute(t, x, perm), aur_shape3(N, L, nh * hd));
}

/* kv (N, L, 2 nh hd) -> k and v (N, nh, L, hd), views of one head-major copy (2, N, nh, L, hd). */
static void aur__split_kv(aur_tape *t, aur_tensor *kv, int nh, aur_tensor **k, aur_tensor **v)
{
    *k = *v = NULL;
    if (!kv) return;
    static const int perm[5] = {2, 0, 3, 1, 4};
    int64_t N = kv->shape[0], L = kv->shape[1], hd = kv->shape[2] / (2 * nh), s5[5] = {N, L, 2, nh, hd};
    aur_tensor *both = aur_permute(t, aur_reshape(t, kv, aur_shapev(5, s5)), perm);
    *k = aur_reshape(t, aur_slice(t, both, 0, 0, 1), aur_shape4(N, nh, L, hd));
    *v = aur_reshape(t, aur_slice(t, both, 0, 1, 1), aur_shape4(N, nh, L, hd));
}

/* aurora/model/perceiver.py: PerceiverResampler. Latents Q (N, Lq, dim)
   attend to the context X (N, Lc, dim), depth times: attention
   (PerceiverAttention), then the MLP, each with a post-norm residual. With
   ln_kq (stabilise_level_agg) the first layer normalises k and q. */
static aur_tensor *aur__perceiver_resampler(const aur__fwd *F, const char *prefix, aur_tensor *Q, aur_tensor *X, int depth, int ln_kq,
                                            double eps)
{
    char p[256], p2[256];
    aur_tape *t = F->t;
    int nh = F->c->num_heads;
    aur_scope s = aur_scope_begin(t); /* ended after each layer: its temporaries and its input go */
    for (int k = 0; k < depth && Q; k++) {
        aur_scope attn = aur_scope_begin(t);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_q", prefix, k);
        aur_tensor *q = aur__lin(F, Q, p, 0);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_kv", prefix, k);
        aur_tensor *kv = aur__lin(F, X, p, 0);
        int64_t inner = q ? q->shape[2] : 0;
        aur_tensor *kh, *vh;
        if (ln_kq && k == 0) { /* k normalised before the head split, eps 1e-5 */
            aur_tensor *kk = aur_slice(t, kv, -1, 0, inner), *vv = aur_slice(t, kv, -1, inner, inner);
            snprintf(p, sizeof p, "%s.layers.0.0.ln_k", prefix);
            kh = aur__split_heads(t, aur__ln(F, kk, p, 1e-5), nh);
            vh = aur__split_heads(t, vv, nh);
            snprintf(p, sizeof p, "%s.layers.0.0.ln_q", prefix);
            q = aur__ln(F, q, p, 1e-5);
        } else { /* k and v split into heads by one copy, as views of it */
            aur__split_kv(t, kv, nh, &kh, &vh);
        }
        aur_tensor *o = aur_sdpa(t, aur__split_heads(t, q, nh), kh, vh, NULL, 0);
        snprintf(p, sizeof p, "%s.layers.%d.0.to_out", prefix, k);
        o = aur__lin(F, aur__merge_heads(t, o), p, 0);
        aur_scope_end(t, attn, &o, 1); /* the attention's temporaries go at once */
        snprintf(p, sizeof p, "%s.layers.%d.2", prefix, k);
        Q = aur_add(t, aur__ln(F, o, p, eps), Q); /* post-norm residuals */
        snprintf(p, sizeof p, "%s.layers.%d.1.net.0", prefix, k);
        snprintf(p2, sizeof p2, "%s.layers.%d.1.net.2", prefix, k);
        aur_tensor *h = aur__mlp(F, Q, p, p2, 0);
        snprintf(p, sizeof p, "%s.layers.%d.3", prefix, k);
        Q = aur_add(t, aur__ln(F, h, p, eps), Q);
        aur_scope_end(t, s, &Q, 1);
    }
    return Q;
}
