/* test_aurora.c - the Aurora model's API beyond the golden cases: presets
   against the reference manifests, keywords, batches, checkpoint adaptation,
   initialisation, rollout metadata and the errors a user meets. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"
#include <pthread.h>

/* ---- presets: every state_dict key and shape, in order ---- */

static void test_manifests(void)
{
    static const char *const pairs[][2] = {{"aurora-pretrained", "aurora_pretrained"},
                                           {"aurora-small-pretrained", "aurora_small_pretrained"},
                                           {"aurora-0.25-finetuned", "aurora_0.25_finetuned"},
                                           {"aurora-highres", "aurora_highres"}};
    char path[256];
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "tests/fixtures/manifests/%s.json", pairs[k][1]);
        aur_aurora_config c;
        aur_model *m = aur_model_create();
        int rc = aur_aurora_preset(pairs[k][0], &c) || aur_aurora_declare(m, &c);
        AUR_CHECK(!rc && aur_test_same_as_manifest(m, path), "%s: %d tensors, %lld parameters equal the reference manifest", pairs[k][0],
                  aur_model_count(m), (long long)aur_model_numel(m, 0));
        aur_model_free(m);
    }
    /* presets without a manifest: the parameter counts of the reference's tables */
    aur_aurora_config c;
    aur_model *m = aur_model_create();
    AUR_CHECK(!aur_aurora_preset("aurora-12h-pretrained", &c) && !aur_aurora_declare(m, &c) && aur_model_numel(m, 0) == 1256300176 &&
                  c.timestep_seconds == 43200,
              "aurora-12h-pretrained: the pretrained table with 12 h steps");
    aur_model_free(m);
    m = aur_model_create();
    AUR_CHECK(!aur_aurora_preset("aurora-air-pollution", &c) && !aur_aurora_declare(m, &c) &&
                  aur_model_param(m, "encoder.atmos_token_embeds.layers.1000.weights.static_static_so2_log") &&
                  aur_model_param(m, "decoder.level_decoder_alternate.layers.0.0.to_q.weight") &&
                  aur_model_param(m, "decoder.atmos_heads.so2_mod.layers.850.bias") && aur_model_param(m, "surf_feature_combiner.pm10.weight"),
              "aurora-air-pollution: level-conditioned embeddings, alternate decoder, modulation heads, feature combiners");
    aur_model_free(m);
    m = aur_model_create();
    AUR_CHECK(!aur_aurora_preset("aurora-wave", &c) && !aur_aurora_declare(m, &c) &&
                  aur_model_param(m, "encoder.surf_token_embeds.weights.mwd_sin") && aur_model_param(m, "decoder.surf_heads.swh_density.weight") &&
                  aur_model_param(m, "encoder.level_agg.layers.0.0.ln_k.weight") && !aur_model_param(m, "decoder.surf_heads.mwd.weight"),
              "aurora-wave: sin/cos angles, density channels, stabilised level aggregation");
    aur_model_free(m);
    AUR_CHECK(aur_aurora_preset("aurora-huge", &c) == AUR_EINVAL && strstr(aur_last_error(), "aurora-small-pretrained"),
              "an unknown preset lists the known ones");
}

/* ---- keywords ---- */

static void test_keywords(void)
{
    aur_aurora_config c;
    aur_aurora_preset("aurora-0.25-finetuned", &c);
    cJSON *j = cJSON_Parse("{\"embed_dim\": 32, \"patch_size\": 3, \"lora_mode\": \"all\", \"timestep\": {\"timedelta_seconds\": 3600},"
                           " \"level_condition\": [50, 1000], \"surf_stats\": {\"2t\": [280, 20]}, \"bf16_mode\": true}");
    AUR_CHECK(aur_aurora_config_json(j, &c) == 0 && c.embed_dim == 32 && c.patch_size == 3 && c.lora_mode == AUR_LORA_ALL &&
                  c.timestep_seconds == 3600 && c.n_level_condition == 2 && c.n_surf_stats == 1 && c.autocast,
              "keywords apply: %s", aur_last_error());
    cJSON_Delete(j);
    static const char *const bad[][2] = {
        {"{\"embed_dims\": 32}", "embed_dims"},
        {"{\"lora_mode\": \"sometimes\"}", "lora_mode"},
        {"{\"patch_size\": 2.5}", "patch_size"},
        {"{\"encoder_depths\": [1, 1], \"decoder_depths\": [1, 2], \"encoder_num_heads\": [1, 1], \"decoder_num_heads\": [1, 1]}", "depths"},
        {"{\"latent_levels\": 3}", "latent_levels"},
        {"{\"use_lora\": 1}", "use_lora"},
        {"{\"atmos_static_vars\": true}", "dynamic_vars"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aur_aurora_preset("aurora-small-pretrained", &c);
        aur_aurora_config keep = c;
        j = cJSON_Parse(bad[i][0]);
        int rc = aur_aurora_config_json(j, &c);
        AUR_CHECK(rc != 0 && strstr(aur_last_error(), bad[i][1]) && !memcmp(&keep, &c, sizeof c), "%s is refused naming '%s': %s",
                  bad[i][0], bad[i][1], aur_last_error());
        cJSON_Delete(j);
    }
    char s[32];
    aur_level_to_str(850, s, sizeof s);
    int ok = !strcmp(s, "850");
    aur_level_to_str(0.5, s, sizeof s);
    ok &= !strcmp(s, "0_5");
    aur_level_to_str(1.2345, s, sizeof s);
    ok &= !strcmp(s, "1_234") || !strcmp(s, "1_235");
    AUR_CHECK(ok, "level_to_str: 850, 0_5, three decimals");
}

/* ---- a small model and batch for the functional tests ---- */

static aur_aurora_config tiny_config(void)
{
    aur_aurora_config c;
    aur_aurora_preset("aurora-pretrained", &c);
    c.embed_dim = 16, c.num_heads = 2, c.window_size[0] = 2, c.window_size[1] = 3, c.window_size[2] = 4;
    int eh[3] = {2, 4, 8}, dh[3] = {8, 4, 2};
    for (int i = 0; i < 3; i++) {
        c.encoder_depths[i] = c.decoder_depths[i] = 2;
        c.encoder_num_heads[i] = eh[i];
        c.decoder_num_heads[i] = dh[i];
    }
    return c;
}

static aur_batch *tiny_batch(const aur_model *m, int H, int W, int T)
{
    const aur_aurora_config *c = aur_aurora_config_of(m);
    aur_batch *b = aur_batch_create(1, T, 3, H, W, &c->surf_vars, &c->static_vars, &c->atmos_vars);
    double lv[3] = {250, 500, 850};
    memcpy(b->levels, lv, sizeof lv);
    for (int i = 0; i < H; i++) b->lat[i] = (float)(90.0 - 180.0 * i / (H - 1));
    for (int j = 0; j < W; j++) b->lon[j] = (float)(360.0 * j / W);
    b->time[0] = 1591012800;
    aur_test_rng = 4242;
    double loc = 0, scale = 1;
    char key[64];
    for (int v = 0; v < b->surf_names.n; v++) {
        aur_aurora_get_stats(m, b->surf_names.name[v], &loc, &scale);
        for (int64_t i = 0; i < b->surf[v]->numel; i++) aur_tensor_f32(b->surf[v])[i] = (aur_real)(loc + scale * aur_test_normal());
    }
    for (int v = 0; v < b->static_names.n; v++) {
        aur_aurora_get_stats(m, b->static_names.name[v], &loc, &scale);
        for (int64_t i = 0; i < b->statics[v]->numel; i++) aur_tensor_f32(b->statics[v])[i] = (aur_real)(loc + scale * aur_test_normal());
    }
    for (int v = 0; v < b->atmos_names.n; v++)
        for (int64_t i = 0; i < b->atmos[v]->numel; i++) {
            int level = (int)((i / (H * W)) % 3);
            snprintf(key, sizeof key, "%s_%d", b->atmos_names.name[v], (int)lv[level]);
            aur_aurora_get_stats(m, key, &loc, &scale);
            aur_tensor_f32(b->atmos[v])[i] = (aur_real)(loc + scale * aur_test_normal());
        }
    return b;
}

/* ---- normalisation statistics: many keys (a config of 400 k entries took minutes), only positive scales ---- */

static void test_many_stats(void)
{
    aur_aurora_config c = tiny_config();
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 1);
    AUR_CHECK(m != NULL, "create: %s", aur_last_error());
    if (!m) return;
    char key[32];
    int bad = 0, n = 200000;
    for (int i = 0; i < n && !bad; i++) snprintf(key, sizeof key, "v%d", i), bad = aur_aurora_set_stats(m, key, i, 1 + i % 7);
    aur_aurora_set_stats(m, "v17", -1, 2); /* replaced, not added */
    for (int i = 0; i < n && !bad; i++) {
        double loc = 0, scale = 0;
        snprintf(key, sizeof key, "v%d", i);
        bad = aur_aurora_get_stats(m, key, &loc, &scale) || loc != (i == 17 ? -1 : i) || scale != (i == 17 ? 2 : 1 + i % 7);
    }
    AUR_CHECK(!bad, "%d statistics set and read back", n);
    AUR_CHECK(aur_aurora_set_stats(m, "neg", 0, -1) != 0 && strstr(aur_last_error(), "positive"), "a negative scale is refused: %s",
              aur_last_error());
    aur_model_free(m);
}

/* ---- initialisation (aurora/model/util.py: init_weights and the reference's decoder-init test) ---- */

static void test_init(void)
{
    aur_aurora_config c = tiny_config();
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 1);
    AUR_CHECK(m != NULL, "create: %s", aur_last_error());
    if (!m) return;
    int heads_ok = 1;
    for (int i = 0; i < c.surf_vars.n; i++) {
        char n[128];
        snprintf(n, sizeof n, "decoder.surf_heads.%s.weight", c.surf_vars.name[i]);
        aur_tensor *w = aur_model_param(m, n);
        snprintf(n, sizeof n, "decoder.surf_heads.%s.bias", c.surf_vars.name[i]);
        aur_tensor *b = aur_model_param(m, n);
        double wmax = 0, bmax = 0;
        for (int64_t k = 0; k < w->numel; k++) wmax = fmax(wmax, fabs(aur_tensor_f32(w)[k]));
        for (int64_t k = 0; k < b->numel; k++) bmax = fmax(bmax, fabs(aur_tensor_f32(b)[k]));
        heads_ok &= wmax > 0 && bmax == 0;
    }
    AUR_CHECK(heads_ok, "every decoder head starts with non-zero weights and zero bias");
    aur_tensor *mod = aur_model_param(m, "backbone.encoder_layers.0.blocks.0.norm1.ln_modulation.1.weight");
    aur_tensor *ln = aur_model_param(m, "encoder.surf_norm.weight"), *k = aur_model_param(m, "encoder.surf_token_embeds.weights.2t");
    double bound = 1 / sqrt(2.0 * 16), kmax = 0;
    for (int64_t i = 0; i < k->numel; i++) kmax = fmax(kmax, fabs(aur_tensor_f32(k)[i]));
    AUR_CHECK(aur_tensor_f32(mod)[5] == 0 && aur_tensor_f32(ln)[3] == 1 && kmax > 0 && kmax <= bound,
              "modulation starts at zero, norms at one, kernels within 1/sqrt(T P^2)");
    aur_model_free(m);
}

/* ---- batches: save/load round trip and refusals ---- */

static void test_batches(void)
{
    aur_aurora_config c = tiny_config();
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 1);
    aur_batch *b = tiny_batch(m, 16, 24, 2);
    b->rollout_step = 3;
    AUR_CHECK(aur_batch_save(b, aur_test_tmp("batch.safetensors")) == 0, "save a batch: %s", aur_last_error());
    aur_batch *r = aur_batch_load(aur_test_tmp("batch.safetensors"));
    int same = r && r->B == 1 && r->T == 2 && r->C == 3 && r->H == 16 && r->W == 24 && r->rollout_step == 3 && r->time[0] == b->time[0];
    for (int v = 0; same && v < b->surf_names.n; v++)
        same = !strcmp(r->surf_names.name[v], b->surf_names.name[v]) && !memcmp(r->surf[v]->data, b->surf[v]->data, 16 * 24 * 2 * sizeof(aur_real));
    for (int v = 0; same && v < b->atmos_names.n; v++) same = !memcmp(r->atmos[v]->data, b->atmos[v]->data, 3 * 16 * 24 * 2 * sizeof(aur_real));
    same = same && r->levels[2] == 850 && r->lat[15] == b->lat[15] && r->lon[23] == b->lon[23];
    AUR_CHECK(same, "a saved batch loads back bit for bit, variable order and metadata included");
    aur_batch_free(r);
    /* a NaN is refused, naming the variable */
    aur_tensor_f32(b->atmos[2])[100] = NAN;
    aur_batch_save(b, aur_test_tmp("nan.safetensors"));
    r = aur_batch_load(aur_test_tmp("nan.safetensors"));
    AUR_CHECK(!r && strstr(aur_last_error(), "atmos/v") && strstr(aur_last_error(), "NaN"), "NaN refused: %s", aur_last_error());
    aur_tensor_f32(b->atmos[2])[100] = 0;
    /* a listed variable that is missing */
    aur_st_writer *w = aur_st_writer_create();
    aur_st_writer_add(w, "surf/2t", b->surf[0]);
    aur_st_writer_meta(w, "surf_vars", "2t,msl");
    aur_st_writer_write(w, aur_test_tmp("missing.safetensors"));
    aur_st_writer_free(w);
    r = aur_batch_load(aur_test_tmp("missing.safetensors"));
    AUR_CHECK(!r && strstr(aur_last_error(), "surf/msl") && strstr(aur_last_error(), "missing"), "missing variable: %s", aur_last_error());
    aur_batch_free(b);
    aur_model_free(m);
}

/* ---- forward-pass errors a user meets ---- */

static void test_forward_errors(void)
{
    aur_aurora_config c = tiny_config();
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 1);
    aur_tape *t = aur_tape_create();
    aur_batch *b = tiny_batch(m, 16, 25, 2);
    AUR_CHECK(!aur_aurora_forward(m, t, b) && strstr(aur_last_error(), "width 25"), "W %% P != 0: %s", aur_last_error());
    aur_batch_free(b);
    b = tiny_batch(m, 18, 24, 2);
    AUR_CHECK(!aur_aurora_forward(m, t, b) && strstr(aur_last_error(), "height 18"), "H %% P > 1: %s", aur_last_error());
    aur_batch_free(b);
    b = tiny_batch(m, 17, 24, 3);
    AUR_CHECK(!aur_aurora_forward(m, t, b) && strstr(aur_last_error(), "max_history_size"), "T > Tmax: %s", aur_last_error());
    aur_batch_free(b);
    b = tiny_batch(m, 17, 24, 2);
    snprintf(b->surf_names.name[1], AUR_NAME_LEN, "sst");
    AUR_CHECK(!aur_aurora_forward(m, t, b) && strstr(aur_last_error(), "'sst'") && strstr(aur_last_error(), "HINT"),
              "a variable without weights: %s", aur_last_error());
    snprintf(b->surf_names.name[1], AUR_NAME_LEN, "10u");
    b->lat[3] = b->lat[2];
    AUR_CHECK(!aur_aurora_forward(m, t, b) && strstr(aur_last_error(), "decrease"), "repeated latitude: %s", aur_last_error());
    b->lat[3] = 120;
    AUR_CHECK(!aur_aurora_forward(m, t, b) && strstr(aur_last_error(), "[-90, 90]"), "latitude out of range: %s", aur_last_error());
    aur_batch_free(b);
    b = tiny_batch(m, 17, 24, 2);
    b->time[0] = NAN;
    AUR_CHECK(!aur_aurora_forward(m, t, b) && strstr(aur_last_error(), "time"), "no time: %s", aur_last_error());
    aur_batch_free(b);
    /* a new variable needs statistics and weights */
    aur_aurora_config c2 = c;
    snprintf(c2.surf_vars.name[c2.surf_vars.n++], AUR_NAME_LEN, "sst");
    aur_model *m2 = aur_aurora_create(&c2, AUR_CPU, 1);
    b = tiny_batch(m, 17, 24, 2);
    b->surf_names = c2.surf_vars;
    b->surf[4] = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape4(1, 2, 17, 24));
    aur_batch *p = aur_aurora_forward(m2, t, b);
    AUR_CHECK(!p && strstr(aur_last_error(), "'sst'") && strstr(aur_last_error(), "aur_aurora_set_stats"), "no statistics: %s", aur_last_error());
    aur_aurora_set_stats(m2, "sst", 290, 10);
    aur_tape_reset(t);
    p = aur_aurora_forward(m2, t, b);
    AUR_CHECK(p && p->surf_names.n == 5 && p->surf[4]->shape[2] == 16, "registered, the new variable is predicted: %s", aur_last_error());
    aur_batch_free(p);
    aur_batch_free(b);
    aur_model_free(m2);
    /* dropout in training mode would need the attention weights' dropout too: refused, with or without gradients */
    aur_aurora_config c3 = c;
    c3.drop_rate = 0.1;
    aur_model *m3 = aur_aurora_create(&c3, AUR_CPU, 1);
    b = tiny_batch(m3, 17, 24, 2);
    aur_tape_reset(t);
    aur_tape_set_grad(t, 0);
    AUR_CHECK(!aur_aurora_forward(m3, t, b) && strstr(aur_last_error(), "drop_rate"), "drop_rate in training mode: %s", aur_last_error());
    aur_tape_set_training(t, 0);
    AUR_CHECK(aur_aurora_forward(m3, t, b) != NULL, "drop_rate when evaluating: %s", aur_last_error());
    aur_batch_free(b);
    aur_model_free(m3);
    /* more encoder inputs than a variable list holds: refused when the model is made */
    aur_aurora_config c4 = c;
    for (int i = c4.surf_vars.n; i < AUR_MAX_VARS - 2; i++) snprintf(c4.surf_vars.name[c4.surf_vars.n++], AUR_NAME_LEN, "v%d", i);
    AUR_CHECK(!aur_aurora_create(&c4, AUR_CPU, 1) && strstr(aur_last_error(), "encoder inputs"), "too many inputs: %s", aur_last_error());
    aur_tape_free(t);
    aur_model_free(m);
}

/* ---- rollout metadata, statics and autocast ---- */

static void test_rollout(void)
{
    aur_aurora_config c = tiny_config();
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 3);
    aur_tape *t = aur_tape_create();
    aur_batch *b = tiny_batch(m, 17, 24, 2), *p[3];
    int rc = aur_aurora_rollout(m, t, b, 3, p);
    AUR_CHECK(rc == 0, "rollout: %s", aur_last_error());
    if (!rc) {
        AUR_CHECK(p[0]->H == 16 && p[0]->T == 1 && p[2]->rollout_step == 3 && p[2]->time[0] == b->time[0] + 3 * 21600,
                  "predictions are cropped, one step long; time and rollout_step advance");
        double d = 0;
        for (int64_t i = 0; i < p[0]->statics[1]->numel; i++) d = fmax(d, fabs(aur_tensor_f32(p[0]->statics[1])[i] - aur_tensor_f32(b->statics[1])[i]));
        AUR_CHECK(d < 1e-2 * 58844.67, "statics come back (normalised and unnormalised: %.3g)", d);
        aur_tensor *loss = aur_aurora_loss(m, t, p[2], p[1]);
        AUR_CHECK(loss && aur_backward(t, loss) == 0, "a loss over the rollout back-propagates: %s", aur_last_error());
        AUR_CHECK(aur_model_param(m, "encoder.surf_token_embeds.weights.2t")->grad_written, "the gradient reaches the encoder");
        for (int s = 0; s < 3; s++) aur_batch_free(p[s]);
    }
    /* autocast: different numbers, close to the F32 ones */
    aur_tape_reset(t);
    aur_batch *f32 = aur_aurora_forward(m, t, b);
    aur_aurora_config ca = c;
    ca.autocast = 1;
    aur_model *ma = aur_aurora_create(&ca, AUR_CPU, 3);
    aur_batch *bf = aur_aurora_forward(ma, t, b);
    double num = 0, den = 0;
    for (int64_t i = 0; f32 && bf && i < f32->atmos[3]->numel; i++) {
        double x = aur_tensor_f32(f32->atmos[3])[i] - 278, y = aur_tensor_f32(bf->atmos[3])[i] - 278;
        num = fmax(num, fabs(x - y));
        den = fmax(den, fabs(x));
    }
    AUR_CHECK(f32 && bf && num > 0 && num < 0.05 * den, "autocast changes the prediction by %.2e of its range (BF16 rounding)", num / den);
    aur_batch_free(f32);
    aur_batch_free(bf);
    aur_model_free(ma);
    aur_batch_free(b);
    aur_tape_free(t);
    aur_model_free(m);
}

/* ---- checkpoints: the pretrained fused layout, history padding, "net." keys ---- */

static void test_checkpoint_adaptation(void)
{
    aur_aurora_config c = tiny_config();
    c.max_history_size = 3;
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 5);
    aur_aurora_config c1 = tiny_config(); /* a checkpoint with history 2, written the old way */
    aur_model *src = aur_aurora_create(&c1, AUR_CPU, 6);
    aur_st_writer *w = aur_st_writer_create();
    const int64_t D = 16, P = 4, E = 32;
    aur_tensor *fused = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape5(D, 7, 2, P, P));
    aur_tensor *head = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape2(4 * P * P, E)), *hb = aur_tensor_create(AUR_F32, AUR_CPU, aur_shape1(4 * P * P));
    for (int64_t i = 0; i < fused->numel; i++) aur_tensor_f32(fused)[i] = (aur_real)i;
    for (int64_t i = 0; i < head->numel; i++) aur_tensor_f32(head)[i] = (aur_real)i;
    for (int64_t i = 0; i < hb->numel; i++) aur_tensor_f32(hb)[i] = (aur_real)i;
    char name[256];
    for (int i = 0; i < aur_model_count(src); i++) {
        aur_tensor *p = aur_model_at(src, i);
        if (strstr(p->name, "surf_token_embeds.weights") || strstr(p->name, "surf_heads.")) continue;
        snprintf(name, sizeof name, "net.%s", p->name);
        aur_st_writer_add(w, name, p);
    }
    aur_st_writer_add(w, "net.encoder.surf_token_embeds.weight", fused);
    aur_st_writer_add(w, "net.decoder.surf_head.weight", head);
    aur_st_writer_add(w, "net.decoder.surf_head.bias", hb);
    aur_st_writer_write(w, aur_test_tmp("old.safetensors"));
    aur_st_writer_free(w);
    aur_load_report rep;
    int rc = aur_aurora_load(m, aur_test_tmp("old.safetensors"), AUR_LOAD_STRICT, &rep);
    AUR_CHECK(rc == 0 && rep.n_loaded == aur_model_count(m), "an old-layout checkpoint loads strictly: %s", aur_last_error());
    aur_load_report_free(&rep);
    /* z is channel 5 of the fused kernel; slice t of the padded history: 0 for t = 2 */
    aur_tensor *kz = aur_model_param(m, "encoder.surf_token_embeds.weights.z");
    int64_t d = 3, t1 = 1, t2 = 2, q = 7;
    aur_real want = (aur_real)(((d * 7 + 5) * 2 + t1) * 16 + q);
    AUR_CHECK(aur_tensor_f32(kz)[(d * 3 + t1) * 16 + q] == want && aur_tensor_f32(kz)[(d * 3 + t2) * 16 + q] == 0,
              "fused kernels split by channel, history zero-padded to max_history_size");
    /* the head of msl (i = 3): row k*4 + 3 of the fused head */
    aur_tensor *hw = aur_model_param(m, "decoder.surf_heads.msl.weight"), *hbias = aur_model_param(m, "decoder.surf_heads.msl.bias");
    AUR_CHECK(aur_tensor_f32(hw)[5 * E + 2] == (aur_real)((5 * 4 + 3) * E + 2) && aur_tensor_f32(hbias)[5] == (aur_real)(5 * 4 + 3),
              "fused heads split with row k*4 + i");
    c.max_history_size = 1;
    aur_model *m1 = aur_aurora_create(&c, AUR_CPU, 5);
    AUR_CHECK(aur_aurora_load(m1, aur_test_tmp("old.safetensors"), AUR_LOAD_STRICT, NULL) == AUR_ESHAPE &&
                  strstr(aur_last_error(), "max_history_size"),
              "a longer checkpoint history than Tmax is refused: %s", aur_last_error());
    aur_model_free(m1);
    aur_tensor_free(fused);
    aur_tensor_free(head);
    aur_tensor_free(hb);
    aur_model_free(src);
    aur_model_free(m);
}

/* A 721-row target of a 720-row prediction loses its last latitude (Batch.crop); other row counts are refused. */
static void test_loss_crops_target(void)
{
    aur_aurora_config c = tiny_config();
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 3);
    aur_tape *t = aur_tape_create();
    aur_batch *b = tiny_batch(m, 17, 24, 2), *target = tiny_batch(m, 17, 24, 1), *short_target = tiny_batch(m, 15, 24, 1);
    aur_batch *p = aur_aurora_forward(m, t, b);
    aur_tensor *l1 = p ? aur_aurora_loss(m, t, p, target) : NULL;
    for (int i = 0; i < target->surf_names.n; i++) { /* the dropped row may hold anything */
        aur_tensor *y = target->surf[i];
        float *v = (float *)aur_tensor_f32(y);
        for (int64_t k = 0; k < y->numel; k++)
            if (k / y->shape[3] % y->shape[2] == 16) v[k] = 1e6f;
    }
    aur_tensor *l2 = p ? aur_aurora_loss(m, t, p, target) : NULL;
    AUR_CHECK(l1 && l2 && aur_tensor_f32(l1)[0] == aur_tensor_f32(l2)[0] && isfinite(aur_tensor_f32(l1)[0]),
              "a 17-row target of a 16-row prediction: its last row is not in the loss");
    AUR_CHECK(p && !aur_aurora_loss(m, t, p, short_target) && strstr(aur_last_error(), "same non-empty shape"), "15 rows are refused: %s",
              aur_last_error());
    aur_batch_free(p);
    aur_batch_free(b);
    aur_batch_free(target);
    aur_batch_free(short_target);
    aur_tape_free(t);
    aur_model_free(m);
}

/* ---- activation checkpointing under autocast ---- */

/* The gradients of one step's loss, flattened (owned: free). */
static aur_real *step_grads(aur_aurora_config c, int64_t *n)
{
    aur_model *m = aur_aurora_create(&c, AUR_CPU, 3);
    aur_tape *t = aur_tape_create();
    aur_batch *b = tiny_batch(m, 17, 24, 2), *target = tiny_batch(m, 16, 24, 1);
    aur_batch *p = aur_aurora_forward(m, t, b);
    int rc = !p || aur_backward(t, aur_aurora_loss(m, t, p, target));
    AUR_CHECK(!rc, "a step runs: %s", rc ? aur_last_error() : "");
    *n = aur_model_numel(m, 0);
    aur_real *g = (aur_real *)calloc((size_t)*n, sizeof(aur_real));
    int64_t k = 0;
    for (int i = 0; i < aur_model_count(m); i++) {
        aur_tensor *q = aur_model_at(m, i);
        if (!q->is_buffer && q->grad) memcpy(g + k, q->grad, sizeof(aur_real) * (size_t)q->numel);
        k += q->is_buffer ? 0 : q->numel;
    }
    aur_batch_free(b);
    aur_batch_free(target);
    aur_tape_free(t);
    aur_model_free(m);
    return g;
}

/* The encoder and decoder in bands of patch rows (one row each, or a few):
   the gradients those of the one-band run but for the order of the weight
   gradients' sums, and checkpointed ones equal the plain ones bit for bit. */
static void test_bands(void)
{
    aur_aurora_config c = tiny_config();
    int64_t n0, n1, n2;
    aur_real *whole = step_grads(c, &n0);
    const double sizes[2] = {1, 1500};
    for (int i = 0; i < 2; i++) {
        c.band_floats = sizes[i], c.checkpoint = 0;
        aur_real *plain = step_grads(c, &n1);
        c.checkpoint = AUR_CHECKPOINT_ALL;
        aur_real *ckpt = step_grads(c, &n2);
        double err = 0, scale = 0;
        int64_t differ = 0;
        for (int64_t j = 0; j < n0 && n1 == n0 && n2 == n0; j++) {
            err = fmax(err, fabs(plain[j] - whole[j]) / (1e-3 + fabs(whole[j])));
            scale = fmax(scale, fabs(whole[j]));
            differ += plain[j] != ckpt[j];
        }
        AUR_CHECK(n1 == n0 && n2 == n0 && err < 1e-4 && scale > 0, "bands of %g floats: gradients within %.2g (relative) of one band's",
                  sizes[i], err);
        AUR_CHECK(differ == 0, "bands of %g floats: %lld of %lld checkpointed gradients differ from the plain ones", sizes[i],
                  (long long)differ, (long long)n0);
        free(plain);
        free(ckpt);
    }
    free(whole);
}

/* Checkpointed blocks recompute with the autocast of their forward (the backbone turns it on only around itself). */
static void test_checkpoint_autocast(void)
{
    aur_aurora_config c = tiny_config();
    c.autocast = 1;
    int64_t n1, n2;
    aur_real *plain = step_grads(c, &n1);
    c.checkpoint = AUR_CHECKPOINT_ALL;
    aur_real *ckpt = step_grads(c, &n2);
    int64_t differ = 0;
    for (int64_t i = 0; i < n1 && n1 == n2; i++) differ += plain[i] != ckpt[i];
    AUR_CHECK(n1 == n2 && differ == 0, "autocast: checkpointed gradients equal the plain ones bit for bit (%lld of %lld differ)",
              (long long)differ, (long long)n1);
    free(plain);
    free(ckpt);
}

/* ---- calls from several threads ---- */

/* Presets from four threads at once give the lists one thread gets (the
   variable lists were once cut with strtok, whose state threads shared). */
static const char *const thread_presets[4] = {"aurora-air-pollution", "aurora-wave", "aurora-pretrained", "aurora-small-pretrained"};
static aur_aurora_config thread_want[4];

static void *preset_worker(void *arg)
{
    long k = (long)(intptr_t)arg, bad = 0;
    for (int i = 0; i < 300; i++) {
        aur_aurora_config c;
        int which = (int)((k + i) % 4);
        bad += aur_aurora_preset(thread_presets[which], &c) != 0 || memcmp(&c, &thread_want[which], sizeof c) != 0;
    }
    return (void *)(intptr_t)bad;
}

static void test_threads(void)
{
    for (int k = 0; k < 4; k++) aur_aurora_preset(thread_presets[k], &thread_want[k]);
    pthread_t th[4];
    long bad = 0;
    for (long k = 0; k < 4; k++) pthread_create(&th[k], NULL, preset_worker, (void *)(intptr_t)k);
    for (int k = 0; k < 4; k++) {
        void *r;
        pthread_join(th[k], &r);
        bad += (long)(intptr_t)r;
    }
    AUR_CHECK(bad == 0, "presets from 4 threads at once: %ld of 1200 differ from one thread's", bad);
}

int main(void)
{
    aur_test_tmpdir_begin("aurora");
    test_manifests();
    test_keywords();
    test_many_stats();
    test_init();
    test_batches();
    test_forward_errors();
    test_rollout();
    test_loss_crops_target();
    test_bands();
    test_checkpoint_adaptation();
    test_checkpoint_autocast();
    test_threads();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
