/* test_optim.c - optimisers beyond the fixture: resume, groups, clipping, schedules. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"
#include "aur_test.h"

#include <stdlib.h>


static aur_model *make_model(void)
{
    aur_model *m = aur_model_create();
    aur_model_add(m, "fc1.weight", aur_shape2(12, 6), 0);
    aur_model_add(m, "fc1.bias", aur_shape1(12), 0);
    aur_model_add(m, "fc2.weight", aur_shape2(6, 12), 0);
    aur_model_add(m, "fc2.bias", aur_shape1(6), 0);
    aur_model_add(m, "unused.weight", aur_shape3(2, 3, 4), 0);
    aur_model_alloc(m, AUR_CPU);
    aur_test_rng = 777;
    for (int i = 0; i < aur_model_count(m); i++) {
        aur_tensor *p = aur_model_at(m, i);
        for (int64_t k = 0; k < p->numel; k++) aur_tensor_f32(p)[k] = (aur_real)(0.4 * aur_test_normal());
    }
    return m;
}

static aur_tensor *data(int seed, aur_shape s)
{
    aur_test_rng = (uint64_t)seed * 2654435761u + 1;
    aur_tensor *x = aur_tensor_create(AUR_F32, AUR_CPU, s);
    for (int64_t k = 0; k < x->numel; k++) aur_tensor_f32(x)[k] = (aur_real)aur_test_normal();
    return x;
}

/* steps of training from step `from` to `to`; the data depends on the step only. */
static void train(aur_model *m, aur_optim *o, int from, int to, const aur_lr_schedule *sched)
{
    aur_tape *t = aur_tape_create();
    for (int s = from; s < to; s++) {
        aur_tensor *x = data(s, aur_shape2(8, 6)), *y = data(1000 + s, aur_shape2(8, 6));
        aur_tensor *h = aur_gelu(t, aur_linear(t, x, aur_model_param(m, "fc1.weight"), aur_model_param(m, "fc1.bias")));
        aur_tensor *l = aur_mse_loss(t, aur_linear(t, h, aur_model_param(m, "fc2.weight"), aur_model_param(m, "fc2.bias")), y);
        aur_backward(t, l);
        double norm;
        aur_clip_grad_norm(m, 0.5, &norm);
        aur_optim_set_lr_factor(o, aur_lr_factor(sched, s));
        aur_optim_step(o);
        aur_model_zero_grad(m);
        aur_tape_reset(t);
        aur_tensor_free(x);
        aur_tensor_free(y);
    }
    aur_tape_free(t);
}

static int models_equal(aur_model *a, aur_model *b)
{
    for (int i = 0; i < aur_model_count(a); i++)
        if (memcmp(aur_model_at(a, i)->data, aur_model_at(b, i)->data, (size_t)aur_model_at(a, i)->numel * sizeof(aur_real)))
            return 0;
    return 1;
}

static void test_resume(aur_optim_opts oo, const char *label)
{
    aur_lr_schedule sched = {AUR_LR_COSINE, 3, 12, 0.1};
    aur_model *straight = make_model(), *first = make_model(), *second = make_model();
    aur_optim *o1 = aur_optim_create(straight, &oo);
    aur_optim_add_group(o1, "fc2.*", oo.lr * 3, 0.0);
    train(straight, o1, 0, 12, &sched);

    aur_optim *o2 = aur_optim_create(first, &oo);
    aur_optim_add_group(o2, "fc2.*", oo.lr * 3, 0.0);
    train(first, o2, 0, 5, &sched);
    AUR_CHECK(aur_save_safetensors(first, aur_test_tmp("ckpt.safetensors")) == 0, "save model");
    AUR_CHECK(aur_optim_save(o2, aur_test_tmp("optim.safetensors")) == 0, "save optimiser: %s", aur_last_error());

    aur_optim *o3 = aur_optim_create(second, &oo);
    aur_optim_add_group(o3, "fc2.*", oo.lr * 3, 0.0);
    AUR_CHECK(aur_load_safetensors(second, aur_test_tmp("ckpt.safetensors"), AUR_LOAD_STRICT, NULL) == 0, "load model");
    AUR_CHECK(aur_optim_load(o3, aur_test_tmp("optim.safetensors")) == 0, "load optimiser: %s", aur_last_error());
    AUR_CHECK(aur_optim_steps(o3) == 5, "%s: resumed at step %lld", label, (long long)aur_optim_steps(o3));
    train(second, o3, 5, 12, &sched);
    AUR_CHECK(models_equal(straight, second), "%s: 5 steps + save + load + 7 steps == 12 steps, bit for bit", label);
    AUR_CHECK(!models_equal(straight, first), "%s: (and training did change the weights)", label);
    /* the unused parameter never had a gradient: torch skips it, weight decay included */
    aur_model *fresh = make_model();
    AUR_CHECK(!memcmp(aur_model_param(fresh, "unused.weight")->data, aur_model_param(straight, "unused.weight")->data, 24 * sizeof(aur_real)),
              "%s: a parameter without gradient is not updated", label);
    AUR_CHECK(aur_optim_param_steps(o1, "unused.weight") == 0, "%s: and its step count stays 0", label);
    aur_model_free(fresh);
    aur_optim_free(o1);
    aur_optim_free(o2);
    aur_optim_free(o3);
    aur_model_free(straight);
    aur_model_free(first);
    aur_model_free(second);
}

static void test_state_errors(void)
{
    aur_model *m = make_model();
    aur_optim_opts oo = aur_adamw_defaults();
    aur_optim *o = aur_optim_create(m, &oo);
    train(m, o, 0, 2, &(aur_lr_schedule){AUR_LR_CONSTANT, 0, 0, 1});
    aur_optim_save(o, aur_test_tmp("adamw.safetensors"));
    /* another kind of optimiser refuses the file */
    aur_optim_opts af = aur_adafactor_defaults();
    aur_optim *other = aur_optim_create(m, &af);
    AUR_CHECK(aur_optim_load(other, aur_test_tmp("adamw.safetensors")) == AUR_EFORMAT && strstr(aur_last_error(), "adamw"),
              "state of another optimiser kind is refused: %s", aur_last_error());
    aur_optim_free(other);
    /* a differently frozen model refuses it and stays as it was */
    aur_model_freeze(m, "fc1.*");
    aur_optim *frozen = aur_optim_create(m, &oo);
    AUR_CHECK(aur_optim_load(frozen, aur_test_tmp("adamw.safetensors")) == AUR_EFORMAT, "a different parameter set is refused: %s",
              aur_last_error());
    AUR_CHECK(aur_optim_steps(frozen) == 0, "a refused load leaves the state alone");
    aur_optim_free(frozen);
    aur_optim_free(o);
    /* Adafactor factors the last two dims of a 3-D parameter */
    aur_model_unfreeze(m, "fc1.*");
    aur_optim *a = aur_optim_create(m, &af);
    aur_tensor *rv = aur_optim_state(a, "unused.weight", "row_var"), *cv = aur_optim_state(a, "unused.weight", "col_var");
    AUR_CHECK(rv && cv && rv->shape[0] == 2 && rv->shape[1] == 3 && rv->shape[2] == 1 && cv->shape[1] == 1 && cv->shape[2] == 4,
              "Adafactor row_var (2,3,1) and col_var (2,1,4)");
    AUR_CHECK(aur_optim_state(a, "fc1.bias", "variance") != NULL, "Adafactor keeps a full variance for 1-D parameters");
    AUR_CHECK(aur_optim_add_group(a, "nope.*", 1e-3, 0) == AUR_EINVAL, "a group matching nothing is refused");
    aur_optim_free(a);
    /* bad hyperparameters */
    aur_optim_opts bad = aur_adam_defaults();
    bad.beta1 = 1.0;
    AUR_CHECK(aur_optim_create(m, &bad) == NULL && strstr(aur_last_error(), "betas"), "beta1 = 1 is refused");
    bad = aur_adam_defaults();
    bad.lr = -1;
    AUR_CHECK(aur_optim_create(m, &bad) == NULL && strstr(aur_last_error(), "lr"), "a negative lr is refused");
    aur_model_free(m);
}

static void test_groups(void)
{
    aur_model *m = make_model(), *ref = make_model();
    aur_optim_opts oo = aur_adam_defaults();
    aur_optim *o = aur_optim_create(m, &oo);
    int g = aur_optim_add_group(o, "fc1.*", 0.0, 0.0); /* lr 0: fc1 must not move */
    AUR_CHECK(g == 1 && aur_optim_group_count(o) == 2, "group index 1 of 2");
    aur_lr_schedule c = {AUR_LR_CONSTANT, 0, 0, 1};
    train(m, o, 0, 3, &c);
    AUR_CHECK(!memcmp(aur_model_param(m, "fc1.weight")->data, aur_model_param(ref, "fc1.weight")->data, 72 * sizeof(aur_real)),
              "a group with lr 0 stays put");
    AUR_CHECK(memcmp(aur_model_param(m, "fc2.weight")->data, aur_model_param(ref, "fc2.weight")->data, 72 * sizeof(aur_real)),
              "the default group moves");
    aur_optim_set_lr_factor(o, 0.5);
    AUR_CHECK(fabs(aur_optim_group_lr(o, 0) - 0.5e-3) < 1e-15, "lr factor scales the group lr");
    aur_optim_free(o);
    aur_model_free(m);
    aur_model_free(ref);
}

static void test_clip(void)
{
    aur_model *m = make_model();
    for (int i = 0; i < aur_model_count(m); i++) {
        aur_tensor *p = aur_model_at(m, i);
        for (int64_t k = 0; k < p->numel; k++) p->grad[k] = 1;
    }
    double total = 0, expect = sqrt((double)aur_model_numel(m, 1));
    AUR_CHECK(aur_clip_grad_norm(m, 2.0, &total) == 0 && fabs(total - expect) < 1e-4, "total norm %g (want %g)", total, expect);
    AUR_CHECK(fabs(aur_grad_norm(m, NULL) - 2.0) < 1e-5, "after clipping the norm is max_norm (%g)", aur_grad_norm(m, NULL));
    AUR_CHECK(fabs(aur_grad_norm(m, "fc1.bias") - 2.0 * sqrt(12.0) / expect) < 1e-5, "per-pattern gradient norm");
    aur_real keep = aur_model_param(m, "fc1.bias")->grad[0];
    aur_model_param(m, "fc2.weight")->grad[5] = NAN;
    int rc = aur_clip_grad_norm(m, 1.0, &total);
    AUR_CHECK(rc == AUR_ENAN && strstr(aur_last_error(), "fc2.weight"), "a NaN gradient names its tensor: %s", aur_last_error());
    AUR_CHECK(aur_model_param(m, "fc1.bias")->grad[0] == keep, "and no gradient was changed");
    aur_model_param(m, "fc2.weight")->grad[5] = INFINITY;
    AUR_CHECK(aur_clip_grad_norm(m, 1.0, &total) == AUR_ENAN, "an infinite gradient too");
    aur_model_free(m);
}

static void test_schedules(void)
{
    aur_lr_schedule w = {AUR_LR_CONSTANT, 4, 0, 0};
    AUR_CHECK(aur_lr_factor(&w, 0) == 0.25 && aur_lr_factor(&w, 3) == 1 && aur_lr_factor(&w, 100) == 1, "constant with warm-up");
    aur_lr_schedule c = {AUR_LR_COSINE, 0, 100, 0.1};
    AUR_CHECK(aur_lr_factor(&c, 0) == 1 && fabs(aur_lr_factor(&c, 50) - 0.55) < 1e-12 && fabs(aur_lr_factor(&c, 100) - 0.1) < 1e-12 &&
                  fabs(aur_lr_factor(&c, 500) - 0.1) < 1e-12,
              "cosine 1 -> 0.55 -> 0.1");
    aur_lr_schedule l = {AUR_LR_LINEAR, 10, 110, 0.0};
    AUR_CHECK(aur_lr_factor(&l, 9) == 1 && fabs(aur_lr_factor(&l, 60) - 0.5) < 1e-12 && aur_lr_factor(&l, 110) == 0, "linear decay after warm-up");
}

int main(void)
{
    aur_test_tmpdir_begin("optim");
    aur_optim_opts adam = aur_adam_defaults(), adamw = aur_adamw_defaults(), af = aur_adafactor_defaults();
    adam.weight_decay = 0.01; /* L2 */
    test_resume(adam, "Adam+L2");
    test_resume(adamw, "AdamW");
    af.weight_decay = 0.05;
    test_resume(af, "Adafactor");
    test_state_errors();
    test_groups();
    test_clip();
    test_schedules();
    aur_test_tmpdir_end();
    return aur_test_summary();
}
