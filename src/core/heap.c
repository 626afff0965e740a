#include "api.h"
#include "platform.h"

/* ==== memory: the tape's heap ====
   Tensor data, gradients and the buffers nodes keep for backward come from a
   heap of large chunks, so that each can be given back as soon as nothing
   needs it and its bytes reused by the next allocation (the arena, a bump
   allocator, keeps everything to the end of the step). The free space is a
   list of ranges sorted by address; an allocation takes the smallest range
   that fits (best fit) and a free merges a range with its neighbours. The
   same sequence of allocations lands at the same places, so a step like the
   last one touches only memory the last one touched, and adds no chunk.
   The bookkeeping lives on the host for both devices. */

/* What the bytes are for (the split aur_tape_memory_stats reports). */
enum { AUR__MEM_ACTIVATION, AUR__MEM_GRADIENT, AUR__MEM_SAVED, AUR__MEM_KINDS };

#define AUR__HEAP_CHUNK_MIN ((size_t)16 << 20)

typedef struct aur__range {
    char *base;
    size_t size;
    int chunk; /* ranges of different chunks never merge, even when their addresses touch */
} aur__range;

typedef struct aur__heap_chunk {
    char *base; /* aligned */
    void *raw;  /* what the device allocator returned */
    size_t cap;
} aur__heap_chunk;

typedef struct aur__heap {
    aur_device device;
    aur__heap_chunk *chunk;
    int n_chunks, cap_chunks;
    aur__range *free;  /* sorted by address */
    int n_free, cap_free;
    size_t capacity;   /* all chunks */
    size_t used;       /* bytes handed out */
    size_t kind[AUR__MEM_KINDS]; /* of them, by kind */
} aur__heap;

static int aur__heap_insert_free(aur__heap *h, int at, aur__range r)
{
    if (aur__grow((void **)&h->free, &h->cap_free, h->n_free + 1, sizeof *h->free)) return AUR_ENOMEM;
    memmove(h->free + at + 1, h->free + at, sizeof *h->free * (size_t)(h->n_free - at));
    h->free[at] = r;
    h->n_free++;
    return 0;
}

/* The first free range at or after address p. */
static int aur__heap_lower_bound(const aur__heap *h, const char *p)
{
    int lo = 0, hi = h->n_free;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (h->free[mid].base < p) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int aur__heap_add_chunk(aur__heap *h, size_t want)
{
    size_t cap = want > AUR__HEAP_CHUNK_MIN ? want : AUR__HEAP_CHUNK_MIN;
    if (h->device == AUR_CPU && cap < h->capacity) cap = h->capacity; /* double the host heap: untouched pages cost nothing */
    if (h->device != AUR_CPU && cap > AUR__CHUNK_DEV_MAX && want <= AUR__CHUNK_DEV_MAX) cap = AUR__CHUNK_DEV_MAX;
    if (aur__grow((void **)&h->chunk, &h->cap_chunks, h->n_chunks + 1, sizeof *h->chunk)) return AUR_ENOMEM;
    void *raw = aur__dev_alloc(h->device, cap + (h->device == AUR_CPU ? AUR__ALIGN : 0), "the tape's tensors");
    if (!raw) return AUR_ENOMEM;
    char *base = h->device == AUR_CPU ? (char *)(((uintptr_t)raw + AUR__ALIGN - 1) & ~(uintptr_t)(AUR__ALIGN - 1)) : (char *)raw;
    aur__range r = {base, cap, h->n_chunks};
    if (aur__heap_insert_free(h, aur__heap_lower_bound(h, base), r)) {
        aur__dev_free(h->device, raw);
        return AUR_ENOMEM;
    }
    h->chunk[h->n_chunks].base = base, h->chunk[h->n_chunks].raw = raw, h->chunk[h->n_chunks].cap = cap;
    h->n_chunks++;
    h->capacity += cap;
    return 0;
}

/* n bytes (rounded to whole 64-byte lines), or NULL with an error. */
static void *aur__heap_alloc(aur__heap *h, size_t n, int kind)
{
    n = aur__align(n ? n : 1);
    int best = -1;
    for (int i = 0; i < h->n_free; i++)
        if (h->free[i].size >= n && (best < 0 || h->free[i].size < h->free[best].size)) best = i;
    if (best < 0) {
        if (aur__heap_add_chunk(h, n)) return NULL;
        return aur__heap_alloc(h, n, kind);
    }
    char *p = h->free[best].base;
    h->free[best].base += n;
    h->free[best].size -= n;
    if (!h->free[best].size) {
        memmove(h->free + best, h->free + best + 1, sizeof *h->free * (size_t)(h->n_free - best - 1));
        h->n_free--;
    }
    h->used += n;
    h->kind[kind] += n;
    return p;
}

/* The chunk holding p. */
static int aur__heap_chunk_of(const aur__heap *h, const char *p)
{
    for (int c = 0; c < h->n_chunks; c++)
        if (p >= h->chunk[c].base && p < h->chunk[c].base + h->chunk[c].cap) return c;
    AUR_ASSERT(0 && "aur__heap_free: not a block of this heap");
    return -1;
}

/* Gives back a block of n bytes (as asked of aur__heap_alloc). Never fails:
   if the free list cannot grow, the bytes are lost until the reset. */
static void aur__heap_free(aur__heap *h, void *ptr, size_t n, int kind)
{
    if (!ptr) return;
    char *p = (char *)ptr;
    n = aur__align(n ? n : 1);
    h->used -= n;
    h->kind[kind] -= n;
#ifdef AUR_POISON_FREED /* test builds: a read of freed data gives NaN, never a plausible number */
    if (h->device == AUR_CPU) memset(p, 0xFF, n);
#endif
    int c = aur__heap_chunk_of(h, p), at = aur__heap_lower_bound(h, p);
    int left = at > 0 && h->free[at - 1].chunk == c && h->free[at - 1].base + h->free[at - 1].size == p;
    int right = at < h->n_free && h->free[at].chunk == c && p + n == h->free[at].base;
    if (left && right) {
        h->free[at - 1].size += n + h->free[at].size;
        memmove(h->free + at, h->free + at + 1, sizeof *h->free * (size_t)(h->n_free - at - 1));
        h->n_free--;
    } else if (left) {
        h->free[at - 1].size += n;
    } else if (right) {
        h->free[at].base = p;
        h->free[at].size += n;
    } else {
        aur__range r = {p, n, c};
        aur__heap_insert_free(h, at, r);
    }
}

/* Everything free again; the chunks stay (and keep their pages). */
static void aur__heap_reset(aur__heap *h)
{
    h->n_free = 0;
    for (int c = 0; c < h->n_chunks; c++) {
        aur__range r = {h->chunk[c].base, h->chunk[c].cap, c};
        aur__heap_insert_free(h, aur__heap_lower_bound(h, r.base), r);
    }
    h->used = 0;
    memset(h->kind, 0, sizeof h->kind);
}

static void aur__heap_release(aur__heap *h)
{
    for (int c = 0; c < h->n_chunks; c++) aur__dev_free(h->device, h->chunk[c].raw);
    AUR_FREE(h->chunk);
    AUR_FREE(h->free);
    memset(h, 0, sizeof *h);
}
