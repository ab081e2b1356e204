/* check_detect_vocgen.c — tests of tools/vocgen, the VOC-layout data set
 * generator (build/vocgen, built by tests/detect.mk).
 *
 * Runs the program into a temporary directory and checks: same seed, same
 * tar bytes and the printed sha256 is the tar's; another seed differs; the
 * tar holds VOCdevkit/VOC2007 with consistent ImageSets lists; every
 * annotation parses with libxml2 as VOC XML; and its boxes describe the
 * pixels of the decoded JPEG (shape colour inside and on every edge, little
 * of it around), with `difficult` exactly on the small objects. Bad flags
 * exit 2.
 */
#include "lgen/data.h"
#include "lgen/detect.h"

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <math.h>
#include <jpeglib.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE 96
#define IMAGES 24

static char tmpdir[256];

static const char *vocgen_path(void) {
    static char path[512];
    const char *build = getenv("BUILD");
    snprintf(path, sizeof path, "%s/vocgen", build && *build ? build : "build");
    return path;
}

/* Runs vocgen with extra arguments; returns its exit status and stdout. */
static int run_vocgen(const char *args, char *out, size_t size) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>%s/stderr", vocgen_path(), args, tmpdir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*size + 1);
    ck_assert(fread(buf, 1, *size, f) == *size);
    buf[*size] = '\0';
    fclose(f);
    return buf;
}

static void sha256_hex(const char *data, size_t size, char hex[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data, size, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lgen_vocgen_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
}

START_TEST(test_deterministic) {
    char args[1024], out1[256], out2[256], out3[256];
    snprintf(args, sizeof args, "--seed 5 --images %d --size %d --out %s/a.tar", IMAGES, SIZE,
             tmpdir);
    ck_assert_int_eq(run_vocgen(args, out1, sizeof out1), 0);
    snprintf(args, sizeof args, "--seed 5 --images %d --size %d --out %s/b.tar", IMAGES, SIZE,
             tmpdir);
    ck_assert_int_eq(run_vocgen(args, out2, sizeof out2), 0);
    snprintf(args, sizeof args, "--seed 6 --images %d --size %d --out %s/c.tar", IMAGES, SIZE,
             tmpdir);
    ck_assert_int_eq(run_vocgen(args, out3, sizeof out3), 0);
    char path[512];
    size_t na, nb, nc;
    snprintf(path, sizeof path, "%s/a.tar", tmpdir);
    char *a = read_all(path, &na);
    snprintf(path, sizeof path, "%s/b.tar", tmpdir);
    char *b = read_all(path, &nb);
    snprintf(path, sizeof path, "%s/c.tar", tmpdir);
    char *c = read_all(path, &nc);
    ck_assert_uint_eq(na, nb);
    ck_assert_int_eq(memcmp(a, b, na), 0);
    ck_assert(nc != na || memcmp(a, c, na) != 0);
    /* stdout is "<sha256>  <file>" like sha256sum, and the hash is right. */
    char hex[65];
    sha256_hex(a, na, hex);
    ck_assert_int_eq(strncmp(out1, hex, 64), 0);
    ck_assert_int_eq(out1[64], ' ');
    ck_assert_ptr_nonnull(strstr(out1, "a.tar"));
    ck_assert_int_eq(strncmp(out1, out2, 64), 0);
    ck_assert_int_ne(strncmp(out1, out3, 64), 0);
    free(a);
    free(b);
    free(c);
}
END_TEST

START_TEST(test_bad_flags) {
    char out[256];
    ck_assert_int_eq(run_vocgen("--images 2", out, sizeof out), 1);
    ck_assert_int_eq(run_vocgen("--colour red", out, sizeof out), 2);
    char path[512];
    size_t n;
    snprintf(path, sizeof path, "%s/stderr", tmpdir);
    char *err = read_all(path, &n);
    ck_assert_ptr_nonnull(strstr(err, "vocgen: error: unknown flag '--colour'"));
    free(err);
}
END_TEST

/* ---- the tar's contents ----------------------------------------------------------- */

typedef struct entry {
    char name[128];
    char *data;
    size_t size;
} entry;

static entry entries[4 * IMAGES + 16];
static int num_entries;

static void load_tar(const char *path) {
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    ck_assert_int_eq(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
    struct archive_entry *e;
    num_entries = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        ck_assert_int_lt(num_entries, (int)(sizeof entries / sizeof entries[0]));
        entry *en = &entries[num_entries++];
        snprintf(en->name, sizeof en->name, "%s", archive_entry_pathname(e));
        en->size = (size_t)archive_entry_size(e);
        en->data = malloc(en->size + 1);
        ck_assert(archive_read_data(a, en->data, en->size) == (la_ssize_t)en->size);
        en->data[en->size] = '\0';
    }
    archive_read_free(a);
}

static entry *find(const char *name) {
    for (int i = 0; i < num_entries; i++)
        if (!strcmp(entries[i].name, name))
            return &entries[i];
    return NULL;
}

static const char *text(xmlNode *n, const char *name) {
    for (xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
            return c->children ? (const char *)c->children->content : "";
    return NULL;
}

static xmlNode *child(xmlNode *n, const char *name) {
    for (xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
            return c;
    return NULL;
}

static unsigned char *decode(const entry *en, int *w, int *h) {
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr jerr;
    d.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, (const unsigned char *)en->data, (unsigned long)en->size);
    ck_assert_int_eq(jpeg_read_header(&d, TRUE), JPEG_HEADER_OK);
    d.out_color_space = JCS_RGB;
    jpeg_start_decompress(&d);
    *w = (int)d.output_width;
    *h = (int)d.output_height;
    unsigned char *px = malloc((size_t)*w * *h * 3);
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = px + (size_t)d.output_scanline * *w * 3;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    return px;
}

/* Shapes are saturated; the background is nearly grey. */
static int colourful(const unsigned char *px, int w, int x, int y) {
    const unsigned char *p = px + ((size_t)y * w + x) * 3;
    int mx = p[0], mn = p[0];
    for (int k = 1; k < 3; k++) {
        mx = p[k] > mx ? p[k] : mx;
        mn = p[k] < mn ? p[k] : mn;
    }
    return mx - mn > 70;
}

/* Fraction of colourful pixels in [x0, x1] x [y0, y1] clipped to the image. */
static double fraction(const unsigned char *px, int w, int h, int x0, int y0, int x1, int y1) {
    int n = 0, c = 0;
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < h; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < w; x++) {
            n++;
            c += colourful(px, w, x, y);
        }
    return n ? (double)c / n : 0;
}

START_TEST(test_layout_and_annotations) {
    char args[1024], out[256], path[512];
    snprintf(args, sizeof args, "--seed 11 --images %d --size %d --out %s/d.tar", IMAGES, SIZE,
             tmpdir);
    ck_assert_int_eq(run_vocgen(args, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/d.tar", tmpdir);
    load_tar(path);
    const char *root = "VOCdevkit/VOC2007/";
    char name[256];
    /* ImageSets: train + val = trainval; test is the rest; all ids exist. */
    const char *sets[4] = {"train", "val", "trainval", "test"};
    int in_set[4][IMAGES + 1] = {{0}};
    for (int s = 0; s < 4; s++) {
        snprintf(name, sizeof name, "%sImageSets/Main/%s.txt", root, sets[s]);
        entry *en = find(name);
        ck_assert_msg(en != NULL, "no %s", name);
        for (char *line = en->data; *line;) {
            int id = atoi(line);
            ck_assert(id >= 1 && id <= IMAGES);
            ck_assert_int_eq((int)strspn(line, "0123456789"), 6);
            in_set[s][id]++;
            line = strchr(line, '\n');
            ck_assert_ptr_nonnull(line);
            line++;
        }
    }
    int objects = 0, difficult = 0, per_class[5] = {0};
    const char *classes[5] = {"circle", "square", "triangle", "diamond", "cross"};
    for (int id = 1; id <= IMAGES; id++) {
        ck_assert_int_eq(in_set[0][id] + in_set[1][id], in_set[2][id]);
        ck_assert_int_eq(in_set[2][id] + in_set[3][id], 1);
        snprintf(name, sizeof name, "%sAnnotations/%06d.xml", root, id);
        entry *xml = find(name);
        ck_assert_msg(xml != NULL, "no %s", name);
        snprintf(name, sizeof name, "%sJPEGImages/%06d.jpg", root, id);
        entry *jpg = find(name);
        ck_assert_msg(jpg != NULL, "no %s", name);
        xmlDocPtr doc = xmlReadMemory(xml->data, (int)xml->size, xml->name, NULL, XML_PARSE_NONET);
        ck_assert_msg(doc != NULL, "%s does not parse", xml->name);
        xmlNode *ann = xmlDocGetRootElement(doc);
        ck_assert_str_eq((const char *)ann->name, "annotation");
        char file[32];
        snprintf(file, sizeof file, "%06d.jpg", id);
        ck_assert_str_eq(text(ann, "filename"), file);
        xmlNode *size = child(ann, "size");
        ck_assert_int_eq(atoi(text(size, "width")), SIZE);
        ck_assert_int_eq(atoi(text(size, "height")), SIZE);
        ck_assert_int_eq(atoi(text(size, "depth")), 3);
        int w, h;
        unsigned char *px = decode(jpg, &w, &h);
        ck_assert_int_eq(w, SIZE);
        ck_assert_int_eq(h, SIZE);
        int n = 0;
        for (xmlNode *o = ann->children; o; o = o->next) {
            if (o->type != XML_ELEMENT_NODE || strcmp((const char *)o->name, "object"))
                continue;
            n++;
            int cls = -1;
            for (int c = 0; c < 5; c++)
                if (!strcmp(text(o, "name"), classes[c]))
                    cls = c;
            ck_assert_msg(cls >= 0, "%s: unknown class %s", xml->name, text(o, "name"));
            per_class[cls]++;
            xmlNode *bb = child(o, "bndbox");
            ck_assert_ptr_nonnull(bb);
            int x0 = atoi(text(bb, "xmin")) - 1, y0 = atoi(text(bb, "ymin")) - 1;
            int x1 = atoi(text(bb, "xmax")) - 1, y1 = atoi(text(bb, "ymax")) - 1;
            ck_assert(0 <= x0 && x0 < x1 && x1 < SIZE && 0 <= y0 && y0 < y1 && y1 < SIZE);
            int diff = atoi(text(o, "difficult"));
            ck_assert_int_eq(diff, x1 - x0 + 1 < 20 || y1 - y0 + 1 < 20);
            difficult += diff;
            ck_assert_ptr_nonnull(text(o, "truncated"));
            /* The box holds the shape: colour inside, on each edge band,
             * little of it in a band around. */
            double in = fraction(px, w, h, x0, y0, x1, y1);
            ck_assert_msg(in > 0.25, "%s: object %d box is %.2f colourful", xml->name, n, in);
            ck_assert_msg(fraction(px, w, h, x0, y0, x0 + 1, y1) > 0, "%s: left edge", xml->name);
            ck_assert_msg(fraction(px, w, h, x1 - 1, y0, x1, y1) > 0, "%s: right edge", xml->name);
            ck_assert_msg(fraction(px, w, h, x0, y0, x1, y0 + 1) > 0, "%s: top edge", xml->name);
            ck_assert_msg(fraction(px, w, h, x0, y1 - 1, x1, y1) > 0, "%s: bottom edge", xml->name);
            double ring = (fraction(px, w, h, x0 - 4, y0, x0 - 3, y1) +
                           fraction(px, w, h, x1 + 3, y0, x1 + 4, y1) +
                           fraction(px, w, h, x0, y0 - 4, x1, y0 - 3) +
                           fraction(px, w, h, x0, y1 + 3, x1, y1 + 4)) /
                          4;
            ck_assert_msg(ring < 0.2, "%s: object %d has %.2f colour around it", xml->name, n,
                          ring);
        }
        ck_assert_int_ge(n, 1);
        ck_assert_int_le(n, 4);
        objects += n;
        free(px);
        xmlFreeDoc(doc);
    }
    ck_assert_int_ge(objects, IMAGES);
    ck_assert_int_gt(difficult, 0);
    ck_assert_int_lt(difficult, objects / 2);
    for (int c = 0; c < 5; c++)
        ck_assert_msg(per_class[c] > 0, "class %s never drawn", classes[c]);
    for (int i = 0; i < num_entries; i++)
        free(entries[i].data);
}
END_TEST

/* Boxes of annotation `id` (1-based) as the loader should give them. */
static int expected_boxes(const char *root, int id, float *boxes, int *labels, int *difficult) {
    static const char *const names[5] = {"circle", "square", "triangle", "diamond", "cross"};
    char name[1024];
    snprintf(name, sizeof name, "%s/VOCdevkit/VOC2007/Annotations/%06d.xml", root, id);
    xmlDocPtr doc = xmlReadFile(name, NULL, XML_PARSE_NONET);
    ck_assert_msg(doc != NULL, "cannot parse %s", name);
    int n = 0;
    for (xmlNode *o = xmlDocGetRootElement(doc)->children; o; o = o->next) {
        if (o->type != XML_ELEMENT_NODE || strcmp((const char *)o->name, "object"))
            continue;
        xmlNode *bb = child(o, "bndbox");
        boxes[4 * n] = (float)(atoi(text(bb, "xmin")) - 1);
        boxes[4 * n + 1] = (float)(atoi(text(bb, "ymin")) - 1);
        boxes[4 * n + 2] = (float)atoi(text(bb, "xmax"));
        boxes[4 * n + 3] = (float)atoi(text(bb, "ymax"));
        for (int c = 0; c < 5; c++)
            if (!strcmp(text(o, "name"), names[c]))
                labels[n] = c;
        difficult[n] = atoi(text(o, "difficult"));
        n++;
    }
    xmlFreeDoc(doc);
    return n;
}

START_TEST(test_through_the_data_pipeline) {
    char args[2048], out[256], mirror[1024], cache[300], files_dir[300], tar[400];
    snprintf(files_dir, sizeof files_dir, "%s/files", tmpdir);
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    ck_assert_int_eq(mkdir(files_dir, 0755), 0);
    snprintf(tar, sizeof tar, "%s/vocmini.tar", files_dir);
    snprintf(args, sizeof args, "--seed 21 --images %d --size %d --out %s --dir %s/plain", IMAGES,
             SIZE, tar, tmpdir);
    ck_assert_int_eq(run_vocgen(args, out, sizeof out), 0);
    char sha[65];
    memcpy(sha, out, 64);
    sha[64] = '\0';
    snprintf(mirror, sizeof mirror, "file://%s/", files_dir);

    static const char *const classes[5] = {"circle", "square", "triangle", "diamond", "cross"};
    static const char *const paths[1] = {"VOCdevkit/VOC2007"};
    const lg_split_desc splits[2] = {{"trainval", paths, 1, "trainval"},
                                     {"test", paths, 1, "test"}};
    const lg_file_desc files[1] = {{"vocmini.tar", sha, 1}};
    const char *mirrors[1] = {mirror};
    lg_dataset_desc d = {"vocmini", mirrors, 1, files,  1, LG_FORMAT_VOC,
                         {0},       classes, 5, splits, 2};
    lg_data_config cfg = {0};
    cfg.data_dir = cache;
    cfg.quiet = 1;
    lg_error err = {0};
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "prepare: %s", err.msg);
    lg_dataset *ds = NULL;
    ck_assert_msg(lg_dataset_open(&ds, &d, "trainval", &cfg, &err) == LG_OK, "open: %s", err.msg);
    ck_assert_int_eq(lg_dataset_size(ds), IMAGES * 3 / 4);

    enum { B = 8, BATCH = 6 };
    lg_split_spec spec = {"train", &d, "trainval", 0, 1, 0, NULL, 0, 3, SIZE, SIZE, B};
    lg_loader_options opt = {BATCH, 0, 0, 0, 0};
    lg_loader loader = {0};
    ck_assert_msg(lg_loader_init(&loader, &spec, ds, &opt, 1, &err) == LG_OK, "loader: %s",
                  err.msg);
    ck_assert_int_eq(lg_loader_start(&loader, 0, 0, &err), LG_OK);
    /* trainval.txt lists ids in order: sample i is the i-th id in it. */
    int ids[IMAGES], nids = 0;
    for (int id = 1; id <= IMAGES; id++)
        if ((id - 1) % 4 != 3)
            ids[nids++] = id;
    lg_voc_eval ev;
    lg_voc_eval_init(&ev, 6, NULL);
    const lg_batch *b;
    int seen = 0;
    while (lg_loader_next(&loader, &b, &err) == LG_OK && b) {
        for (int i = 0; i < b->n; i++) {
            int64_t idx = b->index[i];
            ck_assert(idx >= 0 && idx < nids);
            float want[4 * B];
            int wl[B], wd[B];
            char plain[300];
            snprintf(plain, sizeof plain, "%s/plain", tmpdir);
            int n = expected_boxes(plain, ids[idx], want, wl, wd);
            ck_assert_int_eq(b->box_count[i], n);
            for (int k = 0; k < n; k++) {
                for (int c = 0; c < 4; c++)
                    ck_assert_float_eq(b->boxes[(i * B + k) * 4 + c], want[4 * k + c]);
                ck_assert_int_eq(b->box_label[i * B + k], wl[k]);
                ck_assert_int_eq(b->box_difficult[i * B + k], wd[k]);
            }
            const float *px = b->image + (size_t)i * 3 * SIZE * SIZE;
            for (int p = 0; p < 3 * SIZE * SIZE; p += 97)
                ck_assert(px[p] >= 0.0f && px[p] <= 1.0f);
            seen++;
        }
        /* The ground truth as detections (score 1): every class is found. */
        lg_det_targets t = {B, b->boxes, b->box_label, b->box_difficult, b->box_count, 1, 0};
        int labels[BATCH * B], count[BATCH];
        float scores[BATCH * B];
        for (int i = 0; i < BATCH * B; i++) {
            labels[i] = b->box_label[i] + 1;
            scores[i] = 1.0f;
        }
        for (int i = 0; i < b->n; i++)
            count[i] = b->box_count[i];
        ck_assert_int_eq(
            lg_voc_eval_add_batch(&ev, b->boxes, scores, labels, count, b->n, B, &t, NULL), LG_OK);
    }
    ck_assert_msg(err.code == LG_OK, "loader: %s", err.msg);
    ck_assert_int_eq(seen, nids);
    float ap[6], map;
    lg_voc_map_config vc = {0.5f, 0, 0};
    ck_assert_int_eq(lg_voc_eval_compute(&ev, &vc, ap, &map, NULL), LG_OK);
    ck_assert(isnan(ap[0]));
    ck_assert_float_eq_tol(map, 1.0f, 1e-6f);
    lg_voc_eval_free(&ev);
    lg_loader_free(&loader);
    lg_dataset_close(ds);
    /* A wrong sha256 is refused. */
    char bad[65];
    memcpy(bad, sha, 65);
    bad[0] = bad[0] == '0' ? '1' : '0';
    const lg_file_desc bad_files[1] = {{"vocmini.tar", bad, 1}};
    lg_dataset_desc bd = d;
    bd.name = "vocmini_bad";
    bd.files = bad_files;
    ck_assert_int_eq(lg_data_prepare(&bd, &cfg, &err), LG_ERR_CHECKSUM);
}
END_TEST

static Suite *vocgen_suite(void) {
    Suite *s = suite_create("vocgen");
    TCase *tc = tcase_create("vocgen");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_bad_flags);
    tcase_add_test(tc, test_layout_and_annotations);
    tcase_add_test(tc, test_through_the_data_pipeline);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(vocgen_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
