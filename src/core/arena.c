#include "api.h"
#include "platform.h"

/* ==== memory: the arena ====
   A bump allocator made of chunks, for the step's small structs (tensors,
   nodes) and the workspaces an op takes and gives back (mark, release).
   Pointers never move during a step; a reset keeps the chunks. Tensor data
   lives in the tape's heap (heap.c). */

#define AUR__ALIGN 64
#define AUR__CHUNK_MIN ((size_t)1 << 20)
#define AUR__CHUNK_DEV_MAX ((size_t)256 << 20)

typedef struct aur__chunk {
    struct aur__chunk *next;
    char *base;
    size_t cap;
} aur__chunk;

typedef struct aur__arena {
    aur_device device;
    aur__chunk *first, *cur;
    size_t used;    /* bytes used in cur */
    size_t before;  /* capacity of the chunks before cur */
} aur__arena;

typedef struct aur__mark {
    aur__chunk *cur;
    size_t used, before;
} aur__mark;

static size_t aur__align(size_t n) { return (n + AUR__ALIGN - 1) & ~(size_t)(AUR__ALIGN - 1); }

static aur__chunk *aur__chunk_new(aur_device dev, size_t cap)
{
    aur__chunk *c = (aur__chunk *)aur__malloc(sizeof *c, "an arena chunk");
    if (!c) return NULL;
    /* host chunks are over-allocated to align the base */
    c->base = (char *)aur__dev_alloc(dev, cap + (dev == AUR_CPU ? AUR__ALIGN : 0), "the activation arena");
    if (!c->base) {
        AUR_FREE(c);
        return NULL;
    }
    c->cap = cap;
    c->next = NULL;
    return c;
}

static char *aur__chunk_data(const aur__arena *a, const aur__chunk *c)
{
    if (a->device != AUR_CPU) return c->base;
    return (char *)(((uintptr_t)c->base + AUR__ALIGN - 1) & ~(uintptr_t)(AUR__ALIGN - 1));
}

static void *aur__arena_alloc(aur__arena *a, size_t n)
{
    n = aur__align(n);
    for (;;) {
        if (a->cur && a->used + n <= a->cur->cap) {
            char *p = aur__chunk_data(a, a->cur) + a->used;
            a->used += n;
            return p;
        }
        if (a->cur && a->cur->next) { /* a spare chunk from an earlier step */
            a->before += a->cur->cap;
            a->cur = a->cur->next;
            a->used = 0;
            continue;
        }
        size_t cap = n > AUR__CHUNK_MIN ? n : AUR__CHUNK_MIN;
        if (a->cur && cap < 2 * a->cur->cap) cap = 2 * a->cur->cap;
        /* on a GPU, doubling could ask for twice what the step needs: grow by at most 256 MiB */
        if (a->device != AUR_CPU && cap > AUR__CHUNK_DEV_MAX) cap = n > AUR__CHUNK_DEV_MAX ? n : AUR__CHUNK_DEV_MAX;
        aur__chunk *c = aur__chunk_new(a->device, cap);
        if (!c) return NULL;
        if (a->cur) {
            a->cur->next = c;
            a->before += a->cur->cap;
        } else {
            a->first = c;
        }
        a->cur = c;
        a->used = 0;
    }
}

static void aur__arena_free_chunks(aur__arena *a)
{
    aur__chunk *c = a->first;
    while (c) {
        aur__chunk *n = c->next;
        aur__dev_free(a->device, c->base);
        AUR_FREE(c);
        c = n;
    }
    a->first = a->cur = NULL;
    a->used = a->before = 0;
}

/* Starts over in the first chunk; the chunks stay, with their pages, so the next step like this one allocates nothing. */
static void aur__arena_reset(aur__arena *a)
{
    a->cur = a->first;
    a->used = a->before = 0;
}

static aur__mark aur__arena_mark(const aur__arena *a)
{
    aur__mark m;
    m.cur = a->cur;
    m.used = a->used;
    m.before = a->before;
    return m;
}

static void aur__arena_release(aur__arena *a, aur__mark m)
{
    a->cur = m.cur ? m.cur : a->first;
    a->used = m.cur ? m.used : 0;
    a->before = m.cur ? m.before : 0;
}
