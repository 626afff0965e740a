/* test_ckpt.c - PyTorch checkpoints read without Python: files torch.save
   wrote (tests/fixtures/torch_ckpt, tools/make_torch_ckpt_fixtures.py) hold
   the values of their safetensors twins bit for bit (F32 with Aurora's "net."
   prefix, BF16, Surya's Parameters inside a training checkpoint, views into
   shared storages, integers, booleans, halves, empty and 0-d tensors); the
   files torch.load(weights_only=True) refuses, cut-short archives and
   inconsistent storages are refused with a message. (refcheck --weights runs
   the fixture models from the checkpoints against the reference outputs.) */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"
#include <zip.h>

#define FIX "tests/fixtures/torch_ckpt"

static aur_real *read_all(const aur_st_file *f, const aur_st_tensor *e)
{
    aur_real *v = (aur_real *)malloc(sizeof(aur_real) * (size_t)(e->numel ? e->numel : 1));
    AUR_CHECK(!aur_st_read(f, e, AUR_F32, v), "%s: reading '%s': %s", f->path, e->name, aur_last_error());
    return v;
}

/* Every tensor of the checkpoint (names after `prefix`) equals the safetensors file's; bf16: as rounded to BF16. */
static void same_tensors(const char *ckpt, const char *st, const char *prefix, int bf16)
{
    aur_st_file *a = aur_st_open(ckpt), *b = aur_st_open(st);
    AUR_CHECK(a && b, "opening %s and %s: %s", ckpt, st, aur_last_error());
    if (!a || !b) { aur_st_close(a), aur_st_close(b); return; }
    AUR_CHECK(a->n == b->n, "%s holds %d tensors, as %s (%d)", ckpt, a->n, st, b->n);
    int64_t differ = 0, values = 0;
    int shapes = 1;
    for (int i = 0; i < a->n; i++) {
        const aur_st_tensor *e = &a->tensors[i], *w = aur_st_find(b, e->name + strlen(prefix));
        AUR_CHECK(!strncmp(e->name, prefix, strlen(prefix)) && w, "%s: '%s' is '%s' + a tensor of %s", ckpt, e->name, prefix, st);
        if (!w) continue;
        shapes &= e->ndim == w->ndim && e->numel == w->numel && (bf16 ? !strcmp(e->dtype, "BF16") : !strcmp(e->dtype, w->dtype));
        for (int d = 0; d < e->ndim && d < w->ndim; d++) shapes &= e->shape[d] == w->shape[d];
        if (e->numel != w->numel) continue;
        aur_real *x = read_all(a, e), *y = read_all(b, w);
        for (int64_t k = 0; k < e->numel; k++) {
            float want = bf16 ? aur_bf16_to_f32(aur_f32_to_bf16((float)y[k])) : (float)y[k];
            differ += memcmp(&(float){(float)x[k]}, &want, sizeof want) != 0, values++;
        }
        free(x), free(y);
    }
    AUR_CHECK(shapes, "%s: every tensor has its twin's dtype%s and shape", ckpt, bf16 ? " (BF16)" : "");
    AUR_CHECK(differ == 0 && values > 0, "%s: %lld values, %lld differ in their bits from %s", ckpt, (long long)values, (long long)differ, st);
    aur_st_close(a), aur_st_close(b);
}

static void expect_refused(const char *path, const char *needle, const char *what)
{
    aur_st_file *f = aur_st_open(path);
    AUR_CHECK(!f && strstr(aur_last_error(), needle), "%s: refused with '%s' (%s)", what, needle, f ? "opened" : aur_last_error());
    aur_st_close(f);
}

static void copy_cut(const char *from, const char *to, long keep)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    for (long k = 0; a && b && k < keep; k++) {
        int c = fgetc(a);
        if (c == EOF) break;
        fputc(c, b);
    }
    if (a) fclose(a);
    if (b) fclose(b);
}

/* A copy of views.pt with one entry's bytes replaced (or, with name NULL, a zip of one text file). */
static void write_zip(const char *path, const char *name, const void *bytes, size_t n)
{
    if (name) copy_cut(FIX "/views.pt", path, 1L << 30);
    int err = 0;
    zip_t *z = zip_open(path, name ? 0 : ZIP_CREATE | ZIP_TRUNCATE, &err);
    zip_source_t *s = z ? zip_source_buffer(z, bytes, n, 0) : NULL;
    zip_int64_t idx = name ? zip_name_locate(z, name, 0) : -1;
    int ok = s && (name ? idx >= 0 && !zip_file_replace(z, (zip_uint64_t)idx, s, 0) : zip_file_add(z, "notes/readme.txt", s, 0) >= 0);
    AUR_CHECK(ok && !zip_close(z), "writing %s", path);
}

static void test_errors(void)
{
    expect_refused(FIX "/transposed.pt", "tensor 't' is a non-contiguous view", "a transposed view");
    expect_refused(FIX "/evil.pt", "global 'posix.system' is not allowed", "a pickle that would run os.system");
    expect_refused(FIX "/legacy.pt", "legacy format", "torch's pre-zip format");
    expect_refused(FIX "/neg_view.pt", "a negated or conjugated view", "a negated view (its values are not the storage's)");
    /* two tensors naming storage "0", as 12 and as 24 floats (split strings: \x escapes are greedy) */
    static const char twice[] = "\x80\x02}(X\x01\x00\x00\x00" "a"
        "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00" "storage" "ctorch\nFloatStorage\n" "X\x01\x00\x00\x00" "0" "X\x03\x00\x00\x00" "cpu" "K\x0c" "tQ" "K\x00K\x0c\x85K\x01\x85\x89)tR"
        "X\x01\x00\x00\x00" "b"
        "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00" "storage" "ctorch\nFloatStorage\n" "X\x01\x00\x00\x00" "0" "X\x03\x00\x00\x00" "cpu" "K\x18" "tQ" "K\x00K\x18\x85K\x01\x85\x89)tR" "u.";
    write_zip(aur_test_tmp("twice.pt"), "views/data.pkl", twice, sizeof twice - 1);
    expect_refused(aur_test_tmp("twice.pt"), "storage '0' is named as 12 F32 and as 24 F32 elements", "one storage claimed with two sizes");
    copy_cut(FIX "/views.pt", aur_test_tmp("cut.pt"), 2000);
    expect_refused(aur_test_tmp("cut.pt"), "not a readable zip archive", "a checkpoint cut short");
    static const unsigned char eight[8] = {0};
    write_zip(aur_test_tmp("short.pt"), "views/data/0", eight, sizeof eight);
    expect_refused(aur_test_tmp("short.pt"), "storage '0' holds 8 bytes, but its 12 F32 elements need 48", "a storage shorter than its tensors");
    static const char pickle[] = "\x80\x02}q\x00X\x01\x00\x00\x00" "wq\x01" "c__builtin__\neval\nq\x02" "s."; /* split: \x escapes are greedy */
    write_zip(aur_test_tmp("eval.pt"), "views/data.pkl", pickle, sizeof pickle - 1);
    expect_refused(aur_test_tmp("eval.pt"), "global '__builtin__.eval' is not allowed", "a GLOBAL of eval");
    static const char unfinished[] = "\x80\x02}q\x00X\x01\x00";
    write_zip(aur_test_tmp("unfinished.pt"), "views/data.pkl", unfinished, sizeof unfinished - 1);
    expect_refused(aur_test_tmp("unfinished.pt"), "the pickle ends inside an opcode", "a pickle cut short");
    static const char no_tensors[] = "\x80\x02}q\x00X\x05\x00\x00\x00" "epochq\x01K\x03" "s.";
    write_zip(aur_test_tmp("epoch.pt"), "views/data.pkl", no_tensors, sizeof no_tensors - 1);
    expect_refused(aur_test_tmp("epoch.pt"), "holds no tensors", "a checkpoint without tensors");
    /* a small file that would build without bound: 5M marks (deflated, a few KB) */
    size_t n_marks = (size_t)5 << 20;
    char *marks = (char *)malloc(n_marks);
    memset(marks, '(', n_marks);
    write_zip(aur_test_tmp("marks.pt"), "views/data.pkl", marks, n_marks);
    free(marks);
    expect_refused(aur_test_tmp("marks.pt"), "more than 4M open marks", "a pickle of 5M marks");
    write_zip(aur_test_tmp("notes.zip"), NULL, "hello", 5);
    expect_refused(aur_test_tmp("notes.zip"), "without <name>/data.pkl", "a zip that is not a checkpoint");
}

/* The model loaders take a checkpoint as they take safetensors (same adaptations: the "net." prefix). */
static void test_model_load(void)
{
    aur_st_file *f = aur_st_open(FIX "/aurora_tiny_net.ckpt");
    AUR_CHECK(f && aur_st_find(f, "net.encoder.pos_embed.weight") != NULL, "the F32 checkpoint's keys keep their 'net.' prefix in the table");
    aur_st_close(f);
}

int main(void)
{
    aur_test_tmpdir_begin("ckpt");
    same_tensors(FIX "/views.pt", FIX "/views.safetensors", "", 0);
    same_tensors(FIX "/aurora_tiny_net.ckpt", "tests/fixtures/aurora_tiny/weights.safetensors", "net.", 0);
    same_tensors(FIX "/aurora_tiny_bf16.ckpt", "tests/fixtures/aurora_tiny/weights.safetensors", "", 1);
    same_tensors(FIX "/surya_tiny.pt", "tests/fixtures/surya_tiny/weights.safetensors", "", 0);
    same_tensors(FIX "/lightning.ckpt", FIX "/lightning.safetensors", "", 0); /* the state_dict entry; the rest as tokens */
    test_errors();
    test_model_load();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
