#include "api.h"
#include "platform.h"

/* ==== models: loading and saving by name ==== */

static int aur__report_add(char ***list, int *n, const char *s)
{
    char **l = (char **)AUR_REALLOC(*list, sizeof(char *) * (size_t)(*n + 1));
    if (!l) return AUR_ENOMEM;
    *list = l;
    if (!(l[*n] = aur__strdup(s))) return AUR_ENOMEM;
    (*n)++;
    return 0;
}

AURDEF void aur_load_report_free(aur_load_report *r)
{
    if (!r) return;
    char **lists[4] = {r->loaded, r->missing, r->unexpected, r->mismatched};
    int counts[4] = {r->n_loaded, r->n_missing, r->n_unexpected, r->n_mismatched};
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < counts[k]; i++) AUR_FREE(lists[k][i]);
        AUR_FREE(lists[k]);
    }
    memset(r, 0, sizeof *r);
}

AURDEF void aur_load_report_print(const aur_load_report *r, FILE *out)
{
    fprintf(out, "loaded %d, missing %d, unexpected %d, shape mismatches %d\n", r->n_loaded, r->n_missing,
            r->n_unexpected, r->n_mismatched);
    for (int i = 0; i < r->n_missing; i++) fprintf(out, "  missing     %s\n", r->missing[i]);
    for (int i = 0; i < r->n_unexpected; i++) fprintf(out, "  unexpected  %s\n", r->unexpected[i]);
    for (int i = 0; i < r->n_mismatched; i++) fprintf(out, "  mismatched  %s\n", r->mismatched[i]);
}

/* A checkpoint as the loader sees it: entries read from a safetensors file,
   or made in host memory by a compatibility transform (a split fused
   tensor, a padded history). Names are sorted for lookup. */
typedef struct aur__ckpt_entry {
    char *name;
    int ndim;
    int64_t shape[AUR_ST_MAX_DIMS];
    const aur_st_tensor *src; /* read from the file, or */
    float *data;              /* owned host data */
} aur__ckpt_entry;

typedef struct aur__ckpt {
    const aur_st_file *f;
    aur__ckpt_entry *e;
    int n, cap;
} aur__ckpt;

static void aur__ckpt_free(aur__ckpt *ck)
{
    for (int i = 0; i < ck->n; i++) {
        AUR_FREE(ck->e[i].name);
        AUR_FREE(ck->e[i].data);
    }
    AUR_FREE(ck->e);
    memset(ck, 0, sizeof *ck);
}

/* Appends an entry (name copied; data owned from now on). */
static int aur__ckpt_add(aur__ckpt *ck, const char *name, int ndim, const int64_t *shape, const aur_st_tensor *src, float *data)
{
    if (aur__grow((void **)&ck->e, &ck->cap, ck->n + 1, sizeof *ck->e)) {
        AUR_FREE(data);
        return AUR_ENOMEM;
    }
    aur__ckpt_entry *e = &ck->e[ck->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = aur__strdup(name))) {
        AUR_FREE(data);
        return AUR_ENOMEM;
    }
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->src = src;
    e->data = data;
    ck->n++;
    return 0;
}

static int aur__ckpt_cmp(const void *a, const void *b)
{
    return strcmp(((const aur__ckpt_entry *)a)->name, ((const aur__ckpt_entry *)b)->name);
}

static void aur__ckpt_sort(aur__ckpt *ck) { aur__qsort(ck->e, (size_t)ck->n, sizeof *ck->e, aur__ckpt_cmp); }

/* An entry by name (the view must be sorted). */
static aur__ckpt_entry *aur__ckpt_find(const aur__ckpt *ck, const char *name)
{
    aur__ckpt_entry key;
    memset(&key, 0, sizeof key);
    key.name = (char *)name;
    return (aur__ckpt_entry *)bsearch(&key, ck->e, (size_t)ck->n, sizeof key, aur__ckpt_cmp);
}

static int aur__ckpt_from_file(const aur_st_file *f, aur__ckpt *ck)
{
    memset(ck, 0, sizeof *ck);
    ck->f = f;
    int rc = 0;
    for (int i = 0; i < f->n && !rc; i++)
        rc = aur__ckpt_add(ck, f->tensors[i].name, f->tensors[i].ndim, f->tensors[i].shape, &f->tensors[i], NULL);
    aur__ckpt_sort(ck);
    return rc;
}

static int64_t aur__ckpt_numel(const aur__ckpt_entry *e)
{
    int64_t n = 1;
    for (int i = 0; i < e->ndim; i++) n *= e->shape[i];
    return n;
}

/* The whole entry as host floats (owned by the caller). */
static float *aur__ckpt_read_f32(const aur__ckpt *ck, const aur__ckpt_entry *e)
{
    int64_t n = aur__ckpt_numel(e);
    float *out = (float *)aur__malloc(sizeof(float) * (size_t)(n ? n : 1), "a checkpoint tensor");
    if (!out) return NULL;
    if (e->data) {
        memcpy(out, e->data, sizeof(float) * (size_t)n);
        return out;
    }
    aur_real *v = sizeof(aur_real) == sizeof(float) ? (aur_real *)out : (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(n ? n : 1), "values");
    int rc = v ? aur_st_read(ck->f, e->src, AUR_F32, v) : AUR_ENOMEM;
    for (int64_t i = 0; !rc && (void *)v != (void *)out && i < n; i++) out[i] = (float)v[i];
    if ((void *)v != (void *)out) AUR_FREE(v);
    if (rc) AUR_FREE(out);
    return rc ? NULL : out;
}

static int aur__ckpt_read_into(const aur__ckpt *ck, const aur__ckpt_entry *e, aur_tensor *p)
{
    if (e->src) return aur_st_read_tensor(ck->f, e->src, p);
    aur_real *tmp = (aur_real *)aur__malloc(sizeof(aur_real) * (size_t)(p->numel ? p->numel : 1), "a staging buffer");
    if (!tmp) return AUR_ENOMEM;
    for (int64_t i = 0; i < p->numel; i++) tmp[i] = (aur_real)e->data[i];
    int rc = aur_tensor_set(p, tmp, p->numel);
    AUR_FREE(tmp);
    return rc;
}

/* Sorts the checkpoint's entries into the report; returns 0 or AUR_ENOMEM. */
static int aur__load_plan(aur_model *m, const aur__ckpt *ck, aur_load_report *r, char *take)
{
    char s1[64], s2[64], line[1024];
    int rc = 0;
    for (int i = 0; i < ck->n && !rc; i++) {
        const aur__ckpt_entry *e = &ck->e[i];
        int k = aur__index_find(m, e->name);
        if (k < 0) {
            rc = aur__report_add(&r->unexpected, &r->n_unexpected, e->name);
            continue;
        }
        const aur_tensor *p = m->params[k];
        int same = e->ndim == p->ndim;
        for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == p->shape[d];
        if (same) {
            take[k] = 1;
            continue;
        }
        snprintf(line, sizeof line, "%s: file %s vs model %s", e->name, aur_shape_str(e->shape, e->ndim, s1, sizeof s1),
                 aur_shape_str(p->shape, p->ndim, s2, sizeof s2));
        take[k] = 2;
        rc = aur__report_add(&r->mismatched, &r->n_mismatched, line);
    }
    for (int k = 0; k < m->n && !rc; k++) /* a shape mismatch also leaves the model's tensor unloaded */
        if (take[k] != 1) rc = aur__report_add(&r->missing, &r->n_missing, m->params[k]->name);
    return rc;
}

static int aur__load_refuse(const char *path, aur_load_mode mode, const aur_load_report *r)
{
    if (r->n_mismatched)
        return aur__err(AUR_ESHAPE, "%s: %d shape mismatches, first %s\n---> HINT: AUR_LOAD_FILTERED loads only where name and shape match",
                        path, r->n_mismatched, r->mismatched[0]);
    if (mode == AUR_LOAD_STRICT && (r->n_missing || r->n_unexpected))
        return aur__err(AUR_EFORMAT, "%s: strict load: %d missing (first '%s'), %d unexpected (first '%s')\n"
                        "---> HINT: AUR_LOAD_NONSTRICT allows both (torch strict=False); the report lists them",
                        path, r->n_missing, r->n_missing ? r->missing[0] : "-", r->n_unexpected,
                        r->n_unexpected ? r->unexpected[0] : "-");
    return 0;
}

/* Loads a (sorted) checkpoint view into the model by name under a mode; the report is always filled. */
static int aur__load_ckpt(aur_model *m, const aur__ckpt *ck, aur_load_mode mode, aur_load_report *r)
{
    const char *path = ck->f->path;
    char *take = (char *)aur__calloc((size_t)m->n + 1, "a load plan");
    int rc = take ? aur__load_plan(m, ck, r, take) : AUR_ENOMEM;
    if (!rc && mode != AUR_LOAD_FILTERED) rc = aur__load_refuse(path, mode, r);
    for (int k = 0; k < m->n && !rc; k++) { /* every dtype readable before anything is written */
        const aur__ckpt_entry *e = take[k] == 1 ? aur__ckpt_find(ck, m->params[k]->name) : NULL;
        if (e && e->src && !aur__st_dtype_find(e->src->dtype)->readable)
            rc = aur__err(AUR_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (want F32, BF16 or F16)", path, e->name, e->src->dtype);
    }
    for (int k = 0; k < m->n && !rc; k++) {
        if (take[k] != 1) continue;
        rc = aur__ckpt_read_into(ck, aur__ckpt_find(ck, m->params[k]->name), m->params[k]);
        if (!rc) rc = aur__report_add(&r->loaded, &r->n_loaded, m->params[k]->name);
    }
    AUR_FREE(take);
    return rc;
}

/* Opens a checkpoint, lets transform adapt its view (may be NULL), loads it. */
static int aur__load_file(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep,
                          int (*transform)(aur_model *m, aur__ckpt *ck))
{
    aur_load_report local;
    aur_load_report *r = rep ? rep : &local;
    memset(r, 0, sizeof *r);
    if (!m->allocated) return aur__err(AUR_EINVAL, "loading %s: call aur_model_alloc first", path);
    aur_st_file *f = aur_st_open(path);
    if (!f) return AUR_EFORMAT;
    aur__ckpt ck;
    int rc = aur__ckpt_from_file(f, &ck);
    if (!rc && transform) rc = transform(m, &ck);
    if (!rc) {
        aur__ckpt_sort(&ck);
        rc = aur__load_ckpt(m, &ck, mode, r);
    }
    aur__ckpt_free(&ck);
    aur_st_close(f);
    if (!rep) aur_load_report_free(&local);
    return rc;
}

AURDEF int aur_load_safetensors(aur_model *m, const char *path, aur_load_mode mode, aur_load_report *rep)
{
    return aur__load_file(m, path, mode, rep, NULL);
}

AURDEF int aur_save_safetensors(const aur_model *m, const char *path)
{
    aur_st_writer *w = aur_st_writer_create();
    int rc = w ? 0 : AUR_ENOMEM;
    if (!rc && (!m->allocated || m->device == AUR_META))
        rc = aur__err(AUR_EINVAL, "aur_save_safetensors %s: the model has no data%s", path, m->allocated ? " (it is on the meta device)" : " yet");
    for (int i = 0; i < m->n && !rc; i++) rc = aur_st_writer_add(w, m->params[i]->name, m->params[i]);
    if (!rc) rc = aur_st_writer_write(w, path);
    aur_st_writer_free(w);
    return rc;
}
