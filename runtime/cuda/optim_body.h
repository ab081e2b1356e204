/* runtime/cuda/optim_body.h — the per-element bodies of the device optimizer
 * (lgen/cuda_optim.h): one fused update of a parameter, its gradient and
 * its state, and the mixed-precision gradient accumulation.
 *
 * Like body.h: static inline, LG_HD (host and device), so optim.cu runs them
 * over the grid and tests/check_cuda_optim.c runs them on the CPU over every
 * element, against runtime/optim/optim.c on the same inputs. The
 * arithmetic is optim.c's, expression for expression (its sgd_loop,
 * adam_loop and rmsprop_range), in float with the constants the host
 * computed in double (lg_cuda_optim_hyper_for); optim.cu is compiled with
 * -fmad=false so that nothing is contracted into FMAs on the device either.
 *
 * Neighbours: lgen/cuda_optim.h, optim.cu (launchers), optim_prep.c.
 */
#ifndef LGEN_CUDA_OPTIM_BODY_H
#define LGEN_CUDA_OPTIM_BODY_H

#include "body.h"
#include "lgen/cuda_optim.h"

/* kinds, as lg_optim_kind (lgen/optim.h is not C++-clean, so not included) */
enum { LG_CUO_SGD = 0, LG_CUO_ADAM = 1, LG_CUO_ADAMW = 2, LG_CUO_RMSPROP = 3 };

/* Element i of a group: p, g, and the slots s[0..2] (NULL where unused). */
LG_BODY void lg_cuo_update(size_t i, const lg_cuda_optim_hyper *h, float *p, const float *g, float *s0,
                           float *s1, float *s2) {
    float d = h->sign * g[i];
    if (h->kind == LG_CUO_SGD) {
        if (h->use_wd)
            d = d + h->wd * p[i];
        if (h->use_buf) {
            float bv = h->first ? d : s0[i] * h->mom + h->damp * d;
            s0[i] = bv;
            d = h->nesterov ? d + h->mom * bv : bv;
        }
        p[i] = p[i] + (-h->lr) * d;
    } else if (h->kind == LG_CUO_ADAM || h->kind == LG_CUO_ADAMW) {
        float x = p[i];
        if (h->decoupled)
            x = x * h->decay;
        else if (h->use_wd)
            d = d + h->wd * x;
        /* exp_avg.lerp_(grad, 1 - beta1), PyTorch's two forms */
        float m = s0[i];
        float mi = h->lerp_lo ? m + h->w1 * (d - m) : d - (d - m) * (1.0f - h->w1);
        float vi = s1[i] * h->b2 + h->w2 * d * d;
        s0[i] = mi;
        s1[i] = vi;
        if (h->amsgrad) {
            vi = s2[i] > vi ? s2[i] : vi;
            s2[i] = vi;
        }
        float denom = sqrtf(vi) / h->bc2s + h->eps;
        p[i] = x + (-h->step_size) * (mi / denom);
    } else { /* RMSprop: s0 square_avg, then momentum_buffer and grad_avg where present */
        float *buf = h->buf_slot == 1 ? s1 : h->buf_slot == 2 ? s2 : NULL;
        float *ga = h->avg_slot == 1 ? s1 : h->avg_slot == 2 ? s2 : NULL;
        if (h->use_wd)
            d = d + h->wd * p[i];
        float sq = s0[i] * h->alpha + h->wa * d * d;
        s0[i] = sq;
        float avg;
        if (ga) {
            float a = ga[i];
            a = h->wa < 0.5f ? a + h->wa * (d - a) : d - (d - a) * (1.0f - h->wa);
            ga[i] = a;
            avg = sqrtf(sq - a * a) + h->eps;
        } else {
            avg = sqrtf(sq) + h->eps;
        }
        if (buf) {
            float bv = buf[i] * h->mom + d / avg;
            buf[i] = bv;
            p[i] = p[i] + (-h->lr) * bv;
        } else {
            p[i] = p[i] + (-h->lr) * (d / avg);
        }
    }
}

/* dst[i] += src[i] read as dt. */
LG_BODY void lg_cuo_grad_accumulate(size_t i, int dt, const void *src, float *dst) {
    dst[i] = dst[i] + lg_cuk_load(src, i, dt);
}

#endif
