#include "api.h"
#include "platform.h"

/* ==== tape: recording ops for backward ==== */

/* The bytes of a tape tensor (data or gradient), with who holds them: the
   forward's live tensors (users, until their scope ends) and each recorded
   node whose backward reads them (holders, until it has run); they go when
   neither is left. Shared by views. Bytes whose values
   are all BF16 numbers (autocast's products and copies of them) go to two
   bytes each once only backward holds them, as torch's autocast saves the
   BF16 casts it made; a node gets them back in F32 for its backward. */
typedef struct aur__storage {
    void *ptr;       /* NULL once let go, or once packed */
    uint16_t *packed; /* the values as BF16, when packed */
    size_t bytes;    /* of the F32 (or index) bytes */
    int holders;     /* nodes (or the one owner of a buffer, a gradient, a remade copy) */
    int users;       /* the forward's live tensors on them */
    unsigned char device, kind; /* kind: AUR__MEM_* */
    unsigned char bf16; /* every value is exactly a BF16 number */
} aur__storage;

/* How an op makes its output's bytes again from its inputs (GELU, layer norm,
   a gather: cheaper to redo than to keep). A node whose backward reads such
   an output holds the inputs instead, so the output's bytes go with its
   scope and are made again, for that backward only, if they are gone. */
typedef struct aur__rebuild {
    int (*fn)(aur_tape *t, const struct aur__rebuild *r, aur_tensor *y); /* fills y->data */
    aur_tensor *in[3];
    int kind;
    double arg;
    const void *aux[2];
} aur__rebuild;

typedef struct aur__node aur__node;
/* Adds this op's contribution to the gradients of its inputs. */
typedef int (*aur__backward_fn)(aur_tape *t, aur__node *n);

struct aur__node {
    const char *op;
    aur__backward_fn backward;
    aur_tensor *out;
    aur_tensor **in; /* n_in inputs (some may be NULL) */
    int n_in;
    void *saved[3];  /* op-specific buffers kept for backward */
    int64_t iarg[8];
    double farg[4];
    aur_segment_fn fn; /* checkpoint segments */
    void *ctx;
    aur__storage **held; /* what backward reads (inputs' data, saved buffers): let go once it has run */
    int n_held, cap_held;
    aur_tensor **rebuilt; /* tensors it reads whose bytes may be gone when it runs: made again (aur__rebuild) or unpacked */
    unsigned char *direct; /* [i]: the backward itself reads rebuilt[i] (not only a later entry's recipe) */
    int n_rebuilt, cap_rebuilt;
};

/* The blocks of aur__tape_object: kept across resets, freed with the tape. */
typedef struct aur__object {
    void *p;
    size_t size;
} aur__object;
typedef struct aur__objects {
    aur__object *slot;
    int n, cap, used; /* slots with a block, the array's capacity, slots handed out this step */
} aur__objects;

struct aur_tape {
    aur__objects objects;  /* per-step structs handed to the caller (aur__tape_object) */
    aur__arena main[AUR__DEVICES]; /* [device]: the step's structs and the ops' workspaces */
    aur__arena per_thread; /* the CPU's per-thread workspaces (matrix-product packing, attention tiles): a GPU has none */
    aur__heap heap[AUR__DEVICES]; /* [device]: tensor data, gradients, saved buffers */
    aur_tensor **live;     /* tensors the forward still holds, in creation order (scopes let them go) */
    int n_live, cap_live;
    aur__node **nodes;
    int n_nodes, cap_nodes;
    int grad_on, training, autocast, fused_attention;
    int no_record;   /* inside a checkpointed forward: propagate requires_grad, record nothing */
    int backward_done;
    int backward_rc; /* an allocation that failed inside a backward function */
    uint64_t seed, rng_offset;
    aur_memory_stats at_peak;
    size_t device_peak[AUR__DEVICES]; /* the most each device held at once (heap and arena) */
    aur__node unrecorded; /* what aur__record hands out when nothing is recorded: ops fill it in harmlessly */
};

static void aur__objects_free(aur__objects *o)
{
    for (int i = 0; i < o->n; i++) AUR_FREE(o->slot[i].p);
    AUR_FREE(o->slot);
}

/* A zeroed struct of a step's result that the caller holds a pointer to
   (Aurora's prediction batches), valid until the next aur_tape_reset, which
   hands the same block to the next step's k-th request: a step like the last
   one allocates nothing. No block is freed before the tape, so a free
   function may look at the struct at any time before aur_tape_free (a block
   too small for a request becomes a spare slot rather than being freed). */
static void *aur__tape_object(aur_tape *t, size_t bytes)
{
    aur__objects *o = &t->objects;
    if (aur__grow((void **)&o->slot, &o->cap, o->n + 2, sizeof *o->slot)) return NULL;
    if (o->used == o->n) {
        o->slot[o->n].p = NULL;
        o->slot[o->n++].size = 0;
    }
    aur__object *s = &o->slot[o->used];
    if (s->size < bytes) {
        void *p = aur__malloc(bytes, "a result struct on the tape");
        if (!p) return NULL;
        if (s->p) o->slot[o->n++] = *s;
        s->p = p;
        s->size = bytes;
    }
    o->used++;
    memset(s->p, 0, bytes);
    return s->p;
}

AURDEF aur_tape *aur_tape_create(void)
{
    aur_tape *t = (aur_tape *)aur__calloc(sizeof *t, "a tape");
    if (!t) return NULL;
    for (int d = 0; d < AUR__DEVICES; d++) {
        t->main[d].device = (aur_device)d;
        t->heap[d].device = (aur_device)d;
    }
    t->per_thread.device = AUR_CPU;
    t->grad_on = 1;
    t->training = 1;
    t->fused_attention = 1;
    t->seed = 0x5EED;
    return t;
}

AURDEF void aur_tape_free(aur_tape *t)
{
    if (!t) return;
    for (int d = 0; d < AUR__DEVICES; d++) {
        aur__arena_free_chunks(&t->main[d]);
        aur__heap_release(&t->heap[d]);
    }
    aur__arena_free_chunks(&t->per_thread);
    AUR_FREE(t->nodes);
    AUR_FREE(t->live);
    aur__objects_free(&t->objects);
    AUR_FREE(t);
}

AURDEF void aur_tape_reset(aur_tape *t)
{
    if (!t) return;
    for (int d = 0; d < AUR__DEVICES; d++) {
        aur__arena_reset(&t->main[d]);
        aur__heap_reset(&t->heap[d]);
    }
    aur__arena_reset(&t->per_thread);
    t->n_nodes = t->n_live = 0;
    t->objects.used = 0;
    t->no_record = t->backward_done = t->backward_rc = 0;
}

AURDEF void aur_tape_set_grad(aur_tape *t, int on) { t->grad_on = on != 0; }
AURDEF void aur_tape_set_training(aur_tape *t, int on) { t->training = on != 0; }
AURDEF void aur_tape_set_autocast(aur_tape *t, int on) { t->autocast = on != 0; }
AURDEF void aur_tape_set_fused_attention(aur_tape *t, int on) { t->fused_attention = on != 0; }
AURDEF void aur_tape_seed(aur_tape *t, uint64_t seed)
{
    t->seed = seed;
    t->rng_offset = 0;
}

/* ---- what the tape holds ---- */

static void aur__memory_now(const aur_tape *t, aur_memory_stats *s)
{
    memset(s, 0, sizeof *s);
    for (int d = 0; d < AUR__DEVICES; d++) {
        s->activations += t->heap[d].kind[AUR__MEM_ACTIVATION];
        s->gradients += t->heap[d].kind[AUR__MEM_GRADIENT];
        s->saved += t->heap[d].kind[AUR__MEM_SAVED];
        s->scratch += t->main[d].before + t->main[d].used;
    }
    s->per_thread = t->per_thread.before + t->per_thread.used;
    s->scratch += s->per_thread;
    s->current = s->activations + s->gradients + s->saved + s->scratch;
}

/* Called after every allocation: keeps the peak and its make-up. */
static void aur__note_memory(aur_tape *t)
{
    aur_memory_stats s;
    for (int d = 0; d < AUR__DEVICES; d++) {
        size_t now = t->heap[d].used + t->main[d].before + t->main[d].used;
        if (now > t->device_peak[d]) t->device_peak[d] = now;
    }
    aur__memory_now(t, &s);
    size_t shared = t->at_peak.peak_shared > s.current - s.per_thread ? t->at_peak.peak_shared : s.current - s.per_thread;
    if (s.current > t->at_peak.peak) {
        t->at_peak = s;
        t->at_peak.peak = s.current;
    }
    t->at_peak.peak_shared = shared;
}

AURDEF void aur_tape_memory(const aur_tape *t, size_t *current, size_t *peak)
{
    aur_memory_stats s;
    aur_tape_memory_stats(t, &s);
    if (current) *current = s.current;
    if (peak) *peak = s.peak;
}

AURDEF void aur_tape_memory_now(const aur_tape *t, aur_memory_stats *s)
{
    aur__memory_now(t, s);
    s->peak = t->at_peak.peak;
    s->peak_shared = t->at_peak.peak_shared;
}

AURDEF void aur_tape_memory_stats(const aur_tape *t, aur_memory_stats *s)
{
    size_t current;
    aur__memory_now(t, s);
    current = s->current;
    *s = t->at_peak;
    s->current = current;
}

/* Arena memory: the step's structs and an op's workspaces. */
static void *aur__alloc(aur_tape *t, aur_device dev, size_t n)
{
    void *p = aur__arena_alloc(&t->main[dev], n);
    if (!p && dev == AUR_CPU) aur__err(AUR_ENOMEM, "out of memory: %zu bytes in the tape's arena", n);
    if (p) aur__note_memory(t);
    return p;
}

AURDEF void *aur_tape_alloc(aur_tape *t, size_t bytes) { return aur__alloc(t, AUR_CPU, bytes); }

/* ---- storage: bytes that go when nothing holds them ---- */

/* bytes from the heap of dev, held once (by the caller). */
static aur__storage *aur__storage_new(aur_tape *t, aur_device dev, size_t bytes, int kind)
{
    aur__storage *s = (aur__storage *)aur__alloc(t, AUR_CPU, sizeof *s);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->ptr = aur__heap_alloc(&t->heap[dev], bytes, kind); /* a failure says why (no memory, no CUDA) */
    if (!s->ptr) return NULL;
    s->bytes = bytes, s->holders = 1, s->device = (unsigned char)dev, s->kind = (unsigned char)kind;
    aur__note_memory(t);
    return s;
}

static void aur__storage_hold(aur__storage *s)
{
    if (s) s->holders++;
}

#ifdef AUR__HAS_CUDA
static int aur_cuda_cast(void *y, const void *x, int to_bf16, int64_t n); /* kernels.cuh, included after the ops' rules */
#endif

static size_t aur__packed_bytes(const aur__storage *s) { return s->bytes / sizeof(aur_real) * sizeof(uint16_t); }

static void aur__storage_free(aur_tape *t, aur__storage *s)
{
    aur__heap_free(&t->heap[s->device], s->ptr, s->bytes, s->kind);
    aur__heap_free(&t->heap[s->device], s->packed, aur__packed_bytes(s), AUR__MEM_SAVED);
    s->ptr = NULL;
    s->packed = NULL;
}

static void aur__storage_drop(aur_tape *t, aur__storage *s)
{
    if (!s || --s->holders > 0 || s->users > 0) return;
    AUR_ASSERT(s->holders == 0);
    aur__storage_free(t, s);
}

/* dst = src's n values as BF16 (the top half of each float); 1 if one of
   them is not a BF16 number, -1 if the GPU failed (the caller keeps the F32
   bytes then). */
static int aur__bf16_pack(uint16_t *dst, const aur_real *src, int64_t n, aur_device dev)
{
    if (dev == AUR_META) return 0;
    if (dev == AUR_CUDA) return AUR__GPU(aur_cuda_cast, dst, src, 1, n) ? -1 : 0; /* the flag is trusted there */
    uint32_t inexact = 0;
    AUR__PRAGMA(omp parallel for schedule(static) reduction(| : inexact) if (n > AUR__PAR_MIN))
    for (int64_t i = 0; i < n; i++) {
        float f = (float)src[i];
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        inexact |= (bits & 0xFFFFu) | (uint32_t)((aur_real)f != src[i] && src[i] == src[i]); /* the second: double test builds */
        dst[i] = (uint16_t)(bits >> 16);
    }
    return inexact != 0;
}

static int aur__bf16_unpack(aur_real *dst, const uint16_t *src, int64_t n, aur_device dev)
{
    if (dev == AUR_META) return 0;
    if (dev == AUR_CUDA) return AUR__GPU(aur_cuda_cast, dst, src, 0, n);
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)src[i] << 16;
        float f;
        memcpy(&f, &bits, sizeof f);
        dst[i] = f;
    }
    return 0;
}

/* One of the forward's tensors on s goes: with the last, s goes too unless
   a node holds it. */
static void aur__storage_let_go(aur_tape *t, aur__storage *s)
{
    if (!s || --s->users > 0 || s->holders > 0) return;
    aur__storage_free(t, s);
}

/* When only backward nodes hold s now and its values are BF16 numbers, they
   keep two bytes a value from now on. Never fails: short of memory, or on a
   value that is not BF16 (a bug of the flag), s stays F32. */
static void aur__storage_pack(aur_tape *t, aur__storage *s)
{
    if (s && s->users == 0 && s->holders > 0 && s->bf16 && s->ptr && s->kind == AUR__MEM_ACTIVATION) {
        aur__heap *h = &t->heap[s->device];
        uint16_t *p = (uint16_t *)aur__heap_alloc(h, aur__packed_bytes(s), AUR__MEM_SAVED);
        int rc = p ? aur__bf16_pack(p, (const aur_real *)s->ptr, (int64_t)(s->bytes / sizeof(aur_real)), (aur_device)s->device) : 0;
        AUR_ASSERT(rc <= 0 && "a storage marked BF16 holds a value that is not");
        if (rc) {
            aur__heap_free(h, p, aur__packed_bytes(s), AUR__MEM_SAVED);
            p = NULL;
        }
        if (p) {
            aur__note_memory(t); /* both copies, for a moment */
            aur__heap_free(h, s->ptr, s->bytes, s->kind);
            s->ptr = NULL;
            s->packed = p;
        }
    }
}

/* A buffer an op keeps for its backward (statistics, indices): hand it to the node with aur__keep_buffer. */
static void *aur__buffer(aur_tape *t, aur_device dev, size_t bytes, aur__storage **s)
{
    *s = aur__storage_new(t, dev, bytes, AUR__MEM_SAVED);
    return *s ? (*s)->ptr : NULL;
}

/* ---- tensors on the tape ---- */

static int aur__live_push(aur_tape *t, aur_tensor *x)
{
    if (aur__grow((void **)&t->live, &t->cap_live, t->n_live + 1, sizeof *t->live)) return AUR_ENOMEM;
    t->live[t->n_live++] = x;
    return 0;
}

/* A fresh tensor on the tape, data uninitialised. */
static aur_tensor *aur__tensor(aur_tape *t, aur_dtype dtype, aur_device dev, aur_shape s)
{
    if (aur__shape_ok(s, "tensor")) return NULL;
    aur_tensor *x = (aur_tensor *)aur__alloc(t, AUR_CPU, sizeof *x);
    if (!x) return NULL;
    aur__tensor_init(x, dtype, dev, s);
    x->storage = aur__storage_new(t, dev, aur__nbytes(x), AUR__MEM_ACTIVATION);
    if (!x->storage || aur__live_push(t, x)) return NULL;
    x->storage->users = 1, x->storage->holders = 0;
    x->data = x->storage->ptr;
    return x;
}

/* A tensor of another shape on the same bytes (their holders are shared). */
static aur_tensor *aur__view(aur_tape *t, aur_tensor *x, aur_shape s)
{
    aur_tensor *y = (aur_tensor *)aur__alloc(t, AUR_CPU, sizeof *y);
    if (!y) return NULL;
    aur__tensor_init(y, x->dtype, x->device, s);
    y->data = x->data;
    y->offset = x->offset;
    y->storage = x->storage;
    if (!y->storage) return y;
    y->storage->users++;
    return aur__live_push(t, y) ? NULL : y;
}

AURDEF aur_tensor *aur_tensor_new(aur_tape *t, aur_device device, aur_shape shape)
{
    aur_tensor *x = aur__tensor(t, AUR_F32, device, shape);
    if (x && aur__zero_bytes(x->data, device, aur__nbytes(x))) return NULL;
    return x;
}

/* The output of an op on inputs in[0..n): it needs a gradient when
   gradients are on and any input needs one. */
static aur_tensor *aur__output(aur_tape *t, aur_shape s, aur_device dev, aur_tensor *const *in, int n)
{
    aur_tensor *y = aur__tensor(t, AUR_F32, dev, s);
    if (!y) return NULL;
    for (int i = 0; i < n && t->grad_on; i++)
        if (in[i] && in[i]->requires_grad) y->requires_grad = 1;
    return y;
}

/* y's values are all BF16 numbers when exact: an autocast product, rounded,
   or a copy of such values (what aur__storage_let_go may pack). */
static void aur__mark_bf16(aur_tensor *y, int exact)
{
    if (y && y->storage && exact && y->dtype == AUR_F32) y->storage->bf16 = 1;
}

static int aur__is_bf16(const aur_tensor *x) { return x && x->storage && x->storage->bf16; }

/* Scratch memory of the op running (uninitialised): give it back with aur__arena_release. */
static aur_real *aur__reals(aur_tape *t, aur_device dev, int64_t n)
{
    return (aur_real *)aur__alloc(t, dev, (size_t)n * sizeof(aur_real));
}

/* The CPU's per-thread scratch of the op running, `per` elements for each of
   `threads` threads, apart from the rest so the peak can be told with and
   without it: give it back with aur__arena_release(&t->per_thread, ...). */
static aur_real *aur__thread_reals(aur_tape *t, int64_t per, int threads)
{
    size_t n = (size_t)per * (size_t)threads * sizeof(aur_real);
    void *p = aur__arena_alloc(&t->per_thread, n);
    if (!p) return aur__err(AUR_ENOMEM, "out of memory: %zu bytes of per-thread scratch", n), (aur_real *)NULL;
    aur__note_memory(t);
    return (aur_real *)p;
}

/* ---- scopes ---- */

AURDEF aur_scope aur_scope_begin(aur_tape *t)
{
    aur_scope s;
    s.first = t ? t->n_live : 0;
    return s;
}

static int aur__kept(const aur_tensor *x, aur_tensor *const *keep, int n)
{
    for (int i = 0; i < n; i++)
        if (keep[i] == x) return 1;
    return 0;
}

AURDEF void aur_scope_end(aur_tape *t, aur_scope s, aur_tensor *const *keep, int n_keep)
{
    if (!t || s.first > t->n_live) return;
    for (int i = s.first; i < t->n_live; i++)
        if (!aur__kept(t->live[i], keep, n_keep)) aur__storage_let_go(t, t->live[i]->storage);
    for (int i = s.first; i < t->n_live; i++) /* then, with the temporaries gone, pack what backward alone holds */
        if (!aur__kept(t->live[i], keep, n_keep)) aur__storage_pack(t, t->live[i]->storage);
    int k = s.first;
    for (int i = s.first; i < t->n_live; i++)
        if (aur__kept(t->live[i], keep, n_keep)) t->live[k++] = t->live[i];
    t->n_live = k;
}

/* ---- recording ---- */

/* Appends a node for y = op(in), for the op to put its arguments in. When y
   needs no gradient, or inside a checkpointed forward, nothing is recorded and
   the tape's scratch node comes back instead, so every op ends the same way.
   Returns NULL (with an error) only when out of memory. */
static aur__node *aur__record(aur_tape *t, aur_tensor *y, const char *op, aur__backward_fn fn,
                              aur_tensor *const *in, int n_in)
{
    if (!y->requires_grad || t->no_record) return &t->unrecorded;
    aur__node *n = (aur__node *)aur__alloc(t, AUR_CPU, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->in = (aur_tensor **)aur__alloc(t, AUR_CPU, sizeof(aur_tensor *) * (size_t)(n_in ? n_in : 1));
    n->cap_held = 3 * n_in + 4; /* an input, or the up to 3 inputs of its rebuild; buffers */
    n->held = (aur__storage **)aur__alloc(t, AUR_CPU, sizeof(aur__storage *) * (size_t)n->cap_held);
    n->cap_rebuilt = 4 * n_in + 1; /* an input, or a rebuilt one and its recipe's up to 3 inputs */
    n->rebuilt = (aur_tensor **)aur__alloc(t, AUR_CPU, sizeof(aur_tensor *) * (size_t)n->cap_rebuilt);
    n->direct = (unsigned char *)aur__alloc(t, AUR_CPU, (size_t)n->cap_rebuilt);
    if (!n->in || !n->held || !n->rebuilt || !n->direct) return NULL;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->n_in = n_in;
    n->op = op;
    n->backward = fn;
    n->out = y;
    if (aur__grow((void **)&t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof(aur__node *))) return NULL;
    t->nodes[t->n_nodes++] = n;
    return n;
}

static void aur__hold_in_node(aur__node *n, aur__storage *s)
{
    if (!s) return;
    AUR_ASSERT(n->n_held < n->cap_held);
    aur__storage_hold(s);
    n->held[n->n_held++] = s;
}

/* 1 if every input of a recipe still has its values (a scope that kept the
   output may have let them go). */
static int aur__recipe_inputs_held(const aur__rebuild *r)
{
    for (int i = 0; i < 3; i++) {
        const aur__storage *s = r->in[i] ? r->in[i]->storage : NULL;
        if (s && !s->ptr && !s->packed) return 0;
    }
    return 1;
}

/* x's backward-time bytes are to be found again before the node runs (each
   tensor once, in order); direct: the backward reads x, not only a recipe. */
static void aur__rebuilt_add(aur__node *n, aur_tensor *x, int direct)
{
    for (int i = 0; i < n->n_rebuilt; i++)
        if (n->rebuilt[i] == x) {
            n->direct[i] |= (unsigned char)direct;
            return;
        }
    AUR_ASSERT(n->n_rebuilt < n->cap_rebuilt);
    n->direct[n->n_rebuilt] = (unsigned char)direct;
    n->rebuilt[n->n_rebuilt++] = x;
}

/* The node holds x's bytes; those that may be packed by the time it runs are unpacked for it. */
static void aur__hold_values(aur__node *n, aur_tensor *x, int direct)
{
    if (!x || !x->storage) return;
    aur__hold_in_node(n, x->storage);
    if (x->storage->bf16) aur__rebuilt_add(n, x, direct);
}

/* The node's backward reads x's data: hold it until the backward has run,
   or, when x's op can make it again from inputs that are still there, hold
   those inputs. */
static void aur__save(aur_tape *t, aur__node *n, aur_tensor *x)
{
    if (n == &t->unrecorded || !x || !x->storage) return;
    if (!x->rebuild || !aur__recipe_inputs_held(x->rebuild)) {
        aur__hold_values(n, x, 1);
        return;
    }
    for (int i = 0; i < 3; i++) aur__hold_values(n, x->rebuild->in[i], 0); /* first, so they are back before x is remade */
    aur__rebuilt_add(n, x, 1);
}

/* x's values back in F32 from its packed storage, into tmp (unless an earlier
   tensor of the same storage, at tmp_of_same, has them already). */
static int aur__unpack(aur_tape *t, aur_tensor *x, aur__storage **tmp, aur__storage *tmp_of_same)
{
    aur__storage *s = x->storage;
    if (!tmp_of_same) {
        if (!(tmp_of_same = *tmp = aur__storage_new(t, x->device, s->bytes, AUR__MEM_ACTIVATION))) return AUR_ENOMEM;
        int rc = aur__bf16_unpack((aur_real *)tmp_of_same->ptr, s->packed, (int64_t)(s->bytes / sizeof(aur_real)), x->device);
        if (rc) return rc;
    }
    x->data = (char *)tmp_of_same->ptr + x->offset;
    return 0;
}

/* The bytes unpacked for an earlier tensor on the packed storage s, or NULL. */
static aur__storage *aur__unpacked(const aur__node *n, aur__storage *const *tmp, int before, const aur__storage *s)
{
    for (int j = 0; j < before; j++)
        if (tmp[j] && n->rebuilt[j]->storage == s) return tmp[j];
    return NULL;
}

/* 1 if the node's backward reads a tensor on storage s itself (its unpacked bytes are shared by the storage's tensors). */
static int aur__read_directly(const aur__node *n, const aur__storage *s)
{
    for (int k = 0; k < n->n_rebuilt; k++)
        if (n->direct[k] && n->rebuilt[k]->storage == s) return 1;
    return 0;
}

/* The bytes of the node's rebuilt inputs that are gone, made again (tmp[i], for aur__unmake). */
static int aur__remake(aur_tape *t, aur__node *n, aur__storage **tmp)
{
    int rc = 0;
    for (int i = 0; i < n->n_rebuilt; i++) tmp[i] = NULL;
    for (int i = 0; i < n->n_rebuilt && !rc; i++) {
        aur_tensor *x = n->rebuilt[i];
        if (x->storage->ptr) continue; /* still held by someone: as it is */
        if (x->storage->packed) {
            rc = aur__unpack(t, x, &tmp[i], aur__unpacked(n, tmp, i, x->storage));
            continue;
        }
        tmp[i] = aur__storage_new(t, x->device, aur__nbytes(x), AUR__MEM_ACTIVATION);
        if (!tmp[i]) rc = AUR_ENOMEM;
        else x->data = tmp[i]->ptr, rc = x->rebuild->fn(t, x->rebuild, x);
    }
    for (int i = 0; i < n->n_rebuilt && !rc; i++) /* what only the recipes read goes before the backward runs */
        if (tmp[i] && !aur__read_directly(n, n->rebuilt[i]->storage)) {
            aur__storage_drop(t, tmp[i]);
            tmp[i] = NULL;
        }
    return rc;
}

static void aur__unmake(aur_tape *t, aur__node *n, aur__storage **tmp)
{
    for (int i = 0; i < n->n_rebuilt; i++) aur__storage_drop(t, tmp[i]);
}

/* Leaves a recipe for y's bytes (kept only if a later backward reads y). */
static void aur__rebuildable(aur_tape *t, aur_tensor *y, int (*fn)(aur_tape *, const aur__rebuild *, aur_tensor *), aur_tensor *a,
                             aur_tensor *b, aur_tensor *c, int kind, double arg, const void *aux0, const void *aux1)
{
    if (!y->requires_grad || t->no_record) return; /* nothing will be recorded that reads it */
    aur__rebuild *r = (aur__rebuild *)aur__alloc(t, AUR_CPU, sizeof *r);
    if (!r) return; /* then y is kept, as without a recipe */
    r->fn = fn, r->in[0] = a, r->in[1] = b, r->in[2] = c, r->kind = kind, r->arg = arg, r->aux[0] = aux0, r->aux[1] = aux1;
    y->rebuild = r;
}

/* The node's backward reads all its inputs' data (losses, element rules of two inputs). Returns n. */
static aur__node *aur__save_inputs(aur_tape *t, aur__node *n)
{
    for (int i = 0; n && i < n->n_in; i++) aur__save(t, n, n->in[i]);
    return n;
}

/* Hands a buffer made by aur__buffer to the node (freed now when nothing is recorded). */
static void aur__keep_buffer(aur_tape *t, aur__node *n, aur__storage *s)
{
    if (n == &t->unrecorded) {
        aur__storage_drop(t, s);
        return;
    }
    AUR_ASSERT(n->n_held < n->cap_held);
    n->held[n->n_held++] = s;
}

static void aur__node_release(aur_tape *t, aur__node *n)
{
    for (int i = 0; i < n->n_held; i++) aur__storage_drop(t, n->held[i]);
    n->n_held = 0;
}

/* The gradient buffer of x for a backward function to accumulate into, or
   NULL when x needs none. An activation's is made (zeroed) on first use;
   a failure is kept in backward_rc, which the walk reports. */
static aur_real *aur__grad_buffer(aur_tape *t, aur_tensor *x)
{
    if (!x->grad) {
        size_t bytes = (size_t)x->numel * sizeof(aur_real);
        if (x->owned) { /* owned tensors keep theirs across steps (torch leaf .grad) */
            x->grad = (aur_real *)aur__dev_alloc(x->device, bytes, "a gradient");
        } else {
            x->grad_storage = aur__storage_new(t, x->device, bytes, AUR__MEM_GRADIENT);
            x->grad = x->grad_storage ? (aur_real *)x->grad_storage->ptr : NULL;
        }
        if (!x->grad || aur__zero_bytes(x->grad, x->device, bytes)) {
            t->backward_rc = AUR_ENOMEM;
            return NULL;
        }
    }
    return x->grad;
}

static aur_real *aur__grad(aur_tape *t, aur_tensor *x)
{
    if (!x || !x->requires_grad || !aur__grad_buffer(t, x)) return NULL;
    x->grad_written = 1;
    return x->grad;
}

/* For an element-wise backward whose input x has no gradient yet: x's takes
   over the bytes of its output y's, which nothing reads after this node (the
   walk runs every reader of y first), so dx is written over dy and no second
   buffer is made. 1 if it did (x->grad is then dy's bytes). */
static int aur__grad_in_place(aur_tensor *x, aur_tensor *y)
{
    if (!x->requires_grad || x->grad || x->owned || x == y || !y->grad_storage || y->grad_storage->holders != 1 ||
        x->numel != y->numel || x->device != y->device)
        return 0;
    x->grad = y->grad, x->grad_storage = y->grad_storage, x->grad_written = 1;
    y->grad = NULL, y->grad_storage = NULL;
    return 1;
}

/* An activation's gradient, consumed: its bytes go. */
static void aur__grad_release(aur_tape *t, aur_tensor *x)
{
    if (!x->grad_storage) return;
    aur__storage_drop(t, x->grad_storage);
    x->grad_storage = NULL;
    x->grad = NULL;
}

/* ==== tape: backward ==== */

/* Runs the backward functions of nodes[from..n_nodes) in reverse order; each
   node then lets go of what it held and of its output's gradient. */
static int aur__walk_back(aur_tape *t, int from)
{
    for (int i = t->n_nodes - 1; i >= from; i--) {
        aur__node *n = t->nodes[i];
        int rc = 0;
        if (n->out->grad_written) { /* a node off the path to the loss has nothing to add */
            aur__storage *tmp[8];
            aur__storage **remade = n->n_rebuilt <= 8 ? tmp : (aur__storage **)aur__alloc(t, AUR_CPU, sizeof *remade * (size_t)n->n_rebuilt);
            rc = remade ? aur__remake(t, n, remade) : AUR_ENOMEM;
            if (!rc) rc = n->backward(t, n);
            if (remade) aur__unmake(t, n, remade);
        }
        if (!rc) rc = t->backward_rc;
        aur__node_release(t, n);
        aur__grad_release(t, n->out);
        if (rc) return rc;
    }
    return 0;
}

static int aur__set_one(aur_real *p, aur_device dev)
{
    aur_real one = 1;
    return aur__copy_bytes(p, dev, &one, AUR_CPU, sizeof one);
}

/* Parameters have slab gradients; one missing means it was frozen when the slabs
   were made. Owned tensors (leaves) get theirs, zeroed, even where nothing flows. */
static int aur__leaf_grads(aur_tape *t)
{
    for (int i = 0; i < t->n_nodes; i++)
        for (int k = 0; k < t->nodes[i]->n_in; k++) {
            aur_tensor *x = t->nodes[i]->in[k];
            if (!x || !x->requires_grad || x->grad) continue;
            if (x->model) return aur__err(AUR_EINVAL, "backward: parameter '%s' is trainable but has no gradient buffer", x->name);
            if (x->owned && !aur__grad_buffer(t, x)) return AUR_ENOMEM;
        }
    return 0;
}

AURDEF int aur_backward(aur_tape *t, aur_tensor *loss)
{
    if (!t || !loss) return aur__err(AUR_EINVAL, "aur_backward: no loss (did an op fail? %s)", aur__errmsg);
    if (loss->numel != 1)
        return aur__err(AUR_ESHAPE, "aur_backward: the loss has %lld elements; it must have one",
                        (long long)loss->numel);
    if (t->backward_done) return aur__err(AUR_EINVAL, "aur_backward: this tape already ran backward; reset it");
    if (!loss->requires_grad) return aur__err(AUR_EINVAL, "aur_backward: the loss does not depend on any trainable tensor");
    int rc = aur__leaf_grads(t);
    aur_real *g = rc ? NULL : aur__grad(t, loss);
    if (!rc && !g) rc = AUR_ENOMEM;
    if (!rc) rc = aur__set_one(g, loss->device);
    if (rc) return rc;
    t->backward_done = 1;
    return aur__walk_back(t, 0);
}

/* ==== tape: activation checkpointing ====
   Forward: run the segment recording nothing, in a scope that keeps only its
   output; the node holds the segment's inputs. Backward: rerun it recording
   (same dropout stream and settings), seed its output with the node's
   gradient, walk the nodes it recorded, and let its tensors go. */

static int aur__is_input(const aur__node *n, const aur_tensor *x)
{
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] == x) return 1;
    return 0;
}

/* dst += src on either device (through host copies in the arena on a GPU: rare and small). */
static int aur__add_grad(aur_tape *t, aur_real *dst, const aur_real *src, int64_t n, aur_device dev)
{
    if (dev == AUR_META) return 0;
    if (dev == AUR_CPU) {
        for (int64_t i = 0; i < n; i++) dst[i] += src[i];
        return 0;
    }
    aur__mark mk = aur__arena_mark(&t->main[AUR_CPU]);
    aur_real *a = aur__reals(t, AUR_CPU, 2 * n + 1);
    int rc = a ? aur__copy_bytes(a, AUR_CPU, dst, dev, sizeof(aur_real) * (size_t)n) : AUR_ENOMEM;
    if (!rc) rc = aur__copy_bytes(a + n, AUR_CPU, src, dev, sizeof(aur_real) * (size_t)n);
    for (int64_t i = 0; i < n && !rc; i++) a[i] += a[n + i];
    if (!rc) rc = aur__copy_bytes(dst, dev, a, AUR_CPU, sizeof(aur_real) * (size_t)n);
    aur__arena_release(&t->main[AUR_CPU], mk);
    return rc;
}

static int aur__checkpoint_back(aur_tape *t, aur__node *n)
{
    uint64_t saved_offset = t->rng_offset;
    int from = t->n_nodes, rc = 0, modes[3] = {t->training, t->autocast, t->fused_attention};
    aur_scope s = aur_scope_begin(t);
    t->rng_offset = (uint64_t)n->iarg[0];
    /* recompute as the forward ran: the same dropout, autocast and attention path */
    t->training = (int)n->iarg[1], t->autocast = (int)n->iarg[2], t->fused_attention = (int)n->iarg[3];
    aur_tensor *y = n->fn(t, n->ctx, n->in, n->n_in);
    aur_scope_end(t, s, NULL, 0); /* what no recorded backward reads goes before the walk (y's bytes too), the rest is packed if it can be */
    if (!y) {
        rc = aur__err(AUR_EINVAL, "checkpoint: the segment failed when recomputed: %s", aur__errmsg);
    } else if (y->numel != n->out->numel) {
        rc = aur__err(AUR_ESHAPE, "checkpoint: the recomputed output has %lld elements, not %lld",
                      (long long)y->numel, (long long)n->out->numel);
    } else if (aur__is_input(n, y)) { /* the segment returned an input unchanged */
        aur_real *dx = aur__grad(t, y);
        rc = dx ? aur__add_grad(t, dx, n->out->grad, y->numel, y->device) : t->backward_rc;
    } else if (y->requires_grad) {
        y->grad = n->out->grad; /* the incoming gradient moves to y: it goes once y's node has used it */
        y->grad_storage = n->out->grad_storage;
        n->out->grad_storage = NULL;
        n->out->grad = NULL;
        y->grad_written = 1;
        rc = aur__walk_back(t, from);
    }
    for (int i = from; i < t->n_nodes; i++) aur__node_release(t, t->nodes[i]); /* nodes the walk did not reach */
    t->n_nodes = from;
    aur_scope_end(t, s, NULL, 0);
    t->rng_offset = saved_offset;
    t->training = modes[0], t->autocast = modes[1], t->fused_attention = modes[2];
    return rc;
}

AURDEF aur_tensor *aur_checkpoint(aur_tape *t, aur_segment_fn fn, void *ctx, aur_tensor *const *in, int n_in)
{
    if (!t || !fn) {
        aur__err(AUR_EINVAL, "aur_checkpoint: no tape or function");
        return NULL;
    }
    for (int i = 0; i < n_in; i++)
        if (!in[i]) return NULL;
    if (t->no_record) return fn(t, ctx, in, n_in); /* inside a checkpointed forward */
    /* run the segment recording nothing; its scope frees all but its output (with gradients off too) */
    uint64_t offset = t->rng_offset;
    aur_scope s = aur_scope_begin(t);
    t->no_record = 1;
    aur_tensor *y = fn(t, ctx, in, n_in);
    t->no_record = 0;
    for (int i = 0; y && i < n_in; i++) /* the node needs an output of its own */
        if (y == in[i]) {
            aur_tensor *v = aur__view(t, y, aur_tensor_shape(y));
            if (v) v->requires_grad = y->requires_grad;
            y = v;
        }
    aur_scope_end(t, s, &y, 1);
    if (!y) return NULL;
    aur__node *n = aur__record(t, y, "checkpoint", aur__checkpoint_back, in, n_in);
    if (!n) return NULL;
    for (int i = 0; i < n_in; i++) aur__save(t, n, in[i]); /* the recomputation reads every input */
    n->fn = fn;
    n->ctx = ctx;
    n->iarg[0] = (int64_t)offset;
    n->iarg[1] = t->training, n->iarg[2] = t->autocast, n->iarg[3] = t->fused_attention;
    return y;
}
