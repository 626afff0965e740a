/* test_threads.c - two models in two threads (issue 13): the calls a program
   makes from several threads at once give what they give alone.

   Two trainers run at once (each its own model, data, output directory and
   checkpoints), while other threads read presets, load batch files and make
   errors of their own. The trainers' final weights must equal, bit for bit,
   those of the same runs made one after the other; every preset and batch
   must equal the one read alone; every thread reads its own error message.
   `make tsan` builds this under ThreadSanitizer (without OpenMP, whose
   runtime it cannot see into), and make test runs that build. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"
#include "train_data.h"

#include <pthread.h>

enum { PRESET_CALLS = 400, BATCH_LOADS = 12, ERROR_CALLS = 200 };

/* ---- trainers ---- */

typedef struct train_job {
    char out[64];
    int seed;
    float *weights; /* the final weights, concatenated */
    size_t n_weights;
    int rc;
    char err[2048];
} train_job;

static void *train(void *arg)
{
    train_job *j = (train_job *)arg;
    char text[4096];
    train_config_text(text, sizeof text, j->out);
    cJSON *c = cJSON_Parse(text);
    cJSON_ReplaceItemInObject(c, "seed", cJSON_CreateNumber(j->seed));
    cJSON_ReplaceItemInObject(c, "steps", cJSON_CreateNumber(4));
    cJSON_AddNumberToObject(c, "save_every", 2);
    cJSON_AddNumberToObject(c, "eval_every", 2);
    cJSON_AddBoolToObject(c, "overwrite_output_dir", 1);
    aur_trainer *tr = aur_trainer_create_json(c, aur_test_dir);
    cJSON_Delete(c);
    j->rc = tr ? aur_trainer_run(tr) : -1;
    snprintf(j->err, sizeof j->err, "%s", j->rc ? aur_last_error() : "");
    const aur_model *m = tr ? aur_trainer_model(tr) : NULL;
    size_t n = 0, at = 0;
    for (int i = 0; m && i < aur_model_count(m); i++) n += (size_t)aur_model_at(m, i)->numel;
    j->weights = (float *)calloc(n + 1, sizeof(float));
    for (int i = 0; m && j->weights && i < aur_model_count(m); i++) {
        const aur_tensor *p = aur_model_at(m, i);
        for (int64_t k = 0; k < p->numel; k++) j->weights[at++] = (float)((const aur_real *)p->data)[k];
    }
    j->n_weights = at;
    j->rc = j->rc ? j->rc : (int)(at == 0);
    aur_trainer_free(tr);
    return NULL;
}

/* ---- presets, batch files, errors ---- */

static const char *const PRESETS[] = {"aurora-pretrained", "aurora-small-pretrained", "aurora-0.25-finetuned", "aurora-12h-pretrained",
                                      "aurora-highres", "aurora-air-pollution", "aurora-wave"};
#define N_PRESETS (int)(sizeof PRESETS / sizeof PRESETS[0])
static aur_aurora_config preset_alone[N_PRESETS];

static int same_list(const aur_var_list *a, const aur_var_list *b)
{
    int same = a->n == b->n;
    for (int i = 0; same && i < a->n; i++) same = !strcmp(a->name[i], b->name[i]);
    return same;
}

static void *presets(void *arg)
{
    int *wrong = (int *)arg;
    for (int i = 0; i < PRESET_CALLS; i++) {
        aur_aurora_config c;
        const aur_aurora_config *want = &preset_alone[i % N_PRESETS];
        if (aur_aurora_preset(PRESETS[i % N_PRESETS], &c) || !same_list(&c.surf_vars, &want->surf_vars) ||
            !same_list(&c.static_vars, &want->static_vars) || !same_list(&c.atmos_vars, &want->atmos_vars) || c.embed_dim != want->embed_dim)
            (*wrong)++;
    }
    return NULL;
}

static aur_batch *batch_alone;
static char batch_path[512]; /* set before the threads start (aur_test_tmp's buffers are not for threads) */

static int same_batch(const aur_batch *a, const aur_batch *b)
{
    int same = a && b && a->T == b->T && a->C == b->C;
    const char *names[] = {"2t", "msl", "tcwv"};
    for (int i = 0; same && i < 3; i++) {
        const aur_tensor *x = aur_batch_surf(a, names[i]), *y = aur_batch_surf(b, names[i]);
        same = x && y && x->numel == y->numel && !memcmp(x->data, y->data, sizeof(aur_real) * (size_t)x->numel);
    }
    return same;
}

static void *batches(void *arg)
{
    int *wrong = (int *)arg;
    for (int i = 0; i < BATCH_LOADS; i++) {
        aur_batch *b = aur_batch_load(batch_path);
        if (!same_batch(b, batch_alone)) (*wrong)++;
        aur_batch_free(b);
    }
    return NULL;
}

/* Each thread's failed calls name its own preset: the error message is per thread. */
static void *errors(void *arg)
{
    int *wrong = (int *)arg, id = wrong[1];
    char name[64];
    for (int i = 0; i < ERROR_CALLS; i++) {
        snprintf(name, sizeof name, "no-such-preset-%d-%d", id, i);
        aur_aurora_config c;
        if (aur_aurora_preset(name, &c) == 0 || !strstr(aur_last_error(), name)) wrong[0]++;
    }
    return NULL;
}

int main(void)
{
    aur_test_tmpdir_begin("threads");
    write_train_series(0);
    for (int i = 0; i < N_PRESETS; i++) aur_aurora_preset(PRESETS[i], &preset_alone[i]);
    snprintf(batch_path, sizeof batch_path, "%s", aur_test_tmp("series_0.safetensors"));
    batch_alone = aur_batch_load(batch_path);
    AUR_CHECK(batch_alone != NULL, "a batch file to read: %s", aur_last_error());

    /* the two runs one after the other, then at once with the other threads */
    train_job alone[2] = {{"alone_a", 5, NULL, 0, 0, ""}, {"alone_b", 6, NULL, 0, 0, ""}};
    train_job both[2] = {{"both_a", 5, NULL, 0, 0, ""}, {"both_b", 6, NULL, 0, 0, ""}};
    for (int i = 0; i < 2; i++) train(&alone[i]);
    int preset_wrong[2] = {0, 0}, batch_wrong[2] = {0, 0}, error_wrong[2][2] = {{0, 0}, {0, 1}};
    pthread_t th[8];
    int n = 0;
    for (int i = 0; i < 2; i++) pthread_create(&th[n++], NULL, train, &both[i]);
    for (int i = 0; i < 2; i++) pthread_create(&th[n++], NULL, presets, &preset_wrong[i]);
    for (int i = 0; i < 2; i++) pthread_create(&th[n++], NULL, batches, &batch_wrong[i]);
    for (int i = 0; i < 2; i++) pthread_create(&th[n++], NULL, errors, error_wrong[i]);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);

    /* the same config and seed give the same weights, alone or beside another run */
    for (int i = 0; i < 2; i++) {
        AUR_CHECK(alone[i].rc == 0 && both[i].rc == 0, "runs %s and %s: %s%s", alone[i].out, both[i].out, alone[i].err, both[i].err);
        int same = alone[i].n_weights && alone[i].n_weights == both[i].n_weights &&
                   !memcmp(alone[i].weights, both[i].weights, sizeof(float) * alone[i].n_weights);
        AUR_CHECK(same, "run %s's %zu weights equal %s's bit for bit", both[i].out, both[i].n_weights, alone[i].out);
    }
    AUR_CHECK(alone[0].n_weights == alone[1].n_weights && memcmp(alone[0].weights, alone[1].weights, sizeof(float) * alone[0].n_weights),
              "the two runs differ (seeds 5 and 6), so a mix-up would show");
    AUR_CHECK(preset_wrong[0] + preset_wrong[1] == 0, "%d of %d presets read in two threads came out wrong", preset_wrong[0] + preset_wrong[1],
              2 * PRESET_CALLS);
    AUR_CHECK(batch_wrong[0] + batch_wrong[1] == 0, "%d of %d batch files loaded in two threads came out wrong", batch_wrong[0] + batch_wrong[1],
              2 * BATCH_LOADS);
    AUR_CHECK(error_wrong[0][0] + error_wrong[1][0] == 0, "%d of %d errors made in two threads named another thread's call",
              error_wrong[0][0] + error_wrong[1][0], 2 * ERROR_CALLS);
    for (int i = 0; i < 2; i++) free(alone[i].weights), free(both[i].weights);
    aur_batch_free(batch_alone);
    aur_test_tmpdir_end();
    return aur_test_summary();
}
