#include "api.h"
#include "platform.h"

/* ==== JSON files ==== */

#define AUR__JSON_MAX_BYTES ((size_t)64 << 20) /* configs, states and adapter configs are kilobytes */

/* The line of text[at]. */
static int aur__line_of(const char *text, size_t at)
{
    int line = 1;
    for (size_t i = 0; i < at; i++) line += text[i] == '\n';
    return line;
}

/* The whole of a regular text file of at most max bytes (what: its kind, for the message), NUL-ended (free with AUR_FREE). */
static char *aur__read_text_file(const char *path, size_t max, const char *what, size_t *n)
{
    struct stat st;
    FILE *fp = fopen(path, "rb");
    if (!fp) return aur__err(AUR_EIO, "%s: cannot open: %s", path, strerror(errno)), (char *)NULL;
    int bad = fstat(fileno(fp), &st) ? aur__err(AUR_EIO, "%s: cannot stat: %s", path, strerror(errno))
              : !S_ISREG(st.st_mode)   ? aur__err(AUR_EINVAL, "%s: not a regular file", path)
              : (size_t)st.st_size > max
                  ? aur__err(AUR_EINVAL, "%s: %lld bytes; %s of at most %zu MiB is expected", path, (long long)st.st_size, what, max >> 20)
                  : 0;
    aur__buf b;
    memset(&b, 0, sizeof b);
    char chunk[65536];
    size_t got;
    while (!bad && b.n <= max && (got = fread(chunk, 1, sizeof chunk, fp)) > 0) aur__buf_append(&b, chunk, got);
    if (!bad && (ferror(fp) || b.failed || b.n > max)) bad = aur__err(AUR_EIO, "%s: cannot read (or it grew while read)", path);
    fclose(fp);
    if (!bad) aur__buf_append(&b, "", 1); /* the NUL */
    if (bad || b.failed) {
        AUR_FREE(b.p);
        return NULL;
    }
    *n = b.n - 1;
    return b.p;
}

static char *aur__read_small_file(const char *path, size_t *n) { return aur__read_text_file(path, AUR__JSON_MAX_BYTES, "a JSON file", n); }

/* cJSON's parser clears a process-wide slot (cJSON_GetErrorPtr's) on every
   call: two threads parsing at once race on it. The library's parses take
   turns; where parsing stopped comes back per call in *end. */
static pthread_mutex_t aur__cjson_lock = PTHREAD_MUTEX_INITIALIZER;

static cJSON *aur__cjson_parse(const char *text, size_t n, const char **end)
{
    pthread_mutex_lock(&aur__cjson_lock);
    cJSON *j = cJSON_ParseWithLengthOpts(text, n, end, 0);
    pthread_mutex_unlock(&aur__cjson_lock);
    return j;
}

static int aur__json_cmp_key(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* A key that obj holds twice, or NULL; *rc is set when the check itself fails.
   Sorting keeps it O(n log n): Aurora's statistics may hold 100,000s of keys. */
static const char *aur__json_twice(const cJSON *obj, int *rc)
{
    int n = cJSON_GetArraySize(obj), k = 0;
    if (n < 2) return NULL;
    const cJSON **by = (const cJSON **)aur__malloc(sizeof *by * (size_t)n, "a key check");
    if (!by) return *rc = AUR_ENOMEM, (const char *)NULL;
    for (const cJSON *c = obj->child; c; c = c->next) by[k++] = c;
    aur__qsort(by, (size_t)n, sizeof *by, aur__json_cmp_key);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (!strcmp(by[i]->string, by[i - 1]->string)) dup = by[i]->string;
    AUR_FREE(by);
    return dup;
}

/* Duplicate keys are an error in every JSON this library reads (a run
   config, a trainer state, a LoRA config, a safetensors header): JSON leaves
   their meaning open, and readers differ (cJSON's lookup takes the first,
   Python's json the last), so a config would mean one thing here and another
   there. The message names the key and the object holding it. */
static int aur__json_unique(const cJSON *v, const char *where)
{
    int rc = 0;
    for (const cJSON *c = v ? v->child : NULL; c && !rc; c = c->next) rc = aur__json_unique(c, where);
    const char *dup = rc || !cJSON_IsObject(v) ? NULL : aur__json_twice(v, &rc);
    if (dup && v->string) return aur__err(AUR_EFORMAT, "%s: duplicate key '%s' in '%s'", where, dup, v->string);
    if (dup) return aur__err(AUR_EFORMAT, "%s: duplicate key '%s'", where, dup);
    return rc;
}

AURDEF cJSON *aur_json_parse(const char *text, size_t n, const char *name)
{
    const char *end = NULL;
    cJSON *j = aur__cjson_parse(text, n, &end);
    size_t at = end ? (size_t)(end - text) : 0;
    while (j && at < n && isspace((unsigned char)text[at])) at++;
    int rc = !j ? aur__err(AUR_EFORMAT, "%s: invalid JSON near line %d", name, aur__line_of(text, at))
             : at < n ? aur__err(AUR_EFORMAT, "%s: text after the JSON value, at line %d", name, aur__line_of(text, at))
                      : aur__json_unique(j, name);
    if (rc) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

AURDEF cJSON *aur_json_load(const char *path)
{
    size_t n = 0;
    char *text = aur__read_small_file(path, &n);
    cJSON *j = text ? aur_json_parse(text, n, path) : NULL;
    AUR_FREE(text);
    return j;
}

/* ---- typed values ----
   Every config (Aurora's keywords, Surya's, the run config, LoRA's, the
   trainer's state) reads its values here, so a type is checked one way and
   every refusal reads "<where> '<key>': expected <what>, found <value>".
   `where` says whose value it is ("Aurora keyword", "run config: optimizer");
   the key is the value's own (v->string).  A NULL value (the key is absent)
   keeps *out, the default; JSON null is a value like any other (refused where
   a scalar is expected, an empty list where a list may be empty).  Surya's
   config writes null for "the default": it passes NULL for null. */

/* The value, briefly, for "found ...". */
static const char *aur__json_found(const cJSON *v, char *buf, size_t size)
{
    if (cJSON_IsNumber(v)) snprintf(buf, size, "%.16g", v->valuedouble);
    else if (cJSON_IsString(v)) snprintf(buf, size, "\"%.40s%s\"", v->valuestring, strlen(v->valuestring) > 40 ? "..." : "");
    else if (cJSON_IsArray(v)) snprintf(buf, size, "a list of %d", cJSON_GetArraySize(v));
    else snprintf(buf, size, "%s", cJSON_IsTrue(v) ? "true" : cJSON_IsFalse(v) ? "false" : cJSON_IsNull(v) ? "null" : "an object");
    return buf;
}

static int aur__json_bad(const cJSON *v, const char *where, const char *key, const char *expected)
{
    char found[64];
    return aur__err(AUR_EINVAL, "%s '%s': expected %s, found %s", where, key, expected, aur__json_found(v, found, sizeof found));
}

/* `names` (NULL-ended) quoted and joined: "a", "b" or "c". */
static const char *aur__json_join(const char *const *names, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; names[i] && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s\"%s\"", !i ? "" : names[i + 1] ? ", " : " or ", names[i]);
    return buf;
}

/* A number in [lo, hi], whole if asked.  The message names the bounds
   but for int's limits and infinity, which say nothing beyond "an integer". */
static int aur__json_number(const cJSON *v, const char *where, const char *key, double lo, double hi, int whole, double *out)
{
    if (!v) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (d >= lo && d <= hi && (!whole || d == floor(d))) {
        *out = d;
        return 0;
    }
    int has_lo = lo != INT_MIN && lo != -HUGE_VAL, has_hi = hi != INT_MAX && hi != HUGE_VAL;
    char what[96];
    int n = snprintf(what, sizeof what, "%s", whole ? "an integer" : "a number");
    if (has_lo && has_hi) snprintf(what + n, sizeof what - (size_t)n, " in [%.16g, %.16g]", lo, hi);
    else if (has_lo || has_hi) snprintf(what + n, sizeof what - (size_t)n, " %s %.16g", has_lo ? ">=" : "<=", has_lo ? lo : hi);
    return aur__json_bad(v, where, key, what);
}

static const char *aur__json_key(const cJSON *v) { return v && v->string ? v->string : "?"; }

static int aur__json_num(const cJSON *v, const char *where, double lo, double hi, double *out)
{
    return aur__json_number(v, where, aur__json_key(v), lo, hi, 0, out);
}

static int aur__json_i64(const cJSON *v, const char *where, double lo, double hi, int64_t *out)
{
    double d = 0;
    int rc = aur__json_number(v, where, aur__json_key(v), lo, hi, 1, &d);
    if (v && !rc) *out = (int64_t)d;
    return rc;
}

/* lo and hi within int's range. */
static int aur__json_int(const cJSON *v, const char *where, double lo, double hi, int *out)
{
    int64_t x = 0;
    int rc = aur__json_i64(v, where, lo, hi, &x);
    if (v && !rc) *out = (int)x;
    return rc;
}

static int aur__json_bool(const cJSON *v, const char *where, int *out)
{
    if (v && !cJSON_IsBool(v)) return aur__json_bad(v, where, aur__json_key(v), "true or false");
    if (v) *out = cJSON_IsTrue(v);
    return 0;
}

/* A boolean that may also be written 0 or 1 (the run config has always taken both). */
static int aur__json_flag(const cJSON *v, const char *where, int *out)
{
    if (!cJSON_IsNumber(v) || (v->valuedouble != 0 && v->valuedouble != 1)) return aur__json_bool(v, where, out);
    *out = v->valuedouble == 1;
    return 0;
}

/* A string (borrowed from v). */
static int aur__json_str(const cJSON *v, const char *where, const char **out)
{
    if (v && !cJSON_IsString(v)) return aur__json_bad(v, where, aur__json_key(v), "a string");
    if (v) *out = v->valuestring;
    return 0;
}

/* One of the NULL-ended `names`: *out is its index. */
static int aur__json_enum(const cJSON *v, const char *where, const char *const *names, int *out)
{
    for (int i = 0; cJSON_IsString(v) && names[i]; i++)
        if (!strcmp(v->valuestring, names[i])) {
            *out = i;
            return 0;
        }
    char what[256];
    return v ? aur__json_bad(v, where, aur__json_key(v), aur__json_join(names, what, sizeof what)) : 0;
}

/* A list of min..max items (null: none where none will do) of `what`; its length in *n. */
static int aur__json_len(const cJSON *v, const char *where, int min, int max, const char *what, int *n)
{
    int len = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : cJSON_IsNull(v) && min == 0 ? 0 : -1;
    if (len >= min && len <= max) {
        *n = len;
        return 0;
    }
    char expected[96];
    if (min == max) snprintf(expected, sizeof expected, "a list of %d %s", min, what);
    else if (max == INT_MAX && !min) snprintf(expected, sizeof expected, "a list of %s", what);
    else if (!min) snprintf(expected, sizeof expected, "a list of at most %d %s", max, what);
    else snprintf(expected, sizeof expected, "a list of %d to %d %s", min, max, what);
    return aur__json_bad(v, where, aur__json_key(v), expected);
}

/* A list of min..max numbers into dout, or of integers (each an int) into iout. */
static int aur__json_list(const cJSON *v, const char *where, double *dout, int *iout, int min, int max, int *n)
{
    if (!v) return 0;
    int len = 0, i = 0, rc = aur__json_len(v, where, min, max, iout ? "integers" : "numbers", &len);
    double lo = iout ? INT_MIN : -HUGE_VAL, hi = iout ? INT_MAX : HUGE_VAL;
    char key[128];
    for (const cJSON *e = rc ? NULL : v->child; e && !rc; e = e->next, i++) {
        double d = 0;
        snprintf(key, sizeof key, "%s[%d]", aur__json_key(v), i);
        rc = aur__json_number(e, where, key, lo, hi, iout != NULL, &d);
        if (iout) iout[i] = (int)d;
        else dout[i] = d;
    }
    if (!rc) *n = len;
    return rc;
}

static int aur__json_nums(const cJSON *v, const char *where, double *out, int min, int max, int *n)
{
    return aur__json_list(v, where, out, NULL, min, max, n);
}

static int aur__json_ints(const cJSON *v, const char *where, int *out, int min, int max, int *n)
{
    return aur__json_list(v, where, NULL, out, min, max, n);
}

/* A list of at most max names, each shorter than len, into out (max rows of len). */
static int aur__json_names(const cJSON *v, const char *where, char *out, size_t len, int max, int *n)
{
    if (!v) return 0;
    int count = 0, i = 0, rc = aur__json_len(v, where, 0, max, "names", &count);
    char key[128], what[64];
    snprintf(what, sizeof what, "a name of at most %d characters", (int)len - 1);
    if (!rc) memset(out, 0, len * (size_t)max);
    for (const cJSON *e = rc ? NULL : v->child; e && !rc; e = e->next, i++) {
        snprintf(key, sizeof key, "%s[%d]", aur__json_key(v), i);
        if (!cJSON_IsString(e) || strlen(e->valuestring) >= len) rc = aur__json_bad(e, where, key, what);
        else memcpy(out + (size_t)i * len, e->valuestring, strlen(e->valuestring));
    }
    if (!rc) *n = count;
    return rc;
}

/* An object (or null) of name: [x, y], two numbers each ("[location, scale]"
   says which); the caller then reads e->child and e->child->next. */
static int aur__json_pairs(const cJSON *v, const char *where, const char *pair)
{
    char key[160];
    int rc = !v || cJSON_IsObject(v) || cJSON_IsNull(v) ? 0 : aur__json_bad(v, where, aur__json_key(v), "an object or null");
    for (const cJSON *e = cJSON_IsObject(v) ? v->child : NULL; e && !rc; e = e->next) {
        snprintf(key, sizeof key, "%s.%s", aur__json_key(v), e->string);
        if (cJSON_GetArraySize(e) != 2 || !cJSON_IsArray(e) || !cJSON_IsNumber(e->child) || !cJSON_IsNumber(e->child->next))
            rc = aur__json_bad(e, where, key, pair);
    }
    return rc;
}

/* An object whose keys are all in the NULL-ended `allowed`: a typo must not
   silently fall back to a default. */
static int aur__json_keys(const cJSON *obj, const char *where, const char *const *allowed)
{
    char found[64], known[512];
    if (!cJSON_IsObject(obj))
        return aur__err(AUR_EINVAL, "%s: expected an object, found %s", where, aur__json_found(obj, found, sizeof found));
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (int i = 0; allowed[i] && !ok; i++) ok = !strcmp(allowed[i], it->string);
        if (!ok)
            return aur__err(AUR_EINVAL, "%s: unknown key '%s' (expected %s)", where, it->string,
                            aur__json_join(allowed, known, sizeof known));
    }
    return 0;
}

/* obj's member `key`, or NULL (also when obj is not an object). */
static const cJSON *aur__json_at(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}
