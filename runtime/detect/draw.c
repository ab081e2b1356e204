/* draw.c — what `predict` writes for a detector (see lgen/detect.h):
 * detections drawn on a copy of the image (box outlines in a colour per
 * class, a filled tag with the class name and score, a built-in 5x7 font)
 * saved as PNG with libpng, and the detections as JSON with Jansson.
 *
 * Input is an 8-bit RGB image (lg_detect_image_to_rgb makes one from a
 * batch's float CHW tensor) and the boxes, scores and labels that
 * lg_detections / lg_detections_batch wrote, in that image's pixels.
 */
#include "lgen/detect.h"

#include <jansson.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <string.h>

/* 5x7 glyphs, rows top to bottom, bit 4 = leftmost column. Upper case
 * prints as lower case; anything else as '?'. */
static const char glyph_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz .-_:%?";
static const unsigned char glyphs[][7] = {
    {14, 17, 19, 21, 25, 17, 14}, {4, 12, 4, 4, 4, 4, 14},    {14, 17, 1, 2, 4, 8, 31},
    {30, 1, 1, 14, 1, 1, 30},     {2, 6, 10, 18, 31, 2, 2},   {31, 16, 30, 1, 1, 17, 14},
    {6, 8, 16, 30, 17, 17, 14},   {31, 1, 2, 4, 8, 8, 8},     {14, 17, 17, 14, 17, 17, 14},
    {14, 17, 17, 15, 1, 2, 12},   {0, 0, 14, 1, 15, 17, 15},  {16, 16, 22, 25, 17, 17, 30},
    {0, 0, 14, 16, 16, 17, 14},   {1, 1, 13, 19, 17, 17, 15}, {0, 0, 14, 17, 31, 16, 14},
    {6, 9, 8, 28, 8, 8, 8},       {0, 15, 17, 17, 15, 1, 14}, {16, 16, 22, 25, 17, 17, 17},
    {4, 0, 12, 4, 4, 4, 14},      {2, 0, 6, 2, 2, 18, 12},    {16, 16, 18, 20, 24, 20, 18},
    {12, 4, 4, 4, 4, 4, 14},      {0, 0, 26, 21, 21, 17, 17}, {0, 0, 22, 25, 17, 17, 17},
    {0, 0, 14, 17, 17, 17, 14},   {0, 0, 30, 17, 30, 16, 16}, {0, 0, 13, 19, 15, 1, 1},
    {0, 0, 22, 25, 16, 16, 16},   {0, 0, 14, 16, 14, 1, 30},  {8, 8, 28, 8, 8, 9, 6},
    {0, 0, 17, 17, 17, 19, 13},   {0, 0, 17, 17, 17, 10, 4},  {0, 0, 17, 17, 21, 21, 10},
    {0, 0, 17, 10, 4, 10, 17},    {0, 0, 17, 17, 15, 1, 14},  {0, 0, 31, 2, 4, 8, 31},
    {0, 0, 0, 0, 0, 0, 0},        {0, 0, 0, 0, 0, 12, 12},    {0, 0, 0, 31, 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 31},       {0, 12, 12, 0, 12, 12, 0},  {24, 25, 2, 4, 8, 19, 3},
    {14, 17, 1, 2, 4, 0, 4},
};

static const unsigned char *glyph_of(char c) {
    if (c >= 'A' && c <= 'Z')
        c = (char)(c - 'A' + 'a');
    const char *p = c ? strchr(glyph_chars, c) : NULL;
    return glyphs[p ? p - glyph_chars : (int)sizeof glyph_chars - 2];
}

/* A colour per class: hues around the circle, saturated and bright. */
static void class_colour(int label, unsigned char rgb[3]) {
    float h = fmodf((float)label * 0.61803398875f, 1.0f) * 6.0f;
    int i = (int)h;
    float f = h - (float)i, v = 1.0f, s = 0.85f;
    float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    float c[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    for (int k = 0; k < 3; k++)
        rgb[k] = (unsigned char)lrintf(c[i % 6][k] * 255.0f);
}

static void fill(unsigned char *img, int H, int W, int x0, int y0, int x1, int y1,
                 const unsigned char rgb[3]) {
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 >= W ? W - 1 : x1;
    y1 = y1 >= H ? H - 1 : y1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            memcpy(img + ((size_t)y * W + x) * 3, rgb, 3);
}

static void text(unsigned char *img, int H, int W, int x, int y, const char *s,
                 const unsigned char rgb[3]) {
    for (; *s; s++, x += 6) {
        const unsigned char *g = glyph_of(*s);
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < 5; c++)
                if (g[r] & (16 >> c) && x + c >= 0 && x + c < W && y + r >= 0 && y + r < H)
                    memcpy(img + ((size_t)(y + r) * W + x + c) * 3, rgb, 3);
    }
}

lg_status lg_detect_draw(unsigned char *rgb, int H, int W, const float *boxes, const float *scores,
                         const int *labels, int count, const char *const *class_names,
                         int num_names, lg_error *err) {
    if (!rgb || H < 1 || W < 1 || count < 0 || (count && (!boxes || !labels)))
        return lg_error_set(err, LG_ERR_ARG, "detect_draw: bad arguments");
    static const unsigned char white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
    for (int i = 0; i < count; i++) {
        const float *b = boxes + 4 * (size_t)i;
        unsigned char col[3];
        class_colour(labels[i], col);
        int x0 = (int)floorf(b[0]), y0 = (int)floorf(b[1]);
        int x1 = (int)ceilf(b[2]) - 1, y1 = (int)ceilf(b[3]) - 1;
        if (x1 < x0)
            x1 = x0;
        if (y1 < y0)
            y1 = y0;
        int t = H >= 200 && W >= 200 ? 2 : 1; /* line width */
        fill(rgb, H, W, x0, y0, x1, y0 + t - 1, col);
        fill(rgb, H, W, x0, y1 - t + 1, x1, y1, col);
        fill(rgb, H, W, x0, y0, x0 + t - 1, y1, col);
        fill(rgb, H, W, x1 - t + 1, y0, x1, y1, col);
        char tag[96];
        const char *name =
            labels[i] >= 0 && labels[i] < num_names && class_names ? class_names[labels[i]] : NULL;
        if (name && scores)
            snprintf(tag, sizeof tag, "%s %.2f", name, scores[i]);
        else if (name)
            snprintf(tag, sizeof tag, "%s", name);
        else if (scores)
            snprintf(tag, sizeof tag, "%d %.2f", labels[i], scores[i]);
        else
            snprintf(tag, sizeof tag, "%d", labels[i]);
        int tw = 6 * (int)strlen(tag) + 1, th = 9;
        int ty = y0 - th >= 0 ? y0 - th : y0; /* above the box, or inside at the top */
        int tx = x0 + tw <= W ? x0 : W - tw;
        fill(rgb, H, W, tx, ty, tx + tw - 1, ty + th - 1, col);
        /* Dark text on light tags, white on dark ones. */
        int luma = (299 * col[0] + 587 * col[1] + 114 * col[2]) / 1000;
        text(rgb, H, W, tx + 1, ty + 1, tag, luma > 140 ? black : white);
    }
    return LG_OK;
}

lg_status lg_detect_image_to_rgb(const float *chw, int C, int H, int W, const float *mean,
                                 const float *std, unsigned char *rgb, lg_error *err) {
    if (!chw || !rgb || (C != 1 && C != 3) || H < 1 || W < 1)
        return lg_error_set(err, LG_ERR_ARG, "detect_image_to_rgb: %d channels, %dx%d", C, H, W);
    size_t hw = (size_t)H * W;
    for (size_t p = 0; p < hw; p++)
        for (int k = 0; k < 3; k++) {
            int c = C == 3 ? k : 0;
            float v = chw[c * hw + p];
            if (mean && std)
                v = v * std[c] + mean[c];
            v = v * 255.0f;
            rgb[p * 3 + k] = (unsigned char)(v <= 0 ? 0 : v >= 255 ? 255 : lrintf(v));
        }
    return LG_OK;
}

lg_status lg_detect_write_png(const char *path, const unsigned char *rgb, int H, int W,
                              lg_error *err) {
    if (!path || !rgb || H < 1 || W < 1)
        return lg_error_set(err, LG_ERR_ARG, "detect_write_png: bad arguments");
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)W;
    image.height = (png_uint_32)H;
    image.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&image, path, 0, rgb, 0, NULL)) {
        lg_status st = lg_error_set(err, LG_ERR_IO, "cannot write '%s': %s", path, image.message);
        png_image_free(&image);
        return st;
    }
    return LG_OK;
}

lg_status lg_detect_write_json(const char *path, const char *const *image_names, int N,
                               const float *boxes, const float *scores, const int *labels,
                               const int *count, int D, const char *const *class_names,
                               int num_names, lg_error *err) {
    if (!path || N < 0 || D < 0 || (N && (!count || !boxes || !scores || !labels)))
        return lg_error_set(err, LG_ERR_ARG, "detect_write_json: bad arguments");
    json_t *root = json_array();
    for (int n = 0; n < N && root; n++) {
        if (count[n] < 0 || count[n] > D) {
            json_decref(root);
            return lg_error_set(err, LG_ERR_ARG, "detect_write_json: image %d has %d of %d", n,
                                count[n], D);
        }
        json_t *dets = json_array(), *img = json_object();
        for (int i = 0; i < count[n]; i++) {
            size_t k = (size_t)n * D + i;
            const float *b = boxes + 4 * k;
            json_t *d = json_object();
            json_object_set_new(
                d, "box",
                json_pack("[ffff]", (double)b[0], (double)b[1], (double)b[2], (double)b[3]));
            json_object_set_new(d, "score", json_real(scores[k]));
            json_object_set_new(d, "label", json_integer(labels[k]));
            if (class_names && labels[k] >= 0 && labels[k] < num_names)
                json_object_set_new(d, "class", json_string(class_names[labels[k]]));
            json_array_append_new(dets, d);
        }
        if (image_names && image_names[n])
            json_object_set_new(img, "image", json_string(image_names[n]));
        else
            json_object_set_new(img, "image", json_integer(n));
        json_object_set_new(img, "detections", dets);
        json_array_append_new(root, img);
    }
    if (!root || json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(7)) != 0) {
        json_decref(root);
        return lg_error_set(err, LG_ERR_IO, "cannot write '%s'", path);
    }
    json_decref(root);
    return LG_OK;
}
