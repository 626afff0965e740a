#include "api.h"
#include "platform.h"

/* ==== CPU matrix product ====
   C (M x N, row stride ldc) = A (M x K) B (K x N), or C += A B. A and B are
   read through strides (element (i,p) of A at A[i*ars + p*acs]), so every
   transpose is free. The BLIS layout: B is packed in KC x NR panels shared by
   all threads, each thread packs an MC x KC block of A in MR-row panels, and
   a micro-kernel keeps an MR x NR tile of C in vector registers. */

#if defined(__GNUC__)
#if defined(__AVX512F__)
#define AUR__VBYTES 64
#define AUR__MR 8
#elif defined(__AVX__)
#define AUR__VBYTES 32
#define AUR__MR 6
#else
#define AUR__VBYTES 16
#define AUR__MR 4
#endif
typedef aur_real aur__vec __attribute__((vector_size(AUR__VBYTES)));
#if defined(__CUDACC__) || defined(__clang__)
#define AUR__UNROLL(n)
#else
#define AUR__UNROLL(n) AUR__PRAGMA(GCC unroll n)
#endif
#define AUR__NV 2 /* vectors per micro-tile row */
#define AUR__NR (AUR__NV * (AUR__VBYTES / (int)sizeof(aur_real)))
#else
#define AUR__MR 4
#define AUR__NR 8
#endif
#define AUR__KC 256
#define AUR__MC (AUR__MR * 24)
#define AUR__NC (AUR__NR * 96)

typedef struct aur__mat {
    const aur_real *p;
    int64_t rs, cs; /* element (i, j) at p[i*rs + j*cs] */
} aur__mat;

static aur__mat aur__matv(const aur_real *p, int64_t rs, int64_t cs)
{
    aur__mat m;
    m.p = p;
    m.rs = rs;
    m.cs = cs;
    return m;
}

/* MR-row panels of A[0:mc, 0:kc]: panel r holds A[r*MR + i][p] at r*kc*MR + p*MR + i. */
static void aur__pack_a(aur_real *dst, aur__mat a, int64_t mc, int64_t kc)
{
    for (int64_t r = 0; r < mc; r += AUR__MR, dst += kc * AUR__MR) {
        int64_t mr = mc - r < AUR__MR ? mc - r : AUR__MR;
        for (int64_t p = 0; p < kc; p++) {
            const aur_real *src = a.p + r * a.rs + p * a.cs;
            aur_real *d = dst + p * AUR__MR;
            int64_t i = 0;
            for (; i < mr; i++) d[i] = src[i * a.rs];
            for (; i < AUR__MR; i++) d[i] = 0;
        }
    }
}

/* NR-column panels of B[0:kc, 0:nc]: panel c holds B[p][c*NR + j] at c*kc*NR + p*NR + j. */
static void aur__pack_b_panel(aur_real *dst, aur__mat b, int64_t kc, int64_t nr)
{
    for (int64_t p = 0; p < kc; p++) {
        const aur_real *src = b.p + p * b.rs;
        aur_real *d = dst + p * AUR__NR;
        int64_t j = 0;
        if (b.cs == 1)
            for (; j < nr; j++) d[j] = src[j];
        else
            for (; j < nr; j++) d[j] = src[j * b.cs];
        for (; j < AUR__NR; j++) d[j] = 0;
    }
}

/* c[0:mr, 0:nr] (+)= packed a panel x packed b panel over kc. */
static void aur__micro(int64_t kc, const aur_real *a, const aur_real *b, aur_real *c, int64_t ldc, int64_t mr,
                       int64_t nr, int accumulate)
{
#if defined(__GNUC__)
    aur__vec acc[AUR__MR][AUR__NV];
    memset(acc, 0, sizeof acc);
    for (int64_t p = 0; p < kc; p++) {
        const aur__vec *bv = (const aur__vec *)(b + p * AUR__NR);
        const aur_real *ap = a + p * AUR__MR;
        AUR__UNROLL(16)
        for (int i = 0; i < AUR__MR; i++)
            AUR__UNROLL(4)
            for (int v = 0; v < AUR__NV; v++) acc[i][v] += ap[i] * bv[v];
    }
    aur_real tile[AUR__MR * AUR__NR];
    memcpy(tile, acc, sizeof tile);
#else
    aur_real tile[AUR__MR * AUR__NR];
    memset(tile, 0, sizeof tile);
    for (int64_t p = 0; p < kc; p++)
        for (int i = 0; i < AUR__MR; i++)
            for (int j = 0; j < AUR__NR; j++) tile[i * AUR__NR + j] += a[p * AUR__MR + i] * b[p * AUR__NR + j];
#endif
    for (int64_t i = 0; i < mr; i++) {
        aur_real *ci = c + i * ldc;
        const aur_real *ti = tile + i * AUR__NR;
        if (accumulate)
            for (int64_t j = 0; j < nr; j++) ci[j] += ti[j];
        else
            for (int64_t j = 0; j < nr; j++) ci[j] = ti[j];
    }
}

/* n rounded up to whole 64-byte lines, so per-thread slices stay aligned for vector loads. */
static int64_t aur__lines(int64_t n)
{
    const int64_t k = AUR__ALIGN / (int64_t)sizeof(aur_real);
    return (n + k - 1) / k * k;
}

static int64_t aur__min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t aur__round_up(int64_t n, int64_t k) { return (n + k - 1) / k * k; }

/* The packed block of B (at most KC x NC) and one thread's block of A (at
   most MC x KC) of an M x N x K product: sized by the product, so small
   products (attention's, per window) take little per thread. */
static int64_t aur__gemm_b_floats(int64_t N, int64_t K)
{
    return aur__lines(aur__min64(K, AUR__KC) * aur__min64(aur__round_up(N, AUR__NR), AUR__NC));
}
static int64_t aur__gemm_a_floats(int64_t M, int64_t K)
{
    return aur__lines(aur__min64(aur__round_up(M, AUR__MR), AUR__MC) * aur__min64(K, AUR__KC));
}

/* Workspace (elements) of an M x N x K product with `threads` threads packing A;
   it also serves any product no larger in each of M, N and K. */
static int64_t aur__gemm_ws(int64_t M, int64_t N, int64_t K, int threads)
{
    return aur__gemm_b_floats(N, K) + (int64_t)threads * aur__gemm_a_floats(M, K);
}

/* The product over one KC x NC block of B, already packed in bp. */
static void aur__gemm_block(aur_real *ws_a, int64_t a_floats, const aur_real *bp, aur__mat a, int64_t M, int64_t nc, int64_t kc,
                            aur_real *C, int64_t ldc, int accumulate, int parallel)
{
    int64_t nblocks = (M + AUR__MC - 1) / AUR__MC;
    AUR__OMP_FOR_DYN_IF(parallel && nblocks > 1)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t ic = blk * AUR__MC, mc = M - ic < AUR__MC ? M - ic : AUR__MC;
        aur_real *ap = ws_a + (int64_t)(parallel ? aur__thread_id() : 0) * a_floats;
        aur__pack_a(ap, aur__matv(a.p + ic * a.rs, a.rs, a.cs), mc, kc);
        for (int64_t jr = 0; jr < nc; jr += AUR__NR) {
            int64_t nr = nc - jr < AUR__NR ? nc - jr : AUR__NR;
            const aur_real *bpanel = bp + (jr / AUR__NR) * kc * AUR__NR;
            for (int64_t ir = 0; ir < mc; ir += AUR__MR) {
                int64_t mr = mc - ir < AUR__MR ? mc - ir : AUR__MR;
                aur__micro(kc, ap + (ir / AUR__MR) * kc * AUR__MR, bpanel, C + (ic + ir) * ldc + jr, ldc, mr, nr,
                           accumulate);
            }
        }
    }
}

/* C = A B (accumulate 0) or C += A B (1). ws holds aur__gemm_ws(M, N, K, threads) elements
   (threads 1 unless parallel). */
static void aur__gemm(aur_real *ws, int64_t M, int64_t N, int64_t K, aur__mat a, aur__mat b, aur_real *C, int64_t ldc,
                      int accumulate, int parallel)
{
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (!accumulate)
            for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(aur_real));
        return;
    }
    aur_real *bp = ws, *ws_a = ws + aur__gemm_b_floats(N, K);
    int64_t a_floats = aur__gemm_a_floats(M, K);
    for (int64_t jc = 0; jc < N; jc += AUR__NC) {
        int64_t nc = N - jc < AUR__NC ? N - jc : AUR__NC;
        for (int64_t pc = 0; pc < K; pc += AUR__KC) {
            int64_t kc = K - pc < AUR__KC ? K - pc : AUR__KC;
            int64_t npanels = (nc + AUR__NR - 1) / AUR__NR;
            AUR__OMP_FOR_IF(parallel && npanels > 4)
            for (int64_t c = 0; c < npanels; c++) {
                int64_t nr = nc - c * AUR__NR < AUR__NR ? nc - c * AUR__NR : AUR__NR;
                aur__mat bsub = aur__matv(b.p + pc * b.rs + (jc + c * AUR__NR) * b.cs, b.rs, b.cs);
                aur__pack_b_panel(bp + c * kc * AUR__NR, bsub, kc, nr);
            }
            aur__mat asub = aur__matv(a.p + pc * a.cs, a.rs, a.cs);
            aur__gemm_block(ws_a, a_floats, bp, asub, M, nc, kc, C + jc, ldc, accumulate || pc > 0, parallel);
        }
    }
}

/* nb independent products with element offsets sa, sb, sc between batches
   (sb = 0 shares B). Threads split the batches when there are enough of
   them, otherwise each product. */
static int aur__gemm_batched(aur_tape *t, int64_t nb, int64_t M, int64_t N, int64_t K, aur__mat a, int64_t sa,
                             aur__mat b, int64_t sb, aur_real *C, int64_t sc, int64_t ldc, int accumulate)
{
    int threads = aur__threads();
    int by_batch = nb >= 2 * threads || (nb >= threads && M * N < 65536);
    aur__mark mk = aur__arena_mark(&t->per_thread);
    int64_t per = aur__gemm_ws(M, N, K, by_batch ? 1 : threads);
    aur_real *ws = aur__thread_reals(t, per, by_batch ? threads : 1);
    if (!ws) return AUR_ENOMEM;
    if (by_batch) {
        AUR__OMP_FOR_DYN_IF(threads > 1)
        for (int64_t i = 0; i < nb; i++)
            aur__gemm(ws + aur__thread_id() * per, M, N, K, aur__matv(a.p + i * sa, a.rs, a.cs),
                      aur__matv(b.p + i * sb, b.rs, b.cs), C + i * sc, ldc, accumulate, 0);
    } else {
        for (int64_t i = 0; i < nb; i++)
            aur__gemm(ws, M, N, K, aur__matv(a.p + i * sa, a.rs, a.cs), aur__matv(b.p + i * sb, b.rs, b.cs),
                      C + i * sc, ldc, accumulate, 1);
    }
    aur__arena_release(&t->per_thread, mk);
    return 0;
}

static int aur__gemm1(aur_tape *t, int64_t M, int64_t N, int64_t K, aur__mat a, aur__mat b, aur_real *C, int accumulate)
{
    return aur__gemm_batched(t, 1, M, N, K, a, 0, b, 0, C, 0, N, accumulate);
}
