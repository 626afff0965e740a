#include "api.h"
#include "platform.h"

/* ==== optimisers ====
   torch.optim's single-tensor arithmetic, element by element: scalars in
   double, rounded to float where they meet tensors. */

AURDEF aur_optim_opts aur_adam_defaults(void)
{
    aur_optim_opts o;
    memset(&o, 0, sizeof o);
    o.kind = AUR_ADAM;
    o.lr = 1e-3;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    return o;
}

AURDEF aur_optim_opts aur_adamw_defaults(void)
{
    aur_optim_opts o = aur_adam_defaults();
    o.kind = AUR_ADAMW;
    o.weight_decay = 1e-2;
    return o;
}

AURDEF aur_optim_opts aur_adafactor_defaults(void)
{
    aur_optim_opts o;
    memset(&o, 0, sizeof o);
    o.kind = AUR_ADAFACTOR;
    o.lr = 1e-2;
    o.beta2_decay = -0.8;
    o.eps1 = FLT_EPSILON;
    o.eps2 = 1e-3;
    o.d = 1.0;
    return o;
}

typedef struct aur__pstate {
    aur_tensor *p;
    int group;
    int64_t step;
    aur_tensor st[2]; /* Adam: exp_avg, exp_avg_sq; Adafactor: row_var, col_var (>= 2-D) or variance */
    int n_st;
} aur__pstate;

typedef struct aur__group {
    double lr, weight_decay;
} aur__group;

struct aur_optim {
    aur_model *m;
    aur_optim_opts o;
    aur__pstate *ps;
    int n;
    aur__group *groups;
    int n_groups, cap_groups;
    double lr_factor;
    void *slab;
    float *scratch;       /* Adafactor: the update of the largest parameter (on the model's device) */
    int pinned;           /* the state slab is pinned host memory the GPU maps (opts.offload) */
    int64_t scratch_half; /* on a GPU the second half holds per-matrix denominators */
};

static const char *aur__state_name(const aur_optim *o, const aur__pstate *s, int k)
{
    if (o->o.kind != AUR_ADAFACTOR) return k ? "exp_avg_sq" : "exp_avg";
    if (s->n_st == 1) return "variance";
    return k ? "col_var" : "row_var";
}

/* Adafactor factors over the last two dims: row_var (..., n, 1), col_var (..., 1, m). */
static int aur__state_shapes(const aur_optim *o, const aur_tensor *p, aur_shape *sh)
{
    sh[0] = sh[1] = aur_tensor_shape(p);
    if (o->o.kind != AUR_ADAFACTOR) return 2;
    if (p->ndim < 2) return 1;
    sh[0].d[p->ndim - 1] = 1;
    sh[1].d[p->ndim - 2] = 1;
    return 2;
}

static int aur__optim_check(const aur_optim_opts *o)
{
    if (!(o->lr >= 0)) return aur__err(AUR_EINVAL, "optimiser: lr %g must be >= 0", o->lr);
    if (!(o->weight_decay >= 0)) return aur__err(AUR_EINVAL, "optimiser: weight_decay %g must be >= 0", o->weight_decay);
    if (o->kind == AUR_ADAFACTOR) {
        if (!(o->beta2_decay <= 0)) return aur__err(AUR_EINVAL, "Adafactor: beta2_decay %g must be <= 0", o->beta2_decay);
        if (!(o->eps1 >= 0 && o->eps2 >= 0 && o->d >= 1))
            return aur__err(AUR_EINVAL, "Adafactor: eps (%g, %g) must be >= 0 and d %g >= 1", o->eps1, o->eps2, o->d);
        return 0;
    }
    if (o->kind != AUR_ADAM && o->kind != AUR_ADAMW) return aur__err(AUR_EINVAL, "optimiser: unknown kind %d", (int)o->kind);
    if (!(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1))
        return aur__err(AUR_EINVAL, "Adam: betas (%g, %g) must be in [0, 1)", o->beta1, o->beta2);
    if (!(o->eps >= 0)) return aur__err(AUR_EINVAL, "Adam: eps %g must be >= 0", o->eps);
    return 0;
}

AURDEF void aur_optim_free(aur_optim *o)
{
    if (!o) return;
    if (o->m && o->pinned) aur__pinned_free(o->slab);
    else if (o->m) aur__dev_free(o->m->device, o->slab);
    if (o->m) aur__dev_free(o->m->device, o->scratch);
    AUR_FREE(o->ps);
    AUR_FREE(o->groups);
    AUR_FREE(o);
}

AURDEF aur_optim *aur_optim_create(aur_model *m, const aur_optim_opts *opts)
{
    if (aur__optim_check(opts)) return NULL;
    if (!m->allocated) {
        aur__err(AUR_EINVAL, "aur_optim_create: allocate the model first");
        return NULL;
    }
    if (m->device == AUR_META) {
        aur__err(AUR_EUNSUPPORTED, "aur_optim_create: the model is on the meta device (shapes only, nothing to update)");
        return NULL;
    }
    aur_optim *o = (aur_optim *)aur__calloc(sizeof *o, "an optimiser");
    if (!o) return NULL;
    o->m = m;
    o->o = *opts;
    o->lr_factor = 1;
    int n = 0;
    for (int i = 0; i < m->n; i++) n += m->params[i]->requires_grad;
    o->ps = (aur__pstate *)aur__calloc(sizeof(aur__pstate) * (size_t)(n + 1), "optimiser state");
    if (!o->ps || aur_optim_add_group(o, "", opts->lr, opts->weight_decay) < 0) {
        aur_optim_free(o);
        return NULL;
    }
    size_t total = 0, off = 0;
    int64_t largest = 1;
    for (int i = 0; i < m->n; i++) {
        if (!m->params[i]->requires_grad) continue;
        largest = m->params[i]->numel > largest ? m->params[i]->numel : largest;
        aur__pstate *s = &o->ps[o->n++];
        aur_shape sh[2];
        s->p = m->params[i];
        s->n_st = aur__state_shapes(o, s->p, sh);
        for (int k = 0; k < s->n_st; k++) {
            aur__tensor_init(&s->st[k], AUR_F32, m->device, sh[k]);
            total += aur__slot_bytes(&s->st[k]);
        }
    }
    o->pinned = opts->offload && m->device != AUR_CPU;
    o->slab = o->pinned ? aur__pinned_alloc(total, "the optimiser state (offloaded)")
                        : aur__dev_alloc(m->device, total, "the optimiser state slab");
    o->scratch_half = largest;
    if (opts->kind == AUR_ADAFACTOR)
        o->scratch = (float *)aur__dev_alloc(m->device, sizeof(float) * (size_t)((m->device == AUR_CPU ? 1 : 2) * largest),
                                             "Adafactor scratch");
    if (!o->slab || aur__zero_bytes(o->slab, o->pinned ? AUR_CPU : m->device, total) || (opts->kind == AUR_ADAFACTOR && !o->scratch)) {
        aur_optim_free(o);
        return NULL;
    }
    for (int i = 0; i < o->n; i++)
        for (int k = 0; k < o->ps[i].n_st; k++) {
            o->ps[i].st[k].data = (char *)o->slab + off;
            off += aur__slot_bytes(&o->ps[i].st[k]);
        }
    return o;
}

AURDEF int aur_optim_add_group(aur_optim *o, const char *patterns, double lr, double weight_decay)
{
    if (!(lr >= 0 && weight_decay >= 0))
        return aur__err(AUR_EINVAL, "aur_optim_add_group '%s': lr %g and weight_decay %g must be >= 0", patterns, lr, weight_decay);
    int g = o->n_groups, moved = 0;
    if (aur__grow((void **)&o->groups, &o->cap_groups, g + 1, sizeof(aur__group))) return AUR_ENOMEM;
    for (int i = 0; i < o->n && g > 0; i++)
        if (aur_name_matches(patterns, o->ps[i].p->name)) {
            o->ps[i].group = g;
            moved++;
        }
    if (g > 0 && !moved) return aur__err(AUR_EINVAL, "aur_optim_add_group: '%s' matches no trainable parameter", patterns);
    o->groups[g].lr = lr;
    o->groups[g].weight_decay = weight_decay;
    o->n_groups++;
    return g;
}

AURDEF int aur_optim_group_count(const aur_optim *o) { return o->n_groups; }
AURDEF void aur_optim_set_lr_factor(aur_optim *o, double factor) { o->lr_factor = factor; }
AURDEF double aur_optim_group_lr(const aur_optim *o, int g)
{
    return g >= 0 && g < o->n_groups ? o->groups[g].lr * o->lr_factor : 0;
}

/* torch.optim.Adam / AdamW, one parameter (element rule: aur__adam_elem, shared with the GPU). */
static int aur__adam_update(const aur_optim *o, aur__pstate *s, double lr, double wd)
{
    aur_real *p = (aur_real *)s->p->data, *m = (aur_real *)s->st[0].data, *v = (aur_real *)s->st[1].data;
    const aur_real *g = s->p->grad;
    double t = (double)++s->step, b1 = o->o.beta1, b2 = o->o.beta2;
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    aur__adam_k k;
    k.decay = (float)(1 - lr * wd), k.l2 = (float)wd, k.w1 = (float)(1 - b1), k.fb2 = (float)b2, k.w2 = (float)(1 - b2);
    k.step_size = (float)(-(lr / bc1)), k.bc2_sqrt = (float)sqrt(bc2), k.eps = (float)o->o.eps;
    k.decoupled = o->o.kind == AUR_ADAMW && wd != 0;
    k.l2_on = o->o.kind != AUR_ADAMW && wd != 0;
    int64_t n = s->p->numel;
    if (s->p->device == AUR_CUDA) return AUR__GPU(aur_cuda_adam, &k, p, m, v, g, n);
    AUR__OMP_FOR_IF(n > AUR__PAR_MIN)
    for (int64_t i = 0; i < n; i++) aur__adam_elem(&k, p + i, m + i, v + i, g[i]);
    return 0;
}

/* The 2-norm of x on the model's device (NaN if the GPU fails; the error is set). */
static double aur__norm(const aur_model *m, const aur_real *x, int64_t n)
{
    double s = 0;
    if (m->device == AUR_CUDA) {
        if (AUR__GPU(aur_cuda_sumsq, x, n, m->reduce, &s)) return NAN;
    } else
        for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return (double)(float)sqrt(s); /* torch returns the norm as a float tensor */
}

#ifdef AUR__HAS_CUDA /* ---- CUDA builds only: Adafactor's GPU steps ---- */
/* Adafactor on the GPU: the same steps as below, one kernel each; the two
   norms come back to the host, which computes the scalars as the CPU does. */
static int aur__adafactor_cuda(const aur_optim *o, aur__pstate *s, float w, double alpha, double lr, double wd)
{
    aur_tensor *P = s->p;
    aur_real *p = (aur_real *)P->data, *u = o->scratch, *denom = o->scratch + o->scratch_half;
    int64_t n = P->numel, rows = 1, cols = n, mats = 1;
    int rc = wd != 0 ? aur_cuda_scale(p, p, (float)(1 - lr * wd), n) : 0;
    if (s->n_st == 2) {
        cols = P->shape[P->ndim - 1], rows = P->shape[P->ndim - 2], mats = rows * cols != 0 ? n / (rows * cols) : 0;
    }
    if (!rc) rc = aur_cuda_adafactor_u(s->n_st == 2, u, denom, (aur_real *)s->st[0].data,
                                       s->n_st == 2 ? (aur_real *)s->st[1].data : NULL, P->grad, rows, cols, mats, w,
                                       o->o.eps1, n);
    double uu = 0;
    if (!rc) rc = aur_cuda_sumsq(u, n, o->m->reduce, &uu);
    double unorm = (double)(float)sqrt(uu), dn = unorm / (sqrt((double)n) * o->o.d);
    if (!rc) rc = aur_cuda_axpy(p, u, (float)(-alpha / (dn > 1 ? dn : 1)), n);
    return rc;
}
#endif

/* torch.optim.Adafactor, one parameter; rows/cols are the last two dims. */
static int aur__adafactor_update(const aur_optim *o, aur__pstate *s, double lr, double wd)
{
    aur_tensor *P = s->p;
    aur_real *p = (aur_real *)P->data;
    const aur_real *g = P->grad;
    int64_t n = P->numel;
    double t = (double)++s->step, eps1 = o->o.eps1;
    float w = (float)pow(t, o->o.beta2_decay);
    double rho = lr < 1 / sqrt(t) ? lr : 1 / sqrt(t);
    double rms = aur__norm(o->m, p, n) / sqrt((double)n), alpha = (rms > o->o.eps2 ? rms : o->o.eps2) * rho;
    if (P->device == AUR_CUDA) return AUR__GPU(aur__adafactor_cuda, o, s, w, alpha, lr, wd);
    if (wd != 0) {
        float decay = (float)(1 - lr * wd);
        for (int64_t i = 0; i < n; i++) p[i] = (aur_real)((float)p[i] * decay);
    }
    float *u = o->scratch; /* the update, before scaling (the rules: aur__af_*, shared with the GPU) */
    int factored = s->n_st == 2;
    int64_t cols = factored ? P->shape[P->ndim - 1] : n, rows = factored ? P->shape[P->ndim - 2] : 1;
    int64_t mats = rows * cols != 0 ? n / (rows * cols) : 0;
    aur_real *r = (aur_real *)s->st[0].data, *c = factored ? (aur_real *)s->st[1].data : NULL;
    float floor2 = (float)(eps1 * eps1);
    for (int64_t e = 0; factored && e < mats * rows; e++) aur__af_row(r, g, cols, w, e);
    for (int64_t e = 0; factored && e < mats * cols; e++) aur__af_col(c, g, rows, cols, w, e);
    double uu = 0;
    for (int64_t b = 0; b < mats; b++) {
        float denom = factored ? aur__af_denom(r, rows, (float)eps1, b) : 0;
        for (int64_t i = b * rows * cols; i < (b + 1) * rows * cols; i++) {
            u[i] = aur__af_update(factored, r, c, g, rows, cols, w, denom, floor2, i);
            uu += (double)u[i] * u[i];
        }
    }
    double unorm = (double)(float)sqrt(uu), denom = unorm / (sqrt((double)n) * o->o.d);
    float scale = (float)(-alpha / (denom > 1 ? denom : 1));
    for (int64_t i = 0; i < n; i++) p[i] = (aur_real)((float)p[i] + u[i] * scale);
    return 0;
}

AURDEF int aur_optim_step(aur_optim *o)
{
    int rc = 0;
    for (int i = 0; i < o->n && !rc; i++) {
        aur__pstate *s = &o->ps[i];
        if (!s->p->requires_grad || !s->p->grad || !s->p->grad_written) continue; /* torch: .grad is None */
        const aur__group *g = &o->groups[s->group];
        double lr = g->lr * o->lr_factor;
        if (o->o.kind == AUR_ADAFACTOR) rc = aur__adafactor_update(o, s, lr, g->weight_decay);
        else rc = aur__adam_update(o, s, lr, g->weight_decay);
    }
    return rc;
}

AURDEF int64_t aur_optim_steps(const aur_optim *o)
{
    int64_t t = 0;
    for (int i = 0; i < o->n; i++) t = o->ps[i].step > t ? o->ps[i].step : t;
    return t;
}

static aur__pstate *aur__pstate_find(const aur_optim *o, const char *param)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->ps[i].p->name, param)) return &o->ps[i];
    return NULL;
}

AURDEF aur_tensor *aur_optim_state(const aur_optim *o, const char *param, const char *state)
{
    aur__pstate *s = aur__pstate_find(o, param);
    for (int k = 0; s && k < s->n_st; k++)
        if (!strcmp(aur__state_name(o, s, k), state)) return &s->st[k];
    aur__err(AUR_EINVAL, "optimiser: no state '%s' for parameter '%s'", state, param);
    return NULL;
}

AURDEF int64_t aur_optim_param_steps(const aur_optim *o, const char *param)
{
    aur__pstate *s = aur__pstate_find(o, param);
    return s ? s->step : -1;
}

static const char *aur__optim_kind_name(aur_optim_kind k)
{
    return k == AUR_ADAM ? "adam" : k == AUR_ADAMW ? "adamw" : "adafactor";
}

/* File layout: "<param>/<state>" F32 tensors and "<param>/step" I64 [1]. */
/* The state with the metadata pairs `meta` (key, value, ..., NULL) besides the optimiser's own. */
static int aur__optim_save(const aur_optim *o, const char *path, const char *const *meta)
{
    aur_st_writer *w = aur_st_writer_create();
    char name[1024], num[64];
    int64_t one = 1;
    int rc = w ? 0 : AUR_ENOMEM;
    snprintf(num, sizeof num, "%.17g", o->lr_factor);
    if (!rc) rc = aur_st_writer_meta(w, "optimizer", aur__optim_kind_name(o->o.kind));
    if (!rc) rc = aur_st_writer_meta(w, "lr_factor", num);
    for (int i = 0; meta && meta[i] && !rc; i += 2) rc = aur_st_writer_meta(w, meta[i], meta[i + 1]);
    for (int i = 0; i < o->n && !rc; i++) {
        const aur__pstate *s = &o->ps[i];
        for (int k = 0; k < s->n_st && !rc; k++) {
            snprintf(name, sizeof name, "%s/%s", s->p->name, aur__state_name(o, s, k));
            rc = aur_st_writer_add(w, name, &s->st[k]);
        }
        snprintf(name, sizeof name, "%s/step", s->p->name);
        if (!rc) rc = aur_st_writer_add_raw(w, name, "I64", 1, &one, &s->step);
    }
    if (!rc) rc = aur_st_writer_write(w, path);
    aur_st_writer_free(w);
    return rc;
}

AURDEF int aur_optim_save(const aur_optim *o, const char *path) { return aur__optim_save(o, path, NULL); }

/* Checks everything before changing anything, so a bad file leaves the optimiser as it was. */
static int aur__optim_load_check(const aur_optim *o, const aur_st_file *f)
{
    char name[1024];
    const char *kind = aur_st_meta(f, "optimizer");
    if (!kind || strcmp(kind, aur__optim_kind_name(o->o.kind)))
        return aur__err(AUR_EFORMAT, "%s: optimiser state for '%s', this optimiser is %s", f->path, kind ? kind : "?",
                        aur__optim_kind_name(o->o.kind));
    int expected = 0;
    for (int i = 0; i < o->n; i++) {
        const aur__pstate *s = &o->ps[i];
        snprintf(name, sizeof name, "%s/step", s->p->name);
        const aur_st_tensor *e = aur_st_find(f, name);
        if (!e || strcmp(e->dtype, "I64") || e->numel != 1)
            return aur__err(AUR_EFORMAT, "%s: no I64 '%s' for trainable parameter '%s'", f->path, name, s->p->name);
        for (int k = 0; k < s->n_st; k++) {
            snprintf(name, sizeof name, "%s/%s", s->p->name, aur__state_name(o, s, k));
            e = aur_st_find(f, name);
            if (!e) return aur__err(AUR_EFORMAT, "%s: no '%s' (was the model frozen differently?)", f->path, name);
            int same = e->ndim == s->st[k].ndim && !strcmp(e->dtype, "F32");
            for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == s->st[k].shape[d];
            if (!same) return aur__err(AUR_ESHAPE, "%s: '%s' has the wrong dtype or shape", f->path, name);
        }
        expected += s->n_st + 1;
    }
    if (f->n != expected)
        return aur__err(AUR_EFORMAT, "%s: %d state tensors, this optimiser has %d (a different model?)", f->path, f->n, expected);
    return 0;
}

/* The state of an opened file, checked before anything changes. */
static int aur__optim_load_file(aur_optim *o, const aur_st_file *f)
{
    char name[1024];
    int rc = aur__optim_load_check(o, f);
    for (int i = 0; i < o->n && !rc; i++) {
        aur__pstate *s = &o->ps[i];
        for (int k = 0; k < s->n_st && !rc; k++) {
            snprintf(name, sizeof name, "%s/%s", s->p->name, aur__state_name(o, s, k));
            rc = aur_st_read_tensor(f, aur_st_find(f, name), &s->st[k]);
        }
        snprintf(name, sizeof name, "%s/step", s->p->name);
        if (!rc) rc = aur__st_bytes(f, aur_st_find(f, name)->begin, &s->step, 8);
    }
    const char *lf = aur_st_meta(f, "lr_factor");
    if (!rc && lf) o->lr_factor = strtod(lf, NULL);
    return rc;
}

AURDEF int aur_optim_load(aur_optim *o, const char *path)
{
    aur_st_file *f = aur_st_open(path);
    int rc = f ? aur__optim_load_file(o, f) : AUR_EFORMAT;
    aur_st_close(f);
    return rc;
}

/* ==== gradient clipping and schedules ==== */

/* The gradient norm of every parameter that has a gradient and matches
   patterns (NULL: all); 0 for the others. On a GPU every sum stays there
   and one copy brings them all back. */
static int aur__grad_norms(const aur_model *m, const char *patterns, double *norms)
{
    int rc = 0;
    for (int i = 0; i < m->n; i++) norms[i] = 0;
    if (m->device == AUR_CUDA) {
        double *sums = m->reduce + AUR__REDUCE_SLOTS + 1; /* one slot per parameter */
        for (int i = 0; i < m->n && !rc; i++) {
            const aur_tensor *p = m->params[i];
            if (p->grad && (!patterns || aur_name_matches(patterns, p->name)))
                rc = AUR__GPU(aur_cuda_sumsq_into, p->grad, p->numel, m->reduce, sums + i);
        }
        if (!rc) rc = aur__copy_bytes(norms, AUR_CPU, sums, AUR_CUDA, sizeof(double) * (size_t)m->n);
        for (int i = 0; i < m->n; i++) norms[i] = m->params[i]->grad ? (double)(float)sqrt(norms[i]) : 0;
        return rc;
    }
    for (int i = 0; i < m->n; i++) {
        const aur_tensor *p = m->params[i];
        if (p->grad && (!patterns || aur_name_matches(patterns, p->name))) norms[i] = aur__norm(m, p->grad, p->numel);
    }
    return rc;
}

AURDEF double aur_grad_norm(const aur_model *m, const char *patterns)
{
    double total = 0, *norms = m->norms;
    if (!norms) return 0; /* not allocated: no gradients */
    if (aur__grad_norms(m, patterns, norms)) return NAN;
    for (int i = 0; i < m->n; i++) total += norms[i] * norms[i];
    return sqrt(total);
}

AURDEF int aur_clip_grad_norm(aur_model *m, double max_norm, double *total_norm)
{
    double ss = 0, *norms = m->norms;
    int rc = norms ? aur__grad_norms(m, NULL, norms) : aur__err(AUR_EINVAL, "clip_grad_norm: allocate the model first");
    for (int i = 0; !rc && i < m->n; i++) ss += norms[i] * norms[i];
    float total = (float)sqrt(ss);
    if (total_norm) *total_norm = total;
    for (int i = 0; !rc && !isfinite(total) && i < m->n; i++)
        if (!isfinite(norms[i]))
            rc = aur__err(AUR_ENAN, "clip_grad_norm: the gradient of '%s' is not finite; nothing was changed", m->params[i]->name);
    if (!rc && !isfinite(total)) rc = aur__err(AUR_ENAN, "clip_grad_norm: the total norm overflows; nothing was changed");
    if (rc) return rc;
    float coef = (float)max_norm / (total + 1e-6f);
    if (coef > 1) coef = 1;
    for (int i = 0; i < m->n; i++) {
        aur_tensor *p = m->params[i];
        if (p->grad && m->device == AUR_CUDA) {
            if (AUR__GPU(aur_cuda_scale, p->grad, p->grad, coef, p->numel)) return AUR_ECUDA;
            continue;
        }
        for (int64_t k = 0; p->grad && k < p->numel; k++) p->grad[k] = (aur_real)((float)p->grad[k] * coef);
    }
    return 0;
}

AURDEF double aur_lr_factor(const aur_lr_schedule *s, int64_t step)
{
    if (s->warmup_steps > 0 && step < s->warmup_steps) return (double)(step + 1) / (double)s->warmup_steps;
    if (s->kind == AUR_LR_CONSTANT) return 1;
    double span = (double)(s->total_steps - s->warmup_steps);
    double x = span > 0 ? (double)(step - s->warmup_steps) / span : 1;
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    if (s->kind == AUR_LR_LINEAR) return 1 - (1 - s->final_factor) * x;
    return s->final_factor + (1 - s->final_factor) * 0.5 * (1 + cos(3.14159265358979323846 * x));
}
