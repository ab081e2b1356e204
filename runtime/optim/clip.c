/* clip.c — gradient clipping with Lightning's semantics:
 * gradient_clip_algorithm "norm" = torch.nn.utils.clip_grad_norm_ and
 * "value" = clip_grad_value_, over the whole gradient block. The norm is
 * summed in double in a fixed order (independent of the thread count).
 * Neighbours: lgen/optim.h. */
#include "lgen/optim.h"

#include <math.h>

lg_status lg_clip_grad_norm(lg_ctx *ctx, float *grads, size_t count, double max_norm, double norm_type,
                            double *total_norm) {
    lg_error *err = ctx ? ctx->err : NULL;
    if (!(max_norm >= 0) || !(norm_type >= 1))
        return lg_error_set(err, LG_ERR_ARG, "clip_grad_norm: max_norm %g must be >= 0 and norm_type %g >= 1",
                            max_norm, norm_type);
    if (count && !grads)
        return lg_error_set(err, LG_ERR_ARG, "clip_grad_norm: missing gradient block");
    double total = 0;
    if (isinf(norm_type)) {
        for (size_t i = 0; i < count; i++) {
            double a = fabs((double)grads[i]);
            if (a > total || isnan(a))
                total = a;
        }
    } else if (norm_type == 2) {
        for (size_t i = 0; i < count; i++)
            total += (double)grads[i] * grads[i];
        total = sqrt(total);
    } else {
        for (size_t i = 0; i < count; i++)
            total += pow(fabs((double)grads[i]), norm_type);
        total = pow(total, 1.0 / norm_type);
    }
    if (total_norm)
        *total_norm = total;
    double coef = max_norm / (total + 1e-6);
    if (coef < 1 || isnan(coef)) {
        float c = (float)coef;
        for (size_t i = 0; i < count; i++)
            grads[i] *= c;
    }
    return LG_OK;
}

lg_status lg_clip_grad_value(lg_ctx *ctx, float *grads, size_t count, double clip_value) {
    lg_error *err = ctx ? ctx->err : NULL;
    if (!(clip_value >= 0))
        return lg_error_set(err, LG_ERR_ARG, "clip_grad_value: clip_value %g must be >= 0", clip_value);
    if (count && !grads)
        return lg_error_set(err, LG_ERR_ARG, "clip_grad_value: missing gradient block");
    float v = (float)clip_value;
    for (size_t i = 0; i < count; i++)
        grads[i] = grads[i] < -v ? -v : grads[i] > v ? v : grads[i];
    return LG_OK;
}
