#include "api.h"
#include "platform.h"

/* ==== models: the parameter table ==== */

struct aur_model {
    aur_tensor **params; /* in declaration order (the state_dict order) */
    int n, cap;
    aur__names index;    /* name -> params slot */
    aur_device device;
    int allocated;
    void *slab;          /* every parameter and buffer */
    size_t slab_bytes;
    aur_real *grad_slab; /* gradients of the trainable parameters */
    size_t grad_bytes;
    void *impl;          /* the concrete model (Aurora, Surya) built on this table, or NULL */
    void (*impl_free)(void *impl);
    struct aur__adapter *adapters; /* LoRA adapters by module (lora.h declares them) */
    int n_adapters, cap_adapters;
    double *reduce;      /* on a GPU: the deterministic norms' scratch (AUR__REDUCE_SLOTS + 1 + n doubles) */
    double *norms;       /* host: one gradient norm per parameter (clipping allocates nothing per step) */
    struct aur__mirror *mirrors; /* on a GPU: copies of the implementation's constant host tables */
    int n_mirrors, cap_mirrors;
};

/* A constant host table (index table, mask, DFT matrix) the model keeps for its
   lifetime, and its copy on the model's GPU, made once. */
typedef struct aur__mirror {
    const void *host;
    size_t bytes;
    void *dev;
} aur__mirror;

/* A LoRA adapter on the linear module `module`: y += scaling (dropout(x) A^T) B^T. */
typedef struct aur__adapter {
    char *module;
    aur_tensor *A, *B; /* "{module}.lora_A.default.weight" (r, in), "...lora_B..." (out, r) */
    double scaling, dropout;
    int merged;        /* folded into the base weight: the forward skips it */
} aur__adapter;

static const char *aur__param_name(const void *m, int k) { return ((const aur_model *)m)->params[k]->name; }

static int aur__index_find(const aur_model *m, const char *name) { return aur__names_find(&m->index, name, aur__param_name, m); }

AURDEF aur_model *aur_model_create(void) { return (aur_model *)aur__calloc(sizeof(aur_model), "a model"); }

AURDEF void aur_model_free(aur_model *m)
{
    if (!m) return;
    if (m->impl_free) m->impl_free(m->impl);
    for (int i = 0; i < m->n; i++) {
        AUR_FREE((char *)m->params[i]->name);
        AUR_FREE(m->params[i]);
    }
    aur__dev_free(m->device, m->slab);
    aur__dev_free(m->device, m->grad_slab);
    aur__dev_free(m->device, m->reduce);
    AUR_FREE(m->norms);
    for (int i = 0; i < m->n_mirrors; i++) aur__dev_free(m->device, m->mirrors[i].dev);
    AUR_FREE(m->mirrors);
    for (int i = 0; i < m->n_adapters; i++) AUR_FREE(m->adapters[i].module);
    AUR_FREE(m->adapters);
    AUR_FREE(m->params);
    AUR_FREE(m->index.slot);
    AUR_FREE(m);
}

AURDEF aur_tensor *aur_model_add(aur_model *m, const char *name, aur_shape shape, int is_buffer)
{
    if (m->allocated) {
        aur__err(AUR_EINVAL, "aur_model_add '%s': declare every parameter before aur_model_alloc", name);
        return NULL;
    }
    if (aur__shape_ok(shape, name)) return NULL;
    if (aur__index_find(m, name) >= 0) {
        aur__err(AUR_EINVAL, "aur_model_add: parameter '%s' is declared twice", name);
        return NULL;
    }
    if (aur__grow((void **)&m->params, &m->cap, m->n + 1, sizeof(aur_tensor *))) return NULL;
    aur_tensor *t = (aur_tensor *)aur__malloc(sizeof *t, "a parameter");
    char *nm = aur__strdup(name);
    if (!t || !nm) {
        AUR_FREE(t);
        AUR_FREE(nm);
        return NULL;
    }
    aur__tensor_init(t, AUR_F32, AUR_CPU, shape);
    t->name = nm;
    t->model = m;
    t->is_buffer = is_buffer != 0;
    t->requires_grad = !is_buffer;
    m->params[m->n] = t;
    if (aur__names_add(&m->index, m->n, aur__param_name, m)) {
        AUR_FREE(nm);
        AUR_FREE(t);
        return NULL;
    }
    m->n++;
    return t;
}

static size_t aur__slot_bytes(const aur_tensor *t) { return aur__align((size_t)t->numel * sizeof(aur_real)); }

/* (Re)builds the gradient slab for the parameters trainable now. */
static int aur__model_grads(aur_model *m)
{
    size_t total = 0, off = 0;
    for (int i = 0; i < m->n; i++)
        if (m->params[i]->requires_grad) total += aur__slot_bytes(m->params[i]);
    aur__dev_free(m->device, m->grad_slab);
    m->grad_slab = NULL;
    m->grad_bytes = 0;
    if (total) {
        m->grad_slab = (aur_real *)aur__dev_alloc(m->device, total, "the gradient slab");
        if (!m->grad_slab || aur__zero_bytes(m->grad_slab, m->device, total)) return AUR_ENOMEM;
        m->grad_bytes = total;
    }
    for (int i = 0; i < m->n; i++) {
        aur_tensor *t = m->params[i];
        t->grad = t->requires_grad ? (aur_real *)((char *)m->grad_slab + off) : NULL;
        t->grad_written = 0;
        if (t->requires_grad) off += aur__slot_bytes(t);
    }
    return 0;
}

AURDEF int aur_model_alloc(aur_model *m, aur_device device)
{
    if (m->allocated) return aur__err(AUR_EINVAL, "aur_model_alloc: already allocated");
    size_t total = 0, off = 0;
    for (int i = 0; i < m->n; i++) total += aur__slot_bytes(m->params[i]);
    m->device = device;
    m->slab = aur__dev_alloc(device, total, "the parameter slab");
    if (!m->slab || aur__zero_bytes(m->slab, device, total)) return AUR_ENOMEM;
    if (!(m->norms = (double *)aur__malloc(sizeof(double) * (size_t)(m->n + 1), "gradient norms"))) return AUR_ENOMEM;
    size_t reduce = sizeof(double) * (size_t)(AUR__REDUCE_SLOTS + 1 + m->n); /* partial sums, a result, one per parameter */
    if (device != AUR_CPU && !(m->reduce = (double *)aur__dev_alloc(device, reduce, "norm scratch"))) return AUR_ENOMEM;
    m->slab_bytes = total;
    for (int i = 0; i < m->n; i++) {
        m->params[i]->data = (char *)m->slab + off;
        m->params[i]->device = device;
        off += aur__slot_bytes(m->params[i]);
    }
    m->allocated = 1;
    return aur__model_grads(m);
}

AURDEF int aur_model_add_adapter(aur_model *m, const char *module, int r, double scaling, double dropout)
{
    char name[512];
    snprintf(name, sizeof name, "%s.weight", module);
    int wi = aur__index_find(m, name);
    const aur_tensor *w = wi < 0 ? NULL : m->params[wi];
    if (!w || (w->ndim != 2 && w->ndim != 4) || r < 1)
        return aur__err(AUR_EINVAL, "LoRA on '%s': not a Linear or Conv2d module (no 2-D or 4-D %s) or rank %d < 1", module, name, r);
    /* PEFT's shapes: Linear A (r, in), B (out, r); Conv2d A (r, in, kh, kw) (a convolution like the base's), B (out, r, 1, 1) */
    int64_t out = w->shape[0], in = w->shape[1];
    aur_shape a_shape = w->ndim == 4 ? aur_shape4(r, in, w->shape[2], w->shape[3]) : aur_shape2(r, in);
    aur_shape b_shape = w->ndim == 4 ? aur_shape4(out, r, 1, 1) : aur_shape2(out, r);
    if (aur__grow((void **)&m->adapters, &m->cap_adapters, m->n_adapters + 1, sizeof(aur__adapter))) return AUR_ENOMEM;
    aur__adapter *a = &m->adapters[m->n_adapters];
    memset(a, 0, sizeof *a);
    snprintf(name, sizeof name, "%s.lora_A.default.weight", module);
    a->A = aur_model_add(m, name, a_shape, 0);
    snprintf(name, sizeof name, "%s.lora_B.default.weight", module);
    a->B = a->A ? aur_model_add(m, name, b_shape, 0) : NULL;
    a->module = a->B ? aur__strdup(module) : NULL;
    if (!a->module) return a->B ? AUR_ENOMEM : AUR_EINVAL;
    a->scaling = scaling;
    a->dropout = dropout;
    m->n_adapters++;
    return 0;
}

static const aur__adapter *aur__find_adapter(const aur_model *m, const char *module)
{
    for (int i = 0; i < m->n_adapters; i++)
        if (!strcmp(m->adapters[i].module, module)) return &m->adapters[i];
    return NULL;
}

/* A Conv2d weight (out, in, kh, kw) as the matrix (out, in kh kw) of its
   product with flattened patches; a Linear weight as it is. */
static aur_tensor *aur__as_matrix(aur_tape *t, aur_tensor *w)
{
    return w->ndim == 2 ? w : aur_reshape(t, w, aur_shape2(w->shape[0], w->numel / w->shape[0]));
}

AURDEF aur_tensor *aur_model_linear(aur_tape *t, const aur_model *m, const char *module, aur_tensor *x, int bias)
{
    char name[512];
    snprintf(name, sizeof name, "%s.weight", module);
    aur_tensor *w = aur_model_param(m, name), *b = NULL;
    if (bias) snprintf(name, sizeof name, "%s.bias", module), b = aur_model_param(m, name);
    if (!w || (bias && !b)) return NULL;
    aur_tensor *y = aur_linear(t, x, aur__as_matrix(t, w), b);
    const aur__adapter *a = m->n_adapters ? aur__find_adapter(m, module) : NULL;
    if (!a || a->merged) return y;
    /* PEFT's order: the base result, then + lora_B(lora_A(dropout(x))) * scaling */
    aur_tensor *low = aur_linear(t, aur_linear(t, aur_dropout(t, x, a->dropout), aur__as_matrix(t, a->A), NULL), aur__as_matrix(t, a->B), NULL);
    return aur_add(t, y, aur_scale(t, low, a->scaling));
}

AURDEF int aur_model_count(const aur_model *m) { return m->n; }
AURDEF aur_tensor *aur_model_at(const aur_model *m, int i) { return i >= 0 && i < m->n ? m->params[i] : NULL; }

AURDEF aur_tensor *aur_model_param(const aur_model *m, const char *name)
{
    int i = aur__index_find(m, name);
    if (i < 0) {
        aur__err(AUR_EINVAL, "no parameter named '%s'", name);
        return NULL;
    }
    return m->params[i];
}

/* aur_model_param with a printf-style name (the models' modules look their weights up this way). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static aur_tensor *aur__paramf(const aur_model *m, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return aur_model_param(m, name);
}

AURDEF int64_t aur_model_numel(const aur_model *m, int trainable_only)
{
    int64_t n = 0;
    for (int i = 0; i < m->n; i++)
        if (!m->params[i]->is_buffer && (!trainable_only || m->params[i]->requires_grad)) n += m->params[i]->numel;
    return n;
}

AURDEF size_t aur_model_bytes(const aur_model *m, size_t *grad_bytes)
{
    if (grad_bytes) *grad_bytes = m->grad_bytes;
    return m->slab_bytes;
}

/* '*' matches any run (dots included), '?' one character. */
static int aur__glob(const char *p, const char *pend, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (p < pend && (*p == '?' || *p == *s)) {
            p++;
            s++;
        } else if (p < pend && *p == '*') {
            star = p++;
            resume = s;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (p < pend && *p == '*') p++;
    return p == pend;
}

AURDEF int aur_name_matches(const char *patterns, const char *name)
{
    const char *p = patterns;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        if (b > a && aur__glob(a, b, name)) return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int aur__set_trainable(aur_model *m, const char *patterns, int trainable)
{
    int count = 0;
    for (int i = 0; i < m->n; i++) {
        aur_tensor *t = m->params[i];
        if (t->is_buffer || !aur_name_matches(patterns, t->name)) continue;
        t->requires_grad = trainable;
        count++;
    }
    if (!count) return aur__err(AUR_EINVAL, "'%s' matches no parameter", patterns);
    if (m->allocated) {
        int rc = aur__model_grads(m);
        if (rc) return rc;
    }
    return count;
}

AURDEF int aur_model_freeze(aur_model *m, const char *patterns) { return aur__set_trainable(m, patterns, 0); }
AURDEF int aur_model_unfreeze(aur_model *m, const char *patterns) { return aur__set_trainable(m, patterns, 1); }

AURDEF void aur_model_zero_grad(aur_model *m)
{
    if (m->grad_slab) aur__zero_bytes(m->grad_slab, m->device, m->grad_bytes);
    for (int i = 0; i < m->n; i++) m->params[i]->grad_written = 0;
}

/* The GPU copy of a constant host table of the model (made on first use,
   freed with the model); on the CPU the table itself. The table must not
   change while the model lives: the models' index tables, masks and DFT
   matrices do not. */
static const void *aur__mirror_of(aur_model *m, const void *host, size_t bytes)
{
    if (m->device == AUR_CPU || !host) return host;
    for (int i = 0; i < m->n_mirrors; i++)
        if (m->mirrors[i].host == host && m->mirrors[i].bytes == bytes) return m->mirrors[i].dev;
    if (aur__grow((void **)&m->mirrors, &m->cap_mirrors, m->n_mirrors + 1, sizeof(aur__mirror))) return NULL;
    void *dev = aur__dev_alloc(m->device, bytes, "a model table on the GPU");
    if (!dev || aur__copy_bytes(dev, m->device, host, AUR_CPU, bytes)) {
        aur__dev_free(m->device, dev);
        return NULL;
    }
    aur__mirror *mr = &m->mirrors[m->n_mirrors++];
    mr->host = host, mr->bytes = bytes, mr->dev = dev;
    return dev;
}

/* aur_gather over one of the model's tables (its GPU copy cached). */
static aur_tensor *aur__model_gather(aur_tape *t, aur_model *m, aur_tensor *x, int64_t nb, int64_t d, const aur_index *ix,
                                     aur_shape out_shape)
{
    const int64_t *tab = (const int64_t *)aur__mirror_of(m, ix->idx, sizeof(int64_t) * (size_t)ix->n_out);
    if (m->device != AUR_CPU && !tab) return NULL;
    return aur__gather(t, x, nb, d, ix, m->device == AUR_CPU ? NULL : tab, out_shape);
}
