/* test_model.c - named parameters, freezing, loading modes and reports. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"

#include <stdlib.h>


/* A small model: names as a PyTorch state_dict would give them. */
static aur_model *make_model(int with_extra, int64_t head_out)
{
    aur_model *m = aur_model_create();
    aur_model_add(m, "encoder.embed.weight", aur_shape2(8, 4), 0);
    aur_model_add(m, "encoder.embed.bias", aur_shape1(8), 0);
    aur_model_add(m, "encoder.norm.running_mean", aur_shape1(8), 1);
    aur_model_add(m, "backbone.blocks.0.attn.qkv.weight", aur_shape2(24, 8), 0);
    aur_model_add(m, "backbone.blocks.1.attn.qkv.weight", aur_shape2(24, 8), 0);
    aur_model_add(m, "head.weight", aur_shape2(head_out, 8), 0);
    if (with_extra) aur_model_add(m, "head.new_var.weight", aur_shape2(3, 8), 0);
    if (aur_model_alloc(m, AUR_CPU)) {
        printf("alloc failed: %s\n", aur_last_error());
        exit(1);
    }
    for (int i = 0; i < aur_model_count(m); i++) {
        aur_tensor *p = aur_model_at(m, i);
        for (int64_t k = 0; k < p->numel; k++) aur_tensor_f32(p)[k] = (aur_real)(i * 1000 + k);
    }
    return m;
}

static int same_values(aur_tensor *a, aur_tensor *b)
{
    return a->numel == b->numel && !memcmp(a->data, b->data, (size_t)a->numel * sizeof(aur_real));
}

static int in_list(char **l, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strstr(l[i], s)) return 1;
    return 0;
}

static void test_table(void)
{
    aur_model *m = aur_model_create();
    AUR_CHECK(aur_model_add(m, "a.weight", aur_shape2(2, 3), 0) != NULL, "declare a parameter");
    AUR_CHECK(aur_model_add(m, "a.weight", aur_shape1(3), 0) == NULL && strstr(aur_last_error(), "twice"),
              "a name declared twice is refused: %s", aur_last_error());
    int64_t bad[1] = {-1};
    AUR_CHECK(aur_model_add(m, "b", aur_shapev(1, bad), 0) == NULL, "a negative dim is refused");
    for (int i = 0; i < 300; i++) { /* many names: the index grows */
        char nm[32];
        snprintf(nm, sizeof nm, "layers.%d.w", i);
        aur_model_add(m, nm, aur_shape1(i % 5 + 1), 0);
    }
    AUR_CHECK(aur_model_alloc(m, AUR_CPU) == 0, "alloc");
    AUR_CHECK(aur_model_param(m, "layers.217.w") && aur_model_param(m, "layers.217.w")->numel == 217 % 5 + 1, "lookup by name");
    AUR_CHECK(aur_model_param(m, "layers.300.w") == NULL && strstr(aur_last_error(), "layers.300.w"), "a missing name is an error");
    AUR_CHECK(aur_model_add(m, "late", aur_shape1(1), 0) == NULL, "no declarations after alloc");
    aur_model_free(m);
}

static void test_freeze_and_patterns(void)
{
    aur_model *m = make_model(0, 5);
    int64_t all = aur_model_numel(m, 0);
    AUR_CHECK(all == 8 * 4 + 8 + 24 * 8 * 2 + 5 * 8, "parameter count excludes buffers (%lld)", (long long)all);
    AUR_CHECK(aur_name_matches("backbone.*.qkv.weight", "backbone.blocks.0.attn.qkv.weight"), "glob across dots");
    AUR_CHECK(aur_name_matches("head.*, encoder.embed.?ias", "encoder.embed.bias"), "comma list with ?");
    AUR_CHECK(!aur_name_matches("backbone.*", "encoder.embed.bias"), "glob mismatch");
    int n = aur_model_freeze(m, "backbone.*");
    AUR_CHECK(n == 2, "froze 2 parameters (%d)", n);
    AUR_CHECK(aur_model_numel(m, 1) == all - 2 * 24 * 8, "trainable count after freezing");
    AUR_CHECK(aur_model_param(m, "backbone.blocks.0.attn.qkv.weight")->grad == NULL, "frozen parameters have no gradient");
    size_t gb;
    aur_model_bytes(m, &gb);
    AUR_CHECK(gb < (size_t)all * sizeof(aur_real), "the gradient slab shrinks when parameters freeze");
    AUR_CHECK(aur_model_freeze(m, "nothing.*") == AUR_EINVAL && strstr(aur_last_error(), "nothing"), "a pattern matching nothing is an error");
    AUR_CHECK(aur_model_unfreeze(m, "backbone.blocks.1.*") == 1, "unfreeze one");
    AUR_CHECK(aur_model_param(m, "backbone.blocks.1.attn.qkv.weight")->grad != NULL, "unfrozen parameters get a gradient");
    aur_model_free(m);
}

static void test_loading(void)
{
    aur_model *src = make_model(0, 5);
    AUR_CHECK(aur_save_safetensors(src, aur_test_tmp("base.safetensors")) == 0, "save: %s", aur_last_error());

    /* strict into an identical model: everything, bit for bit, buffers included */
    aur_model *dst = make_model(0, 5);
    for (int i = 0; i < aur_model_count(dst); i++) memset(aur_model_at(dst, i)->data, 0, (size_t)aur_model_at(dst, i)->numel * sizeof(aur_real));
    aur_load_report r;
    int rc = aur_load_safetensors(dst, aur_test_tmp("base.safetensors"), AUR_LOAD_STRICT, &r);
    AUR_CHECK(rc == 0 && r.n_loaded == 6 && r.n_missing == 0 && r.n_unexpected == 0, "strict load: %s", aur_last_error());
    int same = 1;
    for (int i = 0; i < aur_model_count(dst); i++) same &= same_values(aur_model_at(dst, i), aur_model_at(src, i));
    AUR_CHECK(same, "strict load restores every tensor bit for bit");
    aur_load_report_free(&r);
    aur_model_free(dst);

    /* strict into a model with a new variable: refused, nothing changed, the report names it */
    dst = make_model(1, 5);
    aur_real before = aur_tensor_f32(aur_model_param(dst, "encoder.embed.weight"))[3];
    aur_tensor_f32(aur_model_param(dst, "encoder.embed.weight"))[3] = -7;
    rc = aur_load_safetensors(dst, aur_test_tmp("base.safetensors"), AUR_LOAD_STRICT, &r);
    AUR_CHECK(rc == AUR_EFORMAT && r.n_missing == 1 && in_list(r.missing, r.n_missing, "head.new_var.weight"),
              "strict load with a missing name fails and reports it: %s", aur_last_error());
    AUR_CHECK(aur_tensor_f32(aur_model_param(dst, "encoder.embed.weight"))[3] == -7, "a refused strict load changes nothing");
    AUR_CHECK(strstr(aur_last_error(), "HINT"), "the message carries a hint");
    aur_load_report_free(&r);

    /* non-strict: loads the rest, reports the new variable as missing */
    rc = aur_load_safetensors(dst, aur_test_tmp("base.safetensors"), AUR_LOAD_NONSTRICT, &r);
    AUR_CHECK(rc == 0 && r.n_loaded == 6 && r.n_missing == 1, "non-strict load: %s", aur_last_error());
    AUR_CHECK(aur_tensor_f32(aur_model_param(dst, "encoder.embed.weight"))[3] == (aur_real)3 && before == 3, "non-strict load wrote the weights");
    aur_load_report_free(&r);
    aur_model_free(dst);

    /* a changed head: non-strict refuses the shape mismatch, filtered skips it */
    dst = make_model(0, 7);
    rc = aur_load_safetensors(dst, aur_test_tmp("base.safetensors"), AUR_LOAD_NONSTRICT, &r);
    AUR_CHECK(rc == AUR_ESHAPE && r.n_mismatched == 1 && in_list(r.mismatched, 1, "head.weight: file [5, 8] vs model [7, 8]"),
              "non-strict refuses a shape mismatch: %s", aur_last_error());
    aur_load_report_free(&r);
    rc = aur_load_safetensors(dst, aur_test_tmp("base.safetensors"), AUR_LOAD_FILTERED, &r);
    AUR_CHECK(rc == 0 && r.n_loaded == 5 && r.n_mismatched == 1 && r.n_missing == 1, "filtered load: %d loaded", r.n_loaded);
    AUR_CHECK(in_list(r.missing, r.n_missing, "head.weight"), "the skipped head is reported missing too");
    aur_load_report_print(&r, stdout);
    aur_load_report_free(&r);
    aur_model_free(dst);

    /* unexpected names: a smaller model */
    dst = aur_model_create();
    aur_model_add(dst, "head.weight", aur_shape2(5, 8), 0);
    aur_model_alloc(dst, AUR_CPU);
    rc = aur_load_safetensors(dst, aur_test_tmp("base.safetensors"), AUR_LOAD_NONSTRICT, &r);
    AUR_CHECK(rc == 0 && r.n_unexpected == 5 && in_list(r.unexpected, r.n_unexpected, "encoder.norm.running_mean"),
              "unexpected names are reported (%d)", r.n_unexpected);
    AUR_CHECK(same_values(aur_model_param(dst, "head.weight"), aur_model_param(src, "head.weight")), "the matching tensor loaded");
    aur_load_report_free(&r);
    /* a bad file: the error names the file, the model is untouched */
    FILE *fp = fopen(aur_test_tmp("junk.safetensors"), "wb");
    fputs("not a safetensors file at all", fp);
    fclose(fp);
    rc = aur_load_safetensors(dst, aur_test_tmp("junk.safetensors"), AUR_LOAD_NONSTRICT, NULL);
    AUR_CHECK(rc != 0 && strstr(aur_last_error(), "junk.safetensors"), "a junk file is refused: %s", aur_last_error());
    rc = aur_load_safetensors(dst, aur_test_tmp("absent.safetensors"), AUR_LOAD_STRICT, NULL);
    AUR_CHECK(rc != 0 && strstr(aur_last_error(), "absent.safetensors"), "a missing file is refused: %s", aur_last_error());
    aur_model_free(dst);

    /* BF16 and F16 checkpoints load into F32 parameters */
    aur_tensor *h = aur_tensor_create(AUR_BF16, AUR_CPU, aur_shape2(5, 8));
    for (int64_t k = 0; k < h->numel; k++) ((uint16_t *)h->data)[k] = aur_f32_to_bf16((float)k * 0.5f);
    aur_st_writer *w = aur_st_writer_create();
    aur_st_writer_add(w, "head.weight", h);
    aur_st_writer_write(w, aur_test_tmp("bf16.safetensors"));
    aur_st_writer_free(w);
    dst = make_model(0, 5);
    rc = aur_load_safetensors(dst, aur_test_tmp("bf16.safetensors"), AUR_LOAD_FILTERED, NULL);
    AUR_CHECK(rc == 0 && aur_tensor_f32(aur_model_param(dst, "head.weight"))[7] == (aur_real)3.5, "BF16 checkpoint into F32 parameters");
    aur_model_free(dst);
    aur_tensor_free(h);
    aur_model_free(src);
}

int main(void)
{
    aur_test_tmpdir_begin("model");
    test_table();
    test_freeze_and_patterns();
    test_loading();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
