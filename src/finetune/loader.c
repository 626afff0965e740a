#include "../core/api.h"
#include "../core/platform.h"
#include "../aurora/api.h"
#include "api.h"

/* ==== fine-tuning: a loader that reads the next windows while the step runs ====
   The order of the windows is a function the caller gives (the trainer's:
   its shuffle of seed and epoch), so the loader knows which window step i
   needs before it is asked and a background thread reads it, as PyTorch's
   DataLoader workers with prefetch_factor do. A window is read into one of
   depth + 1 buffers, reused (pinned host memory for a model on the GPU),
   each its input (history steps) and targets (one step each) as the
   rollout uses them: no copy between reading and the forward. */

/* ---- one window ---- */

AURDEF void aur_window_free(aur_window *w)
{
    if (!w) return;
    aur_batch_free(w->input);
    for (int k = 0; k < w->rollout; k++) aur_batch_free(w->target[k]);
    memset(w, 0, sizeof *w);
}

/* A batch buffer of `steps` steps for series s: b itself when it fits, else a new one. */
static int aur__window_buffer(aur_series *s, aur_batch **b, int steps, int pinned)
{
    if (*b && (*b)->T == steps) return 0; /* aur_series_read_into checks the rest; a misfit comes back as AUR_ESHAPE */
    aur_batch_free(*b);
    *b = aur_series_window_alloc(s, steps, pinned);
    return *b ? 0 : AUR_ENOMEM;
}

/* Steps [start, start + steps) into *b, reallocated once if it was made for another layout. */
static int aur__window_part(aur_series *s, aur_batch **b, int start, int steps, double step_seconds, int pinned)
{
    int rc = aur__window_buffer(s, b, steps, pinned);
    if (!rc) rc = aur_series_read_into(s, start, step_seconds, *b);
    if (rc == AUR_ESHAPE) {
        aur_batch_free(*b);
        *b = NULL;
        rc = aur__window_buffer(s, b, steps, pinned);
        if (!rc) rc = aur_series_read_into(s, start, step_seconds, *b);
    }
    return rc;
}

AURDEF int aur_window_read(aur_series *s, aur_window_ref ref, int history, int rollout, double step_seconds, int pinned, aur_window *w)
{
    if (rollout < 1 || rollout > AUR_MAX_ROLLOUT || history < 1)
        return aur__err(AUR_EINVAL, "aur_window_read: history %d, rollout %d (1..%d)", history, rollout, AUR_MAX_ROLLOUT);
    if (ref.start < 0 || ref.start + history + rollout > aur_series_length(s))
        return aur__err(AUR_EINVAL, "%s: a window of %d + %d steps at step %d: the series has %d steps", aur_series_path(s), history, rollout,
                        ref.start, aur_series_length(s));
    for (int k = rollout; k < w->rollout; k++) aur_batch_free(w->target[k]), w->target[k] = NULL;
    w->ref = ref, w->rollout = rollout;
    int rc = aur__window_part(s, &w->input, ref.start, history, step_seconds, pinned);
    for (int k = 0; k < rollout && !rc; k++) rc = aur__window_part(s, &w->target[k], ref.start + history + k, 1, step_seconds, pinned);
    return rc;
}

/* ---- the loader ---- */

#define AUR__LOADER_OPEN 4 /* series kept open: the windows of a shuffled epoch jump between files */

typedef struct aur__slot {
    int64_t item;   /* its window's position in the order */
    int state;      /* AUR__FREE, AUR__READING, AUR__READY, AUR__IN_USE */
    unsigned gen;   /* the loader's generation it was read for (a jump discards older reads) */
    int rc;
    char err[1024];
    aur_window w;
} aur__slot;

enum { AUR__FREE, AUR__READING, AUR__READY, AUR__IN_USE };

struct aur_loader {
    char **const *paths;
    const int *n_paths;
    int n_series;
    aur_window_order order;
    void *ctx;
    aur_loader_opts o;
    aur_series *open[AUR__LOADER_OPEN]; /* the series read last, least recent first (only the reading thread touches them) */
    int open_id[AUR__LOADER_OPEN], n_open;
    aur__slot *slots;
    int n_slots;
    int64_t next_read, next_take; /* the window the thread reads next, and the one aur_loader_get expects */
    unsigned gen;
    int failed, stop, threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    aur_loader_stats st;
};

/* Series i, open: from the few kept open, or opened now (closing the least recent). */
static aur_series *aur__loader_series(aur_loader *ld, int i)
{
    for (int k = 0; k < ld->n_open; k++)
        if (ld->open_id[k] == i) {
            aur_series *s = ld->open[k];
            memmove(ld->open + k, ld->open + k + 1, sizeof ld->open[0] * (size_t)(ld->n_open - 1 - k));
            memmove(ld->open_id + k, ld->open_id + k + 1, sizeof ld->open_id[0] * (size_t)(ld->n_open - 1 - k));
            ld->open[ld->n_open - 1] = s, ld->open_id[ld->n_open - 1] = i;
            return s;
        }
    aur_series *s = aur_series_open((const char *const *)ld->paths[i], ld->n_paths[i], ld->o.renames, NULL);
    if (!s) return NULL;
    if (ld->n_open == AUR__LOADER_OPEN) {
        aur_series_close(ld->open[0]);
        memmove(ld->open, ld->open + 1, sizeof ld->open[0] * (size_t)(ld->n_open - 1));
        memmove(ld->open_id, ld->open_id + 1, sizeof ld->open_id[0] * (size_t)(ld->n_open - 1));
        ld->n_open--;
    }
    ld->open[ld->n_open] = s, ld->open_id[ld->n_open++] = i;
    return s;
}

/* Reads window `item` of the order into a slot (no lock held: the slot is the reader's); the seconds it took. */
static double aur__loader_fill(aur_loader *ld, aur__slot *sl, int64_t item)
{
    double t0 = aur__wall();
    aur_window_ref ref = ld->order(ld->ctx, item);
    aur_series *s = ref.series >= 0 && ref.series < ld->n_series ? aur__loader_series(ld, ref.series) : NULL;
    if (!s && (ref.series < 0 || ref.series >= ld->n_series)) aur__err(AUR_EINVAL, "window %lld: series %d of %d", (long long)item, ref.series, ld->n_series);
    sl->rc = s ? aur_window_read(s, ref, ld->o.history, ld->o.rollout, ld->o.step_seconds, ld->o.pinned, &sl->w) : AUR_EFORMAT;
    if (sl->rc) snprintf(sl->err, sizeof sl->err, "%.1000s", aur_last_error());
    return aur__wall() - t0;
}

static void aur__loader_count(aur_loader *ld, double seconds)
{
    ld->st.read_seconds += seconds;
    ld->st.windows_read++;
}

/* A free slot, or NULL. */
static aur__slot *aur__loader_free_slot(aur_loader *ld)
{
    for (int i = 0; i < ld->n_slots; i++)
        if (ld->slots[i].state == AUR__FREE) return &ld->slots[i];
    return NULL;
}

static void *aur__loader_main(void *arg)
{
    aur_loader *ld = (aur_loader *)arg;
    pthread_mutex_lock(&ld->mu);
    while (!ld->stop) {
        aur__slot *sl = ld->failed ? NULL : aur__loader_free_slot(ld);
        if (!sl) {
            pthread_cond_wait(&ld->cv, &ld->mu);
            continue;
        }
        int64_t item = ld->next_read++;
        unsigned gen = ld->gen;
        sl->state = AUR__READING, sl->item = item, sl->gen = gen;
        pthread_mutex_unlock(&ld->mu);
        double seconds = aur__loader_fill(ld, sl, item);
        pthread_mutex_lock(&ld->mu);
        aur__loader_count(ld, seconds);
        if (sl->gen != ld->gen) sl->state = AUR__FREE; /* the caller jumped elsewhere meanwhile */
        else {
            sl->state = AUR__READY;
            if (sl->rc) ld->failed = 1; /* read no further: the caller stops at this window */
        }
        pthread_cond_broadcast(&ld->cv);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

AURDEF aur_loader *aur_loader_create(char **const *paths, const int *n_paths, int n_series, aur_window_order order, void *ctx,
                                     const aur_loader_opts *o)
{
    if (!paths || !n_paths || n_series < 1 || !order || !o || o->depth < 0 || o->depth > 64)
        return aur__err(AUR_EINVAL, "aur_loader_create: no series or order, or a depth outside 0..64"), (aur_loader *)NULL;
    aur_loader *ld = (aur_loader *)aur__calloc(sizeof *ld, "a loader");
    if (!ld) return NULL;
    ld->paths = paths, ld->n_paths = n_paths, ld->n_series = n_series, ld->order = order, ld->ctx = ctx, ld->o = *o;
    ld->n_slots = o->depth + 1;
    ld->slots = (aur__slot *)aur__calloc(sizeof *ld->slots * (size_t)ld->n_slots, "the loader's windows");
    ld->next_take = -1;
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv, NULL);
    ld->failed = 1; /* nothing to read until the first aur_loader_get says where to start */
    ld->threaded = ld->slots && o->depth > 0 && !pthread_create(&ld->thread, NULL, aur__loader_main, ld);
    if (!ld->slots || (o->depth > 0 && !ld->threaded)) {
        aur__err(AUR_ENOMEM, "aur_loader_create: %s", ld->slots ? "cannot start the reading thread" : "out of memory");
        aur_loader_free(ld);
        return NULL;
    }
    return ld;
}

/* Starts reading at item: the windows read ahead for another position are dropped. */
static void aur__loader_jump(aur_loader *ld, int64_t item)
{
    ld->gen++;
    for (int i = 0; i < ld->n_slots; i++)
        if (ld->slots[i].state == AUR__READY) ld->slots[i].state = AUR__FREE;
    ld->next_read = item;
    ld->failed = 0;
}

static aur__slot *aur__loader_ready(aur_loader *ld, int64_t item)
{
    for (int i = 0; i < ld->n_slots; i++)
        if (ld->slots[i].state == AUR__READY && ld->slots[i].item == item && ld->slots[i].gen == ld->gen) return &ld->slots[i];
    return NULL;
}

AURDEF const aur_window *aur_loader_get(aur_loader *ld, int64_t item)
{
    if (!ld || item < 0) return aur__err(AUR_EINVAL, "aur_loader_get: no loader, or window %lld", (long long)item), (const aur_window *)NULL;
    double t0 = aur__wall();
    pthread_mutex_lock(&ld->mu);
    for (int i = 0; i < ld->n_slots; i++)
        if (ld->slots[i].state == AUR__IN_USE) ld->slots[i].state = AUR__FREE; /* the previous window is done with */
    if (item != ld->next_take) aur__loader_jump(ld, item);
    ld->next_take = item + 1;
    aur__slot *sl = NULL;
    if (!ld->threaded) { /* depth 0: read it here, now */
        sl = &ld->slots[0];
        sl->item = item, sl->gen = ld->gen;
        aur__loader_count(ld, aur__loader_fill(ld, sl, item));
    } else {
        pthread_cond_broadcast(&ld->cv);
        while (!(sl = aur__loader_ready(ld, item))) pthread_cond_wait(&ld->cv, &ld->mu);
    }
    sl->state = AUR__IN_USE;
    int rc = sl->rc;
    if (rc) {
        ld->next_take = -1; /* asking again reads it again */
        aur__err(rc, "%s", sl->err);
    }
    ld->st.wait_seconds += aur__wall() - t0;
    ld->st.windows_taken++;
    pthread_mutex_unlock(&ld->mu);
    return rc ? NULL : &sl->w;
}

AURDEF void aur_loader_stats_get(aur_loader *ld, aur_loader_stats *st)
{
    pthread_mutex_lock(&ld->mu);
    *st = ld->st;
    pthread_mutex_unlock(&ld->mu);
}

AURDEF void aur_loader_free(aur_loader *ld)
{
    if (!ld) return;
    if (ld->threaded) {
        pthread_mutex_lock(&ld->mu);
        ld->stop = 1;
        pthread_cond_broadcast(&ld->cv);
        pthread_mutex_unlock(&ld->mu);
        pthread_join(ld->thread, NULL);
    }
    for (int i = 0; ld->slots && i < ld->n_slots; i++) aur_window_free(&ld->slots[i].w);
    for (int k = 0; k < ld->n_open; k++) aur_series_close(ld->open[k]);
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->cv);
    AUR_FREE(ld->slots);
    AUR_FREE(ld);
}
