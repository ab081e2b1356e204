/* tests/cuda/fake_device.c — a CUDA device in host memory, for
 * tests/cuda/check_resident_gen.sh.
 *
 * Just enough of liblgen_cuda.a for a generated NAME_cuda.c's start-up,
 * transfers and optimizer step to run on any machine: the context with its
 * arena (host memory), uploads, downloads and memsets (memcpy, memset), and
 * the launchers the optimizer step calls, each running its per-element body
 * (runtime/cuda/body.h, optim_body.h) over the whole range as the device
 * would, or the CPU runtime's own function where the device's is a
 * reduction (clip_grad_norm). The layers' launchers are not here: the
 * script generates stubs for them (the steps are not run).
 */
#include "../../runtime/cuda/optim_body.h"
#include "lgen/optim.h"

#include <stdlib.h>
#include <string.h>

struct lg_cuda {
    char *arena;
    size_t bytes;
};

/* the last context made, for the test to look at the arena */
char *fake_arena;
size_t fake_arena_bytes;

lg_status lg_cuda_device_count(int *count, lg_error *err) {
    (void)err;
    *count = 1;
    return LG_OK;
}

lg_status lg_cuda_init(lg_cuda **out, const lg_cuda_config *cfg, lg_error *err) {
    lg_cuda *c = calloc(1, sizeof *c);
    size_t bytes = (cfg->arena_bytes + 255) / 256 * 256;
    if (c)
        c->arena = aligned_alloc(256, bytes ? bytes : 256);
    if (!c || !c->arena) {
        free(c);
        return lg_error_set(err, LG_ERR_NOMEM, "fake device: no memory for %zu bytes", cfg->arena_bytes);
    }
    memset(c->arena, 0x7f, bytes); /* not zero: what the device leaves matters */
    c->bytes = cfg->arena_bytes;
    fake_arena = c->arena;
    fake_arena_bytes = c->bytes;
    *out = c;
    return LG_OK;
}

void lg_cuda_free(lg_cuda *c) {
    if (!c)
        return;
    if (fake_arena == c->arena)
        fake_arena = NULL;
    free(c->arena);
    free(c);
}

const char *lg_cuda_describe(const lg_cuda *c) {
    (void)c;
    return "fake device (host memory)";
}

void *lg_cuda_arena(lg_cuda *c, size_t offset) {
    return offset <= c->bytes ? c->arena + offset : NULL;
}

size_t lg_cuda_arena_size(const lg_cuda *c) {
    return c->bytes;
}

lg_status lg_cuda_sync(lg_cuda *c, lg_error *err) {
    (void)c, (void)err;
    return LG_OK;
}

lg_status lg_cuda_upload(lg_cuda *c, void *dev, const void *host, size_t bytes, lg_error *err) {
    (void)c, (void)err;
    memcpy(dev, host, bytes);
    return LG_OK;
}

lg_status lg_cuda_download(lg_cuda *c, void *host, const void *dev, size_t bytes, lg_error *err) {
    (void)c, (void)err;
    memcpy(host, dev, bytes);
    return LG_OK;
}

lg_status lg_cuda_memset(lg_cuda *c, void *dev, int value, size_t bytes, lg_error *err) {
    (void)c, (void)err;
    memset(dev, value, bytes);
    return LG_OK;
}

lg_status lg_cuda_copy(lg_cuda *c, void *dst, const void *src, size_t bytes, lg_error *err) {
    (void)c, (void)err;
    memmove(dst, src, bytes);
    return LG_OK;
}

lg_status lg_cuda_scale(lg_cuda *c, lg_cuda_dtype dt, float by, const void *x, void *y, size_t n, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < n; i++)
        lg_cuk_store(y, i, dt, by * lg_cuk_load(x, i, dt));
    return LG_OK;
}

lg_status lg_cuda_convert(lg_cuda *c, lg_cuda_dtype to, void *dst, lg_cuda_dtype from, const void *src, size_t n,
                          lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < n; i++)
        lg_cuk_store(dst, i, to, lg_cuk_load(src, i, from));
    return LG_OK;
}

lg_status lg_cuda_unscale(lg_cuda *c, const lg_cuda_scaler *scaler, lg_cuda_dtype dt, const void *grad,
                          float *grad32, size_t n, int *found_inf, lg_error *err) {
    (void)c, (void)err;
    float inv = (float)(1.0 / (double)scaler->scale); /* as kernels.cu's unscale_kernel */
    for (size_t i = 0; i < n; i++)
        grad32[i] = lg_cuk_unscale(lg_cuk_load(grad, i, dt), inv, found_inf);
    return LG_OK;
}

lg_status lg_cuda_scaler_update(lg_cuda *c, lg_cuda_scaler *scaler, int *found_inf, lg_error *err) {
    (void)c, (void)err;
    lg_cuk_scaler_update(scaler, *found_inf);
    *found_inf = 0;
    return LG_OK;
}

lg_status lg_cuda_clip_grad_norm(lg_cuda *c, float *grads, size_t n, double max_norm, float *norm, lg_error *err) {
    (void)c;
    double total = 0;
    lg_status st = lg_clip_grad_norm(NULL, grads, n, max_norm, 2.0, &total);
    if (st)
        return lg_error_set(err, st, "fake clip_grad_norm failed");
    if (norm)
        *norm = (float)total;
    return LG_OK;
}

lg_status lg_cuda_clip_grad_value(lg_cuda *c, float *grads, size_t n, float clip_value, lg_error *err) {
    (void)c;
    if (lg_clip_grad_value(NULL, grads, n, clip_value) != LG_OK)
        return lg_error_set(err, LG_ERR_ARG, "fake clip_grad_value failed");
    return LG_OK;
}

lg_status lg_cuda_optim_update(lg_cuda *c, const lg_cuda_optim_hyper *h, float *param, const float *grad,
                               float *const slot[3], size_t n, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < n; i++)
        lg_cuo_update(i, h, param, grad, slot[0], slot[1], slot[2]);
    return LG_OK;
}

lg_status lg_cuda_grad_accumulate(lg_cuda *c, lg_cuda_dtype dt, const void *src, float *dst, size_t n,
                                  lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < n; i++)
        lg_cuo_grad_accumulate(i, dt, src, dst);
    return LG_OK;
}
