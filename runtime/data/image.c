/* image.c — PNG (libpng) and JPEG (libjpeg-turbo) decoding into a sample.
 *
 * Input is a file's bytes in memory; output is s->img as float32 CHW in
 * [0, 1] with 1 or 3 channels (palette, 16-bit, alpha and gray/RGB are
 * converted). The header's size is checked against LG_IMAGE_MAX_PIXELS
 * before any pixel buffer is allocated, so a 100000 x 100000 claim is
 * refused cheaply. Both libraries report errors through longjmp here; any
 * error or warning (a truncated file is only a warning to libjpeg) becomes
 * an LG_ERR_FORMAT naming the file.
 */
#include "internal.h"

#include <errno.h>
#include <jpeglib.h>
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

static lg_status too_big(const char *name, unsigned long w, unsigned long h, lg_error *err) {
    return lg_error_set(err, LG_ERR_FORMAT,
                        "'%s': image claims %lux%lu pixels, more than the limit of %lld; refusing "
                        "to decode",
                        name, w, h, (long long)LG_IMAGE_MAX_PIXELS);
}

/* i / 255.0f exactly as torchvision's ToTensor (a multiply by 1/255 is off
 * in the last bit for some i). */
static float unit[256];
static pthread_once_t unit_once = PTHREAD_ONCE_INIT;
static void unit_init(void) {
    for (int i = 0; i < 256; i++)
        unit[i] = (float)i / 255.0f;
}

const float *lg_u8_to_unit(void) {
    pthread_once(&unit_once, unit_init);
    return unit;
}

/* RGB -> L in place (the first w*h bytes), with PIL's convert("L") integer
 * formula, so gray decoding matches what torchvision's loaders see. */
static void rgb_to_l(uint8_t *px, size_t n) {
    for (size_t i = 0; i < n; i++)
        px[i] = (uint8_t)((px[3 * i] * 19595u + px[3 * i + 1] * 38470u + px[3 * i + 2] * 7471u +
                           0x8000u) >> 16);
}

/* uint8 HWC rows in s->raw -> float CHW in s->img */
static void to_planes(lg_sample *s, const uint8_t *px, int c, int h, int w) {
    const float *k = lg_u8_to_unit();
    size_t plane = (size_t)h * w;
    if (c == 1) {
        for (size_t i = 0; i < plane; i++)
            s->img[i] = k[px[i]];
        return;
    }
    float *r = s->img, *g = s->img + plane, *b = s->img + 2 * plane;
    for (size_t i = 0; i < plane; i++) {
        r[i] = k[px[3 * i]];
        g[i] = k[px[3 * i + 1]];
        b[i] = k[px[3 * i + 2]];
    }
}

/* ---- PNG ------------------------------------------------------------------ */

typedef struct png_src {
    const uint8_t *data;
    size_t size, pos;
    char msg[256];
    jmp_buf jb;
} png_src;

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    png_src *src = png_get_io_ptr(png);
    if (src->size - src->pos < n)
        png_error(png, "file is truncated");
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

static void png_err(png_structp png, png_const_charp msg) {
    png_src *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, "%s", msg);
    longjmp(src->jb, 1);
}

static void png_warn(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* benign (e.g. an unknown chunk); real damage raises an error */
}

lg_status lg_png_decode(const uint8_t *data, size_t size, int channels, lg_sample *s,
                        const char *name, lg_error *err) {
    if (size < 8 || png_sig_cmp(data, 0, 8))
        return lg_error_set(err, LG_ERR_FORMAT, "'%s' is not a PNG file", name);
    /* The IHDR chunk comes first: refuse a huge claim before libpng runs. */
    if (size >= 24 && !memcmp(data + 12, "IHDR", 4)) {
        unsigned long w = (unsigned long)data[16] << 24 | data[17] << 16 | data[18] << 8 | data[19];
        unsigned long h = (unsigned long)data[20] << 24 | data[21] << 16 | data[22] << 8 | data[23];
        if ((unsigned long long)w * h > (unsigned long long)LG_IMAGE_MAX_PIXELS)
            return too_big(name, w, h, err);
    }
    png_src src = {.data = data, .size = size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_err, png_warn);
    if (!png)
        return lg_error_set(err, LG_ERR_NOMEM, "cannot start libpng");
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return lg_error_set(err, LG_ERR_NOMEM, "cannot start libpng");
    }
    if (setjmp(src.jb)) {
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return lg_error_set(err, LG_ERR_FORMAT, "'%s': corrupt PNG: %s", name, src.msg);
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, ctype;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
    if ((unsigned long long)w * h > (unsigned long long)LG_IMAGE_MAX_PIXELS) {
        png_destroy_read_struct(&png, &info, NULL);
        return too_big(name, w, h, err);
    }
    int gray = !(ctype & PNG_COLOR_MASK_COLOR);
    int c = channels ? channels : (gray ? 1 : 3);
    if (ctype == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (gray && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    if (depth == 16)
        png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (c == 3 && gray)
        png_set_gray_to_rgb(png);
    int dc = gray ? 1 : 3; /* decoded channels; RGB -> L afterwards when c = 1 */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    lg_status st;
    if ((st = lg_sample_reserve(s, c, (int)h, (int)w, err)) ||
        (st = lg_sample_reserve_raw(s, (size_t)w * h * 3, err))) {
        png_destroy_read_struct(&png, &info, NULL);
        return st;
    }
    if (c == 3)
        dc = 3;
    if (png_get_rowbytes(png, info) != (size_t)w * dc) {
        png_destroy_read_struct(&png, &info, NULL);
        return lg_error_set(err, LG_ERR_FORMAT, "'%s': unsupported PNG layout", name);
    }
    rows = malloc(h * sizeof *rows);
    if (!rows) {
        png_destroy_read_struct(&png, &info, NULL);
        return lg_error_set(err, LG_ERR_NOMEM, "out of memory");
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = s->raw + (size_t)y * w * dc;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    if (c == 1 && dc == 3)
        rgb_to_l(s->raw, (size_t)w * h);
    to_planes(s, s->raw, c, (int)h, (int)w);
    return LG_OK;
}

/* ---- JPEG ----------------------------------------------------------------- */

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_error_exit(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jb, 1);
}

/* A warning (level -1) means corrupt data, e.g. "Premature end of JPEG file". */
static void jpeg_emit(j_common_ptr cinfo, int level) {
    if (level < 0)
        jpeg_error_exit(cinfo);
}

lg_status lg_jpeg_decode(const uint8_t *data, size_t size, int channels, lg_sample *s,
                         const char *name, lg_error *err) {
    if (size < 3 || data[0] != 0xff || data[1] != 0xd8)
        return lg_error_set(err, LG_ERR_FORMAT, "'%s' is not a JPEG file", name);
    struct jpeg_decompress_struct cinfo;
    jpeg_err je;
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_error_exit;
    je.pub.emit_message = jpeg_emit;
    je.msg[0] = '\0';
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&cinfo);
        return lg_error_set(err, LG_ERR_FORMAT, "'%s': corrupt JPEG: %s", name, je.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if ((unsigned long long)cinfo.image_width * cinfo.image_height >
        (unsigned long long)LG_IMAGE_MAX_PIXELS) {
        unsigned long w = cinfo.image_width, h = cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return too_big(name, w, h, err);
    }
    int gray = cinfo.num_components == 1;
    int c = channels ? channels : (gray ? 1 : 3);
    /* A colour JPEG read as gray goes through RGB, as PIL's convert("L"). */
    int dc = gray && c == 1 ? 1 : 3;
    cinfo.out_color_space = dc == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    lg_status st;
    if ((st = lg_sample_reserve(s, c, h, w, err)) ||
        (st = lg_sample_reserve_raw(s, (size_t)w * h * dc, err))) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = s->raw + (size_t)cinfo.output_scanline * w * dc;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (c == 1 && dc == 3)
        rgb_to_l(s->raw, (size_t)w * h);
    to_planes(s, s->raw, c, h, w);
    return LG_OK;
}

lg_status lg_image_decode(const uint8_t *data, size_t size, int channels, lg_sample *s,
                          const char *name, lg_error *err) {
    if (size >= 8 && !png_sig_cmp(data, 0, 8))
        return lg_png_decode(data, size, channels, s, name, err);
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8)
        return lg_jpeg_decode(data, size, channels, s, name, err);
    return lg_error_set(err, LG_ERR_FORMAT, "'%s' is neither PNG nor JPEG", name);
}

/* The file's bytes go to s->file, apart from s->raw (the decoders' pixels). */
lg_status lg_image_load(const char *path, int channels, lg_sample *s, lg_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return lg_error_set(err, LG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return lg_error_set(err, LG_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    }
    long n = ftell(f);
    rewind(f);
    if (n < 0 || n > (1l << 30)) {
        fclose(f);
        return lg_error_set(err, LG_ERR_FORMAT, "'%s': bad size %ld", path, n);
    }
    if ((size_t)n > s->file_cap) {
        uint8_t *p = realloc(s->file, (size_t)n);
        if (!p) {
            fclose(f);
            return lg_error_set(err, LG_ERR_NOMEM, "cannot allocate %ld bytes for '%s'", n, path);
        }
        s->file = p;
        s->file_cap = (size_t)n;
    }
    size_t got = fread(s->file, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n)
        return lg_error_set(err, LG_ERR_IO, "cannot read '%s'", path);
    return lg_image_decode(s->file, (size_t)n, channels, s, path, err);
}
