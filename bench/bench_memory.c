/* bench_memory.c - the memory (and time) of a training step on the CPU, at
   the real architectures: AuroraSmallPretrained at 64 x 128 and 128 x 256
   (13 levels, B 1, T 2) and Surya-1.0 at 256 and 512 pixels, each as a
   forward without gradients, a training step, and a step with activation
   checkpointing; beside the PyTorch figures measured for issue 12 (PyTorch
   2.15 eager, 2 threads, the reference's own code on the same weights) as
   ratios; then the memory plan at 0.25 degrees for both Aurora presets.

   Each case runs in a child process: "dynamic" is its peak resident memory
   during the steps minus what it held before them (weights, gradients, the
   AdamW state): the kernel's high-water mark is reset (/proc/self/clear_refs)
   just before the first step. "tape" is the tape's own peak in bytes
   (deterministic). Times are each of the first four steps and their median.

   make bench-memory runs it; with BASE=rev it also builds this program
   against the headers of that commit and prints both side by side (the
   time ratio is measured in the same run, on the same machine).
     usage: bench_memory [--quick] [--case NAME]   (--quick: the 64 x 128 and 256 cases only) */
#define AURORA_IMPLEMENTATION
#include "../surya.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* VmRSS or VmHWM of this process, in bytes. */
static double status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) kb = atof(line + n + 1);
    if (f) fclose(f);
    return kb * 1024;
}

static void reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

typedef enum { FORWARD, STEP, STEP_CKPT, STEP_CKPT_BLOCKS } run_kind; /* STEP_CKPT_BLOCKS: Swin blocks only, as before issue 12 */
typedef struct bench_case {
    const char *name, *model; /* model: "aurora" (AuroraSmallPretrained) or "surya" (Surya-1.0) */
    int H, W;
    run_kind kind;
    double torch_dynamic_mb, torch_seconds; /* PyTorch's figures (issue 12), 0 where not measured */
} bench_case;

static const bench_case cases[] = {
    {"aurora-small 64x128 forward", "aurora", 64, 128, FORWARD, 0, 0},
    {"aurora-small 64x128 step", "aurora", 64, 128, STEP, 0, 0},
    {"aurora-small 64x128 step+ckpt", "aurora", 64, 128, STEP_CKPT, 0, 0},
    {"aurora-small 128x256 forward", "aurora", 128, 256, FORWARD, 0, 0},
    {"aurora-small 128x256 step", "aurora", 128, 256, STEP, 3292, 8.34},
    {"aurora-small 128x256 step+ckpt", "aurora", 128, 256, STEP_CKPT, 1426, 14.50},
    {"aurora-small 128x256 step+ckpt blocks", "aurora", 128, 256, STEP_CKPT_BLOCKS, 0, 0},
    {"surya-1.0 256 forward", "surya", 256, 256, FORWARD, 0, 0},
    {"surya-1.0 256 step", "surya", 256, 256, STEP, 0, 0},
    {"surya-1.0 256 step+ckpt", "surya", 256, 256, STEP_CKPT, 0, 0},
    {"surya-1.0 512 forward", "surya", 512, 512, FORWARD, 0, 0},
    {"surya-1.0 512 step", "surya", 512, 512, STEP, 0, 0},
    {"surya-1.0 512 step+ckpt", "surya", 512, 512, STEP_CKPT, 0, 0},
};

/* What a case measured. */
typedef struct bench_result {
    double tape_peak, dynamic, seconds[4], median;
    int ok;
} bench_result;

/* Turns on activation checkpointing of everything the build can checkpoint. */
#ifdef AUR_BENCH_BASE /* built against an older commit's headers (make bench-memory BASE=rev) */
static void checkpoint_all(aur_aurora_config *c) { c->checkpoint_blocks = 1; }
static void checkpoint_blocks(aur_aurora_config *c) { c->checkpoint_blocks = 1; }
static void plan_checkpoint(aur_memory_choice *ch, int on) { ch->checkpointing = on; }
#else
static void checkpoint_all(aur_aurora_config *c) { c->checkpoint = AUR_CHECKPOINT_ALL; }
static void checkpoint_blocks(aur_aurora_config *c) { c->checkpoint = AUR_CHECKPOINT_BLOCKS; }
static void plan_checkpoint(aur_memory_choice *ch, int on) { ch->checkpoint = on ? AUR_CHECKPOINT_ALL : 0; }
#endif

/* x uniform in [-0.5, 0.5) from the generator state s (the same values on every run). */
static void fill_uniform(aur_tensor *x, uint64_t *s)
{
    for (int64_t i = 0; i < x->numel; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        aur_tensor_f32(x)[i] = (aur_real)((double)(*s >> 40) / 16777216.0 - 0.5);
    }
}

/* One step of a case: the forward, and with backward set its loss and backward; 1 if it ran. */
typedef int (*step_fn)(void *ctx, aur_tape *t, int backward);

/* Four timed steps of m (each with an AdamW update unless only the forward
   is measured), the tape's peak and the step's peak RSS above the baseline. */
static void time_steps(const bench_case *k, aur_model *m, aur_optim *opt, aur_tape *t, step_fn step, void *ctx, bench_result *r)
{
    int train = k->kind != FORWARD, ok = 1;
    aur_tape_set_grad(t, train);
    aur_model_zero_grad(m); /* touches the gradient slab: the baseline holds weights, gradients and AdamW state */
    double base = status_bytes("VmRSS:");
    reset_peak_rss();
    for (int s = 0; s < 4 && ok; s++) {
        double t0 = now();
        ok = step(ctx, t, train) && (!train || !aur_optim_step(opt));
        if (train) aur_model_zero_grad(m);
        r->seconds[s] = now() - t0;
        if (s == 3 || !ok) {
            size_t cur, peak;
            aur_tape_memory(t, &cur, &peak);
            r->tape_peak = (double)peak;
        }
        aur_tape_reset(t);
    }
    if (!ok) fprintf(stderr, "%s: %s\n", k->name, aur_last_error());
    r->dynamic = status_bytes("VmHWM:") - base;
    r->ok = ok;
}

static aur_batch *aurora_batch(const aur_aurora_config *c, int T, int H, int W)
{
    static const double levels[13] = {50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000};
    aur_batch *b = aur_batch_create(1, T, 13, H, W, &c->surf_vars, &c->static_vars, &c->atmos_vars);
    if (!b) return NULL;
    memcpy(b->levels, levels, sizeof levels);
    for (int i = 0; i < H; i++) b->lat[i] = (float)(90.0 - 180.0 * (i + 0.5) / H);
    for (int j = 0; j < W; j++) b->lon[j] = (float)(360.0 * j / W);
    b->time[0] = 1672531200;
    uint64_t s = 1;
    aur_tensor *const *groups[3] = {b->surf, b->statics, b->atmos};
    int counts[3] = {b->surf_names.n, b->static_names.n, b->atmos_names.n};
    for (int g = 0; g < 3; g++)
        for (int v = 0; v < counts[g]; v++) fill_uniform(groups[g][v], &s);
    return b;
}

typedef struct aurora_step_ctx {
    aur_model *m;
    aur_batch *in, *target;
} aurora_step_ctx;

static int aurora_step(void *ctx, aur_tape *t, int backward)
{
    aurora_step_ctx *c = (aurora_step_ctx *)ctx;
    aur_batch *p = aur_aurora_forward(c->m, t, c->in);
    int ok = p && (!backward || !aur_backward(t, aur_aurora_loss(c->m, t, p, c->target)));
    aur_batch_free(p);
    return ok;
}

typedef struct surya_step_ctx {
    aur_model *m;
    aur_tensor *ts;
} surya_step_ctx;

/* Surya's step: the mean square of its output as the loss. */
static int surya_step(void *ctx, aur_tape *t, int backward)
{
    surya_step_ctx *c = (surya_step_ctx *)ctx;
    aur_tensor *y = aur_surya_forward(c->m, t, c->ts);
    return y && (!backward || !aur_backward(t, aur_mean_all(t, aur_mul(t, y, y))));
}

/* One case, in this (child) process. */
static bench_result run_aurora(const bench_case *k)
{
    bench_result r;
    memset(&r, 0, sizeof r);
    aur_aurora_config c;
    aur_aurora_preset("aurora-small-pretrained", &c);
    if (k->kind == STEP_CKPT) checkpoint_all(&c);
    if (k->kind == STEP_CKPT_BLOCKS) checkpoint_blocks(&c);
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 1);
    aur_batch *b = m ? aurora_batch(&c, 2, k->H, k->W) : NULL, *target = m ? aurora_batch(&c, 1, k->H, k->W) : NULL;
    aur_optim_opts oo = aur_adamw_defaults();
    aur_optim *opt = m && k->kind != FORWARD ? aur_optim_create(m, &oo) : NULL;
    aur_tape *t = aur_tape_create();
    if (!m || !b || !target || !t || (k->kind != FORWARD && !opt)) {
        fprintf(stderr, "%s: %s\n", k->name, aur_last_error());
        return r;
    }
    /* statistics of the random data: loc 0, scale 1 for every variable and level */
    for (int i = 0; i < c.surf_vars.n; i++) aur_aurora_set_stats(m, c.surf_vars.name[i], 0, 1);
    for (int i = 0; i < c.static_vars.n; i++) aur_aurora_set_stats(m, c.static_vars.name[i], 0, 1);
    for (int i = 0; i < c.atmos_vars.n; i++)
        for (int l = 0; l < 13; l++) {
            char key[64], lv[16];
            aur_level_to_str(b->levels[l], lv, sizeof lv);
            snprintf(key, sizeof key, "%s_%s", c.atmos_vars.name[i], lv);
            aur_aurora_set_stats(m, key, 0, 1);
        }
    aurora_step_ctx sc = {m, b, target};
    time_steps(k, m, opt, t, aurora_step, &sc, &r);
    return r;
}

static bench_result run_surya(const bench_case *k)
{
    bench_result r;
    memset(&r, 0, sizeof r);
    aur_surya_config c;
    aur_surya_preset("surya-1.0", &c);
    c.img_size = k->H;
    if (k->kind == STEP_CKPT) c.checkpoint_blocks = 1;
    aur_model *m = aur_surya_create(&c, AUR_CPU, 1);
    aur_optim_opts oo = aur_adamw_defaults();
    aur_optim *opt = m && k->kind != FORWARD ? aur_optim_create(m, &oo) : NULL;
    aur_tensor *ts = m ? aur_tensor_create(AUR_F32, AUR_CPU, aur_shape5(1, c.in_chans, c.time_dim, c.img_size, c.img_size)) : NULL;
    aur_tape *t = aur_tape_create();
    if (!m || !ts || !t || (k->kind != FORWARD && !opt)) {
        fprintf(stderr, "%s: %s\n", k->name, aur_last_error());
        return r;
    }
    uint64_t s = 7;
    fill_uniform(ts, &s);
    surya_step_ctx sc = {m, ts};
    time_steps(k, m, opt, t, surya_step, &sc, &r);
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs a case in a child process and reads its result through a pipe. */
static bench_result run_case(const bench_case *k)
{
    bench_result r;
    memset(&r, 0, sizeof r);
    int fd[2];
    if (pipe(fd)) return r;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        bench_result c = strcmp(k->model, "aurora") ? run_surya(k) : run_aurora(k);
        if (write(fd[1], &c, sizeof c) != (ssize_t)sizeof c) _exit(2);
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], &r, sizeof r) != (ssize_t)sizeof r) memset(&r, 0, sizeof r);
    close(fd[0]);
    waitpid(pid, NULL, 0);
    double s[4];
    memcpy(s, r.seconds, sizeof s);
    qsort(s, 4, sizeof s[0], cmp_double);
    r.median = (s[1] + s[2]) / 2;
    return r;
}

static void print_plan(const char *preset, int ckpt, int autocast)
{
    aur_aurora_config c;
    aur_aurora_preset(preset, &c);
    aur_memory_choice ch;
    memset(&ch, 0, sizeof ch);
    ch.optimiser = AUR_ADAMW, ch.autocast = autocast, ch.trainable_fraction = 1;
    plan_checkpoint(&ch, ckpt);
    aur_memory_plan p;
    if (aur_aurora_memory_plan(&c, 1, 2, 13, 721, 1440, &ch, &p)) {
        printf("plan %-24s %s\n", preset, aur_last_error());
        return;
    }
    printf("plan 0.25 deg %-24s ckpt %d autocast %d: params %.1f, grads %.1f, AdamW %.1f, activations %.1f, total %.1f GiB\n", preset, ckpt,
           autocast, p.params / 1073741824.0, p.grads / 1073741824.0, p.optimiser / 1073741824.0, p.activations / 1073741824.0,
           p.total / 1073741824.0);
}

int main(int argc, char **argv)
{
    int quick = 0;
    const char *only = NULL;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--quick")) quick = 1;
        else if (!strcmp(argv[a], "--case") && a + 1 < argc) only = argv[++a];
        else {
            fprintf(stderr, "usage: bench_memory [--quick] [--case NAME]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%-32s %10s %10s %8s %28s %8s %10s\n", "case", "tape MB", "dynamic MB", "vs torch", "steps 1-4 s", "median", "vs torch");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bench_case *k = &cases[i];
        if (only && !strstr(k->name, only)) continue;
        if (quick && (k->H == 128 || k->H == 512)) continue;
        bench_result r = run_case(k);
        if (!r.ok) {
            printf("%-32s failed\n", k->name);
            continue;
        }
        char ratio[16] = "-", tratio[16] = "-";
        if (k->torch_dynamic_mb > 0) snprintf(ratio, sizeof ratio, "%.2fx", r.dynamic / 1e6 / k->torch_dynamic_mb);
        if (k->torch_seconds > 0) snprintf(tratio, sizeof tratio, "%.2fx", r.median / k->torch_seconds);
        printf("%-32s %10.0f %10.0f %8s %6.2f %6.2f %6.2f %6.2f %8.2f %10s\n", k->name, r.tape_peak / 1e6, r.dynamic / 1e6, ratio, r.seconds[0],
               r.seconds[1], r.seconds[2], r.seconds[3], r.median, tratio);
    }
    for (int pre = 0; pre < 2; pre++) {
        const char *name = pre ? "aurora-pretrained" : "aurora-small-pretrained";
        print_plan(name, 0, 0);
        print_plan(name, 1, 1);
    }
    return 0;
}
