/* dims.c — output-size helpers for the kernels' dimension structs and the
 * dropout seed mixer (type-independent parts of runtime/ops). */
#include "ops_internal.h"

lg_status lg_conv2d_dims_init(lg_conv2d_dims *d, lg_error *err) {
    if (d->c_in < 1 || d->h_in < 1 || d->w_in < 1 || d->c_out < 1)
        return lg_error_set(err, LG_ERR_ARG, "conv2d: input (%d, %d, %d) and out_channels %d must be positive",
                            d->c_in, d->h_in, d->w_in, d->c_out);
    if (d->kh < 1 || d->kw < 1 || d->sh < 1 || d->sw < 1 || d->dh < 1 || d->dw < 1 || d->ph < 0 || d->pw < 0)
        return lg_error_set(err, LG_ERR_ARG,
                            "conv2d: kernel (%d, %d), stride (%d, %d), dilation (%d, %d) must be >= 1 and padding (%d, %d) >= 0",
                            d->kh, d->kw, d->sh, d->sw, d->dh, d->dw, d->ph, d->pw);
    if (d->groups < 1 || d->c_in % d->groups || d->c_out % d->groups)
        return lg_error_set(err, LG_ERR_ARG, "conv2d: in_channels %d and out_channels %d must be divisible by groups %d",
                            d->c_in, d->c_out, d->groups);
    long eh = (long)d->dh * (d->kh - 1) + 1, ew = (long)d->dw * (d->kw - 1) + 1;
    long h = (long)d->h_in + 2L * d->ph - eh, w = (long)d->w_in + 2L * d->pw - ew;
    if (h < 0 || w < 0)
        return lg_error_set(err, LG_ERR_ARG, "conv2d: kernel (%ld, %ld) with dilation is larger than the padded input (%ld, %ld)",
                            eh, ew, (long)d->h_in + 2L * d->ph, (long)d->w_in + 2L * d->pw);
    d->h_out = (int)(h / d->sh + 1);
    d->w_out = (int)(w / d->sw + 1);
    return LG_OK;
}

/* PyTorch's pooling_output_shape: with ceil_mode the last window must start
 * inside the input or the left padding. */
static long pool_out(long in, long k, long s, long p, int ceil_mode) {
    long num = in + 2 * p - k + (ceil_mode ? s - 1 : 0);
    if (num < 0)
        return 0;
    long out = num / s + 1;
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

lg_status lg_pool2d_dims_init(lg_pool2d_dims *d, const char *op, lg_error *err) {
    if (d->c < 1 || d->h_in < 1 || d->w_in < 1)
        return lg_error_set(err, LG_ERR_ARG, "%s: input (%d, %d, %d) must be positive", op, d->c, d->h_in, d->w_in);
    if (d->kh < 1 || d->kw < 1 || d->sh < 1 || d->sw < 1)
        return lg_error_set(err, LG_ERR_ARG, "%s: kernel (%d, %d) and stride (%d, %d) must be >= 1", op, d->kh, d->kw,
                            d->sh, d->sw);
    if (d->ph < 0 || d->pw < 0 || 2 * d->ph > d->kh || 2 * d->pw > d->kw)
        return lg_error_set(err, LG_ERR_ARG, "%s: padding (%d, %d) must be >= 0 and at most half the kernel (%d, %d)", op,
                            d->ph, d->pw, d->kh, d->kw);
    long h = pool_out(d->h_in, d->kh, d->sh, d->ph, d->ceil_mode);
    long w = pool_out(d->w_in, d->kw, d->sw, d->pw, d->ceil_mode);
    if (h < 1 || w < 1)
        return lg_error_set(err, LG_ERR_ARG, "%s: output size (%ld, %ld) is too small (input (%d, %d), kernel (%d, %d))",
                            op, h, w, d->h_in, d->w_in, d->kh, d->kw);
    d->h_out = (int)h;
    d->w_out = (int)w;
    return LG_OK;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t lg_dropout_seed(uint64_t seed, uint64_t step, uint32_t layer) {
    return splitmix64(splitmix64(splitmix64(seed) ^ step) ^ layer);
}

lg_batch_norm_dims lg_batch_norm_step_dims(const lg_batch_norm_dims *d, double num_batches_tracked) {
    lg_batch_norm_dims step = *d;
    if (step.momentum == LG_BN_CUMULATIVE && num_batches_tracked >= 1)
        step.momentum = (float)(1.0 / num_batches_tracked);
    return step;
}
