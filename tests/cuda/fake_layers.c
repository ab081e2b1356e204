/* tests/cuda/fake_layers.c — the layers' and the own kernels' launchers of
 * liblgen_cuda.a in host memory, for tests/cuda/check_steps_gen.sh.
 *
 * With tests/cuda/fake_device.c (the context, transfers and the optimizer)
 * this is enough of the library for a generated NAME_cuda.c to train on
 * any machine, so its steps run: every argument the emitter wires (plan
 * offsets, counts, dtypes, the f32 conversions, NULLs) reaches a launcher
 * here. The own kernels run their per-thread bodies (runtime/cuda/body.h)
 * over the whole grid as kernels.cu launches them; what the device does
 * through cuBLAS(Lt) and cuDNN (linear, conv2d, batch norm, average
 * pooling) and the block reductions (losses, cross entropy, accuracy) are
 * the CPU kernels of lgen/kernels.h on float32 copies of the compute-dtype
 * buffers, rounded back to it. Batches go through per-slot staging buffers
 * as large as the arena. Detection launchers are not here.
 */
#include "../../runtime/cuda/body.h"
#include "lgen/kernels.h"

#include <stdlib.h>
#include <string.h>

extern size_t fake_arena_bytes; /* fake_device.c: the last context's arena */

/* ---- compute-dtype buffers as float32 ------------------------------------------ */

static float *f32_of(const void *p, size_t n, lg_cuda_dtype dt) {
    if (!p)
        return NULL;
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = lg_cuk_load(p, i, (int)dt);
    return v;
}

static void put(void *p, const float *v, size_t n, lg_cuda_dtype dt) {
    for (size_t i = 0; p && v && i < n; i++)
        lg_cuk_store(p, i, (int)dt, v[i]);
}

/* a gradient that accumulates (+=) or is overwritten, as float32 */
static float *grad_of(const void *p, size_t n, lg_cuda_dtype dt, int accumulate) {
    float *v = f32_of(p, n, dt);
    if (v && !accumulate)
        memset(v, 0, n * sizeof *v);
    return v;
}

/* ---- batches: staging slots ---------------------------------------------------------- */

static char *staging[8];

void *lg_cuda_staging(lg_cuda *c, int slot) {
    (void)c;
    if (slot < 0 || slot >= 8)
        return NULL;
    if (!staging[slot])
        staging[slot] = calloc(1, fake_arena_bytes ? fake_arena_bytes : 1);
    return staging[slot];
}

lg_status lg_cuda_staging_wait(lg_cuda *c, int slot, lg_error *err) {
    (void)c, (void)slot, (void)err;
    return LG_OK;
}

lg_status lg_cuda_upload_async(lg_cuda *c, int slot, void *dev, size_t bytes, lg_error *err) {
    char *s = lg_cuda_staging(c, slot);
    if (!s)
        return lg_error_set(err, LG_ERR_ARG, "fake device: no staging slot %d", slot);
    memcpy(dev, s, bytes);
    return LG_OK;
}

lg_status lg_cuda_upload_wait(lg_cuda *c, int slot, lg_error *err) {
    (void)c, (void)slot, (void)err;
    return LG_OK;
}

lg_status lg_cuda_upload_release(lg_cuda *c, int slot, lg_error *err) {
    (void)c, (void)slot, (void)err;
    return LG_OK;
}

lg_status lg_cuda_scaler_seed(lg_cuda *c, const lg_cuda_scaler *scaler, float *dloss, lg_error *err) {
    (void)c, (void)err;
    *dloss = scaler->scale;
    return LG_OK;
}

/* ---- linear (cuBLASLt on the device) ---------------------------------------------------- */

struct lg_cuda_linear_plan {
    lg_cuda_linear d;
};

lg_status lg_cuda_linear_init(lg_cuda *c, lg_cuda_linear_plan **out, const lg_cuda_linear *d, lg_error *err) {
    (void)c;
    *out = calloc(1, sizeof **out);
    if (!*out)
        return lg_error_set(err, LG_ERR_NOMEM, "fake device: no memory for a plan");
    (*out)->d = *d;
    return LG_OK;
}

void lg_cuda_linear_free(lg_cuda_linear_plan *p) {
    free(p);
}

lg_status lg_cuda_linear_forward(lg_cuda *c, const lg_cuda_linear_plan *p, const void *x, const void *w,
                                 const void *b, void *y, lg_error *err) {
    (void)c;
    const lg_cuda_linear *d = &p->d;
    size_t N = (size_t)d->N, I = (size_t)d->in, O = (size_t)d->out;
    lg_linear_dims ld = {d->in, d->out, d->bias};
    float *xf = f32_of(x, N * I, d->dtype), *wf = f32_of(w, O * I, d->dtype), *bf = f32_of(b, O, d->dtype);
    float *yf = malloc(N * O * sizeof *yf);
    lg_status st = lg_linear_forward(NULL, &ld, N, xf, wf, d->bias ? bf : NULL, yf);
    if (st == LG_OK)
        put(y, yf, N * O, d->dtype);
    else
        lg_error_set(err, st, "fake device: linear forward failed");
    free(xf), free(wf), free(bf), free(yf);
    return st;
}

lg_status lg_cuda_linear_backward(lg_cuda *c, const lg_cuda_linear_plan *p, const void *x, const void *w,
                                  const void *dy, void *dx, void *dw, void *db, int accumulate, lg_error *err) {
    (void)c;
    const lg_cuda_linear *d = &p->d;
    size_t N = (size_t)d->N, I = (size_t)d->in, O = (size_t)d->out;
    lg_linear_dims ld = {d->in, d->out, d->bias};
    float *xf = f32_of(x, N * I, d->dtype), *wf = f32_of(w, O * I, d->dtype), *dyf = f32_of(dy, N * O, d->dtype);
    float *dxf = dx ? malloc(N * I * sizeof *dxf) : NULL;
    float *dwf = grad_of(dw, O * I, d->dtype, accumulate), *dbf = d->bias ? grad_of(db, O, d->dtype, accumulate) : NULL;
    lg_status st = lg_linear_backward(NULL, &ld, N, xf, wf, dyf, dxf, dwf, dbf);
    if (st == LG_OK) {
        put(dx, dxf, N * I, d->dtype);
        put(dw, dwf, O * I, d->dtype);
        put(db, dbf, O, d->dtype);
    } else {
        lg_error_set(err, st, "fake device: linear backward failed");
    }
    free(xf), free(wf), free(dyf), free(dxf), free(dwf), free(dbf);
    return st;
}

/* ---- conv2d (cuDNN on the device) ------------------------------------------------------ */

struct lg_cuda_conv_plan {
    lg_cuda_conv d;
    lg_conv2d_dims cd;
};

lg_status lg_cuda_conv_init(lg_cuda *c, lg_cuda_conv_plan **out, const lg_cuda_conv *d, lg_error *err) {
    (void)c;
    lg_cuda_conv_plan *p = calloc(1, sizeof *p);
    if (!p)
        return lg_error_set(err, LG_ERR_NOMEM, "fake device: no memory for a plan");
    p->d = *d;
    p->cd = (lg_conv2d_dims){.c_in = d->C, .h_in = d->H, .w_in = d->W, .c_out = d->K, .kh = d->R, .kw = d->S,
                             .sh = d->stride_h, .sw = d->stride_w, .ph = d->pad_h, .pw = d->pad_w, .dh = d->dil_h,
                             .dw = d->dil_w, .groups = d->groups, .bias = d->bias};
    lg_status st = lg_conv2d_dims_init(&p->cd, err);
    if (st != LG_OK) {
        free(p);
        return st;
    }
    *out = p;
    return LG_OK;
}

void lg_cuda_conv_free(lg_cuda_conv_plan *p) {
    free(p);
}

void lg_cuda_conv_out(const lg_cuda_conv_plan *p, int *P, int *Q) {
    *P = p->cd.h_out, *Q = p->cd.w_out;
}

static void conv_sizes(const lg_cuda_conv_plan *p, size_t *nx, size_t *nw, size_t *ny) {
    const lg_conv2d_dims *cd = &p->cd;
    size_t N = (size_t)p->d.N;
    *nx = N * (size_t)(cd->c_in * cd->h_in * cd->w_in);
    *nw = (size_t)cd->c_out * (size_t)(cd->c_in / cd->groups) * (size_t)(cd->kh * cd->kw);
    *ny = N * (size_t)(cd->c_out * cd->h_out * cd->w_out);
}

lg_status lg_cuda_conv_forward(lg_cuda *c, const lg_cuda_conv_plan *p, const void *x, const void *w, const void *b,
                               void *y, lg_error *err) {
    (void)c;
    size_t nx, nw, ny, N = (size_t)p->d.N;
    conv_sizes(p, &nx, &nw, &ny);
    lg_cuda_dtype dt = p->d.dtype;
    float *xf = f32_of(x, nx, dt), *wf = f32_of(w, nw, dt), *bf = f32_of(b, (size_t)p->cd.c_out, dt);
    float *yf = malloc(ny * sizeof *yf);
    size_t wsb = lg_conv2d_workspace(&p->cd, N);
    void *ws = malloc(wsb ? wsb : 1);
    lg_status st = lg_conv2d_forward(NULL, &p->cd, N, xf, wf, p->d.bias ? bf : NULL, yf, ws, wsb);
    if (st == LG_OK)
        put(y, yf, ny, dt);
    else
        lg_error_set(err, st, "fake device: conv2d forward failed");
    free(xf), free(wf), free(bf), free(yf), free(ws);
    return st;
}

lg_status lg_cuda_conv_backward(lg_cuda *c, const lg_cuda_conv_plan *p, const void *x, const void *w,
                                const void *dy, void *dx, void *dw, void *db, int accumulate, lg_error *err) {
    (void)c;
    size_t nx, nw, ny, N = (size_t)p->d.N, K = (size_t)p->cd.c_out;
    conv_sizes(p, &nx, &nw, &ny);
    lg_cuda_dtype dt = p->d.dtype;
    float *xf = f32_of(x, nx, dt), *wf = f32_of(w, nw, dt), *dyf = f32_of(dy, ny, dt);
    float *dxf = dx ? malloc(nx * sizeof *dxf) : NULL;
    float *dwf = grad_of(dw, nw, dt, accumulate), *dbf = p->d.bias ? grad_of(db, K, dt, accumulate) : NULL;
    size_t wsb = lg_conv2d_workspace(&p->cd, N);
    void *ws = malloc(wsb ? wsb : 1);
    lg_status st = lg_conv2d_backward(NULL, &p->cd, N, xf, wf, dyf, dxf, dwf, dbf, ws, wsb);
    if (st == LG_OK) {
        put(dx, dxf, nx, dt);
        put(dw, dwf, nw, dt);
        put(db, dbf, K, dt);
    } else {
        lg_error_set(err, st, "fake device: conv2d backward failed");
    }
    free(xf), free(wf), free(dyf), free(dxf), free(dwf), free(dbf), free(ws);
    return st;
}

/* ---- batch norm (cuDNN: x, y, dy, dx in the compute dtype, the rest f32) ------------ */

struct lg_cuda_bn_plan {
    lg_cuda_bn d;
};

lg_status lg_cuda_bn_init(lg_cuda *c, lg_cuda_bn_plan **out, const lg_cuda_bn *d, lg_error *err) {
    (void)c;
    *out = calloc(1, sizeof **out);
    if (!*out)
        return lg_error_set(err, LG_ERR_NOMEM, "fake device: no memory for a plan");
    (*out)->d = *d;
    return LG_OK;
}

void lg_cuda_bn_free(lg_cuda_bn_plan *p) {
    free(p);
}

void lg_cuda_bn_set_momentum(lg_cuda_bn_plan *p, double momentum) {
    if (p)
        p->d.momentum = momentum;
}

static lg_batch_norm_dims bn_dims(const lg_cuda_bn_plan *p, int affine) {
    return (lg_batch_norm_dims){.c = p->d.C, .spatial = p->d.H * p->d.W, .eps = (float)p->d.eps,
                                .momentum = (float)p->d.momentum, .affine = affine};
}

static lg_status bn_forward(const lg_cuda_bn_plan *p, int training, const void *x, void *y, const float *w,
                            const float *b, float *rm, float *rv, float *sm, float *si, lg_error *err) {
    lg_batch_norm_dims bd = bn_dims(p, w != NULL);
    size_t n = (size_t)p->d.N * (size_t)p->d.C * (size_t)(p->d.H * p->d.W);
    float *xf = f32_of(x, n, p->d.dtype), *yf = malloc(n * sizeof *yf);
    lg_status st = lg_batch_norm_forward(NULL, &bd, (size_t)p->d.N, training, xf, w, b, rm, rv, yf, sm, si);
    if (st == LG_OK)
        put(y, yf, n, p->d.dtype);
    else
        lg_error_set(err, st, "fake device: batch norm forward failed");
    free(xf), free(yf);
    return st;
}

lg_status lg_cuda_bn_forward_train(lg_cuda *c, const lg_cuda_bn_plan *p, const void *x, void *y, const float *weight,
                                   const float *bias, float *running_mean, float *running_var, float *save_mean,
                                   float *save_invstd, lg_error *err) {
    (void)c;
    return bn_forward(p, 1, x, y, weight, bias, running_mean, running_var, save_mean, save_invstd, err);
}

lg_status lg_cuda_bn_forward_eval(lg_cuda *c, const lg_cuda_bn_plan *p, const void *x, void *y, const float *weight,
                                  const float *bias, const float *running_mean, const float *running_var,
                                  lg_error *err) {
    (void)c;
    return bn_forward(p, 0, x, y, weight, bias, (float *)running_mean, (float *)running_var, NULL, NULL, err);
}

lg_status lg_cuda_bn_backward(lg_cuda *c, const lg_cuda_bn_plan *p, const void *x, const void *dy, void *dx,
                              const float *weight, float *dweight, float *dbias, const float *save_mean,
                              const float *save_invstd, int accumulate, lg_error *err) {
    (void)c;
    lg_batch_norm_dims bd = bn_dims(p, weight != NULL);
    size_t n = (size_t)p->d.N * (size_t)p->d.C * (size_t)(p->d.H * p->d.W), C = (size_t)p->d.C;
    float *xf = f32_of(x, n, p->d.dtype), *dyf = f32_of(dy, n, p->d.dtype), *dxf = malloc(n * sizeof *dxf);
    if (!accumulate && dweight)
        memset(dweight, 0, C * sizeof *dweight);
    if (!accumulate && dbias)
        memset(dbias, 0, C * sizeof *dbias);
    lg_status st = lg_batch_norm_backward(NULL, &bd, (size_t)p->d.N, xf, weight, save_mean, save_invstd, dyf, dxf,
                                          weight ? dweight : NULL, weight ? dbias : NULL);
    if (st == LG_OK)
        put(dx, dxf, n, p->d.dtype);
    else
        lg_error_set(err, st, "fake device: batch norm backward failed");
    free(xf), free(dyf), free(dxf);
    return st;
}

/* ---- pooling: the own kernels' bodies, and cuDNN's average pooling ------------------- */

lg_status lg_cuda_pool2d_init(lg_cuda_pool2d *d, lg_error *err) {
    if (d->H < 1 || d->W < 1 || d->kh < 1 || d->kw < 1 || d->sh < 1 || d->sw < 1 || 2 * d->ph > d->kh ||
        2 * d->pw > d->kw)
        return lg_error_set(err, LG_ERR_ARG, "fake device: pool2d out of range");
    d->OH = lg_cuk_pool_out(d->H, d->kh, d->sh, d->ph, d->ceil_mode);
    d->OW = lg_cuk_pool_out(d->W, d->kw, d->sw, d->pw, d->ceil_mode);
    return d->OH > 0 && d->OW > 0 ? LG_OK : lg_error_set(err, LG_ERR_ARG, "fake device: pool2d output empty");
}

lg_status lg_cuda_max_pool2d_forward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt, size_t planes,
                                     const void *x, void *y, int32_t *argmax, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < planes * (size_t)(d->OH * d->OW); i++)
        lg_cuk_max_pool_forward(i, d, (int)dt, x, y, argmax);
    return LG_OK;
}

lg_status lg_cuda_max_pool2d_backward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt, size_t planes,
                                      const int32_t *argmax, const void *dy, void *dx, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < planes * (size_t)(d->H * d->W); i++)
        lg_cuk_max_pool_backward(i, d, (int)dt, argmax, dy, dx);
    return LG_OK;
}

lg_status lg_cuda_avg_pool2d_forward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt, size_t planes,
                                     const void *x, void *y, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < planes * (size_t)(d->OH * d->OW); i++)
        lg_cuk_avg_pool_forward(i, d, (int)dt, x, y);
    return LG_OK;
}

lg_status lg_cuda_avg_pool2d_backward(lg_cuda *c, const lg_cuda_pool2d *d, lg_cuda_dtype dt, size_t planes,
                                      const void *dy, void *dx, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < planes * (size_t)(d->H * d->W); i++)
        lg_cuk_avg_pool_backward(i, d, (int)dt, dy, dx);
    return LG_OK;
}

struct lg_cuda_pool_plan {
    lg_cuda_pool d;
    lg_cuda_pool2d own;
};

lg_status lg_cuda_pool_init(lg_cuda *c, lg_cuda_pool_plan **out, const lg_cuda_pool *d, lg_error *err) {
    (void)c;
    if (d->max)
        return lg_error_set(err, LG_ERR_UNSUPPORTED, "fake device: cuDNN max pooling is not emitted");
    lg_cuda_pool_plan *p = calloc(1, sizeof *p);
    if (!p)
        return lg_error_set(err, LG_ERR_NOMEM, "fake device: no memory for a plan");
    p->d = *d;
    p->own = (lg_cuda_pool2d){.H = d->H, .W = d->W, .kh = d->kh, .kw = d->kw, .sh = d->sh, .sw = d->sw,
                              .ph = d->ph, .pw = d->pw, .count_include_pad = d->count_include_pad};
    lg_status st = lg_cuda_pool2d_init(&p->own, err);
    if (st != LG_OK) {
        free(p);
        return st;
    }
    *out = p;
    return LG_OK;
}

void lg_cuda_pool_free(lg_cuda_pool_plan *p) {
    free(p);
}

void lg_cuda_pool_out(const lg_cuda_pool_plan *p, int *P, int *Q) {
    *P = p->own.OH, *Q = p->own.OW;
}

lg_status lg_cuda_pool_forward(lg_cuda *c, const lg_cuda_pool_plan *p, const void *x, void *y, lg_error *err) {
    return lg_cuda_avg_pool2d_forward(c, &p->own, p->d.dtype, (size_t)(p->d.N * p->d.C), x, y, err);
}

lg_status lg_cuda_pool_backward(lg_cuda *c, const lg_cuda_pool_plan *p, const void *x, const void *y,
                                const void *dy, void *dx, lg_error *err) {
    (void)x, (void)y; /* average pooling reads neither */
    return lg_cuda_avg_pool2d_backward(c, &p->own, p->d.dtype, (size_t)(p->d.N * p->d.C), dy, dx, err);
}

/* ---- elementwise --------------------------------------------------------------------- */

lg_status lg_cuda_act_forward(lg_cuda *c, lg_cuda_act act, float alpha, lg_cuda_dtype dt, const void *x, void *y,
                              size_t n, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < n; i++)
        lg_cuk_store(y, i, (int)dt, lg_cuk_act_forward((int)act, lg_cuk_load(x, i, (int)dt), alpha));
    return LG_OK;
}

lg_status lg_cuda_act_backward(lg_cuda *c, lg_cuda_act act, float alpha, lg_cuda_dtype dt, const void *x,
                               const void *y, const void *dy, void *dx, size_t n, lg_error *err) {
    (void)c, (void)err;
    /* the device kernel reads x and y only when given: so does this, and a
     * launch given the wrong one fails here as it would there */
    int needs_y = act == LG_CUDA_ACT_SIGMOID || act == LG_CUDA_ACT_TANH || act == LG_CUDA_ACT_RELU;
    if (needs_y ? !y : !x)
        return lg_error_set(err, LG_ERR_ARG, "fake device: activation %d backward without its %s", (int)act,
                            needs_y ? "output" : "input");
    for (size_t i = 0; i < n; i++) {
        float g = lg_cuk_act_backward((int)act, x ? lg_cuk_load(x, i, (int)dt) : 0.0f,
                                      y ? lg_cuk_load(y, i, (int)dt) : 0.0f, lg_cuk_load(dy, i, (int)dt), alpha);
        lg_cuk_store(dx, i, (int)dt, g);
    }
    return LG_OK;
}

lg_status lg_cuda_add(lg_cuda *c, lg_cuda_dtype dt, const void *a, const void *b, void *y, size_t n, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < n; i++)
        lg_cuk_store(y, i, (int)dt, lg_cuk_add(lg_cuk_load(a, i, (int)dt), lg_cuk_load(b, i, (int)dt)));
    return LG_OK;
}

lg_status lg_cuda_mul(lg_cuda *c, lg_cuda_dtype dt, const void *a, const void *b, void *y, size_t n, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < n; i++)
        lg_cuk_store(y, i, (int)dt, lg_cuk_mul(lg_cuk_load(a, i, (int)dt), lg_cuk_load(b, i, (int)dt)));
    return LG_OK;
}

lg_status lg_cuda_mul_backward(lg_cuda *c, lg_cuda_dtype dt, const void *a, const void *b, const void *dy, void *da,
                               void *db, size_t n, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < n; i++) {
        float g = lg_cuk_load(dy, i, (int)dt);
        if (da)
            lg_cuk_store(da, i, (int)dt, lg_cuk_mul(g, lg_cuk_load(b, i, (int)dt)));
        if (db)
            lg_cuk_store(db, i, (int)dt, lg_cuk_mul(g, lg_cuk_load(a, i, (int)dt)));
    }
    return LG_OK;
}

lg_status lg_cuda_accumulate(lg_cuda *c, lg_cuda_dtype dt, const void *x, void *y, size_t n, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < n; i++)
        lg_cuk_store(y, i, (int)dt, lg_cuk_add(lg_cuk_load(y, i, (int)dt), lg_cuk_load(x, i, (int)dt)));
    return LG_OK;
}

lg_status lg_cuda_dropout_forward(lg_cuda *c, lg_cuda_dtype dt, double p, uint64_t seed, const void *x, void *y,
                                  uint8_t *mask, size_t n, lg_error *err) {
    (void)c, (void)err;
    uint64_t thresh = (uint64_t)(p * 9007199254740992.0);
    float scale = (float)(p < 1.0 ? 1.0 / (1.0 - p) : 0.0);
    for (size_t i = 0; i < n; i++)
        lg_cuk_store(y, i, (int)dt, lg_cuk_dropout(i, seed, thresh, scale, lg_cuk_load(x, i, (int)dt), mask));
    return LG_OK;
}

lg_status lg_cuda_dropout_backward(lg_cuda *c, lg_cuda_dtype dt, double p, const uint8_t *mask, const void *dy,
                                   void *dx, size_t n, lg_error *err) {
    (void)c, (void)err;
    float scale = (float)(p < 1.0 ? 1.0 / (1.0 - p) : 0.0);
    for (size_t i = 0; i < n; i++)
        lg_cuk_store(dx, i, (int)dt, mask[i] ? lg_cuk_load(dy, i, (int)dt) * scale : 0.0f);
    return LG_OK;
}

/* ---- softmax, pooling over planes, layer_norm, structure ------------------------------- */

lg_status lg_cuda_softmax_forward(lg_cuda *c, lg_cuda_dtype dt, int log_softmax, size_t outer, size_t dim,
                                  size_t inner, const void *x, void *y, lg_error *err) {
    (void)c, (void)err;
    for (size_t t = 0; t < outer * inner; t++)
        lg_cuk_softmax_forward(t, (int)dt, dim, inner, log_softmax, x, y);
    return LG_OK;
}

lg_status lg_cuda_softmax_backward(lg_cuda *c, lg_cuda_dtype dt, int log_softmax, size_t outer, size_t dim,
                                   size_t inner, const void *y, const void *dy, void *dx, lg_error *err) {
    (void)c, (void)err;
    for (size_t t = 0; t < outer * inner; t++)
        lg_cuk_softmax_backward(t, (int)dt, dim, inner, log_softmax, y, dy, dx);
    return LG_OK;
}

lg_status lg_cuda_global_avg_pool_forward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t hw, const void *x,
                                          void *y, lg_error *err) {
    (void)c, (void)err;
    for (size_t p = 0; p < planes; p++)
        lg_cuk_global_avg_pool_forward(p, (int)dt, hw, x, y);
    return LG_OK;
}

lg_status lg_cuda_global_avg_pool_backward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t hw, const void *dy,
                                           void *dx, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < planes * hw; i++)
        lg_cuk_store(dx, i, (int)dt, lg_cuk_global_avg_pool_backward(i, (int)dt, hw, dy));
    return LG_OK;
}

lg_status lg_cuda_layer_norm_forward(lg_cuda *c, lg_cuda_dtype dt, size_t rows, size_t D, float eps, const void *x,
                                     const void *weight, const void *bias, void *y, float *save_mean,
                                     float *save_invstd, lg_error *err) {
    (void)c;
    if (D == 0 || (!weight) != (!bias))
        return lg_error_set(err, LG_ERR_ARG, "fake device: layer_norm weight and bias both or neither");
    for (size_t r = 0; r < rows; r++)
        lg_cuk_layer_norm_forward(r, (int)dt, D, eps, x, weight, bias, y, save_mean, save_invstd);
    return LG_OK;
}

lg_status lg_cuda_layer_norm_backward(lg_cuda *c, lg_cuda_dtype dt, size_t rows, size_t D, const void *x,
                                      const void *weight, const float *save_mean, const float *save_invstd,
                                      const void *dy, void *dx, void *dweight, void *dbias, lg_error *err) {
    (void)c, (void)err;
    for (size_t r = 0; dx && r < rows; r++)
        lg_cuk_layer_norm_backward(r, (int)dt, D, x, weight, save_mean, save_invstd, dy, dx);
    for (size_t k = 0; (dweight || dbias) && k < D; k++)
        lg_cuk_layer_norm_param_grad(k, (int)dt, rows, D, x, save_mean, save_invstd, dy, dweight, dbias);
    return LG_OK;
}

lg_status lg_cuda_adaptive_avg_pool_forward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H, size_t W,
                                            size_t OH, size_t OW, const void *x, void *y, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < planes * OH * OW; i++)
        lg_cuk_adaptive_pool_forward(i, (int)dt, H, W, OH, OW, x, y);
    return LG_OK;
}

lg_status lg_cuda_adaptive_avg_pool_backward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H, size_t W,
                                             size_t OH, size_t OW, const void *dy, void *dx, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < planes * H * W; i++)
        lg_cuk_adaptive_pool_backward(i, (int)dt, H, W, OH, OW, dy, dx);
    return LG_OK;
}

lg_status lg_cuda_upsample_nearest_forward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H, size_t W,
                                           int scale, const void *x, void *y, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < planes * H * W * (size_t)(scale * scale); i++)
        lg_cuk_upsample_forward(i, (int)dt, H, W, scale, x, y);
    return LG_OK;
}

lg_status lg_cuda_upsample_nearest_backward(lg_cuda *c, lg_cuda_dtype dt, size_t planes, size_t H, size_t W,
                                            int scale, const void *dy, void *dx, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < planes * H * W; i++)
        lg_cuk_upsample_backward(i, (int)dt, H, W, scale, dy, dx);
    return LG_OK;
}

lg_status lg_cuda_transpose(lg_cuda *c, lg_cuda_dtype dt, size_t outer, size_t a, size_t mid, size_t b, size_t inner,
                            const void *x, void *y, lg_error *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < outer * a * mid * b * inner; i++)
        lg_cuk_store(y, i, (int)dt, lg_cuk_load(x, lg_cuk_transpose_src(i, a, mid, b, inner), (int)dt));
    return LG_OK;
}

/* concat (split: 1) in launches of LG_CUDA_MAX_CONCAT pieces, as kernels.cu */
static lg_status pieces(lg_cuda_dtype dt, int split, size_t outer, int k, const size_t *sizes,
                        const void *const *in, void *const *out, void *whole, const void *cwhole) {
    size_t stride = 0, col0 = 0;
    for (int i = 0; i < k; i++)
        stride += sizes[i];
    for (int first = 0; first < k; first += LG_CUDA_MAX_CONCAT) {
        int m = k - first < LG_CUDA_MAX_CONCAT ? k - first : LG_CUDA_MAX_CONCAT;
        size_t total = 0;
        for (int i = 0; i < m; i++)
            total += sizes[first + i];
        for (size_t i = 0; i < outer * total; i++) {
            size_t at, w = lg_cuk_concat_whole(i, total, stride, col0);
            int which = first + lg_cuk_concat_src(i, m, sizes + first, total, &at);
            if (split && out[which])
                lg_cuk_store(out[which], at, (int)dt, lg_cuk_load(cwhole, w, (int)dt));
            else if (!split)
                lg_cuk_store(whole, w, (int)dt, lg_cuk_load(in[which], at, (int)dt));
        }
        col0 += total;
    }
    return LG_OK;
}

lg_status lg_cuda_concat(lg_cuda *c, lg_cuda_dtype dt, size_t outer, int k, const size_t *sizes,
                         const void *const *inputs, void *y, lg_error *err) {
    (void)c, (void)err;
    return pieces(dt, 0, outer, k, sizes, inputs, NULL, y, NULL);
}

lg_status lg_cuda_split(lg_cuda *c, lg_cuda_dtype dt, size_t outer, int k, const size_t *sizes, const void *x,
                        void *const *outputs, lg_error *err) {
    (void)c, (void)err;
    return pieces(dt, 1, outer, k, sizes, NULL, outputs, NULL, x);
}

lg_status lg_cuda_rpn_flatten_forward(lg_cuda *c, lg_cuda_dtype dt, size_t N, int A, int D, int H, int W,
                                      const void *x, void *y, size_t total, size_t offset, lg_error *err) {
    (void)c, (void)err;
    size_t hw = (size_t)(H * W);
    for (size_t i = 0; i < N * (size_t)(A * D) * hw; i++)
        lg_cuk_store(y, lg_cuk_rpn_flatten_dst(i, (size_t)A, (size_t)D, hw, total, offset), (int)dt,
                     lg_cuk_load(x, i, (int)dt));
    return LG_OK;
}

lg_status lg_cuda_rpn_flatten_backward(lg_cuda *c, lg_cuda_dtype dt, size_t N, int A, int D, int H, int W,
                                       const void *dy, size_t total, size_t offset, void *dx, lg_error *err) {
    (void)c, (void)err;
    size_t hw = (size_t)(H * W);
    for (size_t i = 0; i < N * (size_t)(A * D) * hw; i++)
        lg_cuk_store(dx, i, (int)dt,
                     lg_cuk_load(dy, lg_cuk_rpn_flatten_dst(i, (size_t)A, (size_t)D, hw, total, offset), (int)dt));
    return LG_OK;
}

/* ---- reductions, losses, metrics (block reductions on the device) ------------------------ */

lg_status lg_cuda_reduce(lg_cuda *c, lg_cuda_reduce_kind kind, int mean, float beta, lg_cuda_dtype dt, const void *x,
                         const void *target, size_t n, float *out, lg_error *err) {
    (void)c, (void)err;
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += lg_cuk_reduce_term((int)kind, lg_cuk_load(x, i, (int)dt), target ? lg_cuk_load(target, i, (int)dt) : 0.0f,
                                beta);
    *out = (float)(mean ? s / (double)n : s);
    return LG_OK;
}

lg_status lg_cuda_loss_backward(lg_cuda *c, lg_cuda_reduce_kind kind, int mean, float beta, lg_cuda_dtype dt,
                                const void *x, const void *target, const float *dloss, void *dx, size_t n,
                                lg_error *err) {
    (void)c, (void)err;
    float g = mean ? (float)((double)*dloss / (double)n) : *dloss;
    for (size_t i = 0; i < n; i++) {
        float v = kind == LG_CUDA_REDUCE_SUM ? g
                                             : g * lg_cuk_loss_grad((int)kind, lg_cuk_load(x, i, (int)dt),
                                                                    lg_cuk_load(target, i, (int)dt), beta);
        lg_cuk_store(dx, i, (int)dt, v);
    }
    return LG_OK;
}

size_t lg_cuda_cross_entropy_workspace(const lg_cuda_ce *d) {
    return (3 * (size_t)d->N + 4) * sizeof(float);
}

static lg_cross_entropy_dims ce_dims(const lg_cuda_ce *d) {
    return (lg_cross_entropy_dims){.classes = d->C, .label_smoothing = d->label_smoothing,
                                   .ignore_index = d->ignore_index,
                                   .reduction = d->reduction_sum ? LG_REDUCE_SUM : LG_REDUCE_MEAN};
}

lg_status lg_cuda_cross_entropy_forward(lg_cuda *c, const lg_cuda_ce *d, const float *logits, const int32_t *labels,
                                        const float *weight, float *loss, void *ws, lg_error *err) {
    (void)c, (void)ws;
    lg_cross_entropy_dims cd = ce_dims(d);
    lg_status st = lg_cross_entropy_forward(NULL, &cd, (size_t)d->N, logits, labels, weight, loss);
    return st == LG_OK ? LG_OK : lg_error_set(err, st, "fake device: cross entropy failed");
}

lg_status lg_cuda_cross_entropy_backward(lg_cuda *c, const lg_cuda_ce *d, const float *logits, const int32_t *labels,
                                         const float *weight, float weight_sum, const float *dloss, const void *ws,
                                         float *dlogits, lg_error *err) {
    (void)c, (void)ws, (void)weight_sum;
    lg_cross_entropy_dims cd = ce_dims(d);
    lg_status st = lg_cross_entropy_backward(NULL, &cd, (size_t)d->N, logits, labels, weight, dloss, dlogits);
    return st == LG_OK ? LG_OK : lg_error_set(err, st, "fake device: cross entropy backward failed");
}

lg_status lg_cuda_accuracy(lg_cuda *c, const float *logits, const int32_t *labels, int N, int C, float *acc, void *ws,
                           lg_error *err) {
    (void)c, (void)ws;
    lg_status st = lg_accuracy(NULL, (size_t)N, C, logits, labels, acc);
    return st == LG_OK ? LG_OK : lg_error_set(err, st, "fake device: accuracy failed");
}

lg_status lg_cuda_topk_accuracy(lg_cuda *c, const float *logits, const int32_t *labels, int N, int C, int k,
                                float *acc, void *ws, lg_error *err) {
    (void)c, (void)ws;
    lg_status st = lg_topk_accuracy(NULL, (size_t)N, C, k, logits, labels, acc);
    return st == LG_OK ? LG_OK : lg_error_set(err, st, "fake device: top-k accuracy failed");
}
