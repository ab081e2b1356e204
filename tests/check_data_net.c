/* check_data_net.c — downloads over a real HTTP server on loopback.
 *
 * Each test starts tests/data/http_server.py (python3, standard library only)
 * on 127.0.0.1 and a free port, serving a directory of files the test wrote;
 * the server's path prefix picks a behaviour (normal, cut half-way, no range
 * support, 500, slow, stalled) and it logs every request, so the tests check
 * what the client asked for, not only what it ended with. The server dies
 * with the test process (PR_SET_PDEATHSIG) and is stopped at the end.
 */
#include "../runtime/data/internal.h"

#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256], base[128], logpath[512];
static pid_t server = -1;

static void tpath(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s/%s", tmpdir, rel); }

static void write_payload(const char *rel, size_t n) {
    char p[1024];
    tpath(p, sizeof p, rel);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < n; i++)
        fputc((int)((i * 2654435761u) >> 13) & 0xff, f);
    fclose(f);
}

/* cert/key: NULL for HTTP, or PEM files for HTTPS. */
static void start_server_tls(const char *cert, const char *key);
static void start_server(void) { start_server_tls(NULL, NULL); }

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lgen_check_net_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void start_server_tls(const char *cert, const char *key) {
    if (!tmpdir[0])
        make_tmpdir();
    char root[512], portfile[512];
    tpath(root, sizeof root, "www");
    mkdir(root, 0777);
    tpath(portfile, sizeof portfile, "port");
    tpath(logpath, sizeof logpath, "requests.log");
    pid_t parent = getpid();
    server = fork();
    ck_assert_int_ge(server, 0);
    if (server == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        execlp("python3", "python3", "tests/data/http_server.py", root, portfile, logpath, cert,
               key, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(portfile, "r");
        int port;
        if (f && fscanf(f, "%d", &port) == 1) {
            fclose(f);
            snprintf(base, sizeof base, "%s://127.0.0.1:%d", cert ? "https" : "http", port);
            return;
        }
        if (f)
            fclose(f);
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ck_abort_msg("the test HTTP server did not start (is python3 installed?)");
}

static void stop_server(void) {
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
        server = -1;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    tmpdir[0] = '\0';
}

/* Lines of the request log containing every one of the given strings. */
static int count_requests(const char *a, const char *b) {
    FILE *f = fopen(logpath, "r");
    if (!f)
        return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, a) && (!b || strstr(line, b));
    fclose(f);
    return n;
}

static int exists(const char *rel) {
    char p[1024];
    tpath(p, sizeof p, rel);
    return access(p, F_OK) == 0;
}

static char payload_hex[65];

static void setup_payload(size_t n) {
    write_payload("www/data.bin", n);
    char p[1024];
    tpath(p, sizeof p, "www/data.bin");
    ck_assert_int_eq(lg_sha256_file(p, payload_hex, NULL), LG_OK);
}

static lg_data_config config(void) {
    static char dir[512];
    tpath(dir, sizeof dir, "cache");
    lg_data_config cfg = {.data_dir = dir, .quiet = 1, .retries = 3, .connect_timeout_s = 5};
    return cfg;
}

static void mirror(char *buf, size_t n, const char *mode) {
    snprintf(buf, n, "%s/%s/", base, mode);
}

START_TEST(test_http_download_and_checksum) {
    start_server();
    setup_payload(300000);
    char m[256];
    mirror(m, sizeof m, "files");
    const char *mirrors[] = {m};
    lg_file_desc files[] = {{"data.bin", payload_hex, 0}};
    lg_dataset_desc d = {.name = "ds", .mirrors = mirrors, .n_mirrors = 1, .files = files,
                         .n_files = 1};
    lg_data_config cfg = config();
    cfg.quiet = 0; /* the progress line goes to stdout */
    lg_error err = {0};
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert(exists("cache/ds/data.bin"));
    ck_assert(!exists("cache/ds/data.bin.part"));
    ck_assert_int_eq(count_requests("GET /files/data.bin", NULL), 1);
    /* second run: verified cache, no request */
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(count_requests("GET /files/data.bin", NULL), 1);
    /* a wrong sha256: refused, nothing kept */
    lg_file_desc bad[] = {{"data.bin", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 0}};
    lg_dataset_desc d2 = d;
    d2.name = "ds2";
    d2.files = bad;
    cfg.quiet = 1;
    ck_assert_int_eq(lg_data_prepare(&d2, &cfg, &err), LG_ERR_CHECKSUM);
    ck_assert_ptr_nonnull(strstr(err.msg, "sha256 mismatch"));
    ck_assert_ptr_nonnull(strstr(err.msg, payload_hex));
    ck_assert(!exists("cache/ds2/data.bin"));
    ck_assert(!exists("cache/ds2/data.bin.part"));
    /* offline: the server is gone, the cache still serves */
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
    server = -1;
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "%s", err.msg);
    stop_server();
}
END_TEST

START_TEST(test_http_resume_after_interruption) {
    start_server();
    setup_payload(200000);
    char m[256];
    mirror(m, sizeof m, "cut");
    const char *mirrors[] = {m};
    lg_file_desc files[] = {{"data.bin", payload_hex, 0}};
    lg_dataset_desc d = {.name = "ds", .mirrors = mirrors, .n_mirrors = 1, .files = files,
                         .n_files = 1};
    lg_data_config cfg = config();
    lg_error err = {0};
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "%s", err.msg);
    /* one cut request, then one resumed at exactly half */
    ck_assert_int_eq(count_requests("GET /cut/data.bin", " -"), 1);
    ck_assert_int_eq(count_requests("GET /cut/data.bin", "bytes=100000-"), 1);
    char p[1024], hex[65];
    tpath(p, sizeof p, "cache/ds/data.bin");
    ck_assert_int_eq(lg_sha256_file(p, hex, &err), LG_OK);
    ck_assert_str_eq(hex, payload_hex);
    /* Killed after the last byte, before the rename: the complete .part is
     * verified and kept without another request. */
    char part[1024];
    tpath(part, sizeof part, "cache/ds/data.bin.part");
    ck_assert_int_eq(rename(p, part), 0);
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(count_requests("GET /cut/data.bin", NULL), 2);
    ck_assert(exists("cache/ds/data.bin"));
    ck_assert(!exists("cache/ds/data.bin.part"));
    stop_server();
}
END_TEST

START_TEST(test_http_stale_part_without_range_support) {
    start_server();
    setup_payload(50000);
    char m[256];
    mirror(m, sizeof m, "norange");
    const char *mirrors[] = {m};
    lg_file_desc files[] = {{"data.bin", payload_hex, 0}};
    lg_dataset_desc d = {.name = "ds", .mirrors = mirrors, .n_mirrors = 1, .files = files,
                         .n_files = 1};
    lg_data_config cfg = config();
    lg_error err = {0};
    /* a leftover .part from an earlier run, with wrong bytes */
    char dir[512];
    tpath(dir, sizeof dir, "cache/ds");
    ck_assert_int_eq(lg_mkdirs(dir, NULL), LG_OK);
    write_payload("cache/ds/data.bin.part", 777);
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "%s", err.msg);
    char p[1024], hex[65];
    tpath(p, sizeof p, "cache/ds/data.bin");
    ck_assert_int_eq(lg_sha256_file(p, hex, &err), LG_OK);
    ck_assert_str_eq(hex, payload_hex);
    ck_assert(!exists("cache/ds/data.bin.part"));
    stop_server();
}
END_TEST

START_TEST(test_http_mirrors_in_order) {
    start_server();
    setup_payload(1000);
    char fail[256], bad404[256], good[256];
    mirror(fail, sizeof fail, "fail");
    snprintf(bad404, sizeof bad404, "%s/files/nothing-here/", base);
    mirror(good, sizeof good, "files");
    const char *mirrors[] = {fail, bad404, good};
    lg_file_desc files[] = {{"data.bin", payload_hex, 0}};
    lg_dataset_desc d = {.name = "ds", .mirrors = mirrors, .n_mirrors = 3, .files = files,
                         .n_files = 1};
    lg_data_config cfg = config();
    cfg.retries = 2;
    lg_error err = {0};
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(count_requests("GET /fail/data.bin", NULL), 2);            /* retried */
    ck_assert_int_eq(count_requests("GET /files/nothing-here/data.bin", NULL), 1); /* 404: not */
    ck_assert_int_eq(count_requests("GET /files/data.bin", NULL), 1);
    /* --mirror goes first: a fresh cache fetched only from it */
    lg_dataset_desc d2 = d;
    d2.name = "ds2";
    char slow[256];
    mirror(slow, sizeof slow, "slow");
    cfg.mirror = slow;
    ck_assert_msg(lg_data_prepare(&d2, &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(count_requests("GET /slow/data.bin", NULL), 1);
    ck_assert_int_eq(count_requests("GET /fail/data.bin", NULL), 2);
    /* all mirrors failing: one error listing each */
    lg_dataset_desc d3 = d;
    d3.name = "ds3";
    d3.n_mirrors = 2;
    cfg.mirror = NULL;
    ck_assert_int_eq(lg_data_prepare(&d3, &cfg, &err), LG_ERR_NET);
    ck_assert_ptr_nonnull(strstr(err.msg, "from 2 mirrors"));
    ck_assert_ptr_nonnull(strstr(err.msg, "/fail/data.bin"));
    ck_assert_ptr_nonnull(strstr(err.msg, "404"));
    stop_server();
}
END_TEST

START_TEST(test_http_stall_timeout) {
    start_server();
    setup_payload(100000);
    char m[256];
    mirror(m, sizeof m, "stall");
    const char *mirrors[] = {m};
    lg_file_desc files[] = {{"data.bin", payload_hex, 0}};
    lg_dataset_desc d = {.name = "ds", .mirrors = mirrors, .n_mirrors = 1, .files = files,
                         .n_files = 1};
    lg_data_config cfg = config();
    cfg.retries = 1;
    cfg.stall_timeout_s = 1;
    lg_error err = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(lg_data_prepare(&d, &cfg, &err), LG_ERR_NET);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_double_lt((double)(t1.tv_sec - t0.tv_sec), 10.0);
    ck_assert(!exists("cache/ds/data.bin"));
    stop_server();
}
END_TEST

START_TEST(test_one_process_downloads) {
    start_server();
    setup_payload(100000);
    char m[256];
    mirror(m, sizeof m, "slow");
    const char *mirrors[] = {m};
    lg_file_desc files[] = {{"data.bin", payload_hex, 0}};
    lg_dataset_desc d = {.name = "ds", .mirrors = mirrors, .n_mirrors = 1, .files = files,
                         .n_files = 1};
    lg_data_config cfg = config();
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (kids[k] == 0) {
            lg_error e = {0};
            _exit(lg_data_prepare(&d, &cfg, &e) == LG_OK ? 0 : 1);
        }
    }
    for (int k = 0; k < 3; k++) {
        int status;
        ck_assert_int_eq(waitpid(kids[k], &status, 0), kids[k]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ck_assert_int_eq(count_requests("GET /slow/data.bin", NULL), 1);
    ck_assert(exists("cache/ds/data.bin"));
    stop_server();
}
END_TEST


/* The detection data path end to end: tools/vocgen's tar served over HTTP
 * (interrupted once and resumed), verified, extracted, parsed, decoded,
 * letterboxed with the boxes, batched the same for 0 and 2 workers. */
static const char *const vg_classes[] = {"circle", "square", "triangle", "diamond", "cross"};
static const char *const vg_paths[] = {"VOCdevkit/VOC2007"};
static const lg_split_desc vg_splits[] = {{"train", vg_paths, 1, "trainval"}};

static void load_all(lg_dataset *ds, const lg_split_spec *sp, int workers, float *img,
                     float *boxes, int32_t *counts, int32_t *labels) {
    lg_loader_options opt = {.batch_size = 3, .num_workers = workers, .shuffle = 1};
    lg_loader l;
    lg_error err = {0};
    ck_assert_msg(lg_loader_init(&l, sp, ds, &opt, 9, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(lg_loader_start(&l, 1, 0, &err), LG_OK);
    const lg_batch *b;
    int row = 0;
    size_t per = (size_t)sp->channels * sp->height * sp->width, B = (size_t)sp->max_boxes;
    while (lg_loader_next(&l, &b, &err) == LG_OK && b) {
        memcpy(img + row * per, b->image, (size_t)b->n * per * sizeof(float));
        memcpy(boxes + row * B * 4, b->boxes, (size_t)b->n * B * 4 * sizeof(float));
        memcpy(labels + row * B, b->box_label, (size_t)b->n * B * sizeof(int32_t));
        memcpy(counts + row, b->box_count, (size_t)b->n * sizeof(int32_t));
        row += b->n;
    }
    ck_assert_msg(err.code == LG_OK, "%s", err.msg);
    ck_assert_int_eq(row, (int)l.n_samples);
    lg_loader_free(&l);
}

START_TEST(test_vocgen_over_http_end_to_end) {
    if (access("build/vocgen", X_OK) != 0) {
        printf("SKIP: build/vocgen missing (make build/vocgen)\n");
        return;
    }
    start_server();
    char tar[1024], cmd[2048], sha[65] = "";
    tpath(tar, sizeof tar, "www/voc.tar");
    snprintf(cmd, sizeof cmd, "build/vocgen --seed 3 --images 8 --size 96 --out '%s'", tar);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%64s", sha), 1);
    ck_assert_int_eq(pclose(p), 0);
    char m[256];
    mirror(m, sizeof m, "cut");
    const char *mirrors[] = {m};
    lg_file_desc files[] = {{"voc.tar", sha, 1}};
    lg_dataset_desc d = {.name = "vocgen", .mirrors = mirrors, .n_mirrors = 1, .files = files,
                         .n_files = 1, .format = LG_FORMAT_VOC, .classes = vg_classes,
                         .n_classes = 5, .splits = vg_splits, .n_splits = 1};
    lg_data_config cfg = config();
    lg_error err = {0};
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert_int_eq(count_requests("GET /cut/voc.tar", "bytes="), 1);
    ck_assert(exists("cache/vocgen/.voc.tar.extracted"));
    ck_assert(exists("cache/vocgen/VOCdevkit/VOC2007/Annotations/000001.xml"));
    lg_dataset *ds;
    ck_assert_msg(lg_dataset_open(&ds, &d, "train", &cfg, &err) == LG_OK, "%s", err.msg);
    int64_t n = lg_dataset_size(ds);
    ck_assert_int_gt(n, 2);
    /* Raw boxes (no transforms) vs letterboxed 96 -> 64: scale 2/3, no padding. */
    static const lg_transform_desc none[] = {{.kind = LG_TF_TO_TENSOR}};
    static const lg_transform_desc lb[] = {{.kind = LG_TF_LETTERBOX, .i = {64, 64}},
                                           {.kind = LG_TF_NORMALIZE, .f = {0.5f, 0, 0, 0.5f}}};
    lg_split_spec raw = {.name = "train", .dataset = &d, .source = "train", .transforms = none,
                         .n_transforms = 1, .channels = 3, .height = 96, .width = 96,
                         .max_boxes = 6};
    lg_split_spec sp = raw;
    sp.transforms = lb;
    sp.n_transforms = 2;
    sp.height = sp.width = 64;
    size_t per = 3 * 64 * 64;
    float *img0 = calloc((size_t)n * per, sizeof(float)), *img2 = calloc((size_t)n * per, sizeof(float));
    float *rimg = calloc((size_t)n * 3 * 96 * 96, sizeof(float));
    float *bx0 = calloc((size_t)n * 24, sizeof(float)), *bx2 = calloc((size_t)n * 24, sizeof(float));
    float *rbx = calloc((size_t)n * 24, sizeof(float));
    int32_t c0[64], c2[64], rc[64], l0[64 * 6], l2[64 * 6], rl[64 * 6];
    ck_assert_int_le(n, 64);
    load_all(ds, &raw, 0, rimg, rbx, rc, rl);
    load_all(ds, &sp, 0, img0, bx0, c0, l0);
    load_all(ds, &sp, 2, img2, bx2, c2, l2);
    ck_assert_mem_eq(img0, img2, (size_t)n * per * sizeof(float));
    ck_assert_mem_eq(bx0, bx2, (size_t)n * 24 * sizeof(float));
    int total = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(c0[i], rc[i]);
        ck_assert_int_ge(rc[i], 1);
        total += rc[i];
        for (int k = 0; k < rc[i]; k++) {
            ck_assert_int_eq(l0[i * 6 + k], rl[i * 6 + k]);
            ck_assert(rl[i * 6 + k] >= 0 && rl[i * 6 + k] < 5);
            for (int q = 0; q < 4; q++) {
                float r = rbx[(i * 6 + k) * 4 + q];
                ck_assert(r >= 0 && r <= 96);
                ck_assert_float_eq_tol(bx0[(i * 6 + k) * 4 + q], r * 2 / 3.0f, 1e-4);
            }
        }
    }
    ck_assert_int_gt(total, (int)n);
    free(img0); free(img2); free(rimg); free(bx0); free(bx2); free(rbx);
    lg_dataset_close(ds);
    /* A half-done extraction (no marker, a damaged file) is redone. */
    char ann[1024], marker[1024];
    tpath(ann, sizeof ann, "cache/vocgen/VOCdevkit/VOC2007/Annotations/000001.xml");
    tpath(marker, sizeof marker, "cache/vocgen/.voc.tar.extracted");
    FILE *f = fopen(ann, "w");
    fputs("<annotation><obj", f);
    fclose(f);
    unlink(marker);
    kill(server, SIGTERM); /* and offline: the verified tar is in the cache */
    waitpid(server, NULL, 0);
    server = -1;
    ck_assert_msg(lg_data_prepare(&d, &cfg, &err) == LG_OK, "%s", err.msg);
    ck_assert(exists("cache/vocgen/.voc.tar.extracted"));
    ck_assert_msg(lg_dataset_open(&ds, &d, "train", &cfg, &err) == LG_OK, "%s", err.msg);
    lg_dataset_close(ds);
    stop_server();
}
END_TEST


START_TEST(test_https_verifies_certificates) {
    make_tmpdir();
    char cert[1024], key[1024], cmd[4096];
    tpath(cert, sizeof cert, "cert.pem");
    tpath(key, sizeof key, "key.pem");
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        printf("SKIP: no openssl command to make a test certificate\n");
        stop_server();
        return;
    }
    start_server_tls(cert, key);
    setup_payload(1000);
    char m[256];
    mirror(m, sizeof m, "files");
    const char *mirrors[] = {m};
    lg_file_desc files[] = {{"data.bin", payload_hex, 0}};
    lg_dataset_desc d = {.name = "ds", .mirrors = mirrors, .n_mirrors = 1, .files = files,
                         .n_files = 1};
    lg_data_config cfg = config();
    lg_error err = {0};
    /* A self-signed certificate is refused (TLS verification is on), once. */
    ck_assert_int_eq(lg_data_prepare(&d, &cfg, &err), LG_ERR_NET);
    ck_assert_msg(strstr(err.msg, "certificate") || strstr(err.msg, "SSL"), "%s", err.msg);
    ck_assert(!exists("cache/ds/data.bin"));
    ck_assert_int_eq(count_requests("GET /files/data.bin", NULL), 0);
    stop_server();
}
END_TEST

static Suite *net_suite(void) {
    Suite *s = suite_create("data_net");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_http_download_and_checksum);
    tcase_add_test(tc, test_http_resume_after_interruption);
    tcase_add_test(tc, test_http_stale_part_without_range_support);
    tcase_add_test(tc, test_http_mirrors_in_order);
    tcase_add_test(tc, test_http_stall_timeout);
    tcase_add_test(tc, test_one_process_downloads);
    tcase_add_test(tc, test_vocgen_over_http_end_to_end);
    tcase_add_test(tc, test_https_verifies_certificates);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(net_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
