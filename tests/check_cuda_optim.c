/* check_cuda_optim.c — the device optimizer's bodies (runtime/cuda/optim_body.h)
 * and constants (lg_cuda_optim_hyper_for, runtime/cuda/optim_prep.c) on the
 * CPU, against the CPU optimizer (runtime/optim/optim.c) on the same inputs.
 *
 * Each case builds two lg_optim from one configuration over a block of three
 * tensors in two parameter groups (their own lr and weight decay) with gaps
 * between the tensors, as the device layout has. For 20 steps, with new
 * gradients and a new lr per step (as a scheduler writes them), one takes
 * lg_optim_step, the other counts the step on the host and runs the body over
 * every element of each tensor with its group's constants, the way the
 * launcher runs the grid. Parameters and every state slot must be equal bit
 * for bit (optim.cu is compiled without FMA contraction for this reason; the
 * gaps must stay zero). Cases: SGD (plain, momentum, dampening, nesterov,
 * weight decay, maximize), Adam (weight decay, amsgrad, beta1 < 0.5),
 * AdamW (amsgrad), RMSprop (plain, momentum, centered, both, weight decay).
 * Also the mixed-precision gradient accumulation (f16, bf16, f32 sources).
 */
#include "../runtime/cuda/optim_body.h"
#include "lgen/optim.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NT 3
static const size_t cnt[NT] = {300, 7, 1000};
static const int grp[NT] = {0, 1, 0};
#define GAP 64 /* device layout: each tensor at a 64-float boundary */

static uint64_t rs = 88172645463325252ull;
static float rnd(void) { /* xorshift, uniform in [-1, 1) */
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void run_case(const lg_optim_config *cfg, const char *what) {
    lg_optim_param host[NT], dev[NT];
    size_t off = 0, doff = 0;
    for (int k = 0; k < NT; k++) {
        host[k] = (lg_optim_param){off, cnt[k], grp[k]};
        dev[k] = (lg_optim_param){doff, cnt[k], grp[k]};
        off += cnt[k];
        doff = (doff + cnt[k] + GAP - 1) / GAP * GAP;
    }
    const size_t total = off, dtotal = doff;
    lg_optim_group groups[2] = {{cfg->lr, 0, cfg->weight_decay}, {cfg->lr * 3, 0, cfg->weight_decay * 0.5 + 1e-3}};
    lg_optim cpu, gpu;
    lg_error err = {0};
    ck_assert_msg(lg_optim_init(&cpu, cfg, 2, groups, NT, host, total, &err) == LG_OK, "%s: %s", what, err.msg);
    ck_assert_msg(lg_optim_init(&gpu, cfg, 2, groups, NT, dev, dtotal, &err) == LG_OK, "%s: %s", what, err.msg);
    float *p = calloc(total, sizeof *p), *g = calloc(total, sizeof *g);
    float *dp = calloc(dtotal, sizeof *dp), *dg = calloc(dtotal, sizeof *dg);
    ck_assert(p && g && dp && dg);
    for (size_t i = 0; i < total; i++)
        p[i] = rnd();
    for (int k = 0; k < NT; k++)
        memcpy(dp + dev[k].offset, p + host[k].offset, cnt[k] * sizeof(float));
    for (int step = 1; step <= 20; step++) {
        for (int k = 0; k < NT; k++)
            for (size_t i = 0; i < cnt[k]; i++) {
                float v = rnd() * (step % 5 == 0 ? 10.0f : 0.5f);
                g[host[k].offset + i] = v;
                dg[dev[k].offset + i] = v;
            }
        for (int gi = 0; gi < 2; gi++) { /* a scheduler's new lr */
            double lr = groups[gi].lr * (1.0 - 0.03 * step);
            cpu.groups[gi].lr = gpu.groups[gi].lr = lr;
        }
        ck_assert_int_eq(lg_optim_step(&cpu, NULL, p, g), LG_OK);
        gpu.step++;
        for (int k = 0; k < NT; k++) {
            lg_cuda_optim_hyper h;
            lg_cuda_optim_hyper_for(&gpu, dev[k].group, &h);
            size_t o = dev[k].offset;
            float *s[3] = {NULL, NULL, NULL};
            for (int q = 0; q < gpu.nslots; q++)
                s[q] = gpu.slot[q] + o;
            for (size_t i = 0; i < cnt[k]; i++)
                lg_cuo_update(i, &h, dp + o, dg + o, s[0], s[1], s[2]);
        }
        for (int k = 0; k < NT; k++) {
            int same = memcmp(p + host[k].offset, dp + dev[k].offset, cnt[k] * sizeof(float)) == 0;
            for (int q = 0; q < cpu.nslots; q++)
                same &= memcmp(cpu.slot[q] + host[k].offset, gpu.slot[q] + dev[k].offset,
                               cnt[k] * sizeof(float)) == 0;
            if (!same)
                for (size_t i = 0; i < cnt[k]; i++)
                    ck_assert_msg(p[host[k].offset + i] == dp[dev[k].offset + i],
                                  "%s: step %d tensor %d element %zu: cpu %.9g device body %.9g", what, step, k,
                                  i, (double)p[host[k].offset + i], (double)dp[dev[k].offset + i]);
            ck_assert_msg(same, "%s: step %d tensor %d: a state slot differs", what, step, k);
        }
    }
    /* the gaps between tensors (zero parameters and gradients) stay zero */
    for (int k = 0; k + 1 < NT; k++)
        for (size_t i = dev[k].offset + cnt[k]; i < dev[k + 1].offset; i++)
            ck_assert_msg(dp[i] == 0, "%s: gap element %zu became %g", what, i, (double)dp[i]);
    free(p), free(g), free(dp), free(dg);
    lg_optim_free(&cpu);
    lg_optim_free(&gpu);
}

static lg_optim_config conf(lg_optim_kind kind, double lr) {
    lg_optim_config c;
    lg_optim_config_default(&c, kind);
    c.lr = lr;
    return c;
}

START_TEST(test_sgd) {
    lg_optim_config c = conf(LG_OPTIM_SGD, 0.1);
    run_case(&c, "sgd");
    c.momentum = 0.9;
    run_case(&c, "sgd momentum");
    c.dampening = 0.3;
    c.weight_decay = 1e-2;
    run_case(&c, "sgd momentum dampening weight_decay");
    c.dampening = 0;
    c.nesterov = 1;
    run_case(&c, "sgd nesterov weight_decay");
    c.maximize = 1;
    run_case(&c, "sgd nesterov maximize");
    c = conf(LG_OPTIM_SGD, 0.05);
    c.weight_decay = 5e-4;
    run_case(&c, "sgd weight_decay");
}
END_TEST

START_TEST(test_adam) {
    lg_optim_config c = conf(LG_OPTIM_ADAM, 1e-3);
    run_case(&c, "adam");
    c.weight_decay = 1e-2;
    run_case(&c, "adam weight_decay");
    c.amsgrad = 1;
    run_case(&c, "adam amsgrad");
    c.beta1 = 0.3; /* 1 - beta1 >= 0.5: lerp's other form */
    c.beta2 = 0.9;
    c.eps = 1e-6;
    run_case(&c, "adam betas (0.3, 0.9)");
    c = conf(LG_OPTIM_ADAM, 1e-2);
    c.maximize = 1;
    run_case(&c, "adam maximize");
}
END_TEST

START_TEST(test_adamw) {
    lg_optim_config c = conf(LG_OPTIM_ADAMW, 1e-3);
    run_case(&c, "adamw");
    c.amsgrad = 1;
    c.weight_decay = 0.1;
    run_case(&c, "adamw amsgrad");
}
END_TEST

START_TEST(test_rmsprop) {
    lg_optim_config c = conf(LG_OPTIM_RMSPROP, 1e-2);
    run_case(&c, "rmsprop");
    c.momentum = 0.9;
    run_case(&c, "rmsprop momentum");
    c.centered = 1;
    run_case(&c, "rmsprop momentum centered");
    c.momentum = 0;
    c.weight_decay = 1e-3;
    run_case(&c, "rmsprop centered weight_decay");
    c.alpha = 0.3; /* 1 - alpha >= 0.5 */
    run_case(&c, "rmsprop alpha 0.3");
}
END_TEST

START_TEST(test_hyper_constants) {
    /* the constants are optim.c's: SGD's first step, Adam's bias corrections */
    lg_optim_config c = conf(LG_OPTIM_ADAM, 2e-3);
    lg_optim_param par = {0, 4, 0};
    lg_optim o;
    lg_error err = {0};
    ck_assert(lg_optim_init(&o, &c, 0, NULL, 1, &par, 4, &err) == LG_OK);
    o.step = 3;
    lg_cuda_optim_hyper h;
    lg_cuda_optim_hyper_for(&o, 0, &h);
    ck_assert(h.step_size == (float)(2e-3 / (1.0 - pow(0.9, 3))));
    ck_assert(h.bc2s == (float)sqrt(1.0 - pow(0.999, 3)));
    ck_assert(h.lerp_lo && !h.decoupled && h.kind == LG_CUO_ADAM);
    lg_optim_free(&o);
    c = conf(LG_OPTIM_SGD, 0.1);
    c.momentum = 0.9;
    ck_assert(lg_optim_init(&o, &c, 0, NULL, 1, &par, 4, &err) == LG_OK);
    o.step = 1;
    lg_cuda_optim_hyper_for(&o, 0, &h);
    ck_assert(h.first && h.use_buf && h.damp == 1.0f);
    o.step = 2;
    lg_cuda_optim_hyper_for(&o, 0, &h);
    ck_assert(!h.first);
    lg_optim_free(&o);
}
END_TEST

START_TEST(test_grad_accumulate) {
    /* a micro-batch's f16/bf16 gradient added into the f32 one: exactly the
     * decoded value, infinities kept (the unscale step then sees them) */
    enum { N = 4096 };
    static uint16_t h16[N], b16[N];
    static float f[N], acc16[N], accb[N], acc32[N];
    for (int i = 0; i < N; i++) {
        f[i] = rnd() * (i % 97 == 0 ? 1e6f : 3.0f);
        h16[i] = lg_cuk_f32_to_f16(f[i]);
        b16[i] = lg_cuk_f32_to_bf16(f[i]);
        acc16[i] = accb[i] = acc32[i] = 0.25f * (float)i;
    }
    for (int i = 0; i < N; i++) {
        lg_cuo_grad_accumulate((size_t)i, LG_CUDA_F16, h16, acc16);
        lg_cuo_grad_accumulate((size_t)i, LG_CUDA_BF16, b16, accb);
        lg_cuo_grad_accumulate((size_t)i, LG_CUDA_F32, f, acc32);
    }
    for (int i = 0; i < N; i++) {
        ck_assert(acc16[i] == 0.25f * (float)i + lg_cuk_f16_to_f32(h16[i]));
        ck_assert(accb[i] == 0.25f * (float)i + lg_cuk_bf16_to_f32(b16[i]));
        ck_assert(acc32[i] == 0.25f * (float)i + f[i]);
        if (fabsf(f[i]) > 65520.0f)
            ck_assert(isinf(acc16[i]));
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cuda_optim");
    TCase *tc = tcase_create("bodies");
    tcase_add_test(tc, test_sgd);
    tcase_add_test(tc, test_adam);
    tcase_add_test(tc, test_adamw);
    tcase_add_test(tc, test_rmsprop);
    tcase_add_test(tc, test_hyper_constants);
    tcase_add_test(tc, test_grad_accumulate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
