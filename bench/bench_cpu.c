/* bench_cpu.c - GFLOP/s of the CPU matrix product, beside OpenBLAS and the
   machine's measured FMA peak, so the numbers compare across noisy machines.

   Shapes: a square 1024^3 linear layer, the qkv projection of a Swin stage
   (tokens x 256 -> 768), and the batched window attention scores of
   AuroraSmall-like windows (2 x 6 x 12 = 144 tokens, head dim 32). Each time
   is the median of 7 runs after 2 warm-ups. Built by `make bench`, which
   links OpenBLAS (libopenblas-dev) here only. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#include <stdlib.h>
#include <time.h>
#ifdef AUR_BENCH_OPENBLAS
#include <cblas.h>
void openblas_set_num_threads(int);
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef void (*bench_fn)(void *ctx);

static double median_seconds(bench_fn fn, void *ctx)
{
    double t[7];
    fn(ctx);
    fn(ctx);
    for (int i = 0; i < 7; i++) {
        double t0 = now();
        fn(ctx);
        t[i] = now() - t0;
    }
    qsort(t, 7, sizeof t[0], cmp_double);
    return t[3];
}

/* ---- the machine's peak: independent FMA chains on every thread ---- */

#define CHAINS 12
static volatile float sink;

static void fma_loop(void *ctx)
{
    long iters = *(long *)ctx;
    AUR__PRAGMA(omp parallel)
    {
        aur__vec acc[CHAINS], m, a;
        for (int c = 0; c < CHAINS; c++)
            for (int l = 0; l < (int)(sizeof(aur__vec) / sizeof(float)); l++) acc[c][l] = (float)(c + l) * 1e-3f;
        for (int l = 0; l < (int)(sizeof(aur__vec) / sizeof(float)); l++) {
            m[l] = 0.999999f;
            a[l] = 1e-7f;
        }
        for (long i = 0; i < iters; i++)
            for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * m + a;
        float s = 0;
        for (int c = 0; c < CHAINS; c++) s += acc[c][0];
        sink = s;
    }
}

static double peak_gflops(void)
{
    long iters = 2000000;
    double t = median_seconds(fma_loop, &iters);
    double lanes = (double)(sizeof(aur__vec) / sizeof(float));
    return 2.0 * lanes * CHAINS * (double)iters * aur__threads() / t / 1e9;
}

/* ---- ours ---- */

typedef struct mm_case {
    const char *name;
    int64_t batch, M, N, K; /* C (batch x M x N) = A (M x K) B^T (N x K) */
    aur_tape *t;
    aur_tensor *a, *b;
    float *A, *Bm, *C;
} mm_case;

static void ours(void *ctx)
{
    mm_case *c = (mm_case *)ctx;
    aur_tensor *y = c->batch == 1 ? aur_linear(c->t, c->a, c->b, NULL) : aur_matmul(c->t, c->a, c->b, 0, 1);
    if (!y) {
        fprintf(stderr, "%s\n", aur_last_error());
        exit(1);
    }
    aur_tape_reset(c->t);
}

#ifdef AUR_BENCH_OPENBLAS
static void openblas(void *ctx)
{
    mm_case *c = (mm_case *)ctx;
    if (c->batch == 1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->M, (int)c->N, (int)c->K, 1.0f, c->A, (int)c->K, c->Bm,
                    (int)c->K, 0.0f, c->C, (int)c->N);
        return;
    }
    /* many small products: one per thread, as our batched path does */
    openblas_set_num_threads(1);
    AUR__PRAGMA(omp parallel for schedule(dynamic, 1))
    for (int64_t i = 0; i < c->batch; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->M, (int)c->N, (int)c->K, 1.0f, c->A + i * c->M * c->K,
                    (int)c->K, c->Bm + i * c->N * c->K, (int)c->K, 0.0f, c->C + i * c->M * c->N, (int)c->N);
    openblas_set_num_threads(aur__threads());
}
#endif

static void run_case(mm_case *c, double peak)
{
    aur_shape sa = c->batch == 1 ? aur_shape2(c->M, c->K) : aur_shape3(c->batch, c->M, c->K);
    aur_shape sb = c->batch == 1 ? aur_shape2(c->N, c->K) : aur_shape3(c->batch, c->N, c->K);
    c->a = aur_tensor_create(AUR_F32, AUR_CPU, sa);
    c->b = aur_tensor_create(AUR_F32, AUR_CPU, sb);
    for (int64_t i = 0; i < c->a->numel; i++) aur_tensor_f32(c->a)[i] = (float)((i * 37 % 101) - 50) / 50.0f;
    for (int64_t i = 0; i < c->b->numel; i++) aur_tensor_f32(c->b)[i] = (float)((i * 53 % 97) - 48) / 48.0f;
    c->t = aur_tape_create();
    c->A = aur_tensor_f32(c->a);
    c->Bm = aur_tensor_f32(c->b);
    c->C = (float *)malloc(sizeof(float) * (size_t)(c->batch * c->M * c->N));
    double flops = 2.0 * (double)c->batch * (double)c->M * (double)c->N * (double)c->K;
    double g_ours = flops / median_seconds(ours, c) / 1e9;
    printf("%-34s ours %7.1f GFLOP/s (%4.0f%% of peak)", c->name, g_ours, 100 * g_ours / peak);
#ifdef AUR_BENCH_OPENBLAS
    double g_blas = flops / median_seconds(openblas, c) / 1e9;
    printf("  OpenBLAS %7.1f GFLOP/s  ours/OpenBLAS %.2f", g_blas, g_ours / g_blas);
#endif
    printf("\n");
    free(c->C);
    aur_tape_free(c->t);
    aur_tensor_free(c->a);
    aur_tensor_free(c->b);
}

int main(void)
{
    double peak = peak_gflops();
    printf("threads %d, vector %d bytes, micro-tile %dx%d; measured FMA peak %.1f GFLOP/s\n", aur__threads(),
           (int)sizeof(aur__vec), AUR__MR, AUR__NR, peak);
    mm_case cases[] = {
        {"linear 1024 x 1024 x 1024", 1, 1024, 1024, 1024, 0, 0, 0, 0, 0, 0},
        {"linear qkv 8192 x 256 -> 768", 1, 8192, 768, 256, 0, 0, 0, 0, 0, 0},
        {"window scores 512 x (144x32)(32x144)", 512, 144, 144, 32, 0, 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], peak);
    return 0;
}
