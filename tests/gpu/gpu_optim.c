/* tests/gpu/gpu_optim.c — the device optimizer (lgen/cuda_optim.h) on a GPU
 * against the CPU optimizer (runtime/optim/optim.c).
 *
 * `make check-gpu` runs it; without a device it prints "SKIP: ..." and
 * exits 0. For SGD (momentum, dampening, nesterov, weight decay, maximize),
 * Adam (weight decay, amsgrad), AdamW and RMSprop (momentum, centered) over
 * a block of three tensors in two parameter groups laid out as a generated
 * trainer lays them out (64-float boundaries, zero gaps), 20 steps with new
 * gradients and a new lr per step run through lg_cuda_optim_update on the
 * device and through lg_optim_step on the host; the parameters and every
 * state slot must agree bit for bit (optim.cu is built with -fmad=false),
 * or, with LG_OPTIM_TOL set, to that relative tolerance. Then the
 * mixed-precision gradient accumulation (f16, bf16) against its body. One
 * line per check; exit status 1 when any failed.
 */
#include "../../runtime/cuda/optim_body.h"
#include "lgen/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lg_cuda *cu;
static lg_error err;
static int failures;
static double tol;

#define TRY(call)                                                                              \
    do {                                                                                       \
        if ((call) != LG_OK) {                                                                 \
            fprintf(stderr, "gpu_optim: error: %s:%d: %s\n", __FILE__, __LINE__, err.msg);     \
            exit(2);                                                                           \
        }                                                                                      \
    } while (0)

#define NT 3
static const size_t cnt[NT] = {3000, 7, 10000};
static const int grp[NT] = {0, 1, 0};

static unsigned rs = 12345u;
static float rnd(void) {
    rs = rs * 1664525u + 1013904223u;
    return (float)(rs >> 8) / 16777216.0f * 2.0f - 1.0f;
}

/* 0 when a and b agree (bit for bit, or within tol relative) */
static int differ(const float *a, const float *b, size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++) {
        if (tol == 0 ? memcmp(&a[i], &b[i], sizeof(float)) != 0
                     : !(fabs((double)a[i] - b[i]) <= tol * (fabs((double)a[i]) + 1e-12))) {
            *at = i;
            return 1;
        }
    }
    return 0;
}

static void run_case(const lg_optim_config *cfg, const char *what) {
    lg_optim_param host[NT], dev[NT];
    size_t off = 0, doff = 0;
    for (int k = 0; k < NT; k++) {
        host[k] = (lg_optim_param){off, cnt[k], grp[k]};
        dev[k] = (lg_optim_param){doff, cnt[k], grp[k]};
        off += cnt[k];
        doff = (doff + cnt[k] + 63) / 64 * 64;
    }
    const size_t total = off, dtotal = doff;
    lg_optim_group groups[2] = {{cfg->lr, 0, cfg->weight_decay}, {cfg->lr * 3, 0, cfg->weight_decay * 0.5 + 1e-3}};
    lg_optim cpu, gpu;
    TRY(lg_optim_init(&cpu, cfg, 2, groups, NT, host, total, &err));
    TRY(lg_optim_init(&gpu, cfg, 2, groups, NT, dev, dtotal, &err));
    float *p = calloc(total, sizeof *p), *g = calloc(total, sizeof *g);
    float *hp = calloc(dtotal, sizeof *hp), *hg = calloc(dtotal, sizeof *hg);
    size_t bytes = dtotal * sizeof(float), al = (bytes + 255) & ~(size_t)255;
    float *dp = lg_cuda_arena(cu, 0), *dg = lg_cuda_arena(cu, al), *ds[3];
    for (int s = 0; s < 3; s++)
        ds[s] = lg_cuda_arena(cu, (2 + (size_t)s) * al);
    for (size_t i = 0; i < total; i++)
        p[i] = rnd();
    for (int k = 0; k < NT; k++)
        memcpy(hp + dev[k].offset, p + host[k].offset, cnt[k] * sizeof(float));
    TRY(lg_cuda_upload(cu, dp, hp, bytes, &err));
    for (int s = 0; s < 3; s++)
        TRY(lg_cuda_memset(cu, ds[s], 0, bytes, &err));
    int bad = 0;
    for (int step = 1; step <= 20 && !bad; step++) {
        for (int k = 0; k < NT; k++)
            for (size_t i = 0; i < cnt[k]; i++) {
                float v = rnd() * (step % 5 == 0 ? 10.0f : 0.5f);
                g[host[k].offset + i] = v;
                hg[dev[k].offset + i] = v;
            }
        TRY(lg_cuda_upload(cu, dg, hg, bytes, &err));
        for (int gi = 0; gi < 2; gi++)
            cpu.groups[gi].lr = gpu.groups[gi].lr = groups[gi].lr * (1.0 - 0.03 * step);
        TRY(lg_optim_step(&cpu, NULL, p, g));
        gpu.step++;
        for (int k = 0; k < NT; k++) {
            lg_cuda_optim_hyper h;
            lg_cuda_optim_hyper_for(&gpu, dev[k].group, &h);
            size_t o = dev[k].offset;
            float *const slot[3] = {gpu.nslots > 0 ? ds[0] + o : NULL, gpu.nslots > 1 ? ds[1] + o : NULL,
                                    gpu.nslots > 2 ? ds[2] + o : NULL};
            TRY(lg_cuda_optim_update(cu, &h, dp + o, dg + o, slot, cnt[k], &err));
        }
        TRY(lg_cuda_download(cu, hp, dp, bytes, &err));
        for (int k = 0; k < NT && !bad; k++) {
            size_t at;
            if (differ(p + host[k].offset, hp + dev[k].offset, cnt[k], &at)) {
                printf("FAIL %s: step %d tensor %d element %zu: cpu %.9g gpu %.9g\n", what, step, k, at,
                       (double)p[host[k].offset + at], (double)hp[dev[k].offset + at]);
                bad = 1;
            }
            for (int s = 0; s < cpu.nslots && !bad; s++) {
                TRY(lg_cuda_download(cu, hg, ds[s], bytes, &err));
                if (differ(cpu.slot[s] + host[k].offset, hg + dev[k].offset, cnt[k], &at)) {
                    printf("FAIL %s: step %d tensor %d %s element %zu\n", what, step, k,
                           lg_optim_slot_name(&cpu, s), at);
                    bad = 1;
                }
            }
        }
    }
    for (int k = 0; k + 1 < NT && !bad; k++)
        for (size_t i = dev[k].offset + cnt[k]; i < dev[k + 1].offset; i++)
            if (hp[i] != 0) {
                printf("FAIL %s: gap element %zu is %g\n", what, i, (double)hp[i]);
                bad = 1;
                break;
            }
    if (!bad)
        printf("ok   %s: 20 steps equal to the CPU optimizer%s\n", what, tol == 0 ? " bit for bit" : "");
    failures += bad;
    free(p), free(g), free(hp), free(hg);
    lg_optim_free(&cpu);
    lg_optim_free(&gpu);
}

static lg_optim_config conf(lg_optim_kind kind, double lr) {
    lg_optim_config c;
    lg_optim_config_default(&c, kind);
    c.lr = lr;
    return c;
}

static void check_accumulate(void) {
    enum { N = 100000 };
    static uint16_t h16[N];
    static float f[N], acc[N], want[N];
    for (int dt = LG_CUDA_F16; dt <= LG_CUDA_BF16; dt++) {
        for (int i = 0; i < N; i++) {
            f[i] = rnd() * (i % 97 == 0 ? 1e6f : 3.0f);
            h16[i] = dt == LG_CUDA_F16 ? lg_cuk_f32_to_f16(f[i]) : lg_cuk_f32_to_bf16(f[i]);
            acc[i] = want[i] = rnd();
            lg_cuo_grad_accumulate((size_t)i, dt, h16, want);
        }
        void *dsrc = lg_cuda_arena(cu, 0);
        float *ddst = lg_cuda_arena(cu, 1 << 20);
        TRY(lg_cuda_upload(cu, dsrc, h16, sizeof h16, &err));
        TRY(lg_cuda_upload(cu, ddst, acc, sizeof acc, &err));
        TRY(lg_cuda_grad_accumulate(cu, (lg_cuda_dtype)dt, dsrc, ddst, N, &err));
        TRY(lg_cuda_download(cu, acc, ddst, sizeof acc, &err));
        int bad = memcmp(acc, want, sizeof acc) != 0;
        printf("%s grad_accumulate %s into f32 (%d values, infinities kept)\n", bad ? "FAIL" : "ok  ",
               dt == LG_CUDA_F16 ? "f16" : "bf16", N);
        failures += bad;
    }
}

int main(void) {
    int n = 0;
    if (lg_cuda_device_count(&n, &err) != LG_OK) {
        printf("SKIP: %s\n", err.msg);
        return 0;
    }
    const char *t = getenv("LG_OPTIM_TOL");
    tol = t ? atof(t) : 0;
    lg_cuda_config cfg = {.device = 0, .arena_bytes = (size_t)16 << 20, .staging_bytes = 1 << 20,
                          .staging_slots = 2};
    TRY(lg_cuda_init(&cu, &cfg, &err));
    printf("device: %s\n", lg_cuda_describe(cu));
    lg_optim_config c = conf(LG_OPTIM_SGD, 0.1);
    run_case(&c, "sgd");
    c.momentum = 0.9, c.dampening = 0.3, c.weight_decay = 1e-2;
    run_case(&c, "sgd momentum dampening weight_decay");
    c.dampening = 0, c.nesterov = 1, c.maximize = 1;
    run_case(&c, "sgd nesterov maximize");
    c = conf(LG_OPTIM_ADAM, 1e-3);
    c.weight_decay = 1e-2;
    run_case(&c, "adam weight_decay");
    c.amsgrad = 1, c.beta1 = 0.3;
    run_case(&c, "adam amsgrad betas (0.3, 0.999)");
    c = conf(LG_OPTIM_ADAMW, 1e-3);
    c.amsgrad = 1;
    run_case(&c, "adamw amsgrad");
    c = conf(LG_OPTIM_RMSPROP, 1e-2);
    run_case(&c, "rmsprop");
    c.momentum = 0.9, c.centered = 1, c.weight_decay = 1e-3;
    run_case(&c, "rmsprop momentum centered weight_decay");
    check_accumulate();
    lg_cuda_free(cu);
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
