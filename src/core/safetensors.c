#include "api.h"
#include "platform.h"

/* ==== safetensors: reading ====
   Layout: u64 little-endian N | N bytes of JSON | data. The reader trusts
   nothing: every rule below is checked before a byte of data is used, and a
   failure names the file, the tensor and what was expected. */

#define AUR__ST_MAX_HEADER 100000000ull
#define AUR__ST_MAX_DEPTH 64
#define AUR__ST_MAX_INT 9007199254740992.0 /* 2^53 */

typedef struct aur__st_dtype {
    const char *name;
    int bits;
    int readable; /* we convert it into F32 */
} aur__st_dtype;

static const aur__st_dtype aur__st_dtypes[] = {
    {"F32", 32, 1},     {"BF16", 16, 1},    {"F16", 16, 1},     {"I64", 64, 1},     {"I32", 32, 1},
    {"U8", 8, 1},       {"BOOL", 8, 1},     {"F64", 64, 0},     {"I16", 16, 0},     {"I8", 8, 0},
    {"U16", 16, 0},     {"U32", 32, 0},     {"U64", 64, 0},     {"F8_E4M3", 8, 0},  {"F8_E5M2", 8, 0},
    {"F8_E8M0", 8, 0},  {"F6_E2M3", 6, 0},  {"F6_E3M2", 6, 0},  {"F4", 4, 0},       {"C64", 64, 0},
};

/* PyTorch's zip checkpoints are read into the same table (torch_ckpt.c) */
static int aur__torch_open(aur_st_file *f);
static int aur__torch_bytes(const aur_st_file *f, uint64_t at, void *dst, size_t n);
static void aur__torch_close(aur_st_file *f);

static const aur__st_dtype *aur__st_dtype_find(const char *name)
{
    for (size_t i = 0; i < sizeof aur__st_dtypes / sizeof aur__st_dtypes[0]; i++)
        if (!strcmp(aur__st_dtypes[i].name, name)) return &aur__st_dtypes[i];
    return NULL;
}

static uint64_t aur__le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int aur__is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The length of the UTF-8 sequence at h[i] (of n bytes), 0 if it is not
   one: overlong forms, surrogates and code points above U+10FFFF are not. */
static int aur__utf8_length(const unsigned char *h, uint64_t i, uint64_t n)
{
    unsigned char c = h[i];
    int len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!len || i + (uint64_t)len > n) return 0;
    for (int k = 1; k < len; k++)
        if ((h[i + (uint64_t)k] & 0xc0) != 0x80) return 0;
    unsigned char c1 = len > 1 ? h[i + 1] : 0;
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) || (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90)) return 0;
    return len;
}

/* The number token at h[i]: safetensors' only numbers are shapes and
   offsets, which the reference reader takes as unsigned integers, so
   "1e0", "1.0", "-0" and "01" are refused as it refuses them. */
static int aur__st_scan_number(const char *path, const unsigned char *h, uint64_t n, uint64_t *i)
{
    uint64_t at = *i, k = at;
    int digits = 1;
    while (k < n && (isdigit(h[k]) || h[k] == '-' || h[k] == '+' || h[k] == '.' || h[k] == 'e' || h[k] == 'E')) digits &= isdigit(h[k++]) != 0;
    *i = k - 1;
    if (digits && !(h[at] == '0' && k - at > 1)) return 0;
    return aur__err(AUR_EFORMAT, "%s: the number '%.*s' at header offset %llu: shapes and offsets are written as unsigned integers (digits only)",
                    path, (int)(k - at > 24 ? 24 : k - at), (const char *)h + at, (unsigned long long)at);
}

/* Structural checks cJSON does not make: UTF-8, control bytes, an escaped
   NUL, numbers as plain integers, nesting depth, and nothing but whitespace
   after the top-level object. */
static int aur__st_scan_json(const char *path, const unsigned char *h, uint64_t n)
{
    int depth = 0, in_str = 0;
    uint64_t i = 0, end = 0;
    if (n == 0 || h[0] != '{') return aur__err(AUR_EFORMAT, "%s: the header does not start with '{'", path);
    for (i = 0; i < n; i++) {
        unsigned char c = h[i];
        if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
            return aur__err(AUR_EFORMAT, "%s: control byte 0x%02x at header offset %llu (a NUL in a name?)", path, c,
                            (unsigned long long)i);
        int len = aur__utf8_length(h, i, n);
        if (!len) return aur__err(AUR_EFORMAT, "%s: the header is not valid UTF-8 (byte 0x%02x at offset %llu)", path, c, (unsigned long long)i);
        i += (uint64_t)len - 1;
        if (end) {
            if (!aur__is_ws(c))
                return aur__err(AUR_EFORMAT, "%s: bytes after the header's JSON object at offset %llu", path,
                                (unsigned long long)i);
            continue;
        }
        if (in_str) {
            if (c == '\\' && i + 1 < n) {
                if (h[i + 1] == 'u' && i + 5 < n && !memcmp(h + i + 2, "0000", 4))
                    return aur__err(AUR_EFORMAT, "%s: an escaped NUL (\\u0000) in the header", path);
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
            continue;
        }
        if (c == '"') in_str = 1;
        else if ((isdigit(c) || c == '-') && aur__st_scan_number(path, h, n, &i)) return AUR_EFORMAT;
        else if (c == '{' || c == '[') {
            if (++depth > AUR__ST_MAX_DEPTH)
                return aur__err(AUR_EFORMAT, "%s: the header nests deeper than %d", path, AUR__ST_MAX_DEPTH);
        } else if (c == '}' || c == ']') {
            if (--depth == 0) end = i + 1;
        }
    }
    if (!end) return aur__err(AUR_EFORMAT, "%s: the header's JSON object is not closed", path);
    return 0;
}

/* A JSON number that is an integer in [0, 2^53] (never through valueint). */
static int aur__json_u53(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= AUR__ST_MAX_INT) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int aur__st_cmp_name(const void *a, const void *b)
{
    return strcmp(((const aur_st_tensor *)a)->name, ((const aur_st_tensor *)b)->name);
}

static int aur__st_cmp_offset(const void *a, const void *b)
{
    const aur_st_tensor *x = *(const aur_st_tensor *const *)a, *y = *(const aur_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

static int aur__st_metadata(aur_st_file *f, const cJSON *meta)
{
    if (!cJSON_IsObject(meta)) return aur__err(AUR_EFORMAT, "%s: __metadata__ is not an object", f->path);
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = (char **)aur__calloc(sizeof(char *) * (size_t)(n + 1), "metadata");
    f->meta_values = (char **)aur__calloc(sizeof(char *) * (size_t)(n + 1), "metadata");
    if (!f->meta_keys || !f->meta_values) return AUR_ENOMEM;
    for (const cJSON *m = meta->child; m; m = m->next) {
        if (!cJSON_IsString(m) || !m->string)
            return aur__err(AUR_EFORMAT, "%s: __metadata__['%s'] is not a string", f->path, m->string ? m->string : "?");
        f->meta_keys[f->n_meta] = aur__strdup(m->string);
        f->meta_values[f->n_meta] = aur__strdup(m->valuestring);
        if (!f->meta_keys[f->n_meta++] || !f->meta_values[f->n_meta - 1]) return AUR_ENOMEM;
    }
    return 0;
}

/* One tensor entry: dtype, shape, data_offsets, and their consistency. */
static int aur__st_entry(aur_st_file *f, const cJSON *e, aur_st_tensor *t)
{
    const char *p = f->path, *nm = t->name;
    if (!cJSON_IsObject(e)) return aur__err(AUR_EFORMAT, "%s: tensor '%s': the entry is not an object", p, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return aur__err(AUR_EFORMAT, "%s: tensor '%s': 'dtype' is missing or not a string", p, nm);
    const aur__st_dtype *info = aur__st_dtype_find(dt->valuestring);
    if (!info) return aur__err(AUR_EFORMAT, "%s: tensor '%s': unknown dtype '%.20s'", p, nm, dt->valuestring);
    snprintf(t->dtype, sizeof t->dtype, "%s", info->name);
    if (!cJSON_IsArray(sh)) return aur__err(AUR_EFORMAT, "%s: tensor '%s': 'shape' is missing or not an array", p, nm);
    int rank = cJSON_GetArraySize(sh);
    if (rank > AUR_ST_MAX_DIMS)
        return aur__err(AUR_EFORMAT, "%s: tensor '%s': rank %d is above %d", p, nm, rank, AUR_ST_MAX_DIMS);
    uint64_t numel = 1, nonzero = 1, v;
    int overflow = 0;
    t->ndim = 0;
    for (const cJSON *d = sh->child; d; d = d->next) {
        if (!aur__json_u53(d, &v))
            return aur__err(AUR_EFORMAT, "%s: tensor '%s': shape entry %d is not an integer in [0, 2^53]", p, nm, t->ndim);
        /* a zero dim elsewhere does not excuse an absurd shape: strides would overflow */
        if (v && nonzero > (UINT64_MAX / 64) / v) overflow = 1;
        if (v) nonzero *= v;
        numel *= v;
        t->shape[t->ndim++] = (int64_t)v;
    }
    if (overflow)
        return aur__err(AUR_EFORMAT, "%s: tensor '%s': the shape's byte size overflows", p, nm);
    t->numel = (int64_t)numel;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !aur__json_u53(of->child, &t->begin) ||
        !aur__json_u53(of->child->next, &t->end))
        return aur__err(AUR_EFORMAT, "%s: tensor '%s': 'data_offsets' is not two integers in [0, 2^53]", p, nm);
    if (t->begin > t->end)
        return aur__err(AUR_EFORMAT, "%s: tensor '%s': data_offsets begin %llu > end %llu", p, nm,
                        (unsigned long long)t->begin, (unsigned long long)t->end);
    uint64_t bits = numel * (uint64_t)info->bits;
    if (bits % 8 || bits / 8 != t->end - t->begin)
        return aur__err(AUR_EFORMAT, "%s: tensor '%s': %s of %llu elements needs %llu bytes; data_offsets give %llu", p,
                        nm, info->name, (unsigned long long)numel, (unsigned long long)(bits / 8),
                        (unsigned long long)(t->end - t->begin));
    return 0;
}

/* After sorting by offset the ranges must tile the buffer exactly. */
static int aur__st_check_layout(aur_st_file *f)
{
    aur_st_tensor **by = (aur_st_tensor **)aur__malloc(sizeof(aur_st_tensor *) * (size_t)(f->n + 1), "a header index");
    if (!by) return AUR_ENOMEM;
    for (int i = 0; i < f->n; i++) by[i] = &f->tensors[i];
    aur__qsort(by, (size_t)f->n, sizeof *by, aur__st_cmp_offset);
    uint64_t at = 0;
    int rc = 0;
    for (int i = 0; i < f->n && !rc; i++) {
        if (by[i]->begin != at)
            rc = aur__err(AUR_EFORMAT, "%s: tensor '%s': data starts at %llu, expected %llu (%s)", f->path, by[i]->name,
                          (unsigned long long)by[i]->begin, (unsigned long long)at,
                          by[i]->begin > at ? "a hole before it" : "it overlaps the previous tensor");
        at = by[i]->end;
    }
    if (!rc && at != f->buffer_size)
        rc = aur__err(AUR_EFORMAT, "%s: the tensors cover %llu bytes but the data section has %llu (%s)", f->path,
                      (unsigned long long)at, (unsigned long long)f->buffer_size,
                      at > f->buffer_size ? "truncated file or offsets out of range" : "trailing bytes");
    AUR_FREE(by);
    return rc;
}

static int aur__st_parse(aur_st_file *f, const unsigned char *bytes, uint64_t size)
{
    const char *p = f->path;
    if (size < 8) return aur__err(AUR_EFORMAT, "%s: %llu bytes is too short for a safetensors file", p, (unsigned long long)size);
    uint64_t n = aur__le64(bytes);
    if (n > AUR__ST_MAX_HEADER) return aur__err(AUR_EFORMAT, "%s: header length %llu is above the limit 100000000", p, (unsigned long long)n);
    if (8 + n > size)
        return aur__err(AUR_EFORMAT, "%s: header length %llu runs past the end of the file (%llu bytes)", p,
                        (unsigned long long)n, (unsigned long long)size);
    int rc = aur__st_scan_json(p, bytes + 8, n);
    if (rc) return rc;
    const char *stop = NULL;
    cJSON *root = aur__cjson_parse((const char *)bytes + 8, (size_t)n, &stop);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return aur__err(AUR_EFORMAT, "%s: the header is not valid JSON", p);
    }
    if ((rc = aur__json_unique(root, p))) { /* "dtype" twice in an entry, __metadata__ twice, a tensor name twice */
        cJSON_Delete(root);
        return rc;
    }
    f->buffer = bytes + 8 + n; /* aur_st_open reads files with pread instead */
    f->data_start = 8 + n;
    f->buffer_size = size - 8 - n;
    int count = cJSON_GetArraySize(root);
    f->tensors = (aur_st_tensor *)aur__calloc(sizeof(aur_st_tensor) * (size_t)(count + 1), "the tensor table");
    if (!f->tensors) rc = AUR_ENOMEM;
    for (const cJSON *e = root->child; e && !rc; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            rc = aur__st_metadata(f, e);
            continue;
        }
        aur_st_tensor *t = &f->tensors[f->n++];
        t->name = aur__strdup(e->string);
        rc = t->name ? aur__st_entry(f, e, t) : AUR_ENOMEM;
    }
    cJSON_Delete(root);
    if (rc) return rc;
    aur__qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, aur__st_cmp_name);
    return aur__st_check_layout(f);
}

AURDEF void aur_st_close(aur_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) AUR_FREE(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        AUR_FREE(f->meta_keys[i]);
        AUR_FREE(f->meta_values[i]);
    }
    AUR_FREE(f->tensors);
    AUR_FREE(f->meta_keys);
    AUR_FREE(f->meta_values);
    aur__torch_close(f);
    if (f->fd >= 0) close(f->fd);
    AUR_FREE(f->path);
    AUR_FREE(f);
}

/* n bytes at offset of the file (or of the in-memory data section), all of them. */
static int aur__st_pread(const aur_st_file *f, uint64_t offset, void *dst, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = pread(f->fd, (char *)dst + got, n - got, (off_t)(offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return aur__err(AUR_EIO, "%s: %s at byte %llu (was the file cut short while open?)", f->path, r < 0 ? strerror(errno) : "the file ends",
                            (unsigned long long)(offset + got));
        got += (size_t)r;
    }
    return 0;
}

/* The bytes [begin, begin + n) of the data section. */
static int aur__st_bytes(const aur_st_file *f, uint64_t begin, void *dst, size_t n)
{
    if (f->torch) return aur__torch_bytes(f, begin, dst, n);
    if (f->buffer) {
        memcpy(dst, f->buffer + begin, n);
        return 0;
    }
    return aur__st_pread(f, f->data_start + begin, dst, n);
}

/* The length prefix and the header of an opened file of size bytes, into *out (8 + length bytes). */
static int aur__st_read_header(aur_st_file *f, uint64_t size, unsigned char **out)
{
    unsigned char len[8];
    if (size < 8) return aur__err(AUR_EFORMAT, "%s: %llu bytes is too short for a safetensors file", f->path, (unsigned long long)size);
    int rc = aur__st_pread(f, 0, len, 8);
    uint64_t n = rc ? 0 : aur__le64(len);
    if (!rc && (n > AUR__ST_MAX_HEADER || 8 + n > size)) return aur__st_parse(f, len, size); /* which says why */
    if (!rc && !(*out = (unsigned char *)aur__malloc((size_t)(8 + n), "a safetensors header"))) rc = AUR_ENOMEM;
    if (!rc) rc = aur__st_pread(f, 0, *out, (size_t)(8 + n));
    return rc;
}

/* 1 for a zip archive (torch.save's format), an error for torch's legacy
   pickle format, 0 for anything else (a safetensors file, or what its parser refuses). */
static int aur__st_format(aur_st_file *f, uint64_t size)
{
    /* torch's legacy files open with a pickle (protocol 2) of its magic number 0x1950a86a20f9469cfc6c */
    static const unsigned char legacy[14] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    unsigned char magic[14] = {0};
    if (size >= 14 && aur__st_pread(f, 0, magic, 14)) return AUR_EIO;
    if (size >= 14 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) return 1;
    if (size >= 14 && !memcmp(magic, legacy, sizeof legacy))
        return aur__err(AUR_EUNSUPPORTED, "%s: a PyTorch checkpoint in the legacy format (torch < 1.6, or _use_new_zipfile_serialization=False): "
                        "load and torch.save it again with a current torch", f->path);
    return 0;
}

AURDEF aur_st_file *aur_st_open(const char *path)
{
    uint16_t one = 1;
    if (*(unsigned char *)&one != 1) {
        aur__err(AUR_EUNSUPPORTED, "%s: safetensors needs a little-endian host", path);
        return NULL;
    }
    aur_st_file *f = (aur_st_file *)aur__calloc(sizeof *f, "a safetensors file");
    if (!f || !(f->path = aur__strdup(path))) {
        AUR_FREE(f);
        return NULL;
    }
    f->fd = -1;
    /* O_NONBLOCK: opening a FIFO must not hang; we then insist on a regular file */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), rc = 0;
    struct stat st;
    unsigned char *header = NULL;
    if (fd < 0) {
        rc = aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno));
    } else if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        rc = aur__err(AUR_EIO, "%s: not a regular file", path);
    } else {
        f->fd = fd, fd = -1;
        rc = aur__st_format(f, (uint64_t)st.st_size);
        if (rc == 1) rc = aur__torch_open(f); /* a PyTorch checkpoint */
        else if (!rc) rc = aur__st_read_header(f, (uint64_t)st.st_size, &header);
    }
    if (fd >= 0) close(fd);
    if (!rc && !f->torch) rc = aur__st_parse(f, header, (uint64_t)st.st_size);
    f->buffer = NULL; /* the data section is read from the file */
    AUR_FREE(header);
    if (rc) {
        aur_st_close(f);
        return NULL;
    }
    return f;
}

AURDEF const aur_st_tensor *aur_st_find(const aur_st_file *f, const char *name)
{
    aur_st_tensor key;
    memset(&key, 0, sizeof key);
    key.name = (char *)name;
    return (const aur_st_tensor *)bsearch(&key, f->tensors, (size_t)f->n, sizeof key, aur__st_cmp_name);
}

AURDEF const char *aur_st_meta(const aur_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

/* Element i of an entry as a double (the data may be unaligned: memcpy). */
static double aur__st_value(const unsigned char *d, const char *dtype, int64_t i)
{
    if (!strcmp(dtype, "F32")) {
        float v;
        memcpy(&v, d + 4 * i, 4);
        return v;
    }
    if (!strcmp(dtype, "BF16") || !strcmp(dtype, "F16")) {
        uint16_t v;
        memcpy(&v, d + 2 * i, 2);
        return dtype[0] == 'B' ? aur_bf16_to_f32(v) : aur_f16_to_f32(v);
    }
    if (!strcmp(dtype, "I64")) {
        int64_t v;
        memcpy(&v, d + 8 * i, 8);
        return (double)v;
    }
    if (!strcmp(dtype, "I32")) {
        int32_t v;
        memcpy(&v, d + 4 * i, 4);
        return v;
    }
    return d[i]; /* U8, BOOL */
}

/* The dtype's size and whether we convert it; an error naming the tensor if we do not. */
static int aur__st_readable(const aur_st_file *f, const aur_st_tensor *e, size_t *elem_size)
{
    const aur__st_dtype *info = aur__st_dtype_find(e->dtype);
    *elem_size = 0;
    if (!info || !info->readable)
        return aur__err(AUR_EUNSUPPORTED, "%s: tensor '%s': dtype %s is not supported (F32, BF16, F16, I64, I32, U8, BOOL)",
                        f->path, e->name, e->dtype);
    *elem_size = (size_t)(info->bits / 8);
    return 0;
}

AURDEF int aur_st_read_range(const aur_st_file *f, const aur_st_tensor *e, int64_t first, int64_t count, aur_real *dst)
{
    size_t size;
    int rc = aur__st_readable(f, e, &size);
    if (rc) return rc;
    if (first < 0 || count < 0 || first > e->numel - count)
        return aur__err(AUR_EINVAL, "%s: tensor '%s' has %lld elements; asked for %lld from %lld", f->path, e->name, (long long)e->numel,
                        (long long)count, (long long)first);
    uint64_t at = e->begin + (uint64_t)first * size;
    size_t n = (size_t)count * size;
    if (!strcmp(e->dtype, "F32") && sizeof(aur_real) == 4) return aur__st_bytes(f, at, dst, n); /* as stored */
    unsigned char *d = (unsigned char *)aur__malloc(n ? n : 1, "a tensor's bytes");
    rc = d ? aur__st_bytes(f, at, d, n) : AUR_ENOMEM;
    for (int64_t i = 0; !rc && i < count; i++) dst[i] = (aur_real)aur__st_value(d, e->dtype, i);
    AUR_FREE(d);
    return rc;
}

AURDEF int aur_st_read(const aur_st_file *f, const aur_st_tensor *e, aur_dtype dtype, void *dst)
{
    if (dtype != AUR_BF16) return aur_st_read_range(f, e, 0, e->numel, (aur_real *)dst);
    size_t size, n = (size_t)(e->end - e->begin);
    int rc = aur__st_readable(f, e, &size);
    if (rc || !strcmp(e->dtype, "BF16")) return rc ? rc : aur__st_bytes(f, e->begin, dst, n); /* as stored */
    unsigned char *d = (unsigned char *)aur__malloc(n ? n : 1, "a tensor's bytes");
    rc = d ? aur__st_bytes(f, e->begin, d, n) : AUR_ENOMEM;
    for (int64_t i = 0; !rc && i < e->numel; i++) ((uint16_t *)dst)[i] = aur_f32_to_bf16((float)aur__st_value(d, e->dtype, i));
    AUR_FREE(d);
    return rc;
}

AURDEF int aur_st_read_tensor(const aur_st_file *f, const aur_st_tensor *e, aur_tensor *t)
{
    char s1[64], s2[64];
    if (t->device == AUR_META) return aur__err(AUR_EUNSUPPORTED, "%s: tensor '%s' would go to the meta device, which holds no values", f->path, e->name);
    int same = e->ndim == t->ndim;
    for (int i = 0; same && i < e->ndim; i++) same = e->shape[i] == t->shape[i];
    if (!same)
        return aur__err(AUR_ESHAPE, "%s: tensor '%s' has shape %s, expected %s", f->path, e->name,
                        aur_shape_str(e->shape, e->ndim, s1, sizeof s1), aur_shape_str(t->shape, t->ndim, s2, sizeof s2));
    if (t->device == AUR_CPU) return aur_st_read(f, e, t->dtype, t->data);
    void *tmp = aur__malloc(aur__nbytes(t), "a host staging buffer");
    int rc = tmp ? aur_st_read(f, e, t->dtype, tmp) : AUR_ENOMEM;
    if (!rc) rc = aur__copy_bytes(t->data, t->device, tmp, AUR_CPU, aur__nbytes(t));
    AUR_FREE(tmp);
    return rc;
}

/* ==== safetensors: writing ====
   Entries sorted by dtype size (descending) then name, packed, the header
   padded with spaces to a multiple of 8, written to path.tmp, fsynced and
   renamed over path, so a crash never leaves a half-written file. */

typedef struct aur__st_out {
    char *name;
    char dtype[12];
    int ndim;
    int64_t shape[AUR_ST_MAX_DIMS];
    uint64_t nbytes;
    const void *src;
    aur_device device;
    int from_real; /* src holds aur_real, written as F32 */
} aur__st_out;

struct aur_st_writer {
    aur__st_out *e;
    int n, cap;
    char **meta; /* key, value, key, value, ... */
    int n_meta, cap_meta;
};

AURDEF aur_st_writer *aur_st_writer_create(void)
{
    return (aur_st_writer *)aur__calloc(sizeof(aur_st_writer), "a safetensors writer");
}

AURDEF void aur_st_writer_free(aur_st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) AUR_FREE(w->e[i].name);
    for (int i = 0; i < w->n_meta; i++) AUR_FREE(w->meta[i]);
    AUR_FREE(w->e);
    AUR_FREE(w->meta);
    AUR_FREE(w);
}

static aur__st_out *aur__st_push(aur_st_writer *w, const char *name, const char *dtype, int ndim, const int64_t *shape)
{
    const aur__st_dtype *info = aur__st_dtype_find(dtype);
    if (!info || ndim < 0 || ndim > AUR_ST_MAX_DIMS) {
        aur__err(AUR_EINVAL, "safetensors writer: tensor '%s': bad dtype '%s' or rank %d", name, dtype, ndim);
        return NULL;
    }
    if (aur__grow((void **)&w->e, &w->cap, w->n + 1, sizeof *w->e)) return NULL;
    aur__st_out *o = &w->e[w->n];
    memset(o, 0, sizeof *o);
    if (!(o->name = aur__strdup(name))) return NULL;
    snprintf(o->dtype, sizeof o->dtype, "%s", dtype);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (uint64_t)(o->shape[i] = shape[i]);
    o->ndim = ndim;
    o->nbytes = numel * (uint64_t)info->bits / 8;
    w->n++;
    return o;
}

AURDEF int aur_st_writer_add(aur_st_writer *w, const char *name, const aur_tensor *t)
{
    aur__st_out *o = aur__st_push(w, name, t->dtype == AUR_BF16 ? "BF16" : "F32", t->ndim, t->shape);
    if (!o) return AUR_EINVAL;
    o->src = t->data;
    o->device = t->device;
    o->from_real = t->dtype == AUR_F32;
    return 0;
}

AURDEF int aur_st_writer_add_raw(aur_st_writer *w, const char *name, const char *dtype, int ndim, const int64_t *shape,
                                 const void *bytes)
{
    aur__st_out *o = aur__st_push(w, name, dtype, ndim, shape);
    if (!o) return AUR_EINVAL;
    o->src = bytes;
    return 0;
}

AURDEF int aur_st_writer_meta(aur_st_writer *w, const char *key, const char *value)
{
    if (!strcmp(key, "format")) return 0; /* always "pt" */
    if (aur__grow((void **)&w->meta, &w->cap_meta, w->n_meta + 2, sizeof(char *))) return AUR_ENOMEM;
    w->meta[w->n_meta] = aur__strdup(key);
    w->meta[w->n_meta + 1] = aur__strdup(value);
    if (!w->meta[w->n_meta] || !w->meta[w->n_meta + 1]) return AUR_ENOMEM;
    w->n_meta += 2;
    return 0;
}

static int aur__st_out_cmp(const void *a, const void *b)
{
    const aur__st_out *x = (const aur__st_out *)a, *y = (const aur__st_out *)b;
    int bx = aur__st_dtype_find(x->dtype)->bits, by = aur__st_dtype_find(y->dtype)->bits;
    if (bx != by) return by - bx;
    return strcmp(x->name, y->name);
}

static int aur__st_out_name_cmp(const void *a, const void *b)
{
    return strcmp(((const aur__st_out *)a)->name, ((const aur__st_out *)b)->name);
}

static void aur__buf_json_string(aur__buf *b, const char *s)
{
    aur__buf_printf(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') aur__buf_printf(b, "\\%c", *c);
        else if (*c < 0x20) aur__buf_printf(b, "\\u%04x", *c);
        else aur__buf_printf(b, "%c", *c);
    }
    aur__buf_printf(b, "\"");
}

static void aur__st_header(aur_st_writer *w, aur__buf *b)
{
    uint64_t off = 0;
    aur__buf_printf(b, "{\"__metadata__\":{\"format\":\"pt\"");
    for (int i = 0; i < w->n_meta; i += 2) {
        aur__buf_printf(b, ",");
        aur__buf_json_string(b, w->meta[i]);
        aur__buf_printf(b, ":");
        aur__buf_json_string(b, w->meta[i + 1]);
    }
    aur__buf_printf(b, "}");
    for (int i = 0; i < w->n; i++) {
        aur__st_out *o = &w->e[i];
        aur__buf_printf(b, ",");
        aur__buf_json_string(b, o->name);
        aur__buf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", o->dtype);
        for (int d = 0; d < o->ndim; d++) aur__buf_printf(b, d ? ",%lld" : "%lld", (long long)o->shape[d]);
        aur__buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + o->nbytes));
        off += o->nbytes;
    }
    aur__buf_printf(b, "}");
    while (!b->failed && b->n % 8) aur__buf_printf(b, " ");
}

/* Writes one entry's bytes, converting aur_real to float32 and staging device data. */
static int aur__st_write_data(FILE *fp, const aur__st_out *o)
{
    const uint64_t CHUNK = 1 << 16;
    int direct = o->device == AUR_CPU && (!o->from_real || sizeof(aur_real) == 4);
    if (direct) return fwrite(o->src, 1, (size_t)o->nbytes, fp) == o->nbytes ? 0 : -1;
    size_t esz = o->from_real ? sizeof(aur_real) : 2, out_esz = o->from_real ? 4 : 2;
    uint64_t n = o->nbytes / out_esz;
    unsigned char *stage = (unsigned char *)aur__malloc((size_t)CHUNK * esz, "a write buffer");
    float *conv = (float *)aur__malloc((size_t)CHUNK * 4, "a write buffer");
    int rc = stage && conv ? 0 : -1;
    for (uint64_t i = 0; i < n && !rc; i += CHUNK) {
        size_t k = (size_t)(n - i < CHUNK ? n - i : CHUNK);
        rc = aur__copy_bytes(stage, AUR_CPU, (const char *)o->src + i * esz, o->device, k * esz) ? -1 : 0;
        if (rc) break;
        const void *out = stage;
        if (o->from_real) {
            for (size_t j = 0; j < k; j++) conv[j] = (float)((const aur_real *)stage)[j];
            out = conv;
        }
        rc = fwrite(out, out_esz, k, fp) == k ? 0 : -1;
    }
    AUR_FREE(stage);
    AUR_FREE(conv);
    return rc;
}

/* fsync the directory holding path, so the rename itself is durable. */
/* Makes the rename of path durable: an error (EIO) means the file may not survive a crash. */
static int aur__fsync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd >= 0 && fsync(fd) && errno != EINVAL) rc = aur__err(AUR_EIO, "%s: the directory could not be synced: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return rc;
}

AURDEF int aur_st_writer_write(aur_st_writer *w, const char *path)
{
    /* names must be unique: sort by name once to find repeats, then into file order */
    aur__qsort(w->e, (size_t)w->n, sizeof *w->e, aur__st_out_name_cmp);
    for (int i = 1; i < w->n; i++)
        if (!strcmp(w->e[i].name, w->e[i - 1].name))
            return aur__err(AUR_EINVAL, "%s: tensor name '%s' is given twice", path, w->e[i].name);
    aur__qsort(w->e, (size_t)w->n, sizeof *w->e, aur__st_out_cmp);
    aur__buf hdr;
    memset(&hdr, 0, sizeof hdr);
    aur__st_header(w, &hdr);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = hdr.failed ? NULL : fopen(tmp, "wb");
    int rc = fp ? 0 : -1;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)hdr.n >> (8 * i));
    if (!rc) rc = fwrite(len, 1, 8, fp) == 8 && fwrite(hdr.p, 1, hdr.n, fp) == hdr.n ? 0 : -1;
    for (int i = 0; i < w->n && !rc; i++) rc = aur__st_write_data(fp, &w->e[i]);
    if (!rc) rc = fflush(fp) || fsync(fileno(fp)) ? -1 : 0;
    int saved = errno;
    if (fp && fclose(fp) && !rc) rc = -1, saved = errno;
    if (!rc && rename(tmp, path)) rc = -1, saved = errno;
    AUR_FREE(hdr.p);
    if (rc) {
        unlink(tmp);
        return aur__err(AUR_EIO, "%s: cannot write: %s", path, hdr.failed ? "out of memory" : strerror(saved));
    }
    return aur__fsync_dir(path);
}
