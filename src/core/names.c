#include "api.h"
#include "platform.h"

/* ==== a name index: name -> position in a list, in a step or two ====
   Open addressing over slots holding position + 1 (0: empty), at most half
   full, so adding n names costs O(n) however many there are (a model's
   parameters, Aurora's normalisation statistics). The names stay in the
   caller's list; name_of(set, k) reads the k-th. */

typedef struct aur__names {
    int *slot;
    int cap, n; /* slots (a power of two), names indexed */
} aur__names;

typedef const char *(*aur__name_of)(const void *set, int k);

/* FNV-1a, then a finaliser: FNV's low bits (the ones a table masks) mix
   poorly, and names like "v1".."v400000" collided into long probe runs. */
static uint64_t aur__hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 33, h *= 0xff51afd7ed558ccdull, h ^= h >> 33; /* murmur3's fmix64 */
    return h;
}

/* The position of name, or -1. */
static int aur__names_find(const aur__names *ix, const char *name, aur__name_of name_of, const void *set)
{
    if (!ix->cap) return -1;
    for (uint64_t h = aur__hash(name);; h++) {
        int slot = ix->slot[h & (uint64_t)(ix->cap - 1)];
        if (!slot) return -1;
        if (!strcmp(name_of(set, slot - 1), name)) return slot - 1;
    }
}

static void aur__names_put(int *slot, int cap, int k, const char *name)
{
    uint64_t h = aur__hash(name);
    while (slot[h & (uint64_t)(cap - 1)]) h++;
    slot[h & (uint64_t)(cap - 1)] = k + 1;
}

/* Indexes the k-th name of the set (k = the number indexed so far), growing the table as needed. */
static int aur__names_add(aur__names *ix, int k, aur__name_of name_of, const void *set)
{
    AUR_ASSERT(k == ix->n);
    if (2 * (ix->n + 1) > ix->cap) {
        int cap = ix->cap ? 2 * ix->cap : 64;
        int *slot = (int *)aur__calloc(sizeof(int) * (size_t)cap, "a name index");
        if (!slot) return AUR_ENOMEM;
        for (int i = 0; i < ix->n; i++) aur__names_put(slot, cap, i, name_of(set, i));
        AUR_FREE(ix->slot);
        ix->slot = slot, ix->cap = cap;
    }
    aur__names_put(ix->slot, ix->cap, k, name_of(set, k));
    ix->n++;
    return 0;
}
