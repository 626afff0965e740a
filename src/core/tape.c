#include "api.h"
#include "platform.h"

/* ==== tape: recording ops for backward ==== */

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
    aur__arena main[2];    /* [device]: struct and activations of the step */
    aur__arena scratch[2]; /* recomputation of checkpointed segments */
    aur__arena *ar;        /* where ops allocate now: main or scratch */
    aur__node **nodes;
    int n_nodes, cap_nodes;
    int grad_on, training, autocast, fused_attention;
    int no_record;  /* inside a checkpointed forward: propagate requires_grad, record nothing */
    int in_segment; /* inside a checkpointed function (forward or recompute) */
    int backward_done;
    uint64_t seed, rng_offset;
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
    for (int d = 0; d < 2; d++) {
        t->main[d].device = (aur_device)d;
        t->scratch[d].device = (aur_device)d;
    }
    t->ar = t->main;
    t->grad_on = 1;
    t->training = 1;
    t->fused_attention = 1;
    t->seed = 0x5EED;
    return t;
}

AURDEF void aur_tape_free(aur_tape *t)
{
    if (!t) return;
    for (int d = 0; d < 2; d++) {
        aur__arena_free_chunks(&t->main[d]);
        aur__arena_free_chunks(&t->scratch[d]);
    }
    AUR_FREE(t->nodes);
    aur__objects_free(&t->objects);
    AUR_FREE(t);
}

AURDEF void aur_tape_reset(aur_tape *t)
{
    if (!t) return;
    for (int d = 0; d < 2; d++) {
        aur__arena_reset(&t->main[d]);
        aur__arena_reset(&t->scratch[d]);
    }
    t->ar = t->main;
    t->n_nodes = 0;
    t->objects.used = 0;
    t->no_record = t->in_segment = t->backward_done = 0;
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

AURDEF void aur_tape_memory(const aur_tape *t, size_t *current, size_t *peak)
{
    size_t c = 0, p = 0;
    for (int d = 0; d < 2; d++) {
        c += t->main[d].before + t->main[d].used + t->scratch[d].before + t->scratch[d].used;
        p += t->main[d].peak + t->scratch[d].peak;
    }
    if (current) *current = c;
    if (peak) *peak = p;
}

/* Arena memory of the current allocation target (main or scratch). */
static void *aur__alloc(aur_tape *t, aur_device dev, size_t n)
{
    void *p = aur__arena_alloc(&t->ar[dev], n);
    if (!p && dev == AUR_CPU) aur__err(AUR_ENOMEM, "out of memory: %zu bytes in the tape's arena", n);
    return p;
}

/* A fresh tensor in the arena, data uninitialised. */
static aur_tensor *aur__tensor(aur_tape *t, aur_dtype dtype, aur_device dev, aur_shape s)
{
    if (aur__shape_ok(s, "tensor")) return NULL;
    aur_tensor *x = (aur_tensor *)aur__alloc(t, AUR_CPU, sizeof *x);
    if (!x) return NULL;
    aur__tensor_init(x, dtype, dev, s);
    x->data = aur__alloc(t, dev, aur__nbytes(x));
    return x->data ? x : NULL;
}

AURDEF void *aur_tape_alloc(aur_tape *t, size_t bytes) { return aur__alloc(t, AUR_CPU, bytes); }

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

/* Scratch memory of the step (uninitialised), e.g. saved statistics. */
static aur_real *aur__reals(aur_tape *t, aur_device dev, int64_t n)
{
    return (aur_real *)aur__alloc(t, dev, (size_t)n * sizeof(aur_real));
}

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
    if (!n->in) return NULL;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->n_in = n_in;
    n->op = op;
    n->backward = fn;
    n->out = y;
    if (aur__grow((void **)&t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof(aur__node *))) return NULL;
    t->nodes[t->n_nodes++] = n;
    return n;
}

/* The gradient buffer of x for a backward function to accumulate into, or
   NULL when x needs none. Buffers were made before the walk began. */
static aur_real *aur__grad(aur_tensor *x)
{
    if (!x || !x->requires_grad) return NULL;
    AUR_ASSERT(x->grad);
    x->grad_written = 1;
    return x->grad;
}

/* ==== tape: backward ==== */

/* Zero-filled gradient buffers for every tensor of nodes[from..] that needs one. */
static int aur__alloc_grads(aur_tape *t, int from)
{
    for (int i = from; i < t->n_nodes; i++) {
        aur__node *n = t->nodes[i];
        for (int k = -1; k < n->n_in; k++) {
            aur_tensor *x = k < 0 ? n->out : n->in[k];
            if (!x || !x->requires_grad || x->grad) continue;
            if (x->model) /* parameters have slab gradients; missing means frozen at allocation */
                return aur__err(AUR_EINVAL, "backward: parameter '%s' is trainable but has no gradient buffer",
                                x->name);
            /* owned tensors keep theirs across steps (torch leaf .grad); activations use the arena */
            size_t bytes = (size_t)x->numel * sizeof(aur_real);
            x->grad = x->owned ? (aur_real *)aur__dev_alloc(x->device, bytes, "a gradient") : aur__reals(t, x->device, x->numel);
            if (!x->grad || aur__zero_bytes(x->grad, x->device, bytes)) return AUR_ENOMEM;
        }
    }
    return 0;
}

/* Runs the backward functions of nodes[from..n_nodes) in reverse order. */
static int aur__walk_back(aur_tape *t, int from)
{
    for (int i = t->n_nodes - 1; i >= from; i--) {
        aur__node *n = t->nodes[i];
        if (!n->out->grad_written) continue; /* not on a path to the loss */
        int rc = n->backward(t, n);
        if (rc) return rc;
    }
    return 0;
}

static int aur__set_one(aur_real *p, aur_device dev)
{
    aur_real one = 1;
    return aur__copy_bytes(p, dev, &one, AUR_CPU, sizeof one);
}

AURDEF int aur_backward(aur_tape *t, aur_tensor *loss)
{
    if (!t || !loss) return aur__err(AUR_EINVAL, "aur_backward: no loss (did an op fail? %s)", aur__errmsg);
    if (loss->numel != 1)
        return aur__err(AUR_ESHAPE, "aur_backward: the loss has %lld elements; it must have one",
                        (long long)loss->numel);
    if (t->backward_done) return aur__err(AUR_EINVAL, "aur_backward: this tape already ran backward; reset it");
    if (!loss->requires_grad) return aur__err(AUR_EINVAL, "aur_backward: the loss does not depend on any trainable tensor");
    int rc = aur__alloc_grads(t, 0);
    if (!rc) rc = aur__set_one(loss->grad, loss->device);
    if (rc) return rc;
    loss->grad_written = 1;
    t->backward_done = 1;
    return aur__walk_back(t, 0);
}

/* ==== tape: activation checkpointing ====
   Forward: run the segment with recording off in the scratch arena, copy its
   output to the main arena, drop the rest. Backward: rerun it with
   recording on (same dropout stream), seed its output with our gradient,
   and walk the nodes it recorded. */

static int aur__is_input(const aur__node *n, const aur_tensor *x)
{
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] == x) return 1;
    return 0;
}

/* dst += src on either device (through a host copy for CUDA: rare and small). */
static int aur__add_grad(aur_real *dst, const aur_real *src, int64_t n, aur_device dev)
{
    if (dev == AUR_CPU) {
        for (int64_t i = 0; i < n; i++) dst[i] += src[i];
        return 0;
    }
    aur_real *a = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(2 * n + 1), "a gradient copy");
    int rc = a ? aur__copy_bytes(a, AUR_CPU, dst, dev, sizeof(aur_real) * (size_t)n) : AUR_ENOMEM;
    if (!rc) rc = aur__copy_bytes(a + n, AUR_CPU, src, dev, sizeof(aur_real) * (size_t)n);
    for (int64_t i = 0; i < n && !rc; i++) a[i] += a[n + i];
    if (!rc) rc = aur__copy_bytes(dst, dev, a, AUR_CPU, sizeof(aur_real) * (size_t)n);
    AUR_FREE(a);
    return rc;
}

static int aur__checkpoint_back(aur_tape *t, aur__node *n)
{
    uint64_t saved_offset = t->rng_offset;
    int from = t->n_nodes, rc = 0, modes[3] = {t->training, t->autocast, t->fused_attention};
    aur__mark mk[2] = {aur__arena_mark(&t->scratch[0]), aur__arena_mark(&t->scratch[1])};
    t->ar = t->scratch;
    t->in_segment = 1;
    t->rng_offset = (uint64_t)n->iarg[0];
    /* recompute as the forward ran: the same dropout, autocast and attention path */
    t->training = (int)n->iarg[1], t->autocast = (int)n->iarg[2], t->fused_attention = (int)n->iarg[3];
    aur_tensor *y = n->fn(t, n->ctx, n->in, n->n_in);
    if (!y) {
        rc = aur__err(AUR_EINVAL, "checkpoint: the segment failed when recomputed: %s", aur__errmsg);
    } else if (y->numel != n->out->numel) {
        rc = aur__err(AUR_ESHAPE, "checkpoint: the recomputed output has %lld elements, not %lld",
                      (long long)y->numel, (long long)n->out->numel);
    } else if (aur__is_input(n, y)) { /* the segment returned an input unchanged */
        aur_real *dx = aur__grad(y);
        rc = dx ? aur__add_grad(dx, n->out->grad, y->numel, y->device) : 0;
    } else if (y->requires_grad) {
        y->grad = n->out->grad; /* share the incoming gradient */
        rc = aur__alloc_grads(t, from);
        y->grad_written = 1;
        if (!rc) rc = aur__walk_back(t, from);
    }
    t->n_nodes = from;
    t->ar = t->main;
    t->in_segment = 0;
    t->rng_offset = saved_offset;
    t->training = modes[0], t->autocast = modes[1], t->fused_attention = modes[2];
    aur__arena_release(&t->scratch[0], mk[0]);
    aur__arena_release(&t->scratch[1], mk[1]);
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
    if (t->in_segment) return fn(t, ctx, in, n_in);
    /* with gradients off nothing is recorded, and the segment's memory is freed at once */
    uint64_t offset = t->rng_offset;
    aur__mark mk[2] = {aur__arena_mark(&t->scratch[0]), aur__arena_mark(&t->scratch[1])};
    t->ar = t->scratch;
    t->no_record = t->in_segment = 1;
    aur_tensor *tmp = fn(t, ctx, in, n_in);
    t->ar = t->main;
    t->no_record = t->in_segment = 0;

    aur_tensor *y = NULL;
    if (tmp) y = aur__tensor(t, tmp->dtype, tmp->device, aur_tensor_shape(tmp));
    if (y && aur__copy_bytes(y->data, y->device, tmp->data, tmp->device, aur__nbytes(tmp))) y = NULL;
    if (y) y->requires_grad = tmp->requires_grad;
    aur__arena_release(&t->scratch[0], mk[0]);
    aur__arena_release(&t->scratch[1], mk[1]);
    if (!y) return NULL;
    aur__node *n = aur__record(t, y, "checkpoint", aur__checkpoint_back, in, n_in);
    if (!n) return NULL;
    n->fn = fn;
    n->ctx = ctx;
    n->iarg[0] = (int64_t)offset;
    n->iarg[1] = t->training, n->iarg[2] = t->autocast, n->iarg[3] = t->fused_attention;
    return y;
}
