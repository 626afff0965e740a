/* test_safetensors.c - the safetensors reader and writer.
   Round trips are bit-exact; every kind of malformed file is refused with
   AUR_EFORMAT (or AUR_EUNSUPPORTED for a valid but unsupported dtype) and a
   message naming the problem; thousands of random mutations of a valid file
   never crash the reader (run under ASan). */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"

#include <stdlib.h>


static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    fwrite(p, 1, n, fp);
    fclose(fp);
}

/* A file from a header string (length as given or its real length) and a data section. */
static void write_st(const char *path, const char *header, uint64_t claimed_len, const void *data, size_t n)
{
    uint64_t len = claimed_len ? claimed_len : strlen(header);
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(len >> (8 * i));
    FILE *fp = fopen(path, "wb");
    fwrite(le, 1, 8, fp);
    fwrite(header, 1, strlen(header), fp);
    if (n) fwrite(data, 1, n, fp);
    fclose(fp);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *p = (unsigned char *)malloc(*n ? *n : 1);
    if (fread(p, 1, *n, fp) != *n) *n = 0;
    fclose(fp);
    return p;
}

/* ---- round trips ---- */

static void test_round_trip(void)
{
    /* F32 with awkward values: -0, denormals, inf, NaN payloads, extremes */
    uint32_t bits[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x007FFFFFu, 0x7F800000u, 0xFF800000u,
                       0x7FC00001u, 0x7FA5A5A5u, 0x3F800000u, 0x7F7FFFFFu, 0xC2F6E979u, 0x12345678u};
    aur_tensor *a = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape2(3, 4));
    memcpy(a->data, bits, sizeof bits);
    aur_tensor *b = aur_tensor_create(AUR_BF16, AUR_CPU, aur_shape1(5));
    uint16_t bb[5] = {0x3F80, 0x7FC1, 0x8000, 0x0001, 0xC2F7};
    memcpy(b->data, bb, sizeof bb);
    aur_tensor *z = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape2(0, 3));
    aur_tensor *s = aur_tensor_create(AUR_F32, AUR_CPU, aur_shapev(0, NULL));
    aur_tensor_f32(s)[0] = 3.5f;
    int64_t ids[3] = {-1, 1LL << 40, 7}, shape3 = 3;

    aur_st_writer *w = aur_st_writer_create();
    aur_st_writer_add(w, "layer.weight", a);
    aur_st_writer_add(w, "half", b);
    aur_st_writer_add(w, "empty", z);
    aur_st_writer_add(w, "scalar", s);
    aur_st_writer_add_raw(w, "ids", "I64", 1, &shape3, ids);
    aur_st_writer_meta(w, "note", "quote \" and backslash \\ and tab \t");
    int rc = aur_st_writer_write(w, aur_test_tmp("rt.safetensors"));
    aur_st_writer_free(w);
    AUR_CHECK(rc == 0, "write: %s", aur_last_error());

    aur_st_file *f = aur_st_open(aur_test_tmp("rt.safetensors"));
    AUR_CHECK(f != NULL, "reopen: %s", aur_last_error());
    if (!f) return;
    AUR_CHECK(f->n == 5, "5 tensors, got %d", f->n);
    const aur_st_tensor *e = aur_st_find(f, "layer.weight");
    AUR_CHECK(e && !strcmp(e->dtype, "F32") && e->ndim == 2 && e->shape[0] == 3, "layer.weight entry");
    uint32_t back[12];
    aur_st_read(f, e, AUR_F32, back);
    AUR_CHECK(!memcmp(back, bits, sizeof bits), "F32 bits survive the round trip (NaN payloads, -0, denormals)");
    uint16_t bback[5];
    aur_st_read(f, aur_st_find(f, "half"), AUR_BF16, bback);
    AUR_CHECK(!memcmp(bback, bb, sizeof bb), "BF16 bits survive the round trip");
    e = aur_st_find(f, "empty");
    AUR_CHECK(e && e->numel == 0 && e->begin == e->end, "zero-size tensor");
    e = aur_st_find(f, "scalar");
    float sv = 0;
    AUR_CHECK(e && e->ndim == 0 && aur_st_read(f, e, AUR_F32, &sv) == 0 && sv == 3.5f, "rank-0 tensor");
    float idv[3];
    AUR_CHECK(aur_st_read(f, aur_st_find(f, "ids"), AUR_F32, idv) == 0 && idv[0] == -1 && idv[2] == 7, "I64 read as numbers");
    AUR_CHECK(aur_st_meta(f, "format") && !strcmp(aur_st_meta(f, "format"), "pt"), "format pt metadata");
    AUR_CHECK(aur_st_meta(f, "note") && !strcmp(aur_st_meta(f, "note"), "quote \" and backslash \\ and tab \t"),
              "metadata strings escaped and read back");
    /* writer layout rules: 8-aligned header, sorted by dtype size then name */
    size_t n;
    unsigned char *raw = read_all(aur_test_tmp("rt.safetensors"), &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | raw[i];
    AUR_CHECK(hl % 8 == 0, "header length %llu is a multiple of 8", (unsigned long long)hl);
    const aur_st_tensor *ids_e = aur_st_find(f, "ids"), *w_e = aur_st_find(f, "layer.weight"), *h_e = aur_st_find(f, "half");
    AUR_CHECK(ids_e->begin < w_e->begin && w_e->begin < h_e->begin, "I64 before F32 before BF16 in the data");
    free(raw);
    aur_st_close(f);

    /* F16 conversion on read */
    uint16_t h[4] = {0x3C00, 0xC000, 0x0001, 0x7C00}; /* 1, -2, smallest subnormal, inf */
    write_st(aur_test_tmp("f16.safetensors"), "{\"x\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 0, h, 8);
    f = aur_st_open(aur_test_tmp("f16.safetensors"));
    float hv[4] = {0};
    AUR_CHECK(f && aur_st_read(f, aur_st_find(f, "x"), AUR_F32, hv) == 0, "F16 file opens");
    AUR_CHECK(hv[0] == 1 && hv[1] == -2 && hv[2] == ldexpf(1, -24) && isinf(hv[3]), "F16 -> F32 values");
    aur_st_close(f);

    /* the writer refuses duplicate names and leaves no file behind */
    w = aur_st_writer_create();
    aur_st_writer_add(w, "x", a);
    aur_st_writer_add(w, "x", s);
    AUR_CHECK(aur_st_writer_write(w, aur_test_tmp("dup.safetensors")) == AUR_EINVAL, "duplicate names refused");
    aur_st_writer_free(w);
    FILE *fp = fopen(aur_test_tmp("dup.safetensors"), "rb");
    AUR_CHECK(fp == NULL, "no file written");
    if (fp) fclose(fp);
    /* a write that cannot happen reports the path and leaves the old file alone */
    w = aur_st_writer_create();
    aur_st_writer_add(w, "x", a);
    rc = aur_st_writer_write(w, "/nonexistent-dir/x.safetensors");
    AUR_CHECK(rc == AUR_EIO && strstr(aur_last_error(), "/nonexistent-dir/x.safetensors"), "unwritable path: %s", aur_last_error());
    aur_st_writer_free(w);
    aur_tensor_free(a);
    aur_tensor_free(b);
    aur_tensor_free(z);
    aur_tensor_free(s);
}

/* ---- malformed files ---- */

typedef struct bad_case {
    const char *what;
    const char *header; /* NULL: raw bytes below */
    uint64_t claimed;   /* header length to claim (0: the real one) */
    size_t data;        /* data bytes after the header */
    int expect;         /* error code from open (or read, if read_name) */
    const char *needle; /* a word the message must contain */
} bad_case;

#define T1 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"
static const bad_case bad[] = {
    {"header length past the end", "{" T1 "}", 1000, 8, AUR_EFORMAT, "runs past"},
    {"header length above 1e8", "{" T1 "}", 200000000, 8, AUR_EFORMAT, "limit"},
    {"not starting with {", " {" T1 "}", 0, 8, AUR_EFORMAT, "'{'"},
    {"JSON array at top", "[1,2]", 0, 0, AUR_EFORMAT, "'{'"},
    {"invalid JSON", "{\"a\":{\"dtype\":\"F32\",,}}", 0, 8, AUR_EFORMAT, "JSON"},
    {"unclosed object", "{\"a\":{\"dtype\":\"F32\"", 0, 0, AUR_EFORMAT, "not closed"},
    {"trailing garbage", "{" T1 "}xx", 0, 8, AUR_EFORMAT, "after"},
    {"escaped NUL in a name", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "NUL"},
    {"control byte", "{\"a\x01\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "control"},
    {"duplicate tensor", "{" T1 "," T1 "}", 0, 8, AUR_EFORMAT, "duplicate"},
    {"duplicate __metadata__", "{\"__metadata__\":{},\"__metadata__\":{}," T1 "}", 0, 8, AUR_EFORMAT, "duplicate"},
    /* what the reference reader (serde) refuses and cJSON alone would take (issue 13) */
    {"dtype twice in an entry", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "duplicate key 'dtype' in 'a'"},
    {"metadata key twice", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," T1 "}", 0, 8, AUR_EFORMAT, "duplicate key 'k' in '__metadata__'"},
    {"invalid UTF-8 in a name", "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "UTF-8"},
    {"overlong UTF-8", "{\"a\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "UTF-8"},
    {"UTF-8 surrogate", "{\"a\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "UTF-8"},
    {"cut UTF-8 sequence", "{\"a\xe2\x82\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "UTF-8"},
    {"shape written 2e0", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "'2e0'"},
    {"shape written 2.0", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "unsigned integers"},
    {"offset with a leading zero", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,08]}}", 0, 8, AUR_EFORMAT, "'08'"},
    {"offset written -0", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-0,8]}}", 0, 8, AUR_EFORMAT, "'-0'"},
    {"metadata not strings", "{\"__metadata__\":{\"k\":1}," T1 "}", 0, 8, AUR_EFORMAT, "__metadata__"},
    {"entry not an object", "{\"a\":[1,2]}", 0, 0, AUR_EFORMAT, "not an object"},
    {"missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "dtype"},
    {"dtype not a string", "{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "dtype"},
    {"unknown dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "unknown dtype"},
    {"missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "shape"},
    {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "integer"},
    {"fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,10]}}", 0, 10, AUR_EFORMAT, "integer"},
    {"dim above 2^53", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "integer"},
    {"rank above 8", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 0, 1, AUR_EFORMAT, "rank"},
    {"size overflows", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "overflow"},
    {"absurd shape with a zero dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,9007199254740992,9007199254740992],\"data_offsets\":[0,0]}}", 0, 0, AUR_EFORMAT, "overflow"},
    {"shape/size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 8, AUR_EFORMAT, "needs 12 bytes"},
    {"offsets not two numbers", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 0, 8, AUR_EFORMAT, "data_offsets"},
    {"offsets begin > end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 0, 8, AUR_EFORMAT, "begin"},
    {"hole between tensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 0, 12, AUR_EFORMAT, "hole"},
    {"overlapping tensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, 8, AUR_EFORMAT, "overlaps"},
    {"offsets out of range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 8, AUR_EFORMAT, "cover"},
    {"trailing data bytes", "{" T1 "}", 0, 12, AUR_EFORMAT, "cover"},
    {"deep nesting", NULL, 0, 0, AUR_EFORMAT, "deeper"},
    {"empty file", NULL, 0, 0, AUR_EFORMAT, "too short"},
    {"7-byte file", NULL, 0, 0, AUR_EFORMAT, "too short"},
    {"truncated data", NULL, 0, 0, AUR_EFORMAT, "cover"},
};

static void test_malformed(void)
{
    char header[4096];
    unsigned char zeros[64] = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const bad_case *c = &bad[i];
        const char *p = aur_test_tmp("bad.safetensors");
        if (c->header) {
            write_st(p, c->header, c->claimed, zeros, c->data);
        } else if (!strcmp(c->what, "deep nesting")) {
            int k = 0;
            k += snprintf(header + k, sizeof header - (size_t)k, "{\"__metadata__\":{\"x\":\"y\"},\"a\":");
            for (int d = 0; d < 100; d++) header[k++] = '[';
            for (int d = 0; d < 100; d++) header[k++] = ']';
            snprintf(header + k, sizeof header - (size_t)k, "}");
            write_st(p, header, 0, zeros, 0);
        } else if (!strcmp(c->what, "empty file")) {
            write_bytes(p, zeros, 0);
        } else if (!strcmp(c->what, "7-byte file")) {
            write_bytes(p, zeros, 7);
        } else { /* truncated data: a valid file cut short */
            write_st(p, "{" T1 "}", 0, zeros, 5);
        }
        aur_st_file *f = aur_st_open(p);
        int ok = f == NULL && strstr(aur_last_error(), c->needle) && strstr(aur_last_error(), "bad.safetensors");
        AUR_CHECK(ok, "malformed '%s' not refused as expected: %s", c->what, f ? "(opened)" : aur_last_error());
        if (ok) printf("ok   refused: %-30s -> %s\n", c->what, aur_last_error());
        aur_st_close(f);
    }
    /* UTF-8 names (2, 3 and 4 bytes) and a metadata string in one open fine */
    write_st(aur_test_tmp("utf8.safetensors"),
             "{\"__metadata__\":{\"note\":\"\xe2\x82\xac\"},\"t\xc3\xa9\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"\xf0\x9f\x8c\x8d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, zeros, 8);
    aur_st_file *u = aur_st_open(aur_test_tmp("utf8.safetensors"));
    AUR_CHECK(u && aur_st_find(u, "t\xc3\xa9") && aur_st_find(u, "\xf0\x9f\x8c\x8d"), "UTF-8 names open: %s", u ? "" : aur_last_error());
    aur_st_close(u);
    /* a valid but unsupported dtype opens (sizes are known) and fails on read */
    write_st(aur_test_tmp("f64.safetensors"), "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 0, zeros, 8);
    aur_st_file *f = aur_st_open(aur_test_tmp("f64.safetensors"));
    float v;
    AUR_CHECK(f && aur_st_read(f, aur_st_find(f, "a"), AUR_F32, &v) == AUR_EUNSUPPORTED && strstr(aur_last_error(), "F64"),
              "F64 reads as unsupported: %s", aur_last_error());
    aur_st_close(f);
    /* a file cut short by another process while open: an error on read (it was SIGBUS through a mapping) */
    float four[4] = {1, 2, 3, 4};
    write_st(aur_test_tmp("cut.safetensors"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, four, 16);
    aur_st_file *cut = aur_st_open(aur_test_tmp("cut.safetensors"));
    AUR_CHECK(cut && truncate(aur_test_tmp("cut.safetensors"), 70) == 0, "a file to cut: %s", aur_last_error());
    float back[4];
    AUR_CHECK(cut && aur_st_read(cut, aur_st_find(cut, "a"), AUR_F32, back) == AUR_EIO && strstr(aur_last_error(), "cut short"),
              "a read after the file was cut short fails cleanly: %s", aur_last_error());
    aur_st_close(cut);
    /* a header of no tensors opens; loading it reports what is missing (sorting its empty list was undefined behaviour) */
    write_st(aur_test_tmp("empty.safetensors"), "{}", 0, zeros, 0);
    aur_model *m = aur_model_create();
    aur_model_add(m, "w", aur_shape1(2), 0);
    aur_model_alloc(m, AUR_CPU);
    AUR_CHECK(aur_load_safetensors(m, aur_test_tmp("empty.safetensors"), AUR_LOAD_STRICT, NULL) != 0 && strstr(aur_last_error(), "missing"),
              "a header of {} in a strict load: %s", aur_last_error());
    AUR_CHECK(aur_load_safetensors(m, aur_test_tmp("empty.safetensors"), AUR_LOAD_NONSTRICT, NULL) == 0, "a header of {} in a non-strict load: %s",
              aur_last_error());
    aur_model_free(m);
    /* a directory and a missing file */
    AUR_CHECK(aur_st_open(aur_test_dir) == NULL && strstr(aur_last_error(), "regular file"), "a directory: %s", aur_last_error());
    AUR_CHECK(aur_st_open(aur_test_tmp("missing.safetensors")) == NULL && strstr(aur_last_error(), "cannot open"),
              "a missing file: %s", aur_last_error());
}

/* Random mutations of a valid file: open must never crash, and an accepted file must read cleanly. */
static void test_mutations(void)
{
    aur_tensor *a = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape2(4, 5));
    aur_tensor *b = aur_tensor_create(AUR_BF16, AUR_CPU, aur_shape1(6));
    aur_st_writer *w = aur_st_writer_create();
    aur_st_writer_add(w, "enc.w", a);
    aur_st_writer_add(w, "enc.b", b);
    aur_st_writer_write(w, aur_test_tmp("good.safetensors"));
    aur_st_writer_free(w);
    size_t n;
    unsigned char *good = read_all(aur_test_tmp("good.safetensors"), &n), *m = (unsigned char *)malloc(n + 64); /* room for four 8-byte growths */
    int accepted = 0, refused = 0, crashed_reads = 0;
    static const char tokens[] = "{}[]\",:0123456789-.e \\u";
    for (int it = 0; it < 3000; it++) {
        size_t len = n;
        memcpy(m, good, n);
        int edits = 1 + (int)(aur_test_uniform() * 4);
        for (int k = 0; k < edits; k++) {
            double r = aur_test_uniform();
            size_t at = (size_t)(aur_test_uniform() * (double)len);
            if (r < 0.4) m[at] = (unsigned char)(aur_test_uniform() * 256);
            else if (r < 0.7) m[at] = (unsigned char)tokens[(int)(aur_test_uniform() * (sizeof tokens - 1))];
            else if (r < 0.8) len = at; /* truncate */
            else if (r < 0.9) m[(size_t)(aur_test_uniform() * 8) % (len ? len : 1)] ^= (unsigned char)(1u << (int)(aur_test_uniform() * 8));
            else { /* grow with junk */
                for (int j = 0; j < 8; j++) m[len + (size_t)j] = (unsigned char)(aur_test_uniform() * 256);
                len += 8;
            }
        }
        write_bytes(aur_test_tmp("mut.safetensors"), m, len);
        aur_st_file *f = aur_st_open(aur_test_tmp("mut.safetensors"));
        if (!f) {
            refused++;
            continue;
        }
        accepted++;
        for (int i = 0; i < f->n; i++) {
            const aur_st_tensor *e = &f->tensors[i];
            const aur__st_dtype *info = aur__st_dtype_find(e->dtype);
            if (!info || !info->readable) continue;
            aur_real *buf = (aur_real *)malloc(sizeof(aur_real) * (size_t)(e->numel ? e->numel : 1));
            if (e->end > f->buffer_size || aur_st_read(f, e, AUR_F32, buf)) crashed_reads++;
            free(buf);
        }
        aur_st_close(f);
    }
    printf("mutations: %d accepted, %d refused\n", accepted, refused);
    AUR_CHECK(refused > 1000 && crashed_reads == 0, "3000 mutated files handled (%d refused, %d bad reads)", refused, crashed_reads);
    free(good);
    free(m);
    aur_tensor_free(a);
    aur_tensor_free(b);
}

/* The command-line tool: a listing for a good file, one line and exit 1 for a bad one. */
static void test_inspect_tool(void)
{
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "./build/aurora-inspect %s 2>&1", aur_test_tmp("good.safetensors"));
    FILE *p = popen(cmd, "r");
    int lines = 0, saw_total = 0;
    while (p && fgets(line, sizeof line, p)) {
        lines++;
        if (strstr(line, "2 tensors, 26 parameters")) saw_total = 1;
    }
    int rc = p ? pclose(p) : -1;
    AUR_CHECK(rc == 0 && lines == 3 && saw_total, "aurora-inspect lists the good file (rc %d, %d lines)", rc, lines);
    write_st(aur_test_tmp("bad.safetensors"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, "01234567", 8);
    snprintf(cmd, sizeof cmd, "./build/aurora-inspect %s 2>&1", aur_test_tmp("bad.safetensors"));
    p = popen(cmd, "r");
    lines = 0;
    int named = 0;
    while (p && fgets(line, sizeof line, p)) {
        lines++;
        named |= strstr(line, "tensor 'a'") != NULL;
    }
    rc = p ? pclose(p) : -1;
    AUR_CHECK(WEXITSTATUS(rc) == 1 && lines == 1 && named, "aurora-inspect refuses the bad file in one line (rc %d)", rc);
}

int main(void)
{
    aur_test_tmpdir_begin("st");
    test_round_trip();
    test_malformed();
    test_mutations();
    test_inspect_tool();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
