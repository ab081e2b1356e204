/* runtime/cuda/body.h — the per-thread bodies of lgen's own CUDA kernels.
 *
 * Every kernel the CUDA backend writes itself (everything that is not cuDNN or
 * cuBLAS) is split in two: a *body* here, which computes one thread's share of
 * the work from an index and plain pointers, and a *launcher* in kernels.cu,
 * which maps the grid onto that index. The bodies are `static inline` and
 * marked LG_HD: `__host__ __device__` under nvcc, nothing under a C compiler.
 * So the same text runs on the GPU and, in tests/check_cuda_body.c, on the
 * CPU over the whole grid (with no GPU present), where it is compared with
 * plain references and with numbers PyTorch produced.
 *
 * Conventions: N batch, C classes/channels, H, W spatial, K boxes/RoIs.
 * Tensors are contiguous, row-major (NCHW), float32 unless a name says f16
 * or bf16 (16-bit patterns kept in uint16_t). A body that several threads
 * may run against the same output uses LG_ATOMIC_ADD, which is atomicAdd on
 * the device and a plain += on the host (where the harness runs the grid
 * sequentially).
 *
 * Neighbours: lgen/cuda.h (public launchers, the activation enum), kernels.cu
 * (launchers), cuda.c (context, arena, cuBLAS, cuDNN), tests/check_cuda_body.c.
 */
#ifndef LGEN_CUDA_BODY_H
#define LGEN_CUDA_BODY_H

#include "lgen/cuda.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define LG_HD __host__ __device__
#else
#define LG_HD
#endif
#define LG_BODY static inline LG_HD

#if defined(__CUDA_ARCH__)
#define LG_ATOMIC_ADD(p, v) atomicAdd((p), (v))
#else
#define LG_ATOMIC_ADD(p, v) (*(p) += (v))
#endif

/* ---- bit views and finiteness ------------------------------------------ */

LG_BODY uint32_t lg_cuk_f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

LG_BODY float lg_cuk_u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* True for every value but +-inf and NaN (exponent bits not all ones). */
LG_BODY int lg_cuk_finite(float f) {
    return (lg_cuk_f2u(f) & 0x7f800000u) != 0x7f800000u;
}

/* ---- fp16 and bf16 conversions (round to nearest, ties to even) --------- */

/* float32 -> IEEE binary16 bits, as c10::Half / torch .half(): values from
 * 65520 up become infinity, NaN becomes sign | 0x7e00, subnormals round
 * correctly. */
LG_BODY uint16_t lg_cuk_f32_to_f16(float f) {
    uint32_t x = lg_cuk_f2u(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u) /* 65520 and up: rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* below 2^-14: a half subnormal or zero */
        uint32_t e = a >> 23;
        if (e < 102) /* below 2^-25: rounds to zero */
            return (uint16_t)sign;
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* units of 2^-24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t h = (a - 0x38000000u) >> 13; /* rebias 127 -> 15 */
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

/* IEEE binary16 bits -> float32 (exact). */
LG_BODY float lg_cuk_f16_to_f32(uint16_t h) {
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t e = ((uint32_t)h >> 10) & 0x1fu;
    uint32_t m = (uint32_t)h & 0x3ffu;
    uint32_t bits;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | (m << 13);
    } else if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            e = 113;
            while (!(m & 0x400u)) {
                m <<= 1;
                e--;
            }
            bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
        }
    } else {
        bits = sign | ((e + 112) << 23) | (m << 13);
    }
    return lg_cuk_u2f(bits);
}

/* float32 -> bfloat16 bits, as c10::BFloat16: NaN becomes 0x7fc0. */
LG_BODY uint16_t lg_cuk_f32_to_bf16(float f) {
    uint32_t x = lg_cuk_f2u(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return 0x7fc0u;
    uint32_t bias = ((x >> 16) & 1u) + 0x7fffu;
    return (uint16_t)((x + bias) >> 16);
}

LG_BODY float lg_cuk_bf16_to_f32(uint16_t b) {
    return lg_cuk_u2f((uint32_t)b << 16);
}

/* Element i of a buffer of dtype dt, as float, and back (rounding). The
 * launchers pass dt as a template constant, so the switch folds away. */
LG_BODY float lg_cuk_load(const void *p, size_t i, int dt) {
    if (dt == LG_CUDA_F16)
        return lg_cuk_f16_to_f32(((const uint16_t *)p)[i]);
    if (dt == LG_CUDA_BF16)
        return lg_cuk_bf16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

LG_BODY void lg_cuk_store(void *p, size_t i, int dt, float v) {
    if (dt == LG_CUDA_F16)
        ((uint16_t *)p)[i] = lg_cuk_f32_to_f16(v);
    else if (dt == LG_CUDA_BF16)
        ((uint16_t *)p)[i] = lg_cuk_f32_to_bf16(v);
    else
        ((float *)p)[i] = v;
}

/* ---- elementwise activations ------------------------------------------- */

#define LG_CUK_SQRT1_2 0.70710678118654752440f
#define LG_CUK_INV_SQRT_2PI 0.39894228040143267794f
#define LG_CUK_SQRT_2_OVER_PI 0.79788456080286535588f

LG_BODY float lg_cuk_sigmoid(float x) {
    return 1.0f / (1.0f + expf(-x));
}

/* One element of the forward pass; alpha is leaky_relu's negative slope. */
LG_BODY float lg_cuk_act_forward(int act, float x, float alpha) {
    switch (act) {
    case LG_CUDA_ACT_RELU: return (x > 0.0f || x != x) ? x : 0.0f;
    case LG_CUDA_ACT_LEAKY_RELU: return x > 0.0f ? x : alpha * x;
    case LG_CUDA_ACT_SIGMOID: return lg_cuk_sigmoid(x);
    case LG_CUDA_ACT_TANH: return tanhf(x);
    case LG_CUDA_ACT_GELU: return 0.5f * x * (1.0f + erff(x * LG_CUK_SQRT1_2));
    case LG_CUDA_ACT_GELU_TANH: {
        float inner = LG_CUK_SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(inner));
    }
    case LG_CUDA_ACT_SILU: return x * lg_cuk_sigmoid(x);
    }
    return x;
}

/* One element of the backward pass: dx from the input x, the forward output
 * y and the output gradient dy (PyTorch's formulas, which use y where they
 * can: sigmoid and tanh). */
LG_BODY float lg_cuk_act_backward(int act, float x, float y, float dy, float alpha) {
    switch (act) {
    case LG_CUDA_ACT_RELU: return y > 0.0f ? dy : 0.0f;
    case LG_CUDA_ACT_LEAKY_RELU: return x > 0.0f ? dy : alpha * dy;
    case LG_CUDA_ACT_SIGMOID: return dy * (1.0f - y) * y;
    case LG_CUDA_ACT_TANH: return dy * (1.0f - y * y);
    case LG_CUDA_ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * LG_CUK_SQRT1_2));
        float pdf = expf(-0.5f * x * x) * LG_CUK_INV_SQRT_2PI;
        return dy * (cdf + x * pdf);
    }
    case LG_CUDA_ACT_GELU_TANH: {
        const float beta = LG_CUK_SQRT_2_OVER_PI, kappa = 0.044715f;
        float x2 = x * x;
        float t = tanhf(beta * (x + kappa * x2 * x));
        float left = 0.5f * x, right = 1.0f + t;
        float dleft = 0.5f * right;
        float dright = left * (1.0f - t * t) * beta * (1.0f + 3.0f * kappa * x2);
        return dy * (dleft + dright);
    }
    case LG_CUDA_ACT_SILU: {
        float s = lg_cuk_sigmoid(x);
        return dy * s * (1.0f + x * (1.0f - s));
    }
    }
    return dy;
}

/* ---- elementwise arithmetic ----------------------------------------------- */

LG_BODY float lg_cuk_add(float a, float b) {
    return a + b;
}

LG_BODY float lg_cuk_mul(float a, float b) {
    return a * b;
}

/* ---- dropout ----------------------------------------------------------------- */
/* The CPU kernel's counter-based generator (runtime/ops/pointwise.inc): an
 * element is kept when the splitmix64 hash of (seed, index) is at or above
 * p * 2^53, so the GPU drops exactly the elements the CPU drops, for any
 * grid. seed comes from lg_dropout_seed(seed, step, layer); keep_thresh is
 * (uint64_t)(p * 2^53) and scale (float)(1 / (1 - p)), both computed on the
 * host in double as the CPU kernel does. */

LG_BODY uint64_t lg_cuk_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

LG_BODY float lg_cuk_dropout(size_t i, uint64_t seed, uint64_t keep_thresh, float scale, float x,
                             uint8_t *mask) {
    uint8_t keep = (lg_cuk_mix64(seed ^ (uint64_t)i * 0xd1342543de82ef95ULL) >> 11) >= keep_thresh;
    mask[i] = keep;
    return keep ? x * scale : 0.0f;
}

/* ---- softmax / log_softmax over x viewed as [outer, dim, inner] --------------- */
/* One thread per (outer, inner) pair walks the dim axis (stride inner).
 * x, y, dy, dx in dtype dt; the maximum, the sums and the exponentials in
 * float (mixed precision reads f16/bf16 and rounds only the results). */

LG_BODY void lg_cuk_softmax_forward(size_t t, int dt, size_t dim, size_t inner, int log_, const void *x,
                                    void *y) {
    size_t o = t / inner, in = t % inner, base = o * dim * inner + in;
    float m = -INFINITY;
    for (size_t k = 0; k < dim; k++)
        m = fmaxf(m, lg_cuk_load(x, base + k * inner, dt));
    float s = 0.0f;
    for (size_t k = 0; k < dim; k++)
        s += expf(lg_cuk_load(x, base + k * inner, dt) - m);
    if (log_) {
        float ls = logf(s);
        for (size_t k = 0; k < dim; k++) {
            size_t i = base + k * inner;
            lg_cuk_store(y, i, dt, lg_cuk_load(x, i, dt) - m - ls);
        }
    } else {
        for (size_t k = 0; k < dim; k++) {
            size_t i = base + k * inner;
            lg_cuk_store(y, i, dt, expf(lg_cuk_load(x, i, dt) - m) / s);
        }
    }
}

/* dx from the forward output y and dy. */
LG_BODY void lg_cuk_softmax_backward(size_t t, int dt, size_t dim, size_t inner, int log_, const void *y,
                                     const void *dy, void *dx) {
    size_t o = t / inner, in = t % inner, base = o * dim * inner + in;
    float s = 0.0f;
    for (size_t k = 0; k < dim; k++) {
        size_t i = base + k * inner;
        s += log_ ? lg_cuk_load(dy, i, dt) : lg_cuk_load(dy, i, dt) * lg_cuk_load(y, i, dt);
    }
    for (size_t k = 0; k < dim; k++) {
        size_t i = base + k * inner;
        float yi = lg_cuk_load(y, i, dt), gi = lg_cuk_load(dy, i, dt);
        lg_cuk_store(dx, i, dt, log_ ? gi - expf(yi) * s : yi * (gi - s));
    }
}

/* ---- global average pooling: x [N*C, hw] -> y [N*C], dtype dt ------------------ */

LG_BODY void lg_cuk_global_avg_pool_forward(size_t p, int dt, size_t hw, const void *x, void *y) {
    float s = 0.0f;
    for (size_t i = 0; i < hw; i++)
        s += lg_cuk_load(x, p * hw + i, dt);
    lg_cuk_store(y, p, dt, s / (float)hw);
}

LG_BODY float lg_cuk_global_avg_pool_backward(size_t i, int dt, size_t hw, const void *dy) {
    return lg_cuk_load(dy, i / hw, dt) / (float)hw;
}

/* ---- layer_norm over the last D elements of each row --------------------- */
/* Forward: one thread per row (statistics in double, as the CPU kernel);
 * backward: one thread per row for dx, one per column for dweight and
 * dbias (which accumulate, +=). x, y, dy, dx, the weight, the bias and
 * their gradients in dtype dt (a layer's f16/bf16 copies under mixed
 * precision); save_mean and save_invstd [rows] are float32. */

LG_BODY void lg_cuk_layer_norm_forward(size_t r, int dt, size_t D, float eps, const void *x,
                                       const void *w, const void *b, void *y, float *save_mean,
                                       float *save_invstd) {
    size_t row = r * D;
    double s = 0.0, ss = 0.0;
    for (size_t k = 0; k < D; k++)
        s += lg_cuk_load(x, row + k, dt);
    double mean = s / (double)D;
    for (size_t k = 0; k < D; k++) {
        double d = (double)lg_cuk_load(x, row + k, dt) - mean;
        ss += d * d;
    }
    double invstd = 1.0 / sqrt(ss / (double)D + (double)eps);
    for (size_t k = 0; k < D; k++) {
        double v = ((double)lg_cuk_load(x, row + k, dt) - mean) * invstd;
        lg_cuk_store(y, row + k, dt,
                     w ? (float)(v * lg_cuk_load(w, k, dt) + lg_cuk_load(b, k, dt)) : (float)v);
    }
    save_mean[r] = (float)mean;
    save_invstd[r] = (float)invstd;
}

LG_BODY void lg_cuk_layer_norm_backward(size_t r, int dt, size_t D, const void *x, const void *w,
                                        const float *save_mean, const float *save_invstd,
                                        const void *dy, void *dx) {
    size_t row = r * D;
    double mean = save_mean[r], invstd = save_invstd[r], s1 = 0.0, s2 = 0.0;
    for (size_t k = 0; k < D; k++) {
        double gk = (double)lg_cuk_load(dy, row + k, dt) * (w ? lg_cuk_load(w, k, dt) : 1.0f);
        s1 += gk;
        s2 += gk * ((double)lg_cuk_load(x, row + k, dt) - mean) * invstd;
    }
    s1 /= (double)D;
    s2 /= (double)D;
    for (size_t k = 0; k < D; k++) {
        double gk = (double)lg_cuk_load(dy, row + k, dt) * (w ? lg_cuk_load(w, k, dt) : 1.0f);
        double xhat = ((double)lg_cuk_load(x, row + k, dt) - mean) * invstd;
        lg_cuk_store(dx, row + k, dt, (float)(invstd * (gk - s1 - xhat * s2)));
    }
}

LG_BODY void lg_cuk_layer_norm_param_grad(size_t k, int dt, size_t rows, size_t D, const void *x,
                                          const float *save_mean, const float *save_invstd,
                                          const void *dy, void *dweight, void *dbias) {
    double sw = 0.0, sb = 0.0;
    for (size_t r = 0; r < rows; r++) {
        double g = lg_cuk_load(dy, r * D + k, dt);
        sw += g * ((double)lg_cuk_load(x, r * D + k, dt) - save_mean[r]) * save_invstd[r];
        sb += g;
    }
    if (dweight)
        lg_cuk_store(dweight, k, dt, lg_cuk_load(dweight, k, dt) + (float)sw);
    if (dbias)
        lg_cuk_store(dbias, k, dt, lg_cuk_load(dbias, k, dt) + (float)sb);
}

/* ---- max / avg pooling with PyTorch's windows (own kernels) ------------------ */

/* Output size along one axis, ceil_mode included (a last window must start
 * inside the input or its left padding); 0 when the input is too small. */
LG_BODY int lg_cuk_pool_out(int in, int k, int s, int p, int ceil_mode) {
    long num = (long)in + 2L * p - k + (ceil_mode ? s - 1 : 0);
    if (num < 0)
        return 0;
    long out = num / s + 1;
    if (ceil_mode && (out - 1) * s >= (long)in + p)
        out--;
    return (int)out;
}

/* y[p, oh, ow] = max over the window (NaN wins, first maximum on ties);
 * argmax gets its index in the H*W plane. */
LG_BODY void lg_cuk_max_pool_forward(size_t idx, const lg_cuda_pool2d *d, int dt, const void *x,
                                     void *y, int32_t *argmax) {
    size_t OW = (size_t)d->OW, OH = (size_t)d->OH;
    int ow = (int)(idx % OW), oh = (int)(idx / OW % OH);
    size_t base = idx / (OW * OH) * (size_t)d->H * (size_t)d->W;
    int h0 = oh * d->sh - d->ph, h1 = h0 + d->kh, w0 = ow * d->sw - d->pw, w1 = w0 + d->kw;
    h1 = h1 < d->H ? h1 : d->H;
    w1 = w1 < d->W ? w1 : d->W;
    h0 = h0 > 0 ? h0 : 0;
    w0 = w0 > 0 ? w0 : 0;
    float best = -INFINITY;
    int32_t bi = h0 * d->W + w0;
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++) {
            float v = lg_cuk_load(x, base + (size_t)(ih * d->W + iw), dt);
            if (v > best || v != v) {
                best = v;
                bi = ih * d->W + iw;
            }
        }
    lg_cuk_store(y, idx, dt, best);
    if (argmax)
        argmax[idx] = bi;
}

/* The range of outputs along one axis whose windows cover input i. */
LG_BODY void lg_cuk_pool_covering(int i, int k, int s, int p, int out, int *o0, int *o1) {
    int lo = i + p - k + 1; /* o * s >= lo */
    int a = lo <= 0 ? 0 : (lo + s - 1) / s;
    int b = (i + p) / s + 1; /* o * s <= i + p */
    *o0 = a;
    *o1 = b < out ? b : out;
}

/* dx[p, ih, iw] (written) = sum of dy over the outputs whose arg-max is
 * this element, in output order (as the CPU kernel adds them). */
LG_BODY void lg_cuk_max_pool_backward(size_t idx, const lg_cuda_pool2d *d, int dt,
                                      const int32_t *argmax, const void *dy, void *dx) {
    size_t W = (size_t)d->W, H = (size_t)d->H;
    int iw = (int)(idx % W), ih = (int)(idx / W % H);
    size_t obase = idx / (W * H) * (size_t)d->OH * (size_t)d->OW;
    int32_t me = ih * d->W + iw;
    int oh0, oh1, ow0, ow1;
    lg_cuk_pool_covering(ih, d->kh, d->sh, d->ph, d->OH, &oh0, &oh1);
    lg_cuk_pool_covering(iw, d->kw, d->sw, d->pw, d->OW, &ow0, &ow1);
    float s = 0.0f;
    for (int oh = oh0; oh < oh1; oh++)
        for (int ow = ow0; ow < ow1; ow++) {
            size_t o = obase + (size_t)(oh * d->OW + ow);
            if (argmax[o] == me)
                s += lg_cuk_load(dy, o, dt);
        }
    lg_cuk_store(dx, idx, dt, s);
}

/* avg_pool2d's window of output (oh, ow), clipped to the input, and the
 * reciprocal of its divisor (PyTorch's, count_include_pad or not). */
LG_BODY float lg_cuk_avg_window(const lg_cuda_pool2d *d, int oh, int ow, int *h0, int *h1, int *w0,
                                int *w1) {
    int hs = oh * d->sh - d->ph, ws = ow * d->sw - d->pw;
    int he = hs + d->kh, we = ws + d->kw;
    he = he < d->H + d->ph ? he : d->H + d->ph;
    we = we < d->W + d->pw ? we : d->W + d->pw;
    int pool = (he - hs) * (we - ws);
    hs = hs > 0 ? hs : 0;
    ws = ws > 0 ? ws : 0;
    he = he < d->H ? he : d->H;
    we = we < d->W ? we : d->W;
    *h0 = hs, *h1 = he, *w0 = ws, *w1 = we;
    int div = d->count_include_pad ? pool : (he - hs) * (we - ws);
    return div > 0 ? 1.0f / (float)div : 0.0f;
}

LG_BODY void lg_cuk_avg_pool_forward(size_t idx, const lg_cuda_pool2d *d, int dt, const void *x,
                                     void *y) {
    size_t OW = (size_t)d->OW, OH = (size_t)d->OH;
    int ow = (int)(idx % OW), oh = (int)(idx / OW % OH);
    size_t base = idx / (OW * OH) * (size_t)d->H * (size_t)d->W;
    int h0, h1, w0, w1;
    float inv = lg_cuk_avg_window(d, oh, ow, &h0, &h1, &w0, &w1);
    float s = 0.0f;
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++)
            s += lg_cuk_load(x, base + (size_t)(ih * d->W + iw), dt);
    lg_cuk_store(y, idx, dt, s * inv);
}

LG_BODY void lg_cuk_avg_pool_backward(size_t idx, const lg_cuda_pool2d *d, int dt, const void *dy,
                                      void *dx) {
    size_t W = (size_t)d->W, H = (size_t)d->H;
    int iw = (int)(idx % W), ih = (int)(idx / W % H);
    size_t obase = idx / (W * H) * (size_t)d->OH * (size_t)d->OW;
    int oh0, oh1, ow0, ow1;
    lg_cuk_pool_covering(ih, d->kh, d->sh, d->ph, d->OH, &oh0, &oh1);
    lg_cuk_pool_covering(iw, d->kw, d->sw, d->pw, d->OW, &ow0, &ow1);
    float s = 0.0f;
    for (int oh = oh0; oh < oh1; oh++)
        for (int ow = ow0; ow < ow1; ow++) {
            int h0, h1, w0, w1;
            float inv = lg_cuk_avg_window(d, oh, ow, &h0, &h1, &w0, &w1);
            if (ih >= h0 && ih < h1 && iw >= w0 && iw < w1)
                s += lg_cuk_load(dy, obase + (size_t)(oh * d->OW + ow), dt) * inv;
        }
    lg_cuk_store(dx, idx, dt, s);
}

/* ---- adaptive average pooling (PyTorch's bins) ------------------------------- */

LG_BODY size_t lg_cuk_bin_start(size_t i, size_t in, size_t out) {
    return i * in / out;
}

LG_BODY size_t lg_cuk_bin_end(size_t i, size_t in, size_t out) {
    return ((i + 1) * in + out - 1) / out;
}

/* y[p, oh, ow] over planes p = n * C + c; one thread per output element;
 * x and y in dtype dt, the bin's sum in double as the CPU kernel. */
LG_BODY void lg_cuk_adaptive_pool_forward(size_t idx, int dt, size_t H, size_t W, size_t OH, size_t OW,
                                          const void *x, void *y) {
    size_t ow = idx % OW, oh = idx / OW % OH, p = idx / (OW * OH);
    size_t h0 = lg_cuk_bin_start(oh, H, OH), h1 = lg_cuk_bin_end(oh, H, OH);
    size_t w0 = lg_cuk_bin_start(ow, W, OW), w1 = lg_cuk_bin_end(ow, W, OW);
    double s = 0.0;
    for (size_t h = h0; h < h1; h++)
        for (size_t w = w0; w < w1; w++)
            s += lg_cuk_load(x, (p * H + h) * W + w, dt);
    lg_cuk_store(y, idx, dt, (float)(s / (double)((h1 - h0) * (w1 - w0))));
}

/* dx[p, h, w] (written): one thread per input element gathers from every
 * output bin that contains it. */
LG_BODY void lg_cuk_adaptive_pool_backward(size_t idx, int dt, size_t H, size_t W, size_t OH, size_t OW,
                                           const void *dy, void *dx) {
    size_t w = idx % W, h = idx / W % H, p = idx / (W * H);
    float s = 0.0f;
    for (size_t oh = 0; oh < OH; oh++) {
        size_t h0 = lg_cuk_bin_start(oh, H, OH), h1 = lg_cuk_bin_end(oh, H, OH);
        if (h < h0 || h >= h1)
            continue;
        for (size_t ow = 0; ow < OW; ow++) {
            size_t w0 = lg_cuk_bin_start(ow, W, OW), w1 = lg_cuk_bin_end(ow, W, OW);
            if (w >= w0 && w < w1)
                s += lg_cuk_load(dy, (p * OH + oh) * OW + ow, dt) / (float)((h1 - h0) * (w1 - w0));
        }
    }
    lg_cuk_store(dx, idx, dt, s);
}

/* ---- upsample_nearest by an integer scale --------------------------------------- */
/* [planes, H, W] -> [planes, H * scale, W * scale], dtype dt: forward one
 * thread per output element (a copy), backward one per input element (the
 * sum of its scale x scale block, in float). */

LG_BODY void lg_cuk_upsample_forward(size_t idx, int dt, size_t H, size_t W, int scale, const void *x,
                                     void *y) {
    size_t OW = W * (size_t)scale, OH = H * (size_t)scale;
    size_t ow = idx % OW, oh = idx / OW % OH, p = idx / (OW * OH);
    lg_cuk_store(y, idx, dt, lg_cuk_load(x, (p * H + oh / (size_t)scale) * W + ow / (size_t)scale, dt));
}

LG_BODY void lg_cuk_upsample_backward(size_t idx, int dt, size_t H, size_t W, int scale, const void *dy,
                                      void *dx) {
    size_t w = idx % W, h = idx / W % H, p = idx / (W * H), S = (size_t)scale;
    size_t OW = W * S;
    float s = 0.0f;
    for (size_t a = 0; a < S; a++)
        for (size_t b = 0; b < S; b++)
            s += lg_cuk_load(dy, (p * H * S + h * S + a) * OW + w * S + b, dt);
    lg_cuk_store(dx, idx, dt, s);
}

/* ---- rpn_flatten: an RPN head's level map into rows in anchor order ------------ */
/* A level's map x [N, A * D, H, W] (a conv output) goes to rows
 * (N, total, D) of the flattened output, starting at row `offset` of each
 * image, in torchvision's order (location, then anchor): the element of
 * x's index idx lands at the returned index. Forward scatters x there,
 * backward gathers the gradient back (lg_rpn_permute_forward/_backward). */
LG_BODY size_t lg_cuk_rpn_flatten_dst(size_t idx, size_t A, size_t D, size_t hw, size_t total,
                                      size_t offset) {
    size_t p = idx % hw, t = idx / hw;
    size_t d = t % D;
    t /= D;
    size_t a = t % A, n = t / A;
    return (n * total + offset + p * A + a) * D + d;
}

/* ---- transpose: x [outer, A, mid, B, inner] -> y [outer, B, mid, A, inner] ----- */

/* The x index of y's element idx (a gather: one thread per output). */
LG_BODY size_t lg_cuk_transpose_src(size_t idx, size_t A, size_t mid, size_t B, size_t inner) {
    size_t in = idx % inner, t = idx / inner;
    size_t a = t % A;
    t /= A;
    size_t m = t % mid;
    t /= mid;
    size_t b = t % B, o = t / B;
    return (((o * A + a) * mid + m) * B + b) * inner + in;
}

/* ---- concat / split along a dimension: y [outer, sum sizes] ---------------------- */

/* Which input holds y's element idx and where: returns the input index
 * and sets *src to the element within it. sizes[k] = dim_k * inner. */
LG_BODY int lg_cuk_concat_src(size_t idx, int k, const size_t *sizes, size_t total, size_t *src) {
    size_t o = idx / total, col = idx % total;
    int i = 0;
    while (i < k - 1 && col >= sizes[i]) {
        col -= sizes[i];
        i++;
    }
    *src = o * sizes[i] + col;
    return i;
}

/* A launch takes at most LG_CUDA_MAX_CONCAT pieces, the columns col0 ..
 * col0 + total - 1 of the whole tensor (rows of `stride`): the whole
 * tensor's index of the launch's element idx. */
LG_BODY size_t lg_cuk_concat_whole(size_t idx, size_t total, size_t stride, size_t col0) {
    return idx / total * stride + col0 + idx % total;
}

/* 1 when the label is among the k largest logits of its row (ties: lower
 * index first, as topk). */
LG_BODY float lg_cuk_topk_row(size_t i, const float *logits, const int32_t *labels, int C, int k) {
    const float *x = logits + i * (size_t)C;
    int t = labels[i];
    if (t < 0 || t >= C)
        return 0.0f;
    int rank = 0;
    for (int c = 0; c < C; c++)
        rank += x[c] > x[t] || (c < t && x[c] == x[t]);
    return rank < k ? 1.0f : 0.0f;
}

/* ---- elementwise losses and reductions ---------------------------------------- */
/* One element's term of a sum (the launcher reduces and scales by 1/count
 * for "mean") and one element's gradient factor (times dloss * scale). */

LG_BODY float lg_cuk_reduce_term(int kind, float x, float t, float beta) {
    float d = x - t, a = fabsf(d);
    switch (kind) {
    case LG_CUDA_LOSS_BCE_WITH_LOGITS: return fmaxf(x, 0.0f) - x * t + log1pf(expf(-fabsf(x)));
    case LG_CUDA_LOSS_MSE: return d * d;
    case LG_CUDA_LOSS_L1: return a;
    case LG_CUDA_LOSS_SMOOTH_L1: return a < beta ? 0.5f * d * d / beta : a - 0.5f * beta;
    case LG_CUDA_REDUCE_SUM: return x;
    case LG_CUDA_REDUCE_SQUARES: return x * x;
    }
    return 0.0f;
}

LG_BODY float lg_cuk_loss_grad(int kind, float x, float t, float beta) {
    float d = x - t, sg = (float)((d > 0.0f) - (d < 0.0f));
    switch (kind) {
    case LG_CUDA_LOSS_BCE_WITH_LOGITS: return 1.0f / (1.0f + expf(-x)) - t;
    case LG_CUDA_LOSS_MSE: return 2.0f * d;
    case LG_CUDA_LOSS_L1: return sg;
    case LG_CUDA_LOSS_SMOOTH_L1: return fabsf(d) < beta ? d / beta : sg;
    }
    return 0.0f;
}

/* ---- gradient clipping (torch.nn.utils.clip_grad_norm_, 2-norm) ---------------- */

/* The factor the gradients are multiplied by, from the sum of squares:
 * max_norm / (norm + 1e-6) when that is below 1 (or NaN), else 1. */
LG_BODY float lg_cuk_clip_coef(double sum_squares, double max_norm, float *norm) {
    double total = sqrt(sum_squares);
    double coef = max_norm / (total + 1e-6);
    *norm = (float)total;
    return (coef < 1.0 || coef != coef) ? (float)coef : 1.0f;
}

LG_BODY float lg_cuk_clip_value(float g, float v) {
    return g > v ? v : g < -v ? -v : g;
}

/* ---- linear bias gradient ----------------------------------------------- */

/* db[j] (+)= sum over n of dy[n, j], dy and db in dtype dt, summed in
 * float; one thread per output feature j. */
LG_BODY void lg_cuk_bias_grad(size_t j, int dt, const void *dy, size_t N, size_t out, void *db,
                              int accumulate) {
    float s = 0.0f;
    for (size_t n = 0; n < N; n++)
        s += lg_cuk_load(dy, n * out + j, dt);
    lg_cuk_store(db, j, dt, accumulate ? lg_cuk_load(db, j, dt) + s : s);
}

/* A convolution's bias gradient: db[c] (+)= sum over n and the HW output
 * positions of dy[n, c, hw] (NCHW), summed in float; one thread per channel
 * (cuDNN's cudnnConvolutionBackwardBias has no bf16 path). */
LG_BODY void lg_cuk_conv_bias_grad(size_t c, int dt, const void *dy, size_t N, size_t C, size_t HW,
                                   void *db, int accumulate) {
    float s = 0.0f;
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < HW; k++)
            s += lg_cuk_load(dy, (n * C + c) * HW + k, dt);
    lg_cuk_store(db, c, dt, accumulate ? lg_cuk_load(db, c, dt) + s : s);
}

/* y[n, j] += b[j] over y [N, out] in dtype dt; one thread per element (the
 * linear layer's bias when the fused epilogue cannot be used). */
LG_BODY void lg_cuk_bias_add(size_t idx, int dt, void *y, const void *b, size_t out) {
    lg_cuk_store(y, idx, dt, lg_cuk_load(y, idx, dt) + lg_cuk_load(b, idx % out, dt));
}

/* ---- softmax cross entropy ---------------------------------------------- */
/* PyTorch's F.cross_entropy(logits, labels, weight, ignore_index,
 * label_smoothing, reduction). The forward pass is a row body (one thread
 * per sample) that leaves each row's loss, weight and log-sum-exp, then a
 * reduction; the backward pass is one thread per logit. A label outside
 * [0, C) that is not ignore_index gives a NaN loss (PyTorch raises; a device
 * cannot, and the trainer's finite-loss check reports it). */

LG_BODY void lg_cuk_ce_row(size_t i, const lg_cuda_ce *d, const float *logits, const int32_t *labels,
                           const float *weight, float *row_loss, float *row_weight, float *lse) {
    const float *x = logits + i * (size_t)d->C;
    float m = x[0];
    for (int c = 1; c < d->C; c++)
        m = fmaxf(m, x[c]);
    float s = 0.0f;
    for (int c = 0; c < d->C; c++)
        s += expf(x[c] - m);
    float l = m + logf(s);
    lse[i] = l;
    int y = labels[i];
    if (y == d->ignore_index) {
        row_loss[i] = 0.0f;
        row_weight[i] = 0.0f;
        return;
    }
    if (y < 0 || y >= d->C) {
        row_loss[i] = NAN;
        row_weight[i] = 1.0f;
        return;
    }
    float wy = weight ? weight[y] : 1.0f;
    float loss = (1.0f - d->label_smoothing) * wy * (l - x[y]);
    if (d->label_smoothing > 0.0f) {
        float smooth = 0.0f;
        for (int c = 0; c < d->C; c++)
            smooth += (weight ? weight[c] : 1.0f) * (l - x[c]);
        loss += d->label_smoothing / (float)d->C * smooth;
    }
    row_loss[i] = loss;
    row_weight[i] = wy;
}

/* From the sums of the rows' losses and weights: the loss, and the divisor
 * the backward pass uses (the weight sum for "mean", 1 for "sum"). */
LG_BODY void lg_cuk_ce_finish(const lg_cuda_ce *d, float loss_sum, float weight_sum, float *loss,
                              float *divisor) {
    float div = d->reduction_sum ? 1.0f : weight_sum;
    *divisor = div;
    *loss = loss_sum / div;
}

/* dlogits[i, c]; wsum is the sum of the class weights (C without weights). */
LG_BODY void lg_cuk_ce_backward(size_t idx, const lg_cuda_ce *d, const float *logits,
                                const int32_t *labels, const float *weight, float wsum,
                                const float *lse, float dloss, float divisor, float *dlogits) {
    size_t i = idx / (size_t)d->C;
    int c = (int)(idx % (size_t)d->C);
    int y = labels[i];
    if (y == d->ignore_index || y < 0 || y >= d->C) {
        dlogits[idx] = 0.0f;
        return;
    }
    float p = expf(logits[idx] - lse[i]);
    float wy = weight ? weight[y] : 1.0f;
    float wc = weight ? weight[c] : 1.0f;
    float g = (1.0f - d->label_smoothing) * wy * (p - (c == y ? 1.0f : 0.0f));
    if (d->label_smoothing > 0.0f)
        g += d->label_smoothing / (float)d->C * (p * wsum - wc);
    dlogits[idx] = g * (dloss / divisor);
}

/* 1 when the row's first maximum is at its label, else 0. */
LG_BODY float lg_cuk_accuracy_row(size_t i, const float *logits, const int32_t *labels, int C) {
    const float *x = logits + i * (size_t)C;
    int best = 0;
    for (int c = 1; c < C; c++)
        if (x[c] > x[best])
            best = c;
    return best == labels[i] ? 1.0f : 0.0f;
}

/* ---- optimizers (torch.optim, single-tensor path) ------------------------ */
/* Each update is one thread per parameter element. `skip` (may be NULL)
 * points at the loss scaler's found-inf flag: when set, the step is skipped,
 * as GradScaler.step does, without the host reading the flag back. */

LG_BODY void lg_cuk_sgd_update(size_t i, const lg_cuda_sgd *h, int first_step, float *param,
                               const float *grad, float *momentum_buf, const int *skip) {
    if (skip && *skip)
        return;
    float g = h->maximize ? -grad[i] : grad[i];
    if (h->weight_decay != 0.0f)
        g += h->weight_decay * param[i];
    if (h->momentum != 0.0f) {
        float b = first_step ? g : h->momentum * momentum_buf[i] + (1.0f - h->dampening) * g;
        momentum_buf[i] = b;
        g = h->nesterov ? g + h->momentum * b : b;
    }
    param[i] += -h->lr * g;
}

/* Adam's per-step scalars, kept on the device so that a skipped step does
 * not advance the step count. */
typedef struct lg_cuk_adam_step {
    int64_t step;
    float step_size;  /* lr / (1 - beta1^step) */
    float bc2_sqrt;   /* sqrt(1 - beta2^step) */
    float decay;      /* AdamW: 1 - lr * weight_decay */
} lg_cuk_adam_step;

/* One thread: advances the step (unless skipped) and computes its scalars
 * in double, as PyTorch does on the host. */
LG_BODY void lg_cuk_adam_prepare(const lg_cuda_adam *h, lg_cuk_adam_step *st, const int *skip) {
    if (skip && *skip)
        return;
    st->step++;
    double bc1 = 1.0 - pow((double)h->beta1, (double)st->step);
    double bc2 = 1.0 - pow((double)h->beta2, (double)st->step);
    st->step_size = (float)((double)h->lr / bc1);
    st->bc2_sqrt = (float)sqrt(bc2);
    st->decay = (float)(1.0 - (double)h->lr * (double)h->weight_decay);
}

LG_BODY void lg_cuk_adam_update(size_t i, const lg_cuda_adam *h, const lg_cuk_adam_step *st,
                                float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                                float *max_exp_avg_sq, const int *skip) {
    if (skip && *skip)
        return;
    float g = h->maximize ? -grad[i] : grad[i];
    float p = param[i];
    if (h->weight_decay != 0.0f) {
        if (h->decoupled)
            p *= st->decay;
        else
            g += h->weight_decay * p;
    }
    float m = exp_avg[i] + (1.0f - h->beta1) * (g - exp_avg[i]);
    float v = exp_avg_sq[i] * h->beta2 + (1.0f - h->beta2) * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    if (h->amsgrad) {
        v = fmaxf(max_exp_avg_sq[i], v);
        max_exp_avg_sq[i] = v;
    }
    float denom = sqrtf(v) / st->bc2_sqrt + h->eps;
    param[i] = p + (-st->step_size) * (m / denom);
}

/* ---- mixed precision: loss scaling (torch.cuda.amp.GradScaler) ---------- */

/* Unscales one gradient value in place of the caller's copy and raises the
 * found-inf flag when the scaled value was not finite (all writers store 1,
 * so the race is benign). */
LG_BODY float lg_cuk_unscale(float g, float inv_scale, int *found_inf) {
    if (!lg_cuk_finite(g))
        *found_inf = 1;
    return g * inv_scale;
}

/* GradScaler.update(): back off on overflow, grow after growth_interval
 * clean steps, never grow to infinity (torch._amp_update_scale_). */
LG_BODY void lg_cuk_scaler_update(lg_cuda_scaler *s, int found_inf) {
    if (found_inf) {
        s->scale *= s->backoff_factor;
        s->growth_tracker = 0;
        return;
    }
    int32_t good = s->growth_tracker + 1;
    if (good == s->growth_interval) {
        float grown = s->scale * s->growth_factor;
        if (lg_cuk_finite(grown))
            s->scale = grown;
        s->growth_tracker = 0;
    } else {
        s->growth_tracker = good;
    }
}

/* ---- detection: NMS (torchvision.ops.nms) -------------------------------- */
/* Boxes are (x1, y1, x2, y2). The order is by score, descending, ties by
 * index (a stable sort): rank_i counts the boxes that come before box i.
 * Then each thread (i, block) computes a 64-bit word of "i suppresses j"
 * for the 64 boxes j of one block, and one thread walks the words in score
 * order to pick the survivors (torchvision's scheme). */

#define LG_CUK_NMS_BLOCK 64

LG_BODY int lg_cuk_rank_desc(size_t i, const float *scores, size_t n) {
    float s = scores[i];
    int r = 0;
    for (size_t j = 0; j < n; j++)
        if (scores[j] > s || (scores[j] == s && j < i))
            r++;
    return r;
}

LG_BODY float lg_cuk_iou(const float *a, const float *b) {
    float w = fmaxf(fminf(a[2], b[2]) - fmaxf(a[0], b[0]), 0.0f);
    float h = fmaxf(fminf(a[3], b[3]) - fmaxf(a[1], b[1]), 0.0f);
    float inter = w * h;
    float area_a = (a[2] - a[0]) * (a[3] - a[1]);
    float area_b = (b[2] - b[0]) * (b[3] - b[1]);
    return inter / (area_a + area_b - inter);
}

/* sorted: boxes in score order ([n, 4]); mask: [n, ceil(n / 64)] words.
 * groups (may be NULL): each sorted box's class or level; boxes of
 * different groups never suppress each other (batched NMS). */
LG_BODY void lg_cuk_nms_mask(size_t i, size_t block, const float *sorted, const int *groups,
                             size_t n, float iou_thresh, uint64_t *mask) {
    size_t blocks = (n + LG_CUK_NMS_BLOCK - 1) / LG_CUK_NMS_BLOCK;
    uint64_t bits = 0;
    for (size_t k = 0; k < LG_CUK_NMS_BLOCK; k++) {
        size_t j = block * LG_CUK_NMS_BLOCK + k;
        if (j >= n)
            break;
        if (j > i && (!groups || groups[i] == groups[j]) &&
            lg_cuk_iou(sorted + 4 * i, sorted + 4 * j) > iou_thresh)
            bits |= (uint64_t)1 << k;
    }
    mask[i * blocks + block] = bits;
}

/* One thread: keep[] gets the original indices of the survivors in score
 * order (at most max_keep), *num_keep their count. removed: ceil(n/64)
 * words of scratch. order[r] is the original index of rank r. */
LG_BODY void lg_cuk_nms_reduce(size_t n, const uint64_t *mask, uint64_t *removed, const int *order,
                               int *keep, int *num_keep, int max_keep) {
    size_t blocks = (n + LG_CUK_NMS_BLOCK - 1) / LG_CUK_NMS_BLOCK;
    for (size_t b = 0; b < blocks; b++)
        removed[b] = 0;
    int count = 0;
    for (size_t i = 0; i < n && count < max_keep; i++) {
        size_t b = i / LG_CUK_NMS_BLOCK, k = i % LG_CUK_NMS_BLOCK;
        if (removed[b] & ((uint64_t)1 << k))
            continue;
        keep[count++] = order[i];
        for (size_t w = b; w < blocks; w++)
            removed[w] |= mask[i * blocks + w];
    }
    *num_keep = count;
}

/* ---- detection: box coder (torchvision BoxCoder) ---------------------------- */

/* out[i] = ref[i] moved by deltas[i] (dw, dh clamped at clip). */
LG_BODY void lg_cuk_box_decode(size_t i, const lg_cuda_box_coder *c, const float *deltas,
                               const float *ref, float *out) {
    const float *b = ref + 4 * i, *d = deltas + 4 * i;
    float w = b[2] - b[0], h = b[3] - b[1];
    float cx = b[0] + 0.5f * w, cy = b[1] + 0.5f * h;
    float dx = d[0] / c->wx, dy = d[1] / c->wy;
    float dw = fminf(d[2] / c->ww, c->clip), dh = fminf(d[3] / c->wh, c->clip);
    float pcx = dx * w + cx, pcy = dy * h + cy;
    float hw = 0.5f * (expf(dw) * w), hh = 0.5f * (expf(dh) * h);
    float *o = out + 4 * i;
    o[0] = pcx - hw;
    o[1] = pcy - hh;
    o[2] = pcx + hw;
    o[3] = pcy + hh;
}

/* deltas[i] that take ref[i] to gt[i]. */
LG_BODY void lg_cuk_box_encode(size_t i, const lg_cuda_box_coder *c, const float *gt,
                               const float *ref, float *deltas) {
    const float *p = ref + 4 * i, *g = gt + 4 * i;
    float ex_w = p[2] - p[0], ex_h = p[3] - p[1];
    float ex_cx = p[0] + 0.5f * ex_w, ex_cy = p[1] + 0.5f * ex_h;
    float gt_w = g[2] - g[0], gt_h = g[3] - g[1];
    float gt_cx = g[0] + 0.5f * gt_w, gt_cy = g[1] + 0.5f * gt_h;
    float *d = deltas + 4 * i;
    d[0] = c->wx * (gt_cx - ex_cx) / ex_w;
    d[1] = c->wy * (gt_cy - ex_cy) / ex_h;
    d[2] = c->ww * logf(gt_w / ex_w);
    d[3] = c->wh * logf(gt_h / ex_h);
}

/* Clamps box i into [0, W] x [0, H]. */
LG_BODY void lg_cuk_box_clip(size_t i, float *boxes, float H, float W) {
    float *b = boxes + 4 * i;
    b[0] = fminf(fmaxf(b[0], 0.0f), W);
    b[1] = fminf(fmaxf(b[1], 0.0f), H);
    b[2] = fminf(fmaxf(b[2], 0.0f), W);
    b[3] = fminf(fmaxf(b[3], 0.0f), H);
}

/* ---- detection: IoU matrix and matcher (torchvision box_iou, Matcher) ---- */

/* iou[i, j] of a[i] and b[j]; one thread per pair, nb columns. */
LG_BODY void lg_cuk_box_iou(size_t idx, const float *a, const float *b, size_t nb, float *iou) {
    iou[idx] = lg_cuk_iou(a + 4 * (idx / nb), b + 4 * (idx % nb));
}

/* highest[g] = max over predictions of iou[g, p]; one thread per g. */
LG_BODY void lg_cuk_match_highest(size_t g, const float *iou, int num_pred, float *highest) {
    const float *row = iou + g * (size_t)num_pred;
    float h = -INFINITY;
    for (int p = 0; p < num_pred; p++)
        h = row[p] > h ? row[p] : h;
    highest[g] = h;
}

/* The match of prediction p: its best ground truth (first on ties) when
 * the IoU reaches high, else LG_CUDA_MATCH_BETWEEN / _BELOW_LOW, with
 * allow_low_quality_matches restoring the best ground truth when p is some
 * ground truth's best prediction. */
LG_BODY int lg_cuk_match(size_t p, const lg_cuda_matcher *m, const float *iou, int num_gt,
                         int num_pred, const float *highest) {
    if (num_gt == 0)
        return LG_CUDA_MATCH_BELOW_LOW;
    int best = 0;
    float val = iou[p];
    for (int g = 1; g < num_gt; g++) {
        float v = iou[(size_t)g * num_pred + p];
        if (v > val) {
            val = v;
            best = g;
        }
    }
    int mark = best;
    if (val < m->low)
        mark = LG_CUDA_MATCH_BELOW_LOW;
    else if (val < m->high)
        mark = LG_CUDA_MATCH_BETWEEN;
    if (mark < 0 && m->allow_low_quality_matches)
        for (int g = 0; g < num_gt; g++)
            if (iou[(size_t)g * num_pred + p] == highest[g])
                return best;
    return mark;
}

/* ---- detection: RoIAlign (torchvision.ops.roi_align) --------------------- */
/* rois: [K, 5] rows of (batch index, x1, y1, x2, y2) in image coordinates;
 * a negative batch index marks a padding row (zero output, no gradient).
 * With several feature levels, each RoI goes to the level torchvision's
 * MultiScaleRoIAlign LevelMapper picks (canonical size 224 at level 4). */

LG_BODY int lg_cuk_roi_level(const lg_cuda_roi_align *d, const float *roi) {
    if (d->levels <= 1)
        return 0;
    float area = (roi[3] - roi[1]) * (roi[4] - roi[2]);
    float s = sqrtf(area);
    float k = floorf(4.0f + log2f(s / 224.0f) + 1e-6f);
    float lo = (float)d->k_min, hi = (float)(d->k_min + d->levels - 1);
    k = fminf(fmaxf(k, lo), hi);
    return (int)k - d->k_min;
}

LG_BODY float lg_cuk_bilinear(const float *in, int H, int W, float y, float x) {
    if (y < -1.0f || y > (float)H || x < -1.0f || x > (float)W)
        return 0.0f;
    if (y <= 0.0f)
        y = 0.0f;
    if (x <= 0.0f)
        x = 0.0f;
    int y_low = (int)y, x_low = (int)x, y_high, x_high;
    if (y_low >= H - 1) {
        y_high = y_low = H - 1;
        y = (float)y_low;
    } else {
        y_high = y_low + 1;
    }
    if (x_low >= W - 1) {
        x_high = x_low = W - 1;
        x = (float)x_low;
    } else {
        x_high = x_low + 1;
    }
    float ly = y - (float)y_low, lx = x - (float)x_low;
    float hy = 1.0f - ly, hx = 1.0f - lx;
    return hy * hx * in[y_low * W + x_low] + hy * lx * in[y_low * W + x_high] +
           ly * hx * in[y_high * W + x_low] + ly * lx * in[y_high * W + x_high];
}

/* The RoI's bin geometry, shared by forward and backward. */
typedef struct lg_cuk_roi_geom {
    int level, batch, grid_h, grid_w, H, W;
    float start_h, start_w, bin_h, bin_w, count;
} lg_cuk_roi_geom;

LG_BODY lg_cuk_roi_geom lg_cuk_roi_geometry(const lg_cuda_roi_align *d, const float *roi) {
    lg_cuk_roi_geom g;
    g.level = lg_cuk_roi_level(d, roi);
    g.batch = (int)roi[0];
    g.H = d->H[g.level];
    g.W = d->W[g.level];
    float scale = d->spatial_scale[g.level];
    float off = d->aligned ? 0.5f : 0.0f;
    g.start_w = roi[1] * scale - off;
    g.start_h = roi[2] * scale - off;
    float rw = roi[3] * scale - off - g.start_w;
    float rh = roi[4] * scale - off - g.start_h;
    if (!d->aligned) {
        rw = fmaxf(rw, 1.0f);
        rh = fmaxf(rh, 1.0f);
    }
    g.bin_h = rh / (float)d->PH;
    g.bin_w = rw / (float)d->PW;
    g.grid_h = d->sampling_ratio > 0 ? d->sampling_ratio : (int)ceilf(rh / (float)d->PH);
    g.grid_w = d->sampling_ratio > 0 ? d->sampling_ratio : (int)ceilf(rw / (float)d->PW);
    int cnt = g.grid_h * g.grid_w;
    g.count = (float)(cnt > 1 ? cnt : 1);
    return g;
}

/* out[k, c, ph, pw]; one thread per output element. feat[l] is level l's
 * [N, C, H_l, W_l] map. */
LG_BODY void lg_cuk_roi_align_forward(size_t idx, const lg_cuda_roi_align *d,
                                      const float *const *feat, const float *rois, float *out) {
    int pw = (int)(idx % (size_t)d->PW);
    int ph = (int)(idx / (size_t)d->PW % (size_t)d->PH);
    int c = (int)(idx / ((size_t)d->PW * d->PH) % (size_t)d->C);
    size_t k = idx / ((size_t)d->PW * d->PH * d->C);
    if (rois[5 * k] < 0.0f) { /* a padding row (batch index -1) */
        out[idx] = 0.0f;
        return;
    }
    lg_cuk_roi_geom g = lg_cuk_roi_geometry(d, rois + 5 * k);
    const float *in = feat[g.level] + ((size_t)g.batch * d->C + c) * (size_t)g.H * g.W;
    float acc = 0.0f;
    for (int iy = 0; iy < g.grid_h; iy++) {
        float y = g.start_h + ph * g.bin_h + ((float)iy + 0.5f) * g.bin_h / (float)g.grid_h;
        for (int ix = 0; ix < g.grid_w; ix++) {
            float x = g.start_w + pw * g.bin_w + ((float)ix + 0.5f) * g.bin_w / (float)g.grid_w;
            acc += lg_cuk_bilinear(in, g.H, g.W, y, x);
        }
    }
    out[idx] = acc / g.count;
}

/* One thread per element of dout: scatters into dfeat[level] (which the
 * caller zeroed) with LG_ATOMIC_ADD. */
LG_BODY void lg_cuk_roi_align_backward(size_t idx, const lg_cuda_roi_align *d,
                                       float *const *dfeat, const float *rois, const float *dout) {
    int pw = (int)(idx % (size_t)d->PW);
    int ph = (int)(idx / (size_t)d->PW % (size_t)d->PH);
    int c = (int)(idx / ((size_t)d->PW * d->PH) % (size_t)d->C);
    size_t k = idx / ((size_t)d->PW * d->PH * d->C);
    if (rois[5 * k] < 0.0f) /* padding: no gradient */
        return;
    lg_cuk_roi_geom g = lg_cuk_roi_geometry(d, rois + 5 * k);
    float *gin = dfeat[g.level] + ((size_t)g.batch * d->C + c) * (size_t)g.H * g.W;
    float gbin = dout[idx] / g.count;
    int H = g.H, W = g.W;
    for (int iy = 0; iy < g.grid_h; iy++) {
        float y = g.start_h + ph * g.bin_h + ((float)iy + 0.5f) * g.bin_h / (float)g.grid_h;
        for (int ix = 0; ix < g.grid_w; ix++) {
            float x = g.start_w + pw * g.bin_w + ((float)ix + 0.5f) * g.bin_w / (float)g.grid_w;
            if (y < -1.0f || y > (float)H || x < -1.0f || x > (float)W)
                continue;
            float yy = y <= 0.0f ? 0.0f : y, xx = x <= 0.0f ? 0.0f : x;
            int y_low = (int)yy, x_low = (int)xx, y_high, x_high;
            if (y_low >= H - 1) {
                y_high = y_low = H - 1;
                yy = (float)y_low;
            } else {
                y_high = y_low + 1;
            }
            if (x_low >= W - 1) {
                x_high = x_low = W - 1;
                xx = (float)x_low;
            } else {
                x_high = x_low + 1;
            }
            float ly = yy - (float)y_low, lx = xx - (float)x_low;
            float hy = 1.0f - ly, hx = 1.0f - lx;
            LG_ATOMIC_ADD(gin + y_low * W + x_low, gbin * hy * hx);
            LG_ATOMIC_ADD(gin + y_low * W + x_high, gbin * hy * lx);
            LG_ATOMIC_ADD(gin + y_high * W + x_low, gbin * ly * hx);
            LG_ATOMIC_ADD(gin + y_high * W + x_high, gbin * ly * lx);
        }
    }
}

/* ---- detection: the samplers' seeds (runtime/detect/detect_internal.h) ------ */

/* splitmix64: one step of the generator the detection samplers draw from. */
LG_BODY uint64_t lg_cuk_splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* lg_detect_seed: a sampler's seed for (spec seed, step, image). */
LG_BODY uint64_t lg_cuk_detect_seed(uint64_t seed, uint64_t step, uint64_t image) {
    uint64_t s = lg_cuk_splitmix(&seed);
    s ^= step * 0x9E3779B97F4A7C15ull;
    s = lg_cuk_splitmix(&s);
    s ^= image * 0xC2B2AE3D27D4EB4Full;
    return lg_cuk_splitmix(&s);
}

#endif
