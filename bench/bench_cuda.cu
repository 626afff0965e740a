/* bench_cuda.cu - Aurora on the GPU at 0.25 degrees, beside PyTorch.

   usage: bench_cuda [--model NAME] [--grid HxW] [--reps N] [--warmup N] [--unfused] [--tiny]

   For AuroraSmallPretrained and AuroraPretrained (random weights): the
   forward pass alone, and a fine-tuning step (forward, loss, backward,
   AdamW over every parameter) without and with activation checkpointing.
   The input is issue 5's: 721 x 1440, 13 levels, 4 surface, 3 static and 5
   atmospheric variables, B = 1, T = 2, the backbone under BF16 autocast as
   the reference runs it. Each time is the median of --reps runs after
   --warmup runs, timed with CUDA events; memory is the peak of every GPU
   byte the library allocated (parameters, gradients, optimiser state and
   the activation arena). Each figure is printed beside PyTorch 2.11's on
   one H100 80GB (recorded in the issue) with the ratio PyTorch / ours:
   above 1 is faster or leaner here. The goal: 1.5x faster, half the memory.

   --unfused times the attention as cuBLAS products (aur_tape_set_fused_attention(t, 0)).
   --tiny runs a small model on a 32 x 64 grid: it checks the program itself
   (it runs under tests/cuda_emu.h on a CPU), not the speed. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#include <math.h>
#include <stdlib.h>

/* PyTorch 2.11 eager, H100 80GB, TF32 off, bf16 autocast of the backbone (issue 5). NAN: out of memory. */
typedef struct torch_row {
    const char *model;
    double ms[3], gib[3]; /* forward, step, step with checkpointing */
} torch_row;
static const torch_row torch_h100[] = {
    {"AuroraSmallPretrained", {219.5, 615.8, 962.3}, {12.2, 64.9, 27.6}},
    {"AuroraPretrained", {797.6, NAN, 3789.7}, {26.6, NAN, 64.8}},
};
static const char *const row_names[3] = {"forward", "step, no checkpointing", "step, checkpointing"};

typedef struct bench_opts {
    int H, W, reps, warmup, tiny;
    const char *model;
    int unfused;
} bench_opts;

static double now_ms(cudaEvent_t a, cudaEvent_t b)
{
    float ms = 0;
    cudaEventSynchronize(b);
    cudaEventElapsedTime(&ms, a, b);
    return ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng_state = 7;
static float uniform(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0);
}

static void set_list(aur_var_list *l, const char *const *names, int n)
{
    l->n = n;
    for (int i = 0; i < n; i++) snprintf(l->name[i], AUR_NAME_LEN, "%s", names[i]);
}

/* Issue 5's batch on the host: smooth random fields on a 0.25-degree grid (or the tiny one). */
static aur_batch *make_batch(const bench_opts *o, int T)
{
    static const char *const surf[] = {"2t", "10u", "10v", "msl"}, *const stat[] = {"lsm", "z", "slt"};
    static const char *const atmos[] = {"z", "u", "v", "t", "q"};
    static const double levels[] = {50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000};
    aur_var_list sv, st, av;
    set_list(&sv, surf, 4);
    set_list(&st, stat, 3);
    set_list(&av, atmos, 5);
    aur_batch *b = aur_batch_create(1, T, 13, o->H, o->W, &sv, &st, &av);
    if (!b) return NULL;
    for (int i = 0; i < o->H; i++) b->lat[i] = (float)(90.0 - 180.0 * i / (o->H - 1));
    for (int j = 0; j < o->W; j++) b->lon[j] = (float)(360.0 * j / o->W);
    for (int k = 0; k < 13; k++) b->levels[k] = levels[k];
    b->time[0] = 1672531200.0; /* 2023-01-01 00:00 UTC */
    aur_tensor **all[3] = {b->surf, b->statics, b->atmos};
    int counts[3] = {4, 3, 5};
    for (int g = 0; g < 3; g++)
        for (int v = 0; v < counts[g]; v++) {
            aur_real *d = aur_tensor_f32(all[g][v]);
            for (int64_t i = 0; i < all[g][v]->numel; i++) d[i] = (aur_real)(uniform() - 0.5f);
        }
    return b;
}

/* The model of a row: issue 5's variables; --tiny shrinks it. */
static aur_model *make_model(const bench_opts *o, const char *name, int train, int checkpointing)
{
    aur_aurora_config c;
    if (aur_aurora_preset(name, &c)) return NULL;
    static const char *const surf[] = {"2t", "10u", "10v", "msl"}, *const stat[] = {"lsm", "z", "slt"};
    static const char *const atmos[] = {"z", "u", "v", "t", "q"};
    set_list(&c.surf_vars, surf, 4);
    set_list(&c.static_vars, stat, 3);
    set_list(&c.atmos_vars, atmos, 5);
    if (o->tiny) {
        c.embed_dim = 32, c.num_heads = 2, c.n_stages = 2;
        for (int s = 0; s < 2; s++) c.encoder_depths[s] = c.decoder_depths[s] = 1;
        c.encoder_num_heads[0] = c.decoder_num_heads[1] = 2, c.encoder_num_heads[1] = c.decoder_num_heads[0] = 4;
        c.window_size[0] = 2, c.window_size[1] = c.window_size[2] = 4;
    }
    c.autocast = 1; /* the backbone in BF16, as the reference */
    c.checkpoint = checkpointing ? AUR_CHECKPOINT_ALL : 0;
    aur_model *m = aur_aurora_declare_model(&c);
    if (!m) return NULL;
    if (!train) aur_model_freeze(m, "*"); /* forward only: no gradient slab */
    if (aur_model_alloc(m, AUR_CUDA) || aur_aurora_init_weights(m, 1)) {
        aur_model_free(m);
        return NULL;
    }
    return m;
}

/* One measurement: median milliseconds and peak GiB of `reps` runs of the row's work. */
typedef struct result {
    double ms, gib;
    int failed;
    char why[160];
} result;

static int run_once(aur_model *m, aur_optim *opt, aur_tape *t, const aur_batch *in, const aur_batch *target)
{
    aur_tape_reset(t);
    aur_batch *pred = aur_aurora_forward(m, t, in);
    int rc = pred ? 0 : AUR_EINVAL;
    if (!rc && opt) {
        aur_tensor *loss = aur_aurora_loss(m, t, pred, target);
        rc = loss ? aur_backward(t, loss) : AUR_EINVAL;
        if (!rc) rc = aur_optim_step(opt);
        aur_model_zero_grad(m);
    }
    aur_batch_free(pred);
    if (!rc) rc = cudaDeviceSynchronize() == cudaSuccess ? 0 : AUR_ECUDA;
    return rc;
}

static result measure(const bench_opts *o, const char *name, int row)
{
    result r;
    memset(&r, 0, sizeof r);
    int train = row > 0;
    aur_cuda_reset_peak();
    aur_model *m = make_model(o, name, train, row == 2);
    aur_batch *in = make_batch(o, 2), *target = make_batch(o, 1);
    aur_optim_opts oo = aur_adamw_defaults();
    aur_optim *opt = m && train ? aur_optim_create(m, &oo) : NULL;
    aur_tape *t = aur_tape_create();
    if (!t || !m || !in || !target || (train && !opt)) {
        r.failed = 1;
        snprintf(r.why, sizeof r.why, "%.150s", aur_last_error());
    } else {
        aur_tape_set_grad(t, train);
        aur_tape_set_fused_attention(t, !o->unfused);
        double times[64];
        cudaEvent_t a, b;
        cudaEventCreate(&a);
        cudaEventCreate(&b);
        int n = o->reps < 64 ? o->reps : 64;
        for (int i = 0; i < o->warmup + n && !r.failed; i++) {
            cudaEventRecord(a, 0);
            if (run_once(m, opt, t, in, target)) {
                r.failed = 1;
                snprintf(r.why, sizeof r.why, "%.150s", aur_last_error());
            }
            cudaEventRecord(b, 0);
            if (i >= o->warmup) times[i - o->warmup] = now_ms(a, b);
        }
        cudaEventDestroy(a);
        cudaEventDestroy(b);
        if (!r.failed) {
            qsort(times, (size_t)n, sizeof times[0], cmp_double);
            r.ms = times[n / 2];
            size_t cur, peak;
            aur_cuda_memory(&cur, &peak);
            r.gib = (double)peak / (1024.0 * 1024.0 * 1024.0);
        }
    }
    aur_tape_free(t);
    aur_optim_free(opt);
    aur_model_free(m);
    aur_batch_free(in);
    aur_batch_free(target);
    return r;
}

static void print_cell(double torch, double ours, const char *unit)
{
    if (isnan(torch)) printf(" | %9.1f %-3s (torch: out of memory)", ours, unit);
    else printf(" | %9.1f %-3s torch %8.1f  x%-5.2f", ours, unit, torch, torch / ours);
}

int main(int argc, char **argv)
{
    bench_opts o = {721, 1440, 5, 2, 0, NULL, 0};
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--model") && a + 1 < argc) o.model = argv[++a];
        else if (!strcmp(argv[a], "--grid") && a + 1 < argc && sscanf(argv[++a], "%dx%d", &o.H, &o.W) == 2) continue;
        else if (!strcmp(argv[a], "--reps") && a + 1 < argc) o.reps = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--warmup") && a + 1 < argc) o.warmup = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--tiny")) o.tiny = 1, o.H = 32, o.W = 64;
        else if (!strcmp(argv[a], "--unfused")) o.unfused = 1;
        else {
            fprintf(stderr, "usage: bench_cuda [--model NAME] [--grid HxW] [--reps N] [--warmup N] [--unfused] [--tiny]\n");
            return 1;
        }
    }
    if (!aur_cuda_available()) {
        printf("bench_cuda: no CUDA device\n");
        return 1;
    }
    if (o.reps < 1) o.reps = 1;
    printf("Aurora on the GPU: %d x %d, 13 levels, 4 surface, 3 static, 5 atmospheric variables, B 1, T 2, "
           "BF16 autocast of the backbone; median of %d after %d warm-ups.\n", o.H, o.W, o.reps, o.warmup);
    printf("Ratios are PyTorch / ours (issue 5's H100 figures): above 1 is faster or leaner here.%s\n\n",
           o.tiny ? " --tiny: a small model on a small grid, so the ratios mean nothing" : "");
    int failures = 0;
    for (size_t mi = 0; mi < sizeof torch_h100 / sizeof torch_h100[0]; mi++) {
        const torch_row *tr = &torch_h100[mi];
        if (o.model && strcmp(o.model, tr->model)) continue;
        for (int row = 0; row < 3; row++) {
            result r = measure(&o, tr->model, row);
            printf("%-22s %-24s", tr->model, row_names[row]);
            if (r.failed) {
                printf(" | failed: %s\n", r.why);
                failures++;
                continue;
            }
            print_cell(tr->ms[row], r.ms, "ms");
            print_cell(tr->gib[row], r.gib, "GiB");
            printf("\n");
        }
    }
    return failures ? 1 : 0;
}
