/* transform.c — the per-sample transform pipeline (torchvision's transforms).
 *
 * A sample arrives as float32 CHW in [0, 1] (decoders scale by 1/255), so
 * to_tensor is a marker and every other transform works on floats. Random
 * transforms draw from the sample's own generator, seeded by the loader from
 * (seed, epoch, index), so results do not depend on threads. Geometric
 * transforms carry a detection sample's boxes (x1, y1, x2, y2 in pixels) with
 * the pixels and drop boxes that leave the image. Each transform writes into
 * s->tmp and swaps it with s->img; no allocation once buffers have grown.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

static void swap_buffers(lg_sample *s) {
    float *p = s->img;
    size_t c = s->img_cap;
    s->img = s->tmp;
    s->img_cap = s->tmp_cap;
    s->tmp = p;
    s->tmp_cap = c;
}

/* Moves boxes by x' = x * sx + tx, y' = y * sy + ty, clips them to the new
 * w x h image and drops those left with less than one pixel either way. */
static void boxes_affine(lg_sample *s, float sx, float tx, float sy, float ty, int w, int h) {
    int k = 0;
    for (int b = 0; b < s->nbox; b++) {
        float *in = s->boxes + 4 * b;
        float x1 = in[0] * sx + tx, y1 = in[1] * sy + ty;
        float x2 = in[2] * sx + tx, y2 = in[3] * sy + ty;
        if (x1 > x2) { float t = x1; x1 = x2; x2 = t; }
        if (y1 > y2) { float t = y1; y1 = y2; y2 = t; }
        x1 = fmaxf(x1, 0.0f); y1 = fmaxf(y1, 0.0f);
        x2 = fminf(x2, (float)w); y2 = fminf(y2, (float)h);
        if (x2 - x1 < 1.0f || y2 - y1 < 1.0f)
            continue;
        float *o = s->boxes + 4 * k;
        o[0] = x1; o[1] = y1; o[2] = x2; o[3] = y2;
        s->box_label[k] = s->box_label[b];
        s->box_difficult[k] = s->box_difficult[b];
        k++;
    }
    s->nbox = k;
}

/* The region [top, top + h) x [left, left + w), zero outside the image. */
static lg_status crop(lg_sample *s, int top, int left, int h, int w, lg_error *err) {
    if (h <= 0 || w <= 0)
        return lg_error_set(err, LG_ERR_ARG, "crop to %dx%d", h, w);
    lg_status st = lg_sample_reserve_tmp(s, (size_t)s->c * h * w, err);
    if (st)
        return st;
    for (int c = 0; c < s->c; c++) {
        const float *src = s->img + (size_t)c * s->h * s->w;
        float *dst = s->tmp + (size_t)c * h * w;
        for (int y = 0; y < h; y++) {
            int sy = top + y;
            float *row = dst + (size_t)y * w;
            if (sy < 0 || sy >= s->h) {
                memset(row, 0, (size_t)w * sizeof(float));
                continue;
            }
            int x0 = left < 0 ? -left : 0;
            int x1 = left + w > s->w ? s->w - left : w;
            if (x1 < x0)
                x1 = x0;
            if (x0 > w) x0 = w;
            if (x1 > w) x1 = w;
            memset(row, 0, (size_t)x0 * sizeof(float));
            if (x1 > x0)
                memcpy(row + x0, src + (size_t)sy * s->w + left + x0,
                       (size_t)(x1 - x0) * sizeof(float));
            memset(row + x1, 0, (size_t)(w - x1) * sizeof(float));
        }
    }
    swap_buffers(s);
    s->h = h;
    s->w = w;
    boxes_affine(s, 1, (float)-left, 1, (float)-top, w, h);
    return LG_OK;
}

/* Taps of an antialiased bilinear resize along one axis (n_in -> n_out):
 * a triangle filter stretched by the downscale factor, normalised, exactly
 * torch's _upsample_bilinear2d_aa (and PIL's BILINEAR). first[i], count[i]
 * and weights[i * taps ...] describe output i. */
static int aa_taps(int n_in, int n_out, int *first, int *count, float *weights, int taps) {
    double scale = (double)n_in / n_out;
    double support = scale >= 1 ? scale : 1.0;
    double inv = scale >= 1 ? 1.0 / scale : 1.0;
    for (int i = 0; i < n_out; i++) {
        double center = scale * (i + 0.5);
        int lo = (int)(center - support + 0.5);
        if (lo < 0)
            lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > n_in)
            hi = n_in;
        int n = hi - lo;
        if (n > taps)
            n = taps;
        double total = 0, w[64];
        for (int j = 0; j < n; j++) {
            double x = (j + lo - center + 0.5) * inv;
            w[j] = x < 0 ? (x > -1 ? 1 + x : 0) : (x < 1 ? 1 - x : 0);
            total += w[j];
        }
        for (int j = 0; j < n; j++)
            weights[i * taps + j] = (float)(total > 0 ? w[j] / total : 0);
        first[i] = lo;
        count[i] = n;
    }
    return 0;
}

/* Antialiased bilinear, as torchvision's Resize (antialias=True, its
 * default): width pass into tmp, height pass back into img. */
static lg_status resize_aa(lg_sample *s, int oh, int ow, lg_error *err) {
    int tx = (int)ceil(2.0 * ((double)s->w / ow > 1 ? (double)s->w / ow : 1)) + 2;
    int ty = (int)ceil(2.0 * ((double)s->h / oh > 1 ? (double)s->h / oh : 1)) + 2;
    if (tx > 64 || ty > 64)
        return lg_error_set(err, LG_ERR_ARG,
                            "resize from %dx%d to %dx%d shrinks more than 30 times; resize in "
                            "steps", s->h, s->w, oh, ow);
    size_t mid = (size_t)s->c * s->h * ow, out = (size_t)s->c * oh * ow;
    size_t meta = (size_t)(ow + oh) * 2 * sizeof(int) + ((size_t)ow * tx + (size_t)oh * ty) * sizeof(float);
    lg_status st = lg_sample_reserve_tmp(s, mid + out + meta / sizeof(float) + 1, err);
    if (st)
        return st;
    float *m = s->tmp, *o = s->tmp + mid;
    float *wx = o + out, *wy = wx + (size_t)ow * tx;
    int *fx = (int *)(wy + (size_t)oh * ty), *cx = fx + ow, *fy = cx + ow, *cy = fy + oh;
    aa_taps(s->w, ow, fx, cx, wx, tx);
    aa_taps(s->h, oh, fy, cy, wy, ty);
    for (int c = 0; c < s->c; c++)
        for (int y = 0; y < s->h; y++) {
            const float *row = s->img + ((size_t)c * s->h + y) * s->w;
            float *dst = m + ((size_t)c * s->h + y) * ow;
            for (int x = 0; x < ow; x++) {
                const float *w = wx + (size_t)x * tx;
                float acc = 0;
                for (int k = 0; k < cx[x]; k++)
                    acc += row[fx[x] + k] * w[k];
                dst[x] = acc;
            }
        }
    for (int c = 0; c < s->c; c++)
        for (int y = 0; y < oh; y++) {
            const float *w = wy + (size_t)y * ty;
            float *dst = o + ((size_t)c * oh + y) * ow;
            for (int x = 0; x < ow; x++)
                dst[x] = 0;
            for (int k = 0; k < cy[y]; k++) {
                const float *src = m + ((size_t)c * s->h + fy[y] + k) * ow;
                for (int x = 0; x < ow; x++)
                    dst[x] += src[x] * w[k];
            }
        }
    float sx = (float)ow / s->w, sy = (float)oh / s->h;
    int c = s->c;
    if ((st = lg_sample_reserve(s, c, oh, ow, err)))
        return st;
    memcpy(s->img, o, out * sizeof(float));
    boxes_affine(s, sx, 0, sy, 0, ow, oh);
    return LG_OK;
}

/* Bilinear with half-pixel centres (align_corners=False), as torch's
 * interpolate(mode="bilinear", antialias=False); with antialias, as
 * torchvision's Resize default (differs only when shrinking). */
static lg_status resize(lg_sample *s, int oh, int ow, int antialias, lg_error *err) {
    if (oh <= 0 || ow <= 0)
        return lg_error_set(err, LG_ERR_ARG, "resize to %dx%d", oh, ow);
    if (oh == s->h && ow == s->w)
        return LG_OK;
    if (antialias && (oh < s->h || ow < s->w))
        return resize_aa(s, oh, ow, err);
    lg_status st = lg_sample_reserve_tmp(s, (size_t)s->c * oh * ow, err);
    if (st)
        return st;
    float ry = (float)s->h / oh, rx = (float)s->w / ow;
    for (int y = 0; y < oh; y++) {
        float fy = (y + 0.5f) * ry - 0.5f;
        if (fy < 0) fy = 0;
        int y0 = (int)fy;
        if (y0 > s->h - 1) y0 = s->h - 1;
        int y1 = y0 + 1 < s->h ? y0 + 1 : s->h - 1;
        float wy = fy - y0;
        for (int x = 0; x < ow; x++) {
            float fx = (x + 0.5f) * rx - 0.5f;
            if (fx < 0) fx = 0;
            int x0 = (int)fx;
            if (x0 > s->w - 1) x0 = s->w - 1;
            int x1 = x0 + 1 < s->w ? x0 + 1 : s->w - 1;
            float wx = fx - x0;
            for (int c = 0; c < s->c; c++) {
                const float *p = s->img + (size_t)c * s->h * s->w;
                float a = p[y0 * s->w + x0], b = p[y0 * s->w + x1];
                float d = p[y1 * s->w + x0], e = p[y1 * s->w + x1];
                float top = a + (b - a) * wx, bot = d + (e - d) * wx;
                s->tmp[(size_t)c * oh * ow + (size_t)y * ow + x] = top + (bot - top) * wy;
            }
        }
    }
    float sx = (float)ow / s->w, sy = (float)oh / s->h;
    swap_buffers(s);
    s->h = oh;
    s->w = ow;
    boxes_affine(s, sx, 0, sy, 0, ow, oh);
    return LG_OK;
}

static void hflip(lg_sample *s) {
    for (int c = 0; c < s->c; c++)
        for (int y = 0; y < s->h; y++) {
            float *r = s->img + ((size_t)c * s->h + y) * s->w;
            for (int a = 0, b = s->w - 1; a < b; a++, b--) {
                float t = r[a]; r[a] = r[b]; r[b] = t;
            }
        }
    boxes_affine(s, -1, (float)s->w, 1, 0, s->w, s->h);
}

static void vflip(lg_sample *s) {
    for (int c = 0; c < s->c; c++) {
        float *p = s->img + (size_t)c * s->h * s->w;
        for (int a = 0, b = s->h - 1; a < b; a++, b--)
            for (int x = 0; x < s->w; x++) {
                float t = p[a * s->w + x]; p[a * s->w + x] = p[b * s->w + x]; p[b * s->w + x] = t;
            }
    }
    boxes_affine(s, 1, 0, -1, (float)s->h, s->w, s->h);
}

static float clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* torchvision's rgb_to_grayscale on tensors (ITU-R 601-2 with 0.2989). */
static float luma(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }

static void blend(lg_sample *s, const float *other, float other_value, float f) {
    size_t plane = (size_t)s->h * s->w;
    for (int c = 0; c < s->c; c++)
        for (size_t k = 0; k < plane; k++) {
            float o = other ? other[k] : other_value;
            float *v = &s->img[c * plane + k];
            *v = clamp01(f * *v + (1 - f) * o);
        }
}

static lg_status gray_plane(lg_sample *s, lg_error *err) {
    size_t plane = (size_t)s->h * s->w;
    lg_status st = lg_sample_reserve_tmp(s, plane, err);
    if (st)
        return st;
    if (s->c == 3)
        for (size_t k = 0; k < plane; k++)
            s->tmp[k] = luma(s->img[k], s->img[plane + k], s->img[2 * plane + k]);
    else
        memcpy(s->tmp, s->img, plane * sizeof(float));
    return LG_OK;
}

static void hue_shift(lg_sample *s, float shift) {
    size_t plane = (size_t)s->h * s->w;
    float *R = s->img, *G = s->img + plane, *B = s->img + 2 * plane;
    for (size_t k = 0; k < plane; k++) {
        float r = R[k], g = G[k], b = B[k];
        float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
        float h = 0, sat = mx > 0 ? d / mx : 0, v = mx;
        if (d > 0) {
            if (mx == r) h = fmodf((g - b) / d, 6.0f);
            else if (mx == g) h = (b - r) / d + 2;
            else h = (r - g) / d + 4;
            h /= 6;
            if (h < 0) h += 1;
        }
        h = fmodf(h + shift + 1.0f, 1.0f);
        float hh = h * 6;
        int i = (int)hh % 6;
        float f = hh - floorf(hh);
        float p = v * (1 - sat), q = v * (1 - sat * f), t = v * (1 - sat * (1 - f));
        switch (i) {
        case 0: r = v; g = t; b = p; break;
        case 1: r = q; g = v; b = p; break;
        case 2: r = p; g = v; b = t; break;
        case 3: r = p; g = q; b = v; break;
        case 4: r = t; g = p; b = v; break;
        default: r = v; g = p; b = q; break;
        }
        R[k] = r; G[k] = g; B[k] = b;
    }
}

lg_status lg_color_adjust(lg_sample *s, int op, float factor, lg_error *err) {
    lg_status st;
    size_t plane = (size_t)s->h * s->w;
    switch (op) {
    case 0: /* brightness */
        blend(s, NULL, 0.0f, factor);
        break;
    case 1: { /* contrast: towards the mean of the grayscale image */
        if ((st = gray_plane(s, err)))
            return st;
        double m = 0;
        for (size_t i = 0; i < plane; i++)
            m += s->tmp[i];
        blend(s, NULL, (float)(m / plane), factor);
        break;
    }
    case 2: /* saturation: towards the grayscale image */
        if (s->c != 3)
            break;
        if ((st = gray_plane(s, err)))
            return st;
        blend(s, s->tmp, 0, factor);
        break;
    case 3: /* hue: a rotation in HSV space by factor turns */
        if (s->c == 3)
            hue_shift(s, factor);
        break;
    default:
        return lg_error_set(err, LG_ERR_ARG, "unknown colour adjustment %d", op);
    }
    return LG_OK;
}

/* torchvision's ColorJitter: factors drawn uniformly, applied in a random order. */
static lg_status color_jitter(lg_sample *s, const float *f, lg_rng *rng, lg_error *err) {
    int order[4] = {0, 1, 2, 3};
    for (int i = 3; i > 0; i--) {
        int j = (int)lg_rng_below(rng, (uint64_t)i + 1);
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
    float fac[4];
    for (int k = 0; k < 3; k++) {
        float lo = fmaxf(0.0f, 1 - f[k]), hi = 1 + f[k];
        fac[k] = f[k] > 0 ? lo + (hi - lo) * (float)lg_rng_uniform(rng) : 1.0f;
    }
    fac[3] = f[3] > 0 ? -f[3] + 2 * f[3] * (float)lg_rng_uniform(rng) : 0.0f;
    for (int k = 0; k < 4; k++) {
        int op = order[k];
        if (f[op] > 0) {
            lg_status st = lg_color_adjust(s, op, fac[op], err);
            if (st)
                return st;
        }
    }
    return LG_OK;
}

static lg_status grayscale(lg_sample *s, int out_c, lg_error *err) {
    size_t plane = (size_t)s->h * s->w;
    lg_status st = gray_plane(s, err);
    if (st)
        return st;
    if (out_c != 1 && out_c != 3)
        return lg_error_set(err, LG_ERR_ARG, "grayscale: output channels must be 1 or 3, got %d",
                            out_c);
    if ((st = lg_sample_reserve(s, out_c, s->h, s->w, err)))
        return st;
    for (int c = 0; c < out_c; c++)
        memcpy(s->img + c * plane, s->tmp, plane * sizeof(float));
    return LG_OK;
}

/* torchvision RandomResizedCrop.get_params: ten tries at a random area and
 * aspect ratio, then a centre crop clamped to the ratio range. */
static lg_status random_resized_crop(lg_sample *s, const lg_transform_desc *t, lg_rng *rng,
                                     lg_error *err) {
    float smin = t->f[0] > 0 ? t->f[0] : 0.08f, smax = t->f[1] > 0 ? t->f[1] : 1.0f;
    float rmin = t->f[2] > 0 ? t->f[2] : 3.0f / 4, rmax = t->f[3] > 0 ? t->f[3] : 4.0f / 3;
    int H = s->h, W = s->w, ch = 0, cw = 0, top = 0, left = 0;
    double area = (double)H * W, lr0 = log(rmin), lr1 = log(rmax);
    int found = 0;
    for (int k = 0; k < 10 && !found; k++) {
        double a = area * (smin + (smax - smin) * lg_rng_uniform(rng));
        double r = exp(lr0 + (lr1 - lr0) * lg_rng_uniform(rng));
        int w = (int)lround(sqrt(a * r)), h = (int)lround(sqrt(a / r));
        if (w > 0 && h > 0 && w <= W && h <= H) {
            top = (int)lg_rng_below(rng, (uint64_t)(H - h + 1));
            left = (int)lg_rng_below(rng, (uint64_t)(W - w + 1));
            ch = h;
            cw = w;
            found = 1;
        }
    }
    if (!found) {
        double in_r = (double)W / H;
        if (in_r < rmin) { cw = W; ch = (int)lround(cw / rmin); }
        else if (in_r > rmax) { ch = H; cw = (int)lround(ch * rmax); }
        else { cw = W; ch = H; }
        top = (H - ch) / 2;
        left = (W - cw) / 2;
    }
    lg_status st = crop(s, top, left, ch, cw, err);
    return st ? st : resize(s, t->i[0], t->i[1], !t->i[2], err);
}

static lg_status letterbox(lg_sample *s, int oh, int ow, float fill, int antialias,
                           lg_error *err) {
    if (oh <= 0 || ow <= 0)
        return lg_error_set(err, LG_ERR_ARG, "letterbox to %dx%d", oh, ow);
    double sc = fmin((double)oh / s->h, (double)ow / s->w);
    int nh = (int)lround(s->h * sc), nw = (int)lround(s->w * sc);
    if (nh < 1) nh = 1;
    if (nw < 1) nw = 1;
    lg_status st = resize(s, nh, nw, antialias, err);
    if (st)
        return st;
    int top = (oh - nh) / 2, left = (ow - nw) / 2;
    if ((st = lg_sample_reserve_tmp(s, (size_t)s->c * oh * ow, err)))
        return st;
    for (size_t k = 0; k < (size_t)s->c * oh * ow; k++)
        s->tmp[k] = fill;
    for (int c = 0; c < s->c; c++)
        for (int y = 0; y < nh; y++)
            memcpy(s->tmp + ((size_t)c * oh + top + y) * ow + left,
                   s->img + ((size_t)c * nh + y) * nw, (size_t)nw * sizeof(float));
    swap_buffers(s);
    s->h = oh;
    s->w = ow;
    boxes_affine(s, 1, (float)left, 1, (float)top, ow, oh);
    return LG_OK;
}

lg_status lg_transform_apply(const lg_transform_desc *tf, int n, lg_sample *s, lg_rng *rng,
                             lg_error *err) {
    for (int k = 0; k < n; k++) {
        const lg_transform_desc *t = &tf[k];
        lg_status st = LG_OK;
        switch (t->kind) {
        case LG_TF_TO_TENSOR:
            break;
        case LG_TF_NORMALIZE: {
            int given = t->i[0] == 3 ? 3 : 1;
            if (given == 3 && s->c != 3)
                return lg_error_set(err, LG_ERR_ARG,
                                    "normalize has 3 means but the image has %d channel%s", s->c,
                                    s->c == 1 ? "" : "s");
            size_t plane = (size_t)s->h * s->w;
            for (int c = 0; c < s->c; c++) {
                float m = t->f[given == 3 ? c : 0], sd = t->f[given == 3 ? 3 + c : 3];
                if (!(sd > 0))
                    return lg_error_set(err, LG_ERR_ARG, "normalize: std must be > 0");
                float inv = 1.0f / sd;
                float *p = s->img + c * plane;
                for (size_t i = 0; i < plane; i++)
                    p[i] = (p[i] - m) * inv;
            }
            break;
        }
        case LG_TF_RESIZE:
            st = resize(s, t->i[0], t->i[1], !t->i[2], err);
            break;
        case LG_TF_CENTER_CROP: {
            int h = t->i[0], w = t->i[1];
            /* rint rounds half to even, as Python's round() in torchvision */
            st = crop(s, (int)rint((s->h - h) / 2.0), (int)rint((s->w - w) / 2.0), h, w, err);
            break;
        }
        case LG_TF_RANDOM_CROP: {
            int h = t->i[0], w = t->i[1], pad = t->i[2];
            int ph = s->h + 2 * pad, pw = s->w + 2 * pad;
            if (h > ph || w > pw)
                return lg_error_set(err, LG_ERR_ARG,
                                    "random_crop(%d, %d) is larger than the %dx%d padded image", h,
                                    w, ph, pw);
            int top = (int)lg_rng_below(rng, (uint64_t)(ph - h + 1)) - pad;
            int left = (int)lg_rng_below(rng, (uint64_t)(pw - w + 1)) - pad;
            st = crop(s, top, left, h, w, err);
            break;
        }
        case LG_TF_RANDOM_RESIZED_CROP:
            st = random_resized_crop(s, t, rng, err);
            break;
        case LG_TF_RANDOM_HFLIP:
            if (lg_rng_uniform(rng) < t->f[0])
                hflip(s);
            break;
        case LG_TF_RANDOM_VFLIP:
            if (lg_rng_uniform(rng) < t->f[0])
                vflip(s);
            break;
        case LG_TF_COLOR_JITTER:
            st = color_jitter(s, t->f, rng, err);
            break;
        case LG_TF_GRAYSCALE:
            st = grayscale(s, t->i[0] ? t->i[0] : 1, err);
            break;
        case LG_TF_LETTERBOX:
            st = letterbox(s, t->i[0], t->i[1], t->f[0], !t->i[2], err);
            break;
        default:
            return lg_error_set(err, LG_ERR_ARG, "unknown transform %d", (int)t->kind);
        }
        if (st)
            return st;
    }
    return LG_OK;
}
