/* test_crash.c - kill -9 at random points never costs a run (issue 13).

   usage: test_crash AURORA_TRAIN [SEED]

   Runs AURORA_TRAIN (the real tool) on a small LoRA fine-tuning that saves a
   checkpoint every step, kills it with SIGKILL at random moments (KILLS times,
   seeded: the seed is printed, and SEED or AUR_CRASH_SEED replays a failure),
   and starts it again each time with --resume, as a user would. After every
   kill each checkpoint directory must be whole and readable and `latest` must
   name one; once the run is through, its final weights and optimiser state
   must equal, bit for bit, those of the same run never interrupted, and its
   metrics.jsonl must hold the same losses, one line per step. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"
#include "train_data.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

enum { STEPS = 40, KILLS = 10 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The config of a run into output_dir `out`, written as config_out.json; its path, into path. */
static const char *write_config(const char *out, char *path, size_t size)
{
    char text[4096], name[64];
    train_config_text(text, sizeof text, out);
    cJSON *j = cJSON_Parse(text);
    cJSON_ReplaceItemInObject(j, "steps", cJSON_CreateNumber(STEPS));
    cJSON_AddNumberToObject(j, "save_every", 1);
    cJSON_AddNumberToObject(j, "eval_every", 10);
    cJSON_AddNumberToObject(j, "keep_last", 2);
    char *printed = cJSON_Print(j);
    snprintf(name, sizeof name, "config_%s.json", out);
    snprintf(path, size, "%s", aur_test_tmp(name));
    FILE *fp = fopen(path, "w");
    if (fp) fputs(printed, fp), fclose(fp);
    free(printed);
    cJSON_Delete(j);
    return path;
}

/* Starts tool CONFIG [--resume] with its output appended to log; the child's pid. */
static pid_t start(const char *tool, const char *config, int resume, const char *log)
{
    fflush(stdout); /* or the child's stdout would write it again */
    pid_t pid = fork();
    if (pid == 0) {
        FILE *out = freopen(log, "a", stdout);
        if (out) dup2(fileno(out), 2);
        execl(tool, tool, config, resume ? "--resume" : (char *)NULL, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits for pid until `metrics` has at least `lines` lines (0: at once), then
   `seconds` more: its exit status, or -1 if it still runs then. */
static int wait_for(pid_t pid, const char *metrics, int lines, double seconds)
{
    double until = -1;
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (until < 0 && (!lines || aur_test_count_lines(metrics) >= lines)) until = now() + seconds;
        if (until >= 0 && now() >= until) return -1;
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
    }
}

/* 1 if the three files of a checkpoint open and pass the readers' checks. */
static int readable(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    aur_st_file *m = aur_st_open(path);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    aur_st_file *o = aur_st_open(path);
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    cJSON *s = aur_json_load(path);
    int ok = m && o && s;
    aur_st_close(m);
    aur_st_close(o);
    cJSON_Delete(s);
    return ok;
}

/* After a kill: every checkpoint-N of the run is whole, and latest (once written) names one. */
static void check_run_dir(const char *run, int kill)
{
    DIR *d = opendir(aur_test_tmp(run));
    char dir[1024], bad[512] = "";
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, "checkpoint-", 11)) continue;
        snprintf(dir, sizeof dir, "%s/%s", aur_test_tmp(run), e->d_name);
        if (!readable(dir) && !bad[0]) snprintf(bad, sizeof bad, "%.500s", aur_last_error());
        n++;
    }
    if (d) closedir(d);
    char latest[256] = "";
    FILE *fp = fopen(aur_test_tmp("crash/latest"), "r");
    if (fp && fgets(latest, sizeof latest, fp)) latest[strcspn(latest, "\n")] = 0;
    if (fp) fclose(fp);
    snprintf(dir, sizeof dir, "%s/%s", aur_test_tmp(run), latest);
    if ((fp || n) && !bad[0] && !(latest[0] && readable(dir))) snprintf(bad, sizeof bad, "latest names '%s', not a readable checkpoint", latest);
    AUR_CHECK(!bad[0], "after kill %d: %d checkpoint directories, every one readable, and latest names one: %s", kill, n, bad);
}

/* The data sections of two safetensors files (the headers differ by the run id) and their tensor names are equal. */
static int same_tensors(const char *a, const char *b)
{
    aur_st_file *x = aur_st_open(a), *y = aur_st_open(b);
    int same = x && y && x->n == y->n;
    for (int i = 0; same && i < x->n; i++) {
        const aur_st_tensor *t = &x->tensors[i], *u = aur_st_find(y, t->name);
        same = u && u->end - u->begin == t->end - t->begin;
        size_t n = same ? (size_t)(t->end - t->begin) : 0;
        char *p = (char *)malloc(n + 1), *q = (char *)malloc(n + 1);
        same = same && p && q && !aur__st_bytes(x, t->begin, p, n) && !aur__st_bytes(y, u->begin, q, n) && !memcmp(p, q, n);
        free(p);
        free(q);
    }
    aur_st_close(x);
    aur_st_close(y);
    return same;
}

/* The loss of each step in a run's metrics.jsonl, into loss[1..STEPS]; the number of lines. */
static int read_losses(const char *run, double *loss)
{
    char path[512], line[8192];
    snprintf(path, sizeof path, "%s/metrics.jsonl", aur_test_tmp(run));
    FILE *fp = fopen(path, "r");
    int lines = 0;
    while (fp && fgets(line, sizeof line, fp)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *st = cJSON_GetObjectItem(j, "step"), *l = cJSON_GetObjectItem(j, "loss");
        if (cJSON_IsNumber(st) && cJSON_IsNumber(l) && st->valueint >= 1 && st->valueint <= STEPS) loss[st->valueint] = l->valuedouble;
        cJSON_Delete(j);
        lines++;
    }
    if (fp) fclose(fp);
    return lines;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_crash AURORA_TRAIN [SEED]\n");
        return 2;
    }
    const char *tool = argv[1], *seed_text = argc > 2 ? argv[2] : getenv("AUR_CRASH_SEED");
    uint64_t seed = seed_text ? strtoull(seed_text, NULL, 10) : 13;
    aur_test_rng = seed * 0x9e3779b97f4a7c15ull + 1; /* the kill times */
    aur_test_tmpdir_begin("crash");
    write_train_series(0);
    char log[512], ref_config[512], config[512];
    snprintf(log, sizeof log, "%s", aur_test_tmp("runs.log"));

    /* the run never interrupted, timed: its start (to the first metrics line) and its steps */
    char ref_metrics[512];
    snprintf(ref_metrics, sizeof ref_metrics, "%s", aur_test_tmp("ref/metrics.jsonl"));
    double t0 = now();
    pid_t ref = start(tool, write_config("ref", ref_config, sizeof ref_config), 0, log);
    int rc = wait_for(ref, ref_metrics, 1, 0);
    double startup = now() - t0;
    if (rc < 0) rc = wait_for(ref, NULL, 0, 600);
    double span = now() - t0;
    AUR_CHECK(rc == 0, "the uninterrupted run (exit %d; see %s)", rc, log);
    printf("seed %llu: the uninterrupted run of %d steps took %.2f s, %.2f s to its first step\n", (unsigned long long)seed, STEPS, span,
           startup);

    write_config("crash", config, sizeof config);
    char metrics[512];
    snprintf(metrics, sizeof metrics, "%s", aur_test_tmp("crash/metrics.jsonl"));
    int kills = 0, starts = 0;
    for (rc = -1; rc != 0 && starts < 4 * KILLS;) {
        char latest[512];
        snprintf(latest, sizeof latest, "%s/latest", aur_test_tmp("crash"));
        int resume = access(latest, F_OK) == 0;
        /* before the first checkpoint a fresh start finds the killed run's metrics: it overwrites them */
        if (!resume && starts) {
            cJSON *j = aur_json_load(config);
            cJSON_AddBoolToObject(j, "overwrite_output_dir", 1);
            char *printed = cJSON_Print(j);
            FILE *fp = fopen(config, "w");
            if (fp) fputs(printed, fp), fclose(fp);
            free(printed);
            cJSON_Delete(j);
        }
        pid_t pid = start(tool, config, resume, log);
        starts++;
        /* kill k comes after step k * STEPS / (KILLS + 1), at a random moment within the next two steps'
           time (a step, its metrics line, its save), or, one time in five, while the tool starts or resumes */
        int at_start = aur_test_uniform() < 0.2, lines = at_start ? 0 : (kills + 1) * STEPS / (KILLS + 1);
        double delay = (at_start ? startup : 2 * (span - startup) / STEPS) * aur_test_uniform();
        rc = wait_for(pid, metrics, kills < KILLS ? lines : 0, kills < KILLS ? delay : 600);
        if (rc < 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            kills++;
            printf("kill %d: %.3f s after %s (%s)\n", kills, delay, lines ? "a step's metrics line" : "the start", resume ? "resumed" : "fresh");
            check_run_dir("crash", kills);
        } else if (rc) {
            AUR_CHECK(0, "start %d ended with exit %d (see %s)", starts, rc, log);
            break;
        }
    }
    AUR_CHECK(rc == 0 && kills == KILLS, "the run finished after %d kills (%d starts)", kills, starts);

    char a[512], b[512];
    static const char *const files[] = {"model.safetensors", "optimizer.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/checkpoint-%06d/%s", aur_test_tmp("ref"), STEPS, files[i]);
        snprintf(b, sizeof b, "%s/checkpoint-%06d/%s", aur_test_tmp("crash"), STEPS, files[i]);
        AUR_CHECK(same_tensors(a, b), "the killed and resumed run's %s equals the uninterrupted run's bit for bit", files[i]);
    }
    double la[STEPS + 1] = {0}, lb[STEPS + 1] = {0};
    int na = read_losses("ref", la), nb = read_losses("crash", lb);
    AUR_CHECK(na == STEPS && nb == STEPS && !memcmp(la, lb, sizeof la), "metrics.jsonl: %d and %d lines, the same losses", na, nb);
    aur_test_tmpdir_end();
    return aur_test_summary();
}
