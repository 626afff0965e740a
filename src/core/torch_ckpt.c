#include "api.h"
#include "platform.h"

/* ==== PyTorch checkpoints: reading ====
   torch.save (torch/serialization.py: _save) writes a zip archive:
   <name>/data.pkl, a pickle of the object whose tensors' storages are
   persistent ids ("storage", torch.FloatStorage, key, location, numel), and
   <name>/data/<key>, each storage's bytes (little-endian, stored). The
   pickle is untrusted: as torch.load(weights_only=True) this runs no code
   and accepts only what a state dict needs (dicts, lists, tuples, numbers,
   strings, OrderedDict, the tensor and parameter rebuilders, the storage
   types); any other global is refused by name. The tensors then read as a
   safetensors file's: aur_st_open hands zip files here. */

#ifdef AUR_TORCH_CKPT
#include <zip.h>

/* what a pickle may build: a state dict of thousands of tensors needs far less */
#define AUR__PK_MAX_STACK (1 << 22)
#define AUR__PK_MAX_MEMO (1 << 24)
#define AUR__PK_MAX_VALUES (1 << 21)
#define AUR__PK_MAX_BYTES ((size_t)256 << 20)

/* OPAQUE: a value outside the state dict that weights_only would build (a set, a
   torch.Size, a dtype, a big integer ...); kept as a token, never constructed */
enum { AUR__PK_NONE, AUR__PK_BOOL, AUR__PK_INT, AUR__PK_FLOAT, AUR__PK_STR, AUR__PK_TUPLE, AUR__PK_LIST, AUR__PK_DICT,
       AUR__PK_GLOBAL, AUR__PK_STORAGE, AUR__PK_TENSOR, AUR__PK_OPAQUE };

typedef struct aur__pk {
    int kind, n, cap;
    int64_t i;             /* INT, BOOL; STORAGE: elements */
    char *s;               /* STR; GLOBAL: "module.name"; STORAGE: its key */
    struct aur__pk **v;    /* TUPLE, LIST: items; DICT: key, value, key, value... */
    const char *dtype;     /* STORAGE: "F32", ... */
    struct aur__pk *storage; /* TENSOR: */
    int64_t offset, shape[AUR_ST_MAX_DIMS], stride[AUR_ST_MAX_DIMS];
    int ndim;
} aur__pk;

typedef struct aur__unpickler {
    const unsigned char *p, *end;
    const char *path;
    aur__pk **stack, **memo, **all;
    int sp, stack_cap, n_memo, memo_cap, memo_entries, n_all, all_cap, *marks, n_marks, marks_cap;
    int64_t n_items; /* items added to containers, all together */
} aur__unpickler;

static int aur__pk_bad(const aur__unpickler *u, const char *what)
{
    return aur__err(AUR_EFORMAT, "%s: data.pkl: %s", u->path, what);
}

static aur__pk *aur__pk_new(aur__unpickler *u, int kind)
{
    if (u->n_all >= AUR__PK_MAX_VALUES) return aur__pk_bad(u, "more than 2M values"), (aur__pk *)NULL;
    aur__pk *v = (aur__pk *)aur__calloc(sizeof *v, "a pickle value");
    if (!v || aur__grow((void **)&u->all, &u->all_cap, u->n_all + 1, sizeof *u->all)) return AUR_FREE(v), (aur__pk *)NULL;
    u->all[u->n_all++] = v;
    v->kind = kind;
    return v;
}

static void aur__pk_free_all(aur__unpickler *u)
{
    for (int i = 0; i < u->n_all; i++) AUR_FREE(u->all[i]->s), AUR_FREE(u->all[i]->v), AUR_FREE(u->all[i]);
    AUR_FREE(u->all), AUR_FREE(u->stack), AUR_FREE(u->memo), AUR_FREE(u->marks);
}

static int aur__pk_push(aur__unpickler *u, aur__pk *v)
{
    if (!v) return AUR_ENOMEM;
    if (u->sp >= AUR__PK_MAX_STACK) return aur__pk_bad(u, "the stack grows past 4M values");
    if (aur__grow((void **)&u->stack, &u->stack_cap, u->sp + 1, sizeof *u->stack)) return AUR_ENOMEM;
    u->stack[u->sp++] = v;
    return 0;
}

static aur__pk *aur__pk_pop(aur__unpickler *u)
{
    if (u->sp <= (u->n_marks ? u->marks[u->n_marks - 1] : 0)) return aur__pk_bad(u, "an opcode pops an empty stack"), (aur__pk *)NULL;
    return u->stack[--u->sp];
}

static int aur__pk_add(aur__unpickler *u, aur__pk *c, aur__pk *item)
{
    if (++u->n_items > 4 * (int64_t)AUR__PK_MAX_VALUES) return aur__pk_bad(u, "containers of more than 8M items in all");
    if (aur__grow((void **)&c->v, &c->cap, c->n + 1, sizeof *c->v)) return AUR_ENOMEM;
    c->v[c->n++] = item;
    return 0;
}

/* n bytes of the pickle, or NULL past its end. */
static const unsigned char *aur__pk_take(aur__unpickler *u, uint64_t n)
{
    if ((uint64_t)(u->end - u->p) < n) return aur__pk_bad(u, "the pickle ends inside an opcode"), (const unsigned char *)NULL;
    const unsigned char *at = u->p;
    u->p += n;
    return at;
}

static uint64_t aur__pk_le(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static int aur__pk_str(aur__unpickler *u, uint64_t n)
{
    const unsigned char *b = aur__pk_take(u, n);
    aur__pk *v = b ? aur__pk_new(u, AUR__PK_STR) : NULL;
    if (!v) return b ? AUR_ENOMEM : AUR_EFORMAT;
    if (!(v->s = (char *)aur__malloc((size_t)n + 1, "a pickle string"))) return AUR_ENOMEM;
    memcpy(v->s, b, (size_t)n), v->s[n] = 0;
    v->i = (int64_t)n; /* a NUL inside shows as strlen(s) < i */
    return aur__pk_push(u, v);
}

static int aur__pk_int(aur__unpickler *u, int64_t i, int kind)
{
    aur__pk *v = aur__pk_new(u, kind);
    if (v) v->i = i;
    return aur__pk_push(u, v);
}

/* The items above the top mark, into a new container of that kind (the mark dropped). */
static int aur__pk_collect(aur__unpickler *u, aur__pk *into)
{
    if (!u->n_marks) return aur__pk_bad(u, "an opcode needs a mark that is not there");
    int from = u->marks[--u->n_marks], rc = 0;
    for (int k = from; k < u->sp && !rc; k++) rc = aur__pk_add(u, into, u->stack[k]);
    u->sp = from;
    return rc;
}

/* SETITEM(S), APPEND(S): the collected items into the container below the mark. */
static int aur__pk_extend(aur__unpickler *u, int pairs, int one)
{
    aur__pk tmp;
    memset(&tmp, 0, sizeof tmp);
    int rc = 0;
    if (one) {
        int k = pairs ? 2 : 1;
        if (u->sp - (u->n_marks ? u->marks[u->n_marks - 1] : 0) < k + 1) return aur__pk_bad(u, "SETITEM/APPEND without its operands");
        for (int j = 0; j < k && !rc; j++) rc = aur__pk_add(u, &tmp, u->stack[u->sp - k + j]);
        u->sp -= k;
    } else rc = aur__pk_collect(u, &tmp);
    aur__pk *c = rc ? NULL : aur__pk_pop(u);
    if (!rc && !c) rc = AUR_EFORMAT;
    if (!rc && c->kind != (pairs ? AUR__PK_DICT : AUR__PK_LIST)) rc = aur__pk_bad(u, pairs ? "SETITEMS on what is not a dict" : "APPENDS on what is not a list");
    if (!rc && pairs && tmp.n % 2) rc = aur__pk_bad(u, "SETITEMS with a key but no value");
    for (int j = 0; !rc && j < tmp.n; j++) rc = aur__pk_add(u, c, tmp.v[j]);
    AUR_FREE(tmp.v);
    return rc ? rc : aur__pk_push(u, c);
}

/* The storage types torch.save names, as safetensors dtypes. */
static const char *aur__torch_storage_dtype(const char *global)
{
    static const char *const map[][2] = {{"torch.FloatStorage", "F32"}, {"torch.BFloat16Storage", "BF16"}, {"torch.HalfStorage", "F16"},
                                          {"torch.DoubleStorage", "F64"}, {"torch.LongStorage", "I64"},     {"torch.IntStorage", "I32"},
                                          {"torch.ShortStorage", "I16"},  {"torch.CharStorage", "I8"},      {"torch.ByteStorage", "U8"},
                                          {"torch.BoolStorage", "BOOL"}};
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
        if (!strcmp(global, map[k][0])) return map[k][1];
    return NULL;
}

/* Globals weights_only allows that a checkpoint holds beside its state dict
   (hyper-parameters, optimiser and callback state): their values become opaque tokens. */
static int aur__pk_opaque_global(const char *full)
{
    static const char *const names[] = {"builtins.set", "builtins.frozenset", "builtins.complex", "builtins.slice", "builtins.range",
                                        "builtins.bytearray", "__builtin__.set", "__builtin__.frozenset", "__builtin__.complex",
                                        "__builtin__.slice", "__builtin__.bytearray", "_codecs.encode", "collections.Counter",
                                        "torch.Size", "torch.device", NULL};
    static const char *const dtypes[] = {"float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32",
                                         "int", "int16", "short", "int8", "uint8", "bool", "complex64", "complex128", NULL};
    for (int k = 0; names[k]; k++)
        if (!strcmp(full, names[k])) return 1;
    for (int k = 0; dtypes[k]; k++)
        if (!strncmp(full, "torch.", 6) && !strcmp(full + 6, dtypes[k])) return 1;
    return 0;
}

/* GLOBAL: only the names a state dict needs (weights_only's allow-list, reduced to them). */
static int aur__pk_global(aur__unpickler *u, const char *module, const char *name)
{
    static const char *const allowed[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", NULL};
    char full[256];
    snprintf(full, sizeof full, "%.120s.%.120s", module, name);
    int ok = aur__torch_storage_dtype(full) != NULL || aur__pk_opaque_global(full);
    for (int k = 0; allowed[k] && !ok; k++) ok = !strcmp(full, allowed[k]);
    if (!ok)
        return aur__err(AUR_EFORMAT, "%s: data.pkl: global '%s' is not allowed: a checkpoint is read as torch.load(weights_only=True) "
                        "reads it, and only a state dict's tensors are taken", u->path, full);
    aur__pk *g = aur__pk_new(u, AUR__PK_GLOBAL);
    if (g && !(g->s = aur__strdup(full))) return AUR_ENOMEM;
    return aur__pk_push(u, g);
}

static int aur__pk_int_tuple(const aur__pk *t, int64_t *out, int max)
{
    if (t->kind != AUR__PK_TUPLE || t->n > max) return -1;
    for (int k = 0; k < t->n; k++) {
        if (t->v[k]->kind != AUR__PK_INT || t->v[k]->i < 0) return -1;
        out[k] = t->v[k]->i;
    }
    return t->n;
}

/* torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
static aur__pk *aur__pk_tensor(aur__unpickler *u, const aur__pk *a)
{
    aur__pk *t = aur__pk_new(u, AUR__PK_TENSOR);
    if (!t) return NULL;
    int64_t stride[AUR_ST_MAX_DIMS];
    int ok = a->n >= 4 && a->v[0]->kind == AUR__PK_STORAGE && a->v[1]->kind == AUR__PK_INT && a->v[1]->i >= 0;
    t->ndim = ok ? aur__pk_int_tuple(a->v[2], t->shape, AUR_ST_MAX_DIMS) : -1;
    ok = ok && t->ndim >= 0 && aur__pk_int_tuple(a->v[3], stride, AUR_ST_MAX_DIMS) == t->ndim;
    if (!ok) return aur__pk_bad(u, "_rebuild_tensor_v2 without (storage, offset, size, stride)"), (aur__pk *)NULL;
    if (a->n >= 7 && a->v[6]->kind == AUR__PK_DICT && a->v[6]->n)
        return aur__pk_bad(u, "a tensor saved with metadata (a negated or conjugated view); save tensor.resolve_neg() instead"), (aur__pk *)NULL;
    t->storage = a->v[0], t->offset = a->v[1]->i;
    memcpy(t->stride, stride, sizeof stride);
    return t;
}

/* REDUCE: an allowed callable applied to its arguments. */
static int aur__pk_reduce(aur__unpickler *u)
{
    aur__pk *args = aur__pk_pop(u), *fn = args ? aur__pk_pop(u) : NULL;
    if (!fn) return AUR_EFORMAT;
    if (fn->kind != AUR__PK_GLOBAL || args->kind != AUR__PK_TUPLE) return aur__pk_bad(u, "REDUCE of what is not a global and a tuple");
    if (aur__pk_opaque_global(fn->s)) return aur__pk_push(u, aur__pk_new(u, AUR__PK_OPAQUE));
    if (!strcmp(fn->s, "collections.OrderedDict")) {
        if (args->n) return aur__pk_bad(u, "OrderedDict with arguments");
        return aur__pk_push(u, aur__pk_new(u, AUR__PK_DICT));
    }
    if (!strcmp(fn->s, "torch._utils._rebuild_tensor_v2")) {
        aur__pk *t = aur__pk_tensor(u, args);
        return t ? aur__pk_push(u, t) : AUR_EFORMAT;
    }
    if (!strcmp(fn->s, "torch._utils._rebuild_parameter")) { /* (tensor, requires_grad, backward_hooks): the tensor */
        if (args->n < 1 || args->v[0]->kind != AUR__PK_TENSOR) return aur__pk_bad(u, "_rebuild_parameter without a tensor");
        return aur__pk_push(u, args->v[0]);
    }
    return aur__pk_bad(u, "a storage type called as a function");
}

/* BINPERSID: ("storage", storage type, key, location, numel). */
static int aur__pk_persid(aur__unpickler *u)
{
    aur__pk *id = aur__pk_pop(u);
    if (!id) return AUR_EFORMAT;
    int ok = id->kind == AUR__PK_TUPLE && id->n == 5 && id->v[0]->kind == AUR__PK_STR && !strcmp(id->v[0]->s, "storage") &&
             id->v[1]->kind == AUR__PK_GLOBAL && id->v[2]->kind == AUR__PK_STR && id->v[4]->kind == AUR__PK_INT && id->v[4]->i >= 0;
    const char *dtype = ok ? aur__torch_storage_dtype(id->v[1]->s) : NULL;
    if (!dtype) return aur__pk_bad(u, "a persistent id that is not a storage");
    aur__pk *s = aur__pk_new(u, AUR__PK_STORAGE);
    if (!s || !(s->s = aur__strdup(id->v[2]->s))) return AUR_ENOMEM;
    s->dtype = dtype, s->i = id->v[4]->i;
    return aur__pk_push(u, s);
}

static int aur__pk_memo_put(aur__unpickler *u, uint64_t idx)
{
    if (!u->sp) return aur__pk_bad(u, "a memo of an empty stack");
    if (idx >= AUR__PK_MAX_MEMO) return aur__pk_bad(u, "a memo index past 16M");
    if (aur__grow((void **)&u->memo, &u->memo_cap, (int)idx + 1, sizeof *u->memo)) return AUR_ENOMEM;
    for (int k = u->n_memo; k <= (int)idx; k++) u->memo[k] = NULL;
    if ((int)idx >= u->n_memo) u->n_memo = (int)idx + 1;
    u->memo_entries += !u->memo[idx];
    u->memo[idx] = u->stack[u->sp - 1];
    return 0;
}

static int aur__pk_memo_get(aur__unpickler *u, uint64_t idx)
{
    if (idx >= (uint64_t)u->n_memo || !u->memo[idx]) return aur__pk_bad(u, "a memo index that was never put");
    return aur__pk_push(u, u->memo[idx]);
}

/* GLOBAL's "module\nname\n" */
static int aur__pk_global_text(aur__unpickler *u)
{
    const unsigned char *a = u->p, *nl1 = (const unsigned char *)memchr(a, '\n', (size_t)(u->end - a));
    const unsigned char *nl2 = nl1 ? (const unsigned char *)memchr(nl1 + 1, '\n', (size_t)(u->end - nl1 - 1)) : NULL;
    if (!nl2 || nl1 - a > 120 || nl2 - nl1 > 121) return aur__pk_bad(u, "GLOBAL without its two lines");
    char module[128], name[128];
    memcpy(module, a, (size_t)(nl1 - a)), module[nl1 - a] = 0;
    memcpy(name, nl1 + 1, (size_t)(nl2 - nl1 - 1)), name[nl2 - nl1 - 1] = 0;
    u->p = nl2 + 1;
    return aur__pk_global(u, module, name);
}

static int aur__pk_stack_global(aur__unpickler *u)
{
    aur__pk *name = aur__pk_pop(u), *module = name ? aur__pk_pop(u) : NULL;
    if (!module) return AUR_EFORMAT;
    if (name->kind != AUR__PK_STR || module->kind != AUR__PK_STR) return aur__pk_bad(u, "STACK_GLOBAL of what are not strings");
    return aur__pk_global(u, module->s, name->s);
}

static int aur__pk_tuple_of(aur__unpickler *u, int n)
{
    aur__pk *t = aur__pk_new(u, AUR__PK_TUPLE);
    if (!t) return AUR_ENOMEM;
    if (u->sp - (u->n_marks ? u->marks[u->n_marks - 1] : 0) < n) return aur__pk_bad(u, "TUPLE of more values than the stack holds");
    for (int k = 0; k < n; k++)
        if (aur__pk_add(u, t, u->stack[u->sp - n + k])) return AUR_ENOMEM;
    u->sp -= n;
    return aur__pk_push(u, t);
}

/* BUILD on a dict (OrderedDict's state: the state dict's _metadata): dropped. */
static int aur__pk_build(aur__unpickler *u)
{
    aur__pk *state = aur__pk_pop(u), *obj = state ? aur__pk_pop(u) : NULL;
    if (!obj) return AUR_EFORMAT;
    if (obj->kind == AUR__PK_OPAQUE) return aur__pk_push(u, obj);
    if (obj->kind != AUR__PK_DICT || (state->kind != AUR__PK_DICT && state->kind != AUR__PK_NONE && state->kind != AUR__PK_TUPLE))
        return aur__pk_bad(u, "BUILD of what is not a dict");
    return aur__pk_push(u, obj);
}

/* One opcode (protocols 2 to 5, the ones a state dict uses). 1 at STOP. */
static int aur__pk_step(aur__unpickler *u)
{
    const unsigned char *b = aur__pk_take(u, 1);
    if (!b) return AUR_EFORMAT;
    switch (*b) {
    case 0x80: return aur__pk_take(u, 1) ? 0 : AUR_EFORMAT;                     /* PROTO */
    case 0x95: return aur__pk_take(u, 8) ? 0 : AUR_EFORMAT;                     /* FRAME */
    case '}': return aur__pk_push(u, aur__pk_new(u, AUR__PK_DICT));            /* EMPTY_DICT */
    case ']': return aur__pk_push(u, aur__pk_new(u, AUR__PK_LIST));            /* EMPTY_LIST */
    case ')': return aur__pk_push(u, aur__pk_new(u, AUR__PK_TUPLE));           /* EMPTY_TUPLE */
    case 'N': return aur__pk_push(u, aur__pk_new(u, AUR__PK_NONE));            /* NONE */
    case 0x88: case 0x89: return aur__pk_int(u, *b == 0x88, AUR__PK_BOOL);     /* NEWTRUE, NEWFALSE */
    case '(':                                                                    /* MARK */
        if (u->n_marks >= AUR__PK_MAX_STACK) return aur__pk_bad(u, "more than 4M open marks");
        if (aur__grow((void **)&u->marks, &u->marks_cap, u->n_marks + 1, sizeof *u->marks)) return AUR_ENOMEM;
        u->marks[u->n_marks++] = u->sp;
        return 0;
    case 'K': if (!(b = aur__pk_take(u, 1))) return AUR_EFORMAT; return aur__pk_int(u, b[0], AUR__PK_INT);          /* BININT1 */
    case 'M': if (!(b = aur__pk_take(u, 2))) return AUR_EFORMAT; return aur__pk_int(u, (int64_t)aur__pk_le(b, 2), AUR__PK_INT);
    case 'J': if (!(b = aur__pk_take(u, 4))) return AUR_EFORMAT; return aur__pk_int(u, (int32_t)aur__pk_le(b, 4), AUR__PK_INT);
    case 0x8a: {                                                                 /* LONG1: little-endian two's complement */
        const unsigned char *n = aur__pk_take(u, 1), *d = n ? aur__pk_take(u, n[0]) : NULL;
        if (!d) return AUR_EFORMAT;
        if (n[0] > 8) return aur__pk_push(u, aur__pk_new(u, AUR__PK_OPAQUE)); /* past 64 bits: no shape or offset */
        uint64_t v = n[0] ? aur__pk_le(d, n[0]) : 0;
        if (n[0] && n[0] < 8 && (d[n[0] - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n[0]);
        return aur__pk_int(u, (int64_t)v, AUR__PK_INT);
    }
    case 'G': {                                                                  /* BINFLOAT: big-endian double */
        if (!(b = aur__pk_take(u, 8))) return AUR_EFORMAT;
        aur__pk *v = aur__pk_new(u, AUR__PK_FLOAT);
        return aur__pk_push(u, v);
    }
    case 'X': if (!(b = aur__pk_take(u, 4))) return AUR_EFORMAT; return aur__pk_str(u, aur__pk_le(b, 4));  /* BINUNICODE */
    case 0x8c: case 'U': if (!(b = aur__pk_take(u, 1))) return AUR_EFORMAT; return aur__pk_str(u, b[0]); /* SHORT_BINUNICODE, SHORT_BINSTRING */
    case 0x8d: if (!(b = aur__pk_take(u, 8))) return AUR_EFORMAT; return aur__pk_str(u, aur__pk_le(b, 8)); /* BINUNICODE8 */
    case 'c': return aur__pk_global_text(u);                                     /* GLOBAL */
    case 0x93: return aur__pk_stack_global(u);                                   /* STACK_GLOBAL */
    case 'q': if (!(b = aur__pk_take(u, 1))) return AUR_EFORMAT; return aur__pk_memo_put(u, b[0]);                /* BINPUT */
    case 'r': if (!(b = aur__pk_take(u, 4))) return AUR_EFORMAT; return aur__pk_memo_put(u, aur__pk_le(b, 4));    /* LONG_BINPUT */
    case 0x94: return aur__pk_memo_put(u, (uint64_t)u->memo_entries);            /* MEMOIZE: at len(memo), as Python */
    case 'h': if (!(b = aur__pk_take(u, 1))) return AUR_EFORMAT; return aur__pk_memo_get(u, b[0]);                /* BINGET */
    case 'j': if (!(b = aur__pk_take(u, 4))) return AUR_EFORMAT; return aur__pk_memo_get(u, aur__pk_le(b, 4));    /* LONG_BINGET */
    case 't': {                                                                  /* TUPLE */
        aur__pk *t = aur__pk_new(u, AUR__PK_TUPLE);
        int rc = t ? aur__pk_collect(u, t) : AUR_ENOMEM;
        return rc ? rc : aur__pk_push(u, t);
    }
    case 0x85: case 0x86: case 0x87: return aur__pk_tuple_of(u, *b - 0x84);     /* TUPLE1, 2, 3 */
    case 's': return aur__pk_extend(u, 1, 1);                                    /* SETITEM */
    case 'u': return aur__pk_extend(u, 1, 0);                                    /* SETITEMS */
    case 'a': return aur__pk_extend(u, 0, 1);                                    /* APPEND */
    case 'e': return aur__pk_extend(u, 0, 0);                                    /* APPENDS */
    case 'R': return aur__pk_reduce(u);                                          /* REDUCE */
    case 'Q': return aur__pk_persid(u);                                          /* BINPERSID */
    case 'b': return aur__pk_build(u);                                           /* BUILD */
    case '.': return 1;                                                          /* STOP */
    default: {
        char what[80];
        snprintf(what, sizeof what, "opcode 0x%02x is not one a state dict needs", *b);
        return aur__pk_bad(u, what);
    }
    }
}

/* Runs a pickle to STOP; *root is the one value left. */
static int aur__unpickle(aur__unpickler *u, const unsigned char *data, size_t n, const char *path, aur__pk **root)
{
    memset(u, 0, sizeof *u);
    u->p = data, u->end = data + n, u->path = path;
    int rc = 0;
    while (!rc) rc = aur__pk_step(u);
    if (rc < 0) return rc;
    if (u->sp != 1 || u->n_marks) return aur__pk_bad(u, "STOP with other than one value on the stack");
    *root = u->stack[0];
    return 0;
}

/* The dict of tensors: the object itself, or its "state_dict" / "model" / "model_state_dict" entry (Lightning's, common scripts'). */
static const aur__pk *aur__pk_state_dict(const aur__pk *root)
{
    static const char *const keys[] = {"state_dict", "model_state_dict", "model", NULL};
    if (root->kind != AUR__PK_DICT) return NULL;
    for (int k = 0; keys[k]; k++)
        for (int i = 0; i + 1 < root->n; i += 2)
            if (root->v[i]->kind == AUR__PK_STR && !strcmp(root->v[i]->s, keys[k]) && root->v[i + 1]->kind == AUR__PK_DICT) return root->v[i + 1];
    return root;
}

/* ---- the zip archive: storages as one run of bytes ----
   Storage k's bytes sit at [base_k, base_k + size_k) of a virtual data section,
   so a tensor's begin/end are offsets as a safetensors file's are. */
typedef struct aur__torch_entry {
    zip_int64_t index;
    uint64_t base, size;
    char key[64];
    const char *dtype; /* as its persistent id names it */
    int64_t numel;
} aur__torch_entry;

typedef struct aur__torch_zip {
    zip_t *z;
    aur__torch_entry *e;
    int n, cap;
    char prefix[256];
} aur__torch_zip;

static int aur__torch_elem(const char *dtype) { return aur__st_dtype_find(dtype)->bits / 8; }

/* The entry of a storage key (added on first use). */
static int aur__torch_storage(const aur_st_file *f, aur__torch_zip *tz, const aur__pk *s, const aur__torch_entry **out)
{
    for (int k = 0; k < tz->n; k++)
        if (!strcmp(tz->e[k].key, s->s)) {
            if (strcmp(tz->e[k].dtype, s->dtype) || tz->e[k].numel != s->i)
                return aur__err(AUR_EFORMAT, "%s: storage '%s' is named as %lld %s and as %lld %s elements", f->path, s->s, (long long)tz->e[k].numel,
                                tz->e[k].dtype, (long long)s->i, s->dtype);
            return *out = &tz->e[k], 0;
        }
    char name[512];
    snprintf(name, sizeof name, "%s/data/%.60s", tz->prefix, s->s);
    zip_int64_t idx = zip_name_locate(tz->z, name, 0);
    zip_stat_t st;
    if (strlen(s->s) >= 60 || idx < 0 || zip_stat_index(tz->z, (zip_uint64_t)idx, 0, &st) || !(st.valid & ZIP_STAT_SIZE))
        return aur__err(AUR_EFORMAT, "%s: storage '%s' is not in the archive (%s)", f->path, s->s, name);
    if ((uint64_t)s->i > st.size / (uint64_t)aur__torch_elem(s->dtype) || st.size != (uint64_t)s->i * (uint64_t)aur__torch_elem(s->dtype))
        return aur__err(AUR_EFORMAT, "%s: storage '%s' holds %llu bytes, but its %lld %s elements need %llu", f->path, s->s,
                        (unsigned long long)st.size, (long long)s->i, s->dtype, (unsigned long long)((uint64_t)s->i * (uint64_t)aur__torch_elem(s->dtype)));
    if (aur__grow((void **)&tz->e, &tz->cap, tz->n + 1, sizeof *tz->e)) return AUR_ENOMEM;
    aur__torch_entry *e = &tz->e[tz->n];
    e->index = idx, e->size = st.size, e->base = tz->n ? tz->e[tz->n - 1].base + tz->e[tz->n - 1].size : 0;
    snprintf(e->key, sizeof e->key, "%s", s->s);
    e->dtype = s->dtype, e->numel = s->i;
    *out = &tz->e[tz->n++];
    return 0;
}

/* A state dict entry as a table entry: contiguous, inside its storage. */
static int aur__torch_tensor(aur_st_file *f, aur__torch_zip *tz, const char *name, const aur__pk *t, aur_st_tensor *out)
{
    const aur__torch_entry *e = NULL;
    int rc = aur__torch_storage(f, tz, t->storage, &e);
    if (rc) return rc;
    int64_t numel = 1, expect = 1, span = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] > ((int64_t)1 << 48) || (t->shape[d] && span > INT64_MAX / t->shape[d]))
            return aur__err(AUR_EFORMAT, "%s: tensor '%s' has too many elements", f->path, name);
        span *= t->shape[d] ? t->shape[d] : 1, numel *= t->shape[d];
    }
    for (int d = t->ndim - 1; d >= 0 && numel; d--) { /* an empty tensor's strides say nothing */
        if (t->shape[d] > 1 && t->stride[d] != expect)
            return aur__err(AUR_EUNSUPPORTED, "%s: tensor '%s' is a non-contiguous view (strides); save tensor.contiguous() instead", f->path, name);
        expect *= t->shape[d];
    }
    if (t->offset > t->storage->i || numel > t->storage->i - t->offset)
        return aur__err(AUR_EFORMAT, "%s: tensor '%s' (%lld elements from %lld) runs past its storage of %lld", f->path, name, (long long)numel,
                        (long long)t->offset, (long long)t->storage->i);
    memset(out, 0, sizeof *out);
    if (!(out->name = aur__strdup(name))) return AUR_ENOMEM;
    snprintf(out->dtype, sizeof out->dtype, "%s", t->storage->dtype);
    out->ndim = t->ndim, out->numel = numel;
    memcpy(out->shape, t->shape, sizeof t->shape);
    int elem = aur__torch_elem(t->storage->dtype);
    out->begin = e->base + (uint64_t)t->offset * (uint64_t)elem, out->end = out->begin + (uint64_t)numel * (uint64_t)elem;
    return 0;
}

/* The table of the state dict's tensors (non-tensor entries, such as a checkpoint's epoch, are not tensors of it). */
static int aur__torch_table(aur_st_file *f, aur__torch_zip *tz, const aur__pk *root)
{
    const aur__pk *sd = aur__pk_state_dict(root);
    if (!sd) return aur__err(AUR_EFORMAT, "%s: the checkpoint holds no dict of tensors", f->path);
    f->tensors = (aur_st_tensor *)aur__calloc(sizeof *f->tensors * (size_t)(sd->n / 2 + 1), "a checkpoint's table");
    if (!f->tensors) return AUR_ENOMEM;
    int rc = 0;
    for (int i = 0; i + 1 < sd->n && !rc; i += 2) {
        if (sd->v[i + 1]->kind != AUR__PK_TENSOR) continue;
        if (sd->v[i]->kind != AUR__PK_STR || (int64_t)strlen(sd->v[i]->s) != sd->v[i]->i)
            return aur__err(AUR_EFORMAT, "%s: a state dict key is not a string (or holds a NUL byte)", f->path);
        rc = aur__torch_tensor(f, tz, sd->v[i]->s, sd->v[i + 1], &f->tensors[f->n]);
        if (!rc) f->n++;
    }
    if (!rc && !f->n) rc = aur__err(AUR_EFORMAT, "%s: the checkpoint's dict holds no tensors", f->path);
    if (rc) return rc;
    qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, aur__st_cmp_name);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, f->tensors[i - 1].name)) return aur__err(AUR_EFORMAT, "%s: tensor '%s' twice", f->path, f->tensors[i].name);
    f->buffer_size = tz->n ? tz->e[tz->n - 1].base + tz->e[tz->n - 1].size : 0;
    return 0;
}

/* <prefix>/byteorder says "little" (or is absent: torch before 1.12 wrote little-endian only). */
static int aur__torch_byteorder(const aur_st_file *f, const aur__torch_zip *tz)
{
    char name[300], order[16] = "";
    snprintf(name, sizeof name, "%s/byteorder", tz->prefix);
    zip_int64_t idx = zip_name_locate(tz->z, name, 0);
    if (idx < 0) return 0;
    zip_file_t *zf = zip_fopen_index(tz->z, (zip_uint64_t)idx, 0);
    zip_int64_t got = zf ? zip_fread(zf, order, sizeof order - 1) : -1;
    if (zf) zip_fclose(zf);
    if (got < 0 || strncmp(order, "little", 6))
        return aur__err(AUR_EUNSUPPORTED, "%s: the storages are not little-endian (byteorder '%.8s')", f->path, got > 0 ? order : "?");
    return 0;
}

/* <prefix>/data.pkl, whole: the archive's one pickle. */
static int aur__torch_pickle(aur_st_file *f, aur__torch_zip *tz, unsigned char **data, size_t *n)
{
    zip_int64_t count = zip_get_num_entries(tz->z, 0), found = -1;
    for (zip_int64_t i = 0; i < count; i++) {
        const char *name = zip_get_name(tz->z, (zip_uint64_t)i, 0);
        size_t len = name ? strlen(name) : 0;
        if (len > 9 && len - 9 < sizeof tz->prefix && !strcmp(name + len - 9, "/data.pkl") && memchr(name, '/', len - 9) == NULL) {
            if (found >= 0) return aur__err(AUR_EFORMAT, "%s: more than one data.pkl in the archive", f->path);
            found = i;
            memcpy(tz->prefix, name, len - 9), tz->prefix[len - 9] = 0;
        }
    }
    zip_stat_t st;
    if (found < 0) return aur__err(AUR_EFORMAT, "%s: a zip archive without <name>/data.pkl: not a torch.save checkpoint", f->path);
    int rc = aur__torch_byteorder(f, tz);
    if (rc) return rc;
    if (zip_stat_index(tz->z, (zip_uint64_t)found, 0, &st) || st.size > AUR__PK_MAX_BYTES)
        return aur__err(AUR_EFORMAT, "%s: data.pkl of %llu bytes", f->path, (unsigned long long)st.size);
    *n = (size_t)st.size;
    *data = (unsigned char *)aur__malloc(*n ? *n : 1, "a checkpoint's pickle");
    zip_file_t *zf = *data ? zip_fopen_index(tz->z, (zip_uint64_t)found, 0) : NULL;
    zip_int64_t got = zf ? zip_fread(zf, *data, *n) : -1;
    if (zf) zip_fclose(zf);
    if (got != (zip_int64_t)*n) return aur__err(AUR_EFORMAT, "%s: cannot read data.pkl: %s", f->path, zip_strerror(tz->z));
    return 0;
}

static int aur__torch_open(aur_st_file *f)
{
    int err = 0;
    aur__torch_zip *tz = (aur__torch_zip *)aur__calloc(sizeof *tz, "a checkpoint archive");
    if (!tz) return AUR_ENOMEM;
    f->torch = tz;
    if (!(tz->z = zip_open(f->path, ZIP_RDONLY | ZIP_CHECKCONS, &err))) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        int rc = aur__err(AUR_EFORMAT, "%s: not a readable zip archive (a cut-short checkpoint?): %s", f->path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return rc;
    }
    unsigned char *pickle = NULL;
    size_t n = 0;
    aur__unpickler u;
    aur__pk *root = NULL;
    int rc = aur__torch_pickle(f, tz, &pickle, &n);
    if (!rc) rc = aur__unpickle(&u, pickle, n, f->path, &root);
    else memset(&u, 0, sizeof u);
    if (!rc) rc = aur__torch_table(f, tz, root);
    aur__pk_free_all(&u);
    AUR_FREE(pickle);
    return rc;
}

/* n bytes at offset `at` of the virtual data section: from the one storage they lie in. */
static int aur__torch_bytes(const aur_st_file *f, uint64_t at, void *dst, size_t n)
{
    const aur__torch_zip *tz = (const aur__torch_zip *)f->torch;
    int lo = 0, hi = tz->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (tz->e[mid].base <= at) lo = mid;
        else hi = mid - 1;
    }
    const aur__torch_entry *e = &tz->e[lo];
    zip_file_t *zf = zip_fopen_index(tz->z, (zip_uint64_t)e->index, 0);
    if (!zf) return aur__err(AUR_EIO, "%s: cannot read storage '%s': %s", f->path, e->key, zip_strerror(tz->z));
    uint64_t skip = at - e->base;
    int rc = 0;
    if (skip && zip_fseek(zf, (zip_int64_t)skip, SEEK_SET)) { /* compressed: read up to it, on a fresh handle (a failed seek sticks) */
        zip_fclose(zf);
        if (!(zf = zip_fopen_index(tz->z, (zip_uint64_t)e->index, 0)))
            return aur__err(AUR_EIO, "%s: cannot read storage '%s': %s", f->path, e->key, zip_strerror(tz->z));
        unsigned char buf[65536];
        for (uint64_t left = skip; left && !rc;) {
            zip_int64_t r = zip_fread(zf, buf, left < sizeof buf ? left : sizeof buf);
            if (r <= 0) rc = AUR_EIO;
            else left -= (uint64_t)r;
        }
    }
    if (!rc && zip_fread(zf, dst, n) != (zip_int64_t)n) rc = AUR_EIO;
    zip_fclose(zf);
    return rc ? aur__err(AUR_EIO, "%s: storage '%s' ends early (was the file cut short?)", f->path, e->key) : 0;
}

static void aur__torch_close(aur_st_file *f)
{
    aur__torch_zip *tz = (aur__torch_zip *)f->torch;
    if (!tz) return;
    if (tz->z) zip_discard(tz->z);
    AUR_FREE(tz->e);
    AUR_FREE(tz);
    f->torch = NULL;
}

#else /* built without libzip */

static int aur__torch_open(aur_st_file *f)
{
    return aur__err(AUR_EUNSUPPORTED, "%s: a zip archive (a PyTorch checkpoint?): reading those needs the implementation compiled with "
                    "-DAUR_TORCH_CKPT and linked with -lzip (Debian: libzip-dev); or convert it with tools/ckpt_to_safetensors.py", f->path);
}
static int aur__torch_bytes(const aur_st_file *f, uint64_t at, void *dst, size_t n)
{
    (void)at, (void)dst, (void)n;
    return aur__err(AUR_EUNSUPPORTED, "%s: no PyTorch checkpoint reader in this build", f->path);
}
static void aur__torch_close(aur_st_file *f) { (void)f; }
#endif
