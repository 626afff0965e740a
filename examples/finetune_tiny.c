/* finetune_tiny.c - pretrain a tiny transformer, then fine-tune it with a new
   output variable: the workflow of fine-tuning a foundation model, in small.

   usage: finetune_tiny [OUTDIR]      (default demo-out)

   The data is synthetic: smooth travelling waves on a ring of 48 points, 4
   "variables" per point; the task is to predict the fields one time step
   later. Pretraining learns the 4 variables. Fine-tuning adds a 5th output
   (a derived quantity), loads the pretrained checkpoint in filtered mode
   (the new head does not fit, and the report says so), freezes the input
   embedding, gives the new head its own learning rate, and trains with a
   warm-up + cosine schedule, gradient clipping and activation
   checkpointing. Everything runs on the CPU in a few seconds. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#define L 48     /* points on the ring */
#define V 4      /* input variables */
#define D 32     /* width */
#define HEADS 4
#define B 8      /* batch */

typedef struct net {
    aur_model *m;
    aur_tensor *embed_w, *embed_b, *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    aur_tensor *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b, *head_w, *head_b;
} net;

/* Parameters named as a PyTorch state_dict would name them. */
static net make_net(int outputs)
{
    net n;
    n.m = aur_model_create();
    n.embed_w = aur_model_add(n.m, "embed.weight", aur_shape2(D, V), 0);
    n.embed_b = aur_model_add(n.m, "embed.bias", aur_shape1(D), 0);
    n.ln1_w = aur_model_add(n.m, "block.norm1.weight", aur_shape1(D), 0);
    n.ln1_b = aur_model_add(n.m, "block.norm1.bias", aur_shape1(D), 0);
    n.qkv_w = aur_model_add(n.m, "block.attn.qkv.weight", aur_shape2(3 * D, D), 0);
    n.qkv_b = aur_model_add(n.m, "block.attn.qkv.bias", aur_shape1(3 * D), 0);
    n.proj_w = aur_model_add(n.m, "block.attn.proj.weight", aur_shape2(D, D), 0);
    n.proj_b = aur_model_add(n.m, "block.attn.proj.bias", aur_shape1(D), 0);
    n.ln2_w = aur_model_add(n.m, "block.norm2.weight", aur_shape1(D), 0);
    n.ln2_b = aur_model_add(n.m, "block.norm2.bias", aur_shape1(D), 0);
    n.fc1_w = aur_model_add(n.m, "block.mlp.fc1.weight", aur_shape2(4 * D, D), 0);
    n.fc1_b = aur_model_add(n.m, "block.mlp.fc1.bias", aur_shape1(4 * D), 0);
    n.fc2_w = aur_model_add(n.m, "block.mlp.fc2.weight", aur_shape2(D, 4 * D), 0);
    n.fc2_b = aur_model_add(n.m, "block.mlp.fc2.bias", aur_shape1(D), 0);
    n.head_w = aur_model_add(n.m, "head.weight", aur_shape2(outputs, D), 0);
    n.head_b = aur_model_add(n.m, "head.bias", aur_shape1(outputs), 0);
    if (aur_model_alloc(n.m, AUR_CPU)) {
        fprintf(stderr, "%s\n", aur_last_error());
        exit(1);
    }
    return n;
}

static uint64_t rng = 42;
static double uniform(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* torch's default Linear init: U(-1/sqrt(in), 1/sqrt(in)); norms start at 1 and 0. */
static void init_net(net *n)
{
    for (int i = 0; i < aur_model_count(n->m); i++) {
        aur_tensor *p = aur_model_at(n->m, i);
        aur_real *d = aur_tensor_f32(p);
        int is_norm = strstr(p->name, "norm") != NULL, is_bias = strstr(p->name, ".bias") != NULL;
        double bound = 1 / sqrt((double)(p->ndim == 2 ? p->shape[1] : D));
        for (int64_t k = 0; k < p->numel; k++)
            d[k] = is_norm ? (is_bias ? 0 : 1) : (aur_real)((2 * uniform() - 1) * bound);
    }
}

/* The transformer block, written once; it is also the checkpointed segment. */
static aur_tensor *block(aur_tape *t, void *ctx, aur_tensor *const *in, int n_in)
{
    net *n = (net *)ctx;
    aur_tensor *x = in[0]; /* (B, L, D) */
    (void)n_in;
    aur_tensor *h = aur_layernorm(t, x, n->ln1_w, n->ln1_b, 1e-5);
    aur_tensor *qkv = aur_linear(t, h, n->qkv_w, n->qkv_b); /* (B, L, 3D) -> (3, B, H, L, D/H) */
    qkv = aur_permute(t, aur_reshape(t, qkv, aur_shape5(B, L, 3, HEADS, D / HEADS)), (const int[]){2, 0, 3, 1, 4});
    aur_tensor *q = aur_reshape(t, aur_slice(t, qkv, 0, 0, 1), aur_shape4(B, HEADS, L, D / HEADS));
    aur_tensor *k = aur_reshape(t, aur_slice(t, qkv, 0, 1, 1), aur_shape4(B, HEADS, L, D / HEADS));
    aur_tensor *v = aur_reshape(t, aur_slice(t, qkv, 0, 2, 1), aur_shape4(B, HEADS, L, D / HEADS));
    aur_tensor *a = aur_sdpa(t, q, k, v, NULL, 0); /* (B, H, L, D/H) -> (B, L, D) */
    a = aur_reshape(t, aur_permute(t, a, (const int[]){0, 2, 1, 3}), aur_shape3(B, L, D));
    x = aur_add(t, x, aur_linear(t, a, n->proj_w, n->proj_b));
    h = aur_gelu(t, aur_linear(t, aur_layernorm(t, x, n->ln2_w, n->ln2_b, 1e-5), n->fc1_w, n->fc1_b));
    return aur_add(t, x, aur_linear(t, h, n->fc2_w, n->fc2_b));
}

static aur_tensor *forward(aur_tape *t, net *n, aur_tensor *x, int checkpoint)
{
    aur_tensor *h = aur_linear(t, x, n->embed_w, n->embed_b);
    h = checkpoint ? aur_checkpoint(t, block, n, &h, 1) : block(t, n, &h, 1);
    return aur_linear(t, h, n->head_w, n->head_b);
}

/* A batch of waves at random phases, each variable travelling at its own
   speed: inputs at time s, targets at s + 1. Output 5 (fine-tuning only)
   is the local gradient energy. */
static void make_batch(aur_tensor *x, aur_tensor *y, int outputs)
{
    aur_real *xd = aur_tensor_f32(x), *yd = aur_tensor_f32(y);
    for (int b = 0; b < B; b++) {
        double ph[V], speed[V];
        for (int v = 0; v < V; v++) {
            ph[v] = 6.283 * uniform();
            speed[v] = 0.15 * (v + 1);
        }
        for (int i = 0; i < L; i++) {
            double th = 6.283185307 * i / L, e = 0;
            for (int v = 0; v < V; v++) {
                double k = v + 1;
                xd[(b * L + i) * V + v] = (aur_real)sin(k * th + ph[v]);
                yd[(b * L + i) * outputs + v] = (aur_real)sin(k * th + ph[v] + speed[v]);
                e += k * k * cos(k * th + ph[v] + speed[v]) * cos(k * th + ph[v] + speed[v]);
            }
            if (outputs > V) yd[(b * L + i) * outputs + V] = (aur_real)(e / 8 - 0.9);
        }
    }
}

typedef struct run_opts {
    const char *name;
    int outputs, steps, checkpoint;
    aur_optim *opt;
    aur_lr_schedule sched;
    FILE *metrics;
} run_opts;

static double train(net *n, const run_opts *r)
{
    aur_tape *t = aur_tape_create();
    aur_tensor *x = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape3(B, L, V));
    aur_tensor *y = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape3(B, L, r->outputs));
    double first = 0, last = 0;
    for (int step = 0; step < r->steps; step++) {
        make_batch(x, y, r->outputs);
        aur_tensor *loss = aur_mse_loss(t, forward(t, n, x, r->checkpoint), y);
        double norm = 0;
        aur_optim_set_lr_factor(r->opt, aur_lr_factor(&r->sched, step));
        if (!loss || aur_backward(t, loss) || aur_clip_grad_norm(n->m, 1.0, &norm) || aur_optim_step(r->opt)) {
            fprintf(stderr, "%s step %d: %s\n", r->name, step, aur_last_error());
            exit(1);
        }
        last = aur_tensor_f32(loss)[0];
        if (step == 0) first = last;
        if (r->metrics)
            fprintf(r->metrics, "{\"phase\":\"%s\",\"step\":%d,\"loss\":%.6g,\"grad_norm\":%.6g,\"lr\":%.6g}\n", r->name, step,
                    last, norm, aur_optim_group_lr(r->opt, 0));
        if (step % 50 == 0 || step == r->steps - 1)
            printf("  %-9s step %4d  loss %.5f  grad norm %.3f  lr %.2e\n", r->name, step, last, norm, aur_optim_group_lr(r->opt, 0));
        aur_model_zero_grad(n->m);
        aur_tape_reset(t);
    }
    printf("  %s: loss %.5f -> %.5f\n", r->name, first, last);
    aur_tensor_free(x);
    aur_tensor_free(y);
    aur_tape_free(t);
    return last / first;
}

static const char *path_in(const char *dir, const char *file)
{
    static char p[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, file);
    return p[k];
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "demo-out";
    mkdir(dir, 0755);
    clock_t t0 = clock();
    FILE *metrics = fopen(path_in(dir, "metrics.jsonl"), "w");

    printf("1. pretraining on %d variables\n", V);
    net base = make_net(V);
    init_net(&base);
    aur_optim_opts adamw = aur_adamw_defaults();
    adamw.lr = 3e-3;
    run_opts pre = {"pretrain", V, 300, 0, aur_optim_create(base.m, &adamw), {AUR_LR_COSINE, 20, 300, 0.1}, metrics};
    double pre_ratio = train(&base, &pre);
    if (aur_save_safetensors(base.m, path_in(dir, "base.safetensors"))) return fprintf(stderr, "%s\n", aur_last_error()), 1;

    printf("2. fine-tuning with a new output variable\n");
    net ft = make_net(V + 1);
    init_net(&ft);
    aur_load_report rep;
    if (aur_load_safetensors(ft.m, path_in(dir, "base.safetensors"), AUR_LOAD_FILTERED, &rep))
        return fprintf(stderr, "%s\n", aur_last_error()), 1;
    aur_load_report_print(&rep, stdout);
    aur_load_report_free(&rep);
    aur_model_freeze(ft.m, "embed.*");
    printf("  trainable %lld of %lld parameters (embed.* frozen)\n", (long long)aur_model_numel(ft.m, 1),
           (long long)aur_model_numel(ft.m, 0));
    adamw.lr = 3e-4;
    aur_optim *opt = aur_optim_create(ft.m, &adamw);
    aur_optim_add_group(opt, "head.*", 1e-3, 0.01); /* the new head learns faster */
    run_opts fine = {"finetune", V + 1, 300, 1, opt, {AUR_LR_COSINE, 20, 300, 0.1}, metrics};
    double ft_ratio = train(&ft, &fine);
    if (aur_save_safetensors(ft.m, path_in(dir, "finetuned.safetensors")) || aur_optim_save(opt, path_in(dir, "optim.safetensors")))
        return fprintf(stderr, "%s\n", aur_last_error()), 1;
    fclose(metrics);
    printf("wrote %s/{base,finetuned,optim}.safetensors and metrics.jsonl in %.1f s of CPU time\n", dir,
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    aur_optim_free(pre.opt);
    aur_optim_free(opt);
    aur_model_free(base.m);
    aur_model_free(ft.m);
    if (pre_ratio > 0.2 || ft_ratio > 0.5) {
        fprintf(stderr, "the loss did not fall enough (%.2f, %.2f of its first value)\n", pre_ratio, ft_ratio);
        return 1;
    }
    return 0;
}
