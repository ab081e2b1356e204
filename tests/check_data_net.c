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

static void start_server(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lgen_check_net_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
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
        execlp("python3", "python3", "tests/data/http_server.py", root, portfile, logpath,
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(portfile, "r");
        int port;
        if (f && fscanf(f, "%d", &port) == 1) {
            fclose(f);
            snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
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
