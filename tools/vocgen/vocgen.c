/* vocgen.c — writes a small PASCAL VOC-layout data set, packed as a tar.
 *
 * The real VOC cannot be fetched in CI, so the project makes a stand-in
 * with the same layout and formats: VOCdevkit/VOC2007/JPEGImages/<id>.jpg
 * (libjpeg-turbo), Annotations/<id>.xml in VOC's schema (size, objects with
 * name, pose, truncated, difficult and a 1-based inclusive bndbox) and
 * ImageSets/Main/{train,val,trainval,test}.txt. Each image has one to four
 * non-overlapping shapes (circle, square, triangle, diamond, cross; each
 * class has its own hue, jittered) on a textured background; a shape whose
 * box is under 20 pixels on a side is marked difficult, one cut by the border
 * truncated. The boxes are the tight extent of the painted pixels.
 *
 * Everything is a function of --seed: same seed, same bytes (entries in a
 * fixed order, fixed times and owners in the ustar headers), so the tar's
 * sha256, printed on stdout as `sha256sum` does, can be pinned in a spec.
 * The trainer's VOC reader (runtime/data/voc.c) reads what this writes; the
 * end-to-end test serves the tar over loopback HTTP. tests/check_detect_vocgen.c
 * checks determinism and that the annotations describe the pixels.
 *
 *     vocgen [--seed N] [--images N] [--size PIXELS] [--objects N] [--out FILE.tar]
 *            [--dir DIR]
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jpeglib.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_OBJECTS 4
#define NUM_CLASSES 5
#define ROOT "VOCdevkit/VOC2007/"

static const char *const class_names[NUM_CLASSES] = {"circle", "square", "triangle", "diamond",
                                                     "cross"};
static const float class_hue[NUM_CLASSES] = {0.0f, 120.0f, 220.0f, 50.0f, 290.0f};

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(rng *r) {
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static int rng_int(rng *r, int lo, int hi) { /* [lo, hi] */
    return lo + (int)(rng_unit(r) * (hi - lo + 1));
}

typedef struct object {
    int cls;
    int x0, y0, x1, y1; /* painted extent, 0-based inclusive */
    int difficult, truncated;
} object;

typedef struct options {
    uint64_t seed;
    int images, size, objects;
    const char *out, *dir;
} options;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("vocgen: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void hsv_to_rgb(float h, float s, float v, unsigned char rgb[3]) {
    h = fmodf(h + 360.0f, 360.0f) / 60.0f;
    int i = (int)h;
    float f = h - (float)i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    float c[3];
    switch (i) {
    case 0: c[0] = v, c[1] = t, c[2] = p; break;
    case 1: c[0] = q, c[1] = v, c[2] = p; break;
    case 2: c[0] = p, c[1] = v, c[2] = t; break;
    case 3: c[0] = p, c[1] = q, c[2] = v; break;
    case 4: c[0] = t, c[1] = p, c[2] = v; break;
    default: c[0] = v, c[1] = p, c[2] = q; break;
    }
    for (int k = 0; k < 3; k++)
        rgb[k] = (unsigned char)lrintf(fminf(fmaxf(c[k], 0.0f), 1.0f) * 255.0f);
}

/* A low-saturation texture: stripes or checks at a random angle and
 * period, plus per-pixel noise. */
static void paint_background(unsigned char *img, int S, rng *r) {
    float base = (float)(60 + rng_int(r, 0, 120)), amp = (float)rng_int(r, 10, 40);
    float period = (float)rng_int(r, 6, 24), angle = (float)(rng_unit(r) * M_PI);
    float ca = cosf(angle), sa = sinf(angle);
    int checks = rng_int(r, 0, 1);
    float tint[3] = {(float)rng_int(r, -12, 12), (float)rng_int(r, -12, 12),
                     (float)rng_int(r, -12, 12)};
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            float u = (x * ca + y * sa) / period, v = (-x * sa + y * ca) / period;
            float t = checks ? (float)(((int)floorf(u) + (int)floorf(v)) & 1) * 2 - 1
                             : sinf(u * 2 * (float)M_PI);
            float noise = (float)(rng_unit(r) * 24 - 12);
            for (int k = 0; k < 3; k++) {
                float val = base + amp * t + noise + tint[k];
                img[(y * S + x) * 3 + k] = (unsigned char)fminf(fmaxf(val, 0), 255);
            }
        }
}

/* Whether pixel centre (px, py) lies in shape `cls` centred at (cx, cy)
 * with half-size h. */
static int inside(int cls, float px, float py, float cx, float cy, float h) {
    float dx = px - cx, dy = py - cy;
    switch (cls) {
    case 0: return dx * dx + dy * dy <= h * h;
    case 1: return fabsf(dx) <= h && fabsf(dy) <= h;
    case 2: /* apex up, base at cy + h */
        return dy <= h && dy >= -h && fabsf(dx) <= (dy + h) * 0.5f;
    case 3: return fabsf(dx) + fabsf(dy) <= h;
    default: return (fabsf(dx) <= h * 0.33f && fabsf(dy) <= h) ||
                    (fabsf(dy) <= h * 0.33f && fabsf(dx) <= h);
    }
}

/* Places up to `want` shapes without overlapping boxes (a 2-pixel gap);
 * returns how many fit. */
static int paint_objects(unsigned char *img, int S, rng *r, object *objs, int want) {
    int n = 0;
    for (int tries = 0; tries < 60 && n < want; tries++) {
        int cls = rng_int(r, 0, NUM_CLASSES - 1);
        float h = (float)rng_int(r, S / 14, S / 4);
        float cx = (float)(rng_unit(r) * S), cy = (float)(rng_unit(r) * S);
        int bx0 = (int)floorf(cx - h) - 2, bx1 = (int)ceilf(cx + h) + 2;
        int by0 = (int)floorf(cy - h) - 2, by1 = (int)ceilf(cy + h) + 2;
        int clash = 0;
        for (int k = 0; k < n && !clash; k++)
            clash = !(bx1 < objs[k].x0 || bx0 > objs[k].x1 || by1 < objs[k].y0 || by0 > objs[k].y1);
        if (clash)
            continue;
        object o = {cls, S, S, -1, -1, 0, 0};
        int y_lo = by0 < 0 ? 0 : by0, x_lo = bx0 < 0 ? 0 : bx0;
        for (int y = y_lo; y <= by1 && y < S; y++)
            for (int x = x_lo; x <= bx1 && x < S; x++)
                if (inside(cls, x + 0.5f, y + 0.5f, cx, cy, h)) {
                    o.x0 = x < o.x0 ? x : o.x0;
                    o.x1 = x > o.x1 ? x : o.x1;
                    o.y0 = y < o.y0 ? y : o.y0;
                    o.y1 = y > o.y1 ? y : o.y1;
                }
        if (o.x1 - o.x0 < 3 || o.y1 - o.y0 < 3)
            continue; /* mostly outside the image: not drawn at all */
        unsigned char rgb[3];
        hsv_to_rgb(class_hue[cls] + (float)(rng_unit(r) * 50 - 25), 0.65f + 0.35f * (float)rng_unit(r),
                   0.7f + 0.3f * (float)rng_unit(r), rgb);
        for (int y = o.y0; y <= o.y1; y++)
            for (int x = o.x0; x <= o.x1; x++)
                if (inside(cls, x + 0.5f, y + 0.5f, cx, cy, h))
                    memcpy(img + (y * S + x) * 3, rgb, 3);
        o.truncated = cx - h < 0 || cy - h < 0 || cx + h > S || cy + h > S;
        o.difficult = o.x1 - o.x0 + 1 < 20 || o.y1 - o.y0 + 1 < 20;
        objs[n++] = o;
    }
    return n;
}

static unsigned char *encode_jpeg(const unsigned char *img, int S, unsigned long *size) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *buf = NULL;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, size);
    c.image_width = (JDIMENSION)S;
    c.image_height = (JDIMENSION)S;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 92, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(img + (size_t)c.next_scanline * S * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return buf;
}

/* A growing text buffer. */
typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void text_add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(text *t, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (t->s && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap + (size_t)n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        if (!t->s)
            die("out of memory");
    }
}

static void annotation(text *t, const char *id, int S, const object *objs, int n) {
    t->len = 0;
    text_add(t, "<annotation>\n\t<folder>VOC2007</folder>\n\t<filename>%s.jpg</filename>\n", id);
    text_add(t, "\t<source>\n\t\t<database>lgen vocgen</database>\n\t</source>\n");
    text_add(t, "\t<size>\n\t\t<width>%d</width>\n\t\t<height>%d</height>\n\t\t<depth>3</depth>\n"
                "\t</size>\n\t<segmented>0</segmented>\n", S, S);
    for (int i = 0; i < n; i++)
        text_add(t, "\t<object>\n\t\t<name>%s</name>\n\t\t<pose>Unspecified</pose>\n"
                    "\t\t<truncated>%d</truncated>\n\t\t<difficult>%d</difficult>\n"
                    "\t\t<bndbox>\n\t\t\t<xmin>%d</xmin>\n\t\t\t<ymin>%d</ymin>\n"
                    "\t\t\t<xmax>%d</xmax>\n\t\t\t<ymax>%d</ymax>\n\t\t</bndbox>\n\t</object>\n",
                 class_names[objs[i].cls], objs[i].truncated, objs[i].difficult, objs[i].x0 + 1,
                 objs[i].y0 + 1, objs[i].x1 + 1, objs[i].y1 + 1);
    text_add(t, "</annotation>\n");
}

/* Output: ustar entries with fixed metadata, and optionally plain files. */
typedef struct sink {
    struct archive *tar;
    const char *dir;
} sink;

static void make_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) && errno != EEXIST)
                die("cannot create '%s': %s", buf, strerror(errno));
            *p = '/';
        }
}

static void emit(sink *k, const char *name, const void *data, size_t size) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_mtime(e, 1167609600, 0); /* 2007-01-01 */
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (archive_write_header(k->tar, e) != ARCHIVE_OK ||
        archive_write_data(k->tar, data, size) != (la_ssize_t)size)
        die("cannot write '%s' to the tar: %s", name, archive_error_string(k->tar));
    archive_entry_free(e);
    if (k->dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", k->dir, name);
        make_dirs(path);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, size, f) != size || fclose(f))
            die("cannot write '%s': %s", path, strerror(errno));
    }
}

static void emit_dir(sink *k, const char *name) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0755);
    archive_entry_set_mtime(e, 1167609600, 0);
    if (archive_write_header(k->tar, e) != ARCHIVE_OK)
        die("cannot write '%s' to the tar: %s", name, archive_error_string(k->tar));
    archive_entry_free(e);
}

static void sha256_file(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot read '%s': %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        die("cannot start sha256");
    unsigned char buf[65536], md[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static long parse_int(const char *flag, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi)
        die("%s: expected an integer in [%ld, %ld], got '%s'", flag, lo, hi, v);
    return x;
}

static void usage(FILE *f) {
    fputs("usage: vocgen [--seed N] [--images N] [--size PIXELS] [--objects N] [--out FILE.tar]\n"
          "              [--dir DIR]\n"
          "Writes a small VOC-layout data set (VOCdevkit/VOC2007) as a tar and prints its sha256.\n"
          "  --seed N      everything follows from it (default 1)\n"
          "  --images N    number of images, 4 to 100000 (default 200)\n"
          "  --size PIXELS square image side, 48 to 1024 (default 128)\n"
          "  --objects N   at most N shapes per image, 1 to 4 (default 4)\n"
          "  --out FILE    the tar to write (default vocgen.tar)\n"
          "  --dir DIR     also write the files under DIR\n"
          "classes: circle square triangle diamond cross\n",
          f);
}

int main(int argc, char **argv) {
    options o = {1, 200, 128, MAX_OBJECTS, "vocgen.tar", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--seed"))
            o.seed = (uint64_t)parse_int(a, argv[++i], 0, 0x7fffffffL);
        else if (!strcmp(a, "--images"))
            o.images = (int)parse_int(a, argv[++i], 4, 100000);
        else if (!strcmp(a, "--objects"))
            o.objects = (int)parse_int(a, argv[++i], 1, MAX_OBJECTS);
        else if (!strcmp(a, "--size"))
            o.size = (int)parse_int(a, argv[++i], 48, 1024);
        else if (!strcmp(a, "--out"))
            o.out = argv[++i];
        else if (!strcmp(a, "--dir"))
            o.dir = argv[++i];
        else {
            fprintf(stderr, "vocgen: error: unknown flag '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    sink k = {archive_write_new(), o.dir};
    if (!k.tar || archive_write_set_format_ustar(k.tar) != ARCHIVE_OK ||
        archive_write_open_filename(k.tar, o.out) != ARCHIVE_OK)
        die("cannot write '%s': %s", o.out, k.tar ? archive_error_string(k.tar) : "no memory");
    emit_dir(&k, "VOCdevkit/");
    emit_dir(&k, ROOT);
    emit_dir(&k, ROOT "Annotations/");
    emit_dir(&k, ROOT "ImageSets/");
    emit_dir(&k, ROOT "ImageSets/Main/");
    emit_dir(&k, ROOT "JPEGImages/");

    int S = o.size;
    unsigned char *img = malloc((size_t)S * S * 3);
    text xml = {0}, sets[4] = {{0}};
    if (!img)
        die("out of memory");
    /* Split: half train, a quarter val, a quarter test, by image index. */
    for (int i = 0; i < o.images; i++) {
        rng r = {o.seed * 0x100000001B3ull + (uint64_t)i * 0x9E3779B97F4A7C15ull};
        rng_next(&r);
        char id[16], name[64];
        snprintf(id, sizeof id, "%06d", i + 1);
        paint_background(img, S, &r);
        object objs[MAX_OBJECTS];
        int n = paint_objects(img, S, &r, objs, rng_int(&r, 1, o.objects));
        unsigned long jsize = 0;
        unsigned char *jpeg = encode_jpeg(img, S, &jsize);
        snprintf(name, sizeof name, ROOT "JPEGImages/%s.jpg", id);
        emit(&k, name, jpeg, jsize);
        free(jpeg);
        annotation(&xml, id, S, objs, n);
        snprintf(name, sizeof name, ROOT "Annotations/%s.xml", id);
        emit(&k, name, xml.s, xml.len);
        int part = i % 4; /* 0, 1 train; 2 val; 3 test */
        if (part < 2)
            text_add(&sets[0], "%s\n", id);
        if (part == 2)
            text_add(&sets[1], "%s\n", id);
        if (part < 3)
            text_add(&sets[2], "%s\n", id);
        if (part == 3)
            text_add(&sets[3], "%s\n", id);
    }
    static const char *const set_names[4] = {"train", "val", "trainval", "test"};
    for (int s = 0; s < 4; s++) {
        char name[64];
        snprintf(name, sizeof name, ROOT "ImageSets/Main/%s.txt", set_names[s]);
        emit(&k, name, sets[s].s ? sets[s].s : "", sets[s].len);
        free(sets[s].s);
    }
    if (archive_write_close(k.tar) != ARCHIVE_OK)
        die("cannot finish '%s': %s", o.out, archive_error_string(k.tar));
    archive_write_free(k.tar);
    free(img);
    free(xml.s);
    char hex[65];
    sha256_file(o.out, hex);
    printf("%s  %s\n", hex, o.out);
    return 0;
}
