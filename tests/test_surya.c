/* test_surya.c - Surya's table against the reference manifest, PEFT adapters
   (the fixtures' adapter directories load and save back identically,
   matching rules, reports, merge, freezing), LoRA on Aurora, scalers and the
   errors a user meets. The numerics are refcheck's (surya_tiny, surya_heads). */
#define AURORA_IMPLEMENTATION
#include "../surya.h"
#include "../lora.h"
#include "aur_test.h"

#include <stdlib.h>

static void test_manifest(void)
{
    aur_surya_config c;
    aur_surya_preset("surya-1.0", &c);
    aur_model *m = aur_surya_declare_model(&c);
    AUR_CHECK(m && aur_test_same_as_manifest(m, "tests/fixtures/manifests/surya_1.0.json"),
              "surya-1.0: %d tensors, %lld parameters equal the reference manifest", m ? aur_model_count(m) : 0,
              m ? (long long)aur_model_numel(m, 0) : 0LL);
    aur_model_free(m);
}

/* The model of a fixture case, declared (not allocated). */
static aur_model *case_model(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *cfg = aur_json_load(path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(cfg, "model");
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(model, "file");
    const char *f = cJSON_IsString(file) ? file->valuestring : "";
    const char *task = strstr(f, "solar_wind") ? "wind" : strstr(f, "euv") ? "euv" : "flare";
    aur_surya_config c;
    aur_surya_preset("surya-1.0", &c);
    int rc = aur_surya_config_json(cJSON_GetObjectItemCaseSensitive(model, "kwargs"), cJSON_GetObjectItemCaseSensitive(model, "class")->valuestring,
                                   task, &c);
    cJSON_Delete(cfg);
    return rc ? NULL : aur_surya_declare_model(&c);
}

static int same_file_tensors(const char *a, const char *b)
{
    aur_st_file *fa = aur_st_open(a), *fb = aur_st_open(b);
    int same = fa && fb && fa->n == fb->n;
    for (int i = 0; same && i < fa->n; i++) {
        const aur_st_tensor *ea = &fa->tensors[i], *eb = aur_st_find(fb, ea->name);
        same = eb && eb->numel == ea->numel && eb->ndim == ea->ndim;
        for (int d = 0; same && d < ea->ndim; d++) same = ea->shape[d] == eb->shape[d];
        if (!same) break;
        aur_real *va = (aur_real *)malloc(sizeof(aur_real) * (size_t)ea->numel), *vb = (aur_real *)malloc(sizeof(aur_real) * (size_t)ea->numel);
        aur_st_read(fa, ea, AUR_F32, va);
        aur_st_read(fb, eb, AUR_F32, vb);
        same = !memcmp(va, vb, sizeof(aur_real) * (size_t)ea->numel);
        free(va);
        free(vb);
    }
    aur_st_close(fa);
    aur_st_close(fb);
    return same;
}

/* Every fixture adapter: load its config and tensors, save again, compare. */
static void test_fixture_adapters(void)
{
    static const char *cases[] = {"flare_class_token", "flare_avg_pool", "flare_max_pool", "flare_attention_pool",
                                  "flare_transformer_pool", "wind_class_token", "ar_seg_linear", "ar_seg_perceiver"};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char dir[256], adir[300], out[300], a[400], b[400];
        snprintf(dir, sizeof dir, "tests/fixtures/surya_heads/%s", cases[k]);
        snprintf(adir, sizeof adir, "%s/adapter", dir);
        aur_lora_config lc;
        char *warn = NULL;
        int rc = aur_lora_load_config(adir, &lc, &warn);
        AUR_CHECK(rc == 0 && warn && strstr(warn, "unknown LoRA config key"), "%s: config read, newer PEFT keys warned about (%s)",
                  cases[k], rc ? aur_last_error() : "");
        free(warn);
        aur_model *m = case_model(dir);
        aur_lora_report rep;
        memset(&rep, 0, sizeof rep);
        rc = m ? aur_lora_declare(m, &lc, &rep) : AUR_EINVAL;
        int unmatched_qkv = 0;
        for (int i = 0; !rc && i < rep.n_unmatched; i++) unmatched_qkv += !strcmp(rep.unmatched[i], "q_proj") || !strcmp(rep.unmatched[i], "k_proj");
        int pool_mha = strstr(cases[k], "attention_pool") || strstr(cases[k], "transformer_pool");
        AUR_CHECK(rc == 0 && rep.n_matched == 8 + pool_mha && unmatched_qkv == 2,
                  "%s: %d modules matched (8 fc1/fc2%s), q_proj and k_proj reported unmatched", cases[k], rc ? -1 : rep.n_matched,
                  pool_mha ? " + out_proj" : "");
        aur_lora_report_free(&rep);
        snprintf(a, sizeof a, "%s/weights.safetensors", dir);
        rc = rc ? rc : aur_model_alloc(m, AUR_CPU);
        if (!rc) rc = aur_lora_load_peft_state_dict(m, a, AUR_LOAD_STRICT, NULL);
        if (!rc) rc = aur_model_fill(m, "*.lora_?.default.weight", 0) > 0 ? 0 : AUR_EINVAL; /* forget them, then read the adapter */
        if (!rc) rc = aur_lora_load(m, adir);
        snprintf(out, sizeof out, "%s", aur_test_tmp(cases[k]));
        if (!rc) rc = aur_lora_save(m, &lc, out);
        snprintf(a, sizeof a, "%s/adapter_model.safetensors", adir);
        snprintf(b, sizeof b, "%s/adapter_model.safetensors", out);
        AUR_CHECK(rc == 0 && same_file_tensors(a, b), "%s: the adapter saves back with the same tensors (%s)", cases[k],
                  rc ? aur_last_error() : "");
        aur_lora_config back;
        rc = aur_lora_load_config(out, &back, &warn);
        int same = !rc && !warn && back.r == lc.r && back.lora_alpha == lc.lora_alpha && back.lora_dropout == lc.lora_dropout &&
                   back.n_targets == lc.n_targets;
        for (int i = 0; same && i < lc.n_targets; i++) same = !strcmp(back.target_modules[i], lc.target_modules[i]);
        AUR_CHECK(same, "%s: the written config reads back equal, without unknown keys", cases[k]);
        free(warn);
        aur_model_free(m);
    }
}

/* A forward on random input, for comparing runs. */
static aur_tensor *tiny_forward(aur_model *m, aur_tape *t)
{
    const aur_surya_config *c = aur_surya_config_of(m);
    aur_tensor *ts = aur_tensor_new(t, AUR_CPU, aur_shape5(1, c->in_chans, c->time_dim, c->img_size, c->img_size));
    aur_test_rng = 99;
    for (int64_t i = 0; i < ts->numel; i++) aur_tensor_f32(ts)[i] = (aur_real)aur_test_normal();
    return aur_surya_forward(m, t, ts);
}

static aur_surya_config tiny_config(void)
{
    aur_surya_config c;
    aur_surya_preset("surya-tiny", &c);
    c.img_size = 32, c.embed_dim = 32, c.time_dim = 1;
    return c;
}

/* Broken adapter directories give clear errors. */
static void test_bad_adapters(void)
{
    aur_lora_config lc;
    AUR_CHECK(aur_lora_load_config(aur_test_tmp("no_such_adapter"), &lc, NULL) && strstr(aur_last_error(), "no_such_adapter"),
              "a missing adapter directory is named: %s", aur_last_error());
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s", aur_test_tmp("dora"));
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    FILE *fp = fopen(path, "w");
    fputs("{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"fc1\"], \"use_dora\": true}", fp);
    fclose(fp);
    AUR_CHECK(aur_lora_load_config(dir, &lc, NULL) == AUR_EUNSUPPORTED && strstr(aur_last_error(), "use_dora"), "DoRA refused: %s",
              aur_last_error());
    fp = fopen(path, "w");
    fputs("{\"peft_type\": \"LORA\", \"r\": \"four\"}", fp);
    fclose(fp);
    AUR_CHECK(aur_lora_load_config(dir, &lc, NULL) == AUR_EINVAL && strstr(aur_last_error(), "'r': expected an integer >= 1, found \"four\""),
              "a bad r is named: %s", aur_last_error());
    /* what was cut, truncated or taken for false (issue 13) */
    struct { const char *config, *want; } bad[] = {
        {"{\"peft_type\": \"LORA\", \"r\": 4.9}", "'r': expected an integer"},
        {"{\"peft_type\": \"LORA\", \"use_rslora\": \"true\"}", "'use_rslora'"},
        {"{\"peft_type\": \"LORA\", \"r\": 1e10}", "'r': expected an integer"},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"r\": 8}", "adapter_config.json: duplicate key 'r'"}, /* the last won here, the first elsewhere */
        {"{\"peft_type\": \"LORA\", \"target_modules\": \".*(fc1|fc2|qkv|proj|aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa)\"}", "at most 255"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fp = fopen(path, "w");
        fputs(bad[i].config, fp);
        fclose(fp);
        AUR_CHECK(aur_lora_load_config(dir, &lc, NULL) != 0 && strstr(aur_last_error(), bad[i].want), "adapter config %.40s... refused: %s",
                  bad[i].config, aur_last_error());
    }
    /* an adapter of rank 4 into a model declared with rank 8: the shape mismatch is named */
    aur_surya_config c = tiny_config();
    aur_model *m = aur_surya_declare_model(&c), *m4 = aur_surya_declare_model(&c);
    aur_lora_config r8 = aur_lora_defaults(), r4 = aur_lora_defaults();
    aur_lora_add_target(&r8, "fc1");
    aur_lora_add_target(&r4, "fc1");
    r4.r = 4;
    aur_lora_declare(m, &r8, NULL);
    aur_lora_declare(m4, &r4, NULL);
    aur_model_alloc(m, AUR_CPU);
    aur_model_alloc(m4, AUR_CPU);
    snprintf(dir, sizeof dir, "%s", aur_test_tmp("rank4"));
    int rc = aur_lora_save(m4, &r4, dir);
    rc = rc ? rc : aur_lora_load(m, dir);
    AUR_CHECK(rc && strstr(aur_last_error(), "lora_A"), "a rank mismatch is named: %s", aur_last_error());
    aur_model_free(m);
    aur_model_free(m4);
    cJSON *kw = cJSON_Parse("{\"embed_dim\": \"wide\"}");
    AUR_CHECK(aur_surya_config_json(kw, "HelioSpectFormer", NULL, &c) && strstr(aur_last_error(), "embed_dim"), "a bad keyword value: %s",
              aur_last_error());
    cJSON_Delete(kw);
}

static void test_matching_merge_freeze(void)
{
    aur_surya_config c = tiny_config();
    aur_model *m = aur_surya_declare_model(&c);
    aur_lora_config lc = aur_lora_defaults();
    snprintf(lc.target_regex, sizeof lc.target_regex, "backbone\\.blocks_attention\\.[0-9]+\\.mlp\\.fc1");
    aur_lora_report rep;
    int rc = aur_lora_declare(m, &lc, &rep);
    AUR_CHECK(rc == 0 && rep.n_matched == 2 && !strcmp(rep.matched[0], "backbone.blocks_attention.0.mlp.fc1"), "regex targets: %d matched",
              rep.n_matched);
    aur_lora_report_free(&rep);
    aur_lora_config bad = aur_lora_defaults();
    snprintf(bad.target_regex, sizeof bad.target_regex, "blocks\\.\\d+\\.fc1");
    AUR_CHECK(aur_lora_declare(m, &bad, NULL) == AUR_EUNSUPPORTED && strstr(aur_last_error(), "Python-only"), "Python regex refused: %s",
              aur_last_error());
    aur_lora_config none = aur_lora_defaults();
    aur_lora_add_target(&none, "q_proj");
    AUR_CHECK(aur_lora_declare(m, &none, NULL) == AUR_EINVAL && strstr(aur_last_error(), "q_proj"), "nothing matched is an error: %s",
              aur_last_error());
    aur_model_alloc(m, AUR_CPU);
    aur_surya_init_weights(m, 5);
    aur_model_fill(m, "*.lora_B.default.weight", 0.01); /* a non-zero update */
    aur_tape *t = aur_tape_create();
    aur_tape_set_grad(t, 0);
    aur_tensor *y0 = tiny_forward(m, t);
    aur_real *before = (aur_real *)malloc(sizeof(aur_real) * (size_t)y0->numel);
    memcpy(before, y0->data, sizeof(aur_real) * (size_t)y0->numel);
    aur_tape_reset(t);
    aur_real w0 = aur_tensor_f32(aur_model_param(m, "backbone.blocks_attention.1.mlp.fc1.weight"))[3];
    aur_lora_merge(m);
    aur_tensor *y1 = tiny_forward(m, t);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < y1->numel; i++)
        worst = fmax(worst, fabs(aur_tensor_f32(y1)[i] - before[i])), scale = fmax(scale, fabs(before[i]));
    AUR_CHECK(worst <= 1e-5 * scale, "merged forward equals the adapter forward (%.2g of %.2g)", worst, scale);
    aur_lora_unmerge(m);
    aur_real w1 = aur_tensor_f32(aur_model_param(m, "backbone.blocks_attention.1.mlp.fc1.weight"))[3];
    AUR_CHECK(fabs(w1 - w0) <= 1e-6 * fabs(w0) + 1e-9, "unmerge restores the weight (%.9g vs %.9g)", w1, w0);
    lc.n_modules_to_save = 1;
    snprintf(lc.modules_to_save[0], sizeof lc.modules_to_save[0], "unembd");
    AUR_CHECK(aur_lora_freeze_base(m, &lc) != 0 && strstr(aur_last_error(), "'unembd' names no module"), "a misspelt modules_to_save entry: %s",
              aur_last_error());
    snprintf(lc.modules_to_save[0], sizeof lc.modules_to_save[0], "unembed");
    aur_lora_freeze_base(m, &lc);
    int64_t adapters = 2 * (8 * 32 + 128 * 8), head = 16 * 13 * 32 + 16 * 13; /* two fc1 adapters (A 8x32, B 128x8), the decoder */
    AUR_CHECK(aur_model_numel(m, 1) == adapters + head, "trainable: the adapters and modules_to_save (%lld vs %lld)",
              (long long)aur_model_numel(m, 1), (long long)(adapters + head));
    free(before);
    aur_tape_free(t);
    aur_model_free(m);
}

/* A fresh LoRA on Aurora's own linear layers: the adapters get gradients. */
static void test_lora_on_aurora(void)
{
    aur_aurora_config c;
    aur_aurora_preset("aurora-small-pretrained", &c);
    c.embed_dim = 16, c.num_heads = 2, c.window_size[0] = 2, c.window_size[1] = 2, c.window_size[2] = 4, c.n_stages = 2, c.latent_levels = 2;
    for (int i = 0; i < 2; i++) c.encoder_depths[i] = c.decoder_depths[i] = 1, c.encoder_num_heads[i] = c.decoder_num_heads[1 - i] = 2 << i;
    aur_model *m = aur_aurora_declare_model(&c);
    aur_lora_config lc = aur_lora_defaults();
    aur_lora_add_target(&lc, "qkv");
    aur_lora_add_target(&lc, "no_such_layer");
    aur_lora_report rep;
    int rc = aur_lora_declare(m, &lc, &rep);
    AUR_CHECK(rc == 0 && rep.n_matched == 4 && rep.n_unmatched == 1 && !strcmp(rep.unmatched[0], "no_such_layer"),
              "Aurora: 4 qkv layers adapted, 'no_such_layer' reported (%s)", rc ? aur_last_error() : "");
    aur_lora_report_free(&rep);
    aur_model_alloc(m, AUR_CPU);
    aur_aurora_init_weights(m, 1);
    aur_model_fill(m, "*.lora_?.default.weight", 0.01);
    aur_model_fill(m, "*ln_modulation.1.bias", 0.5); /* Aurora starts every residual branch at 0 (adaLN-zero) */
    aur_lora_freeze_base(m, &lc);
    aur_batch *b = aur_batch_create(1, 2, 2, 16, 32, &c.surf_vars, &c.static_vars, &c.atmos_vars);
    b->levels[0] = 500, b->levels[1] = 850;
    for (int i = 0; i < 16; i++) b->lat[i] = (float)(90 - 180.0 * i / 15);
    for (int j = 0; j < 32; j++) b->lon[j] = (float)(360.0 * j / 32);
    b->time[0] = 1.6e9;
    aur_tape *t = aur_tape_create();
    aur_batch *p = aur_aurora_forward(m, t, b);
    aur_tensor *loss = p ? aur_mean_all(t, aur_mul(t, p->surf[0], p->surf[0])) : NULL;
    rc = loss ? aur_backward(t, loss) : AUR_EINVAL;
    double g = aur_grad_norm(m, "*.lora_A.default.weight");
    AUR_CHECK(rc == 0 && g > 0 && isfinite(g), "gradients reach Aurora's adapters (|g| %.3g)", g);
    aur_batch_free(p);
    aur_batch_free(b);
    aur_tape_free(t);
    aur_model_free(m);
}

/* The relative-position bias: the index equals the reference's formula
   (computed here independently), a zero table changes nothing, and the
   table gets gradients. */
static void test_rpe(void)
{
    aur_surya_config c = tiny_config();
    aur_model *plain = aur_surya_create(&c, AUR_CPU, 4);
    c.rpe = 1;
    aur_model *m = aur_surya_create(&c, AUR_CPU, 4);
    int w = 2, wp = 1, side = 4, ok = m != NULL;
    const aur_tensor *idx = m ? aur_model_param(m, "backbone.blocks_attention.0.attn.relative_position_index") : NULL;
    for (int qh = 0; ok && idx && qh < w; qh++)
        for (int qw = 0; qw < w; qw++)
            for (int i = 0; i < side; i++)
                for (int j = 0; j < side; j++) { /* the reference: (q - k + wp + w - 1), rows scaled by 2 wp + w */
                    int want = (qh - (i - wp) + wp + w - 1) * (2 * wp + w) + (qw - (j - wp) + wp + w - 1);
                    ok &= (int)((const aur_real *)idx->data)[(qh * w + qw) * side * side + i * side + j] == want;
                }
    AUR_CHECK(ok && idx, "rpe: the relative position index is the reference's");
    for (int i = 0; m && i < aur_model_count(plain); i++) { /* same weights, a zero table */
        aur_tensor *src = aur_model_at(plain, i), *dst = aur_model_param(m, src->name);
        if (dst) memcpy(dst->data, src->data, sizeof(aur_real) * (size_t)src->numel);
    }
    aur_model_fill(m, "*local_relative_position_bias_table", 0);
    aur_tape *t = aur_tape_create();
    aur_tensor *a = tiny_forward(plain, t), *b = tiny_forward(m, t);
    int same = a && b && !memcmp(a->data, b->data, sizeof(aur_real) * (size_t)a->numel);
    AUR_CHECK(same, "rpe with a zero table equals no rpe");
    aur_backward(t, aur_mean_all(t, aur_mul(t, b, b)));
    AUR_CHECK(aur_grad_norm(m, "*local_relative_position_bias_table") > 0, "the bias table gets gradients");
    aur_tape_free(t);
    aur_model_free(plain);
    aur_model_free(m);
}

/* The perceiver time embedding (and its Perceiver decoder): a forecast runs,
   is finite, and every parameter gets a gradient. */
static void test_perceiver_embedding(void)
{
    aur_surya_config c = tiny_config();
    c.perceiver_time = 1, c.n_queries = 2, c.time_dim = 2;
    aur_model *m = aur_surya_create(&c, AUR_CPU, 8);
    AUR_CHECK(m && aur_model_param(m, "embedding.latent_aggregation.weight") && aur_model_param(m, "unembed.latent_queries"),
              "perceiver embedding and decoder declared: %s", m ? "" : aur_last_error());
    if (!m) return;
    aur_tape *t = aur_tape_create();
    aur_tensor *y = tiny_forward(m, t);
    int finite = y && y->ndim == 4 && y->shape[1] == 13 && y->shape[2] == 32;
    for (int64_t i = 0; finite && i < y->numel; i++) finite = isfinite(aur_tensor_f32(y)[i]);
    AUR_CHECK(finite, "perceiver forecast (1, 13, 32, 32), finite");
    aur_backward(t, aur_mean_all(t, aur_mul(t, y, y)));
    const char *need[] = {"embedding.proj.weight", "embedding.pos_embed", "embedding.latent_queries", "embedding.perceiver.layers.0.0.to_q.weight",
                          "embedding.latent_aggregation.weight", "unembed.proj.weight"};
    int all = 1;
    for (int i = 0; i < 6; i++) all &= aur_grad_norm(m, need[i]) > 0;
    AUR_CHECK(all, "gradients reach the embedding's and decoder's parameters");
    aur_tape_free(t);
    aur_model_free(m);
}

static void test_errors_and_scalers(void)
{
    aur_surya_config c;
    aur_surya_preset("surya-tiny", &c);
    cJSON *kw = cJSON_Parse("{\"img_size\": 32, \"nglo_typo\": 1}");
    AUR_CHECK(aur_surya_config_json(kw, "HelioSpectFormer", NULL, &c) && strstr(aur_last_error(), "nglo_typo"), "unknown keyword named: %s",
              aur_last_error());
    cJSON_Delete(kw);
    aur_surya_config h = tiny_config();
    h.head = AUR_SURYA_1D, h.pooling = AUR_POOL_CLASS_TOKEN, h.nglo = 0;
    AUR_CHECK(!aur_surya_declare_model(&h) && strstr(aur_last_error(), "nglo"), "class token without a global token: %s", aur_last_error());
    aur_surya_config e = tiny_config();
    e.learned_flow = 1, e.flow_latitude = 1;
    aur_model *fm = aur_surya_create(&e, AUR_CPU, 2);
    aur_tape *ft = aur_tape_create();
    AUR_CHECK(fm && !tiny_forward(fm, ft) && strstr(aur_last_error(), "aur_surya_set_latitude"), "the flow's latitudes are asked for: %s",
              aur_last_error());
    aur_tape_free(ft);
    aur_model_free(fm);
    e.perceiver_time = 1, e.n_queries = 1;
    AUR_CHECK(!aur_surya_declare_model(&e) && strstr(aur_last_error(), "learned_flow"), "unsupported combinations named: %s", aur_last_error());
    aur_surya_config tc = tiny_config();
    aur_model *m = aur_surya_create(&tc, AUR_CPU, 1);
    aur_tape *t = aur_tape_create();
    aur_tensor *ts = aur_tensor_new(t, AUR_CPU, aur_shape5(1, 13, 2, 32, 32));
    AUR_CHECK(!aur_surya_forward(m, t, ts) && strstr(aur_last_error(), "expected (B, 13, 1, 32, 32)"), "bad input shape: %s", aur_last_error());
    aur_tape_free(t);
    aur_model_free(m);

    aur_surya_scaler s[2] = {{1.5, 2.0, 1e-5, 0.1}, {-0.2, 0.7, 1e-4, 3.0}};
    aur_tensor *x = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape3(2, 2, 5));
    for (int i = 0; i < 20; i++) aur_tensor_f32(x)[i] = (aur_real)((i - 10) * 13.7);
    aur_real orig[20];
    memcpy(orig, x->data, sizeof orig);
    aur_surya_normalise(x, s, 2, 0);
    double z = aur_tensor_f32(x)[12]; /* sample 1, channel 0, value 2 * 13.7 */
    double want = (log1p(2 * 13.7 * 0.1) - 1.5) / (2.0 + 1e-5);
    aur_surya_normalise(x, s, 2, 1);
    double worst = 0;
    for (int i = 0; i < 20; i++) worst = fmax(worst, fabs(aur_tensor_f32(x)[i] - orig[i]) / fmax(1, fabs(orig[i])));
    AUR_CHECK(fabs(z - want) < 1e-5 && worst < 1e-4, "scalers: signum-log standardisation (%.6g vs %.6g) and back (%.2g)", z, want, worst);
    aur_tensor_free(x);

    /* the data checks on solar images: a NaN, a blank frame, a mis-scaled channel */
    aur_tensor *img = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape5(2, 13, 2, 8, 8));
    aur_test_rng = 5;
    for (int64_t i = 0; i < img->numel; i++) aur_tensor_f32(img)[i] = (aur_real)aur_test_normal();
    aur_check_report rep;
    int rc = aur_surya_check_batch(img, NULL, NULL, &rep);
    AUR_CHECK(rc == 0 && rep.errors == 0 && rep.warnings == 0, "clean normalised images pass (%d errors, %d warnings)", rep.errors,
              rep.warnings);
    aur_check_report_free(&rep);
    aur_tensor_f32(img)[(1 * 13 + 3) * 2 * 64 + 5] = NAN;                     /* aia193 */
    memset(aur_tensor_f32(img) + (0 * 13 + 11) * 2 * 64 + 64, 0, 64 * sizeof(aur_real)); /* hmi_bz, t = 1 */
    for (int k = 0; k < 2 * 2 * 64; k++) aur_tensor_f32(img)[(k / 128 * 13 + 8) * 128 + k % 128] *= 30; /* hmi_m unscaled */
    rc = aur_surya_check_batch(img, NULL, NULL, &rep);
    AUR_CHECK(rc == AUR_EFORMAT && strstr(aur_last_error(), "'aia193'") && rep.errors == 3 && rep.vars[11].zero_fields == 1 &&
                  rep.vars[8].severity == AUR_CHECK_ERROR && rep.vars[8].std > 10,
              "NaN in aia193, a blank hmi_bz frame, mis-scaled hmi_m: %s", aur_last_error());
    aur_check_report_free(&rep);
    aur_tensor_free(img);
}

/* Aurora's keywords, Surya's config and the run config read their values the
   same way: a value of the wrong type is refused naming its key and what was found. */
static int refused(char config, const char *json)
{
    aur_aurora_config ac;
    aur_surya_config sc;
    aur_aurora_preset("aurora-small-pretrained", &ac);
    aur_surya_preset("surya-tiny", &sc);
    cJSON *j = cJSON_Parse(json);
    aur_trainer *tr = config == 'r' ? aur_trainer_create_json(j, NULL) : NULL;
    int rc = config == 'a'   ? aur_aurora_config_json(j, &ac)
             : config == 's' ? aur_surya_config_json(j, "HelioSpectFormer", NULL, &sc)
                             : !tr;
    aur_trainer_free(tr);
    cJSON_Delete(j);
    return rc != 0;
}

static void test_config_types(void)
{
    static const struct { char config; const char *json, *want; } bad[] = {
        {'a', "{\"embed_dim\": \"wide\"}", "Aurora keyword 'embed_dim': expected an integer, found \"wide\""},
        {'a', "{\"use_lora\": 1}", "Aurora keyword 'use_lora': expected true or false, found 1"},
        {'a', "{\"surf_vars\": [\"2t\", 7]}", "Aurora keyword 'surf_vars[1]': expected a name of at most 47 characters, found 7"},
        {'s', "{\"depth\": 2.5}", "Surya keyword 'depth': expected an integer, found 2.5"},
        {'s', "{\"rpe\": \"yes\"}", "Surya keyword 'rpe': expected true or false, found \"yes\""},
        {'s', "{\"time_embedding\": {\"type\": \"linear\", \"time_dim\": [2]}}",
         "Surya time_embedding 'time_dim': expected an integer, found a list"},
        {'r', "{\"steps\": \"many\"}", "run config 'steps': expected an integer in [0, 1000000000000], found \"many\""},
        {'r', "{\"autocast\": \"yes\"}", "run config 'autocast': expected true or false, found \"yes\""},
        {'r', "{\"alarm\": {\"z\": -1}}", "run config: alarm 'z': expected a number in [0.1, 1000000], found -1"},
        {'r', "{\"model\": {\"preset\": 3}}", "run config: model 'preset': expected a string, found 3"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        AUR_CHECK(refused(bad[i].config, bad[i].json) && strstr(aur_last_error(), bad[i].want), "%s refused: %s", bad[i].json,
                  aur_last_error());
    aur_surya_config c;
    aur_surya_preset("surya-tiny", &c);
    cJSON *j = cJSON_Parse("{\"depth\": null, \"mlp_ratio\": null}");
    AUR_CHECK(aur_surya_config_json(j, "HelioSpectFormer", NULL, &c) == 0 && c.depth == 4 && c.mlp_ratio == 4.0,
              "Surya's null keeps the default: %s", aur_last_error());
    cJSON_Delete(j);
}

/* max |x| and the standard deviation of a tensor's values. */
static void value_stats(aur_tensor *p, double *max_abs, double *sd)
{
    double s = 0, q = 0;
    *max_abs = 0;
    for (int64_t i = 0; i < p->numel; i++) {
        double v = aur_tensor_f32(p)[i];
        s += v, q += v * v, *max_abs = fmax(*max_abs, fabs(v));
    }
    *sd = sqrt(fmax(0, q / p->numel - (s / p->numel) * (s / p->numel)));
}

/* A new head keeps torch's module defaults (the downstream models build it
   after HelioSpectFormer's _init_weights), as the reference's own models
   show (tests/fixtures/surya_head_init/, tools/make_surya_head_init.py):
   per head tensor the same shape, zero exactly where the reference's is,
   within torch's bound 1/sqrt(fan_in) (which the reference's values obey
   too), and the reference's spread within sampling error. */
static void test_head_init(void)
{
    cJSON *fx = aur_json_load("tests/fixtures/surya_head_init/init.json");
    AUR_CHECK(fx != NULL, "head-init fixture: %s", aur_last_error());
    const char *cases[2] = {"1d_class_token", "2d_linear_decoder"};
    for (int k = 0; fx && k < 2; k++) {
        aur_surya_config c = tiny_config();
        c.embed_dim = 64, c.depth = 4, c.n_spectral_blocks = 2, c.num_heads = 4, c.dp_rank = 4;
        if (k == 0) c.head = AUR_SURYA_1D, c.nglo = 1, c.pooling = AUR_POOL_CLASS_TOKEN, c.penultimate_linear = 1;
        else c.head = AUR_SURYA_2D, c.out_chans = 1;
        aur_model *m = aur_surya_create(&c, AUR_CPU, 3);
        const cJSON *tensors = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(fx, "cases"), cases[k]), "tensors");
        int n = 0;
        for (const cJSON *t = tensors ? tensors->child : NULL; m && t; t = t->next, n++) {
            aur_tensor *p = aur_model_param(m, t->string);
            const cJSON *shape = cJSON_GetObjectItem(t, "shape");
            int same_shape = p && p->ndim == cJSON_GetArraySize(shape);
            for (int d = 0; same_shape && d < p->ndim; d++) same_shape = p->shape[d] == (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
            AUR_CHECK(same_shape, "%s %s: the reference's shape", cases[k], t->string);
            if (!same_shape) continue;
            double mx, sd, ref_mx = cJSON_GetObjectItem(t, "max_abs")->valuedouble, ref_sd = cJSON_GetObjectItem(t, "std")->valuedouble;
            value_stats(p, &mx, &sd);
            int ref_zero = cJSON_IsTrue(cJSON_GetObjectItem(t, "zero"));
            AUR_CHECK((mx == 0) == ref_zero, "%s %s: zero as in the reference (%s)", cases[k], t->string, ref_zero ? "zeros" : "random");
            if (ref_zero) continue;
            const char *wname = strstr(t->string, ".bias") ? NULL : t->string; /* a bias's fan_in is its weight's */
            char buf[128];
            if (!wname) snprintf(buf, sizeof buf, "%.*s.weight", (int)(strlen(t->string) - 5), t->string), wname = buf;
            const aur_tensor *w = aur_model_param(m, wname);
            double bound = 1 / sqrt((double)(w->numel / w->shape[0]));
            AUR_CHECK(mx <= bound && ref_mx <= bound, "%s %s: within torch's bound %.4f (ours %.4f, the reference's %.4f)", cases[k], t->string,
                      bound, mx, ref_mx);
            if (p->numel >= 16)
                AUR_CHECK(fabs(sd / ref_sd - 1) < 0.25, "%s %s: the reference's spread (sd %.4f vs %.4f)", cases[k], t->string, sd, ref_sd);
        }
        AUR_CHECK(m && n >= 2, "%s: %d head tensors compared: %s", cases[k], n, aur_last_error());
        if (m && k == 0) {
            double mx, sd;
            value_stats(aur_model_param(m, "backbone.blocks_attention.0.mlp.fc1.weight"), &mx, &sd);
            AUR_CHECK(fabs(sd - 0.02) < 0.003, "the backbone keeps normal(0.02): sd %.4f", sd);
        }
        aur_model_free(m);
    }
    cJSON_Delete(fx);
}

/* Max-normalised error of a tensor against a fixture entry (INFINITY if absent or of another size). */
static double fixture_err(const aur_st_file *f, const char *name, const aur_tensor *got)
{
    const aur_st_tensor *e = f ? aur_st_find(f, name) : NULL;
    int64_t n = 1, at;
    for (int d = 0; e && d < e->ndim; d++) n *= e->shape[d];
    if (!e || n != got->numel) return INFINITY;
    double *want = (double *)malloc(sizeof(double) * (size_t)n), *have = (double *)malloc(sizeof(double) * (size_t)n);
    aur_real *buf = (aur_real *)malloc(sizeof(aur_real) * (size_t)n);
    aur_st_read(f, e, AUR_F32, buf);
    for (int64_t i = 0; i < n; i++) want[i] = buf[i], have[i] = ((const aur_real *)got->data)[i];
    double err = aur_test_maxerr(have, want, n, &at);
    free(want), free(have), free(buf);
    return err;
}

/* LoRA on a Conv2d as PEFT does it (tests/fixtures/surya_conv_lora, made by
   tools/make_surya_conv_lora.py with PEFT on the reference model): the bare
   target "proj" adapts the patch embedding's Conv2d and the attentions'
   attn.proj, the same modules as PEFT; the forward, the loss and every
   adapter's gradient agree within the fixture's tolerances. */
static void test_conv_lora_peft(void)
{
    const char *dir = "tests/fixtures/surya_conv_lora";
    cJSON *cfg = aur_json_load("tests/fixtures/surya_conv_lora/config.json");
    aur_surya_config c;
    aur_surya_preset("surya-1.0", &c);
    int rc = cfg ? aur_surya_config_json(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "model"), "kwargs"), "HelioSpectFormer", NULL, &c) : AUR_EINVAL;
    aur_model *m = rc ? NULL : aur_surya_declare_model(&c);
    aur_lora_config lc;
    aur_lora_report rep;
    memset(&rep, 0, sizeof rep);
    rc = m ? aur_lora_load_config("tests/fixtures/surya_conv_lora/adapter", &lc, NULL) : AUR_EINVAL;
    if (!rc) rc = aur_lora_declare(m, &lc, &rep);
    const cJSON *adapted = cJSON_GetObjectItem(cfg, "adapted");
    int same = !rc && rep.n_matched == cJSON_GetArraySize(adapted);
    for (int i = 0; same && i < rep.n_matched; i++) {
        int found = 0;
        for (const cJSON *a = adapted->child; a && !found; a = a->next) found = !strcmp(a->valuestring, rep.matched[i]);
        same = found;
    }
    AUR_CHECK(same, "the modules PEFT adapted, Conv2d included (%d of %d): %s", rep.n_matched, cJSON_GetArraySize(adapted), aur_last_error());
    aur_lora_report_free(&rep);
    aur_tensor *A = m ? aur_model_param(m, "embedding.patch_embed.proj.lora_A.default.weight") : NULL;
    AUR_CHECK(A && A->ndim == 4 && A->shape[0] == 4 && A->shape[2] == 4, "the Conv2d adapter has PEFT's shape: A (r, in, kh, kw)");
    if (!rc) rc = aur_model_alloc(m, AUR_CPU);
    char path[300];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if (!rc) rc = aur_lora_load_peft_state_dict(m, path, AUR_LOAD_STRICT, NULL);
    AUR_CHECK(rc == 0, "PEFT's state dict loads strictly: %s", aur_last_error());
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    aur_st_file *in = rc ? NULL : aur_st_open(path);
    snprintf(path, sizeof path, "%s/outputs.safetensors", dir);
    aur_st_file *outs = rc ? NULL : aur_st_open(path);
    snprintf(path, sizeof path, "%s/grads.safetensors", dir);
    aur_st_file *grads = rc ? NULL : aur_st_open(path);
    if (in && outs && grads) {
        aur_tape *t = aur_tape_create();
        aur_tape_set_training(t, 0);
        aur_tensor *ts = aur_tensor_new(t, AUR_CPU, aur_shape5(1, 13, 2, 32, 32)), *tg = aur_tensor_new(t, AUR_CPU, aur_shape4(1, 13, 32, 32));
        aur_st_read(in, aur_st_find(in, "ts"), AUR_F32, ts->data);
        aur_st_read(in, aur_st_find(in, "target"), AUR_F32, tg->data);
        aur_tensor *y = aur_surya_forward(m, t, ts), *loss = y ? aur_mse_loss(t, y, tg) : NULL;
        aur_model_zero_grad(m);
        AUR_CHECK(loss && aur_backward(t, loss) == 0, "forward and backward with a Conv2d adapter: %s", aur_last_error());
        if (loss) {
            double e_out = fixture_err(outs, "output", y), e_loss = fixture_err(outs, "loss", loss), worst = 0;
            AUR_CHECK(e_out <= 1e-5 && e_loss <= 1e-5, "output and loss as PEFT's (max err %.2e, %.2e)", e_out, e_loss);
            int n = 0;
            for (int i = 0; i < aur_model_count(m); i++) {
                aur_tensor *p = aur_model_at(m, i);
                if (!strstr(p->name, ".lora_")) continue;
                char peft[300];
                snprintf(peft, sizeof peft, "base_model.model.%s", p->name);
                aur_tensor g = *p;
                g.data = p->grad;
                double e = fixture_err(grads, peft, &g);
                worst = fmax(worst, e), n++;
                if (e > 1e-4) AUR_CHECK(0, "gradient of %s as PEFT's: max err %.2e", p->name, e);
            }
            AUR_CHECK(n == 12 && worst <= 1e-4, "all %d adapter gradients as PEFT's (worst max err %.2e)", n, worst);
        }
        aur_tape_free(t);
    }
    aur_st_close(in), aur_st_close(outs), aur_st_close(grads);
    char saved[300], a[400], b[400];
    snprintf(saved, sizeof saved, "%s", aur_test_tmp("conv_adapter"));
    snprintf(a, sizeof a, "%s/adapter/adapter_model.safetensors", dir);
    snprintf(b, sizeof b, "%s/adapter_model.safetensors", saved);
    AUR_CHECK(m && aur_lora_save(m, &lc, saved) == 0 && same_file_tensors(a, b), "the Conv2d adapter saves as PEFT saved it: %s", aur_last_error());
    aur_model_free(m);
    cJSON_Delete(cfg);
}

/* The trainable-parameter report: rows per module, and a warning for each
   tensor the checkpoint did not fill that is frozen. */
static void test_trainable_report(void)
{
    aur_surya_config c = tiny_config();
    aur_model *base = aur_surya_create(&c, AUR_CPU, 1);
    char ckpt[300], out[300];
    snprintf(ckpt, sizeof ckpt, "%s", aur_test_tmp("report_base.safetensors"));
    snprintf(out, sizeof out, "%s", aur_test_tmp("report.txt"));
    AUR_CHECK(base && aur_save_safetensors(base, ckpt) == 0, "a forecast checkpoint: %s", aur_last_error());
    aur_model_free(base);
    c.head = AUR_SURYA_1D, c.nglo = 1, c.pooling = AUR_POOL_CLASS_TOKEN, c.penultimate_linear = 1;
    aur_model *m = aur_surya_create(&c, AUR_CPU, 2);
    aur_load_report rep;
    AUR_CHECK(aur_load_safetensors(m, ckpt, AUR_LOAD_FILTERED, &rep) == 0, "filtered load: %s", aur_last_error());
    aur_model_freeze(m, "*");
    FILE *fp = fopen(out, "w");
    int warned = aur_model_print_trainable(m, &rep, fp);
    fclose(fp);
    AUR_CHECK(warned == 5, "a frozen new head is warned about, tensor by tensor (cls_token, linear and unembed weight and bias): %d", warned);
    aur_model_unfreeze(m, "cls_token,linear.*,unembed.*");
    fp = fopen(out, "w");
    warned = aur_model_print_trainable(m, &rep, fp);
    fclose(fp);
    int64_t head = 32 + 32 * 32 + 32 + 32 + 1;
    char line[200], want_total[64];
    snprintf(want_total, sizeof want_total, "trainable: %lld of %lld", (long long)head, (long long)aur_model_numel(m, 0));
    int found_total = 0, backbone_frozen = 0;
    fp = fopen(out, "r");
    while (fp && fgets(line, sizeof line, fp)) {
        long long tr, fr;
        found_total |= strstr(line, want_total) != NULL;
        if (sscanf(line, "  backbone %lld %lld", &tr, &fr) == 2) backbone_frozen = tr == 0 && fr > 0;
    }
    if (fp) fclose(fp);
    AUR_CHECK(warned == 0 && found_total && backbone_frozen, "the head trains, the backbone row is frozen (%d warnings, total %d, backbone %d)",
              warned, found_total, backbone_frozen);
    aur_load_report_free(&rep);
    aur_model_free(m);
}

int main(void)
{
    aur_test_tmpdir_begin("surya");
    test_manifest();
    test_fixture_adapters();
    test_matching_merge_freeze();
    test_bad_adapters();
    test_lora_on_aurora();
    test_rpe();
    test_perceiver_embedding();
    test_errors_and_scalers();
    test_config_types();
    test_head_init();
    test_conv_lora_peft();
    test_trainable_report();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
