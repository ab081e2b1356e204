/* check_init_from.c — --init_from FILE [--init_prefix PREFIX]
 * (runtime/trainer/init_from.c) on the trainer tests' fake model
 * (tests/trainer/fake_model.c).
 *
 * The files under tests/fixtures/init_from/ were written by Python's
 * safetensors package (tests/fixtures/gen_init_from.py), with values given by
 * formulas recomputed here. Two ways in: lg_tr_init_from on a bare trainer
 * struct, to read the parameter block back value by value (what landed, what
 * kept its initial value, that a refused file writes nothing), and lg_main
 * in-process with stdout/stderr captured, for what a user sees: the report,
 * the messages, exit status 1 for a bad file and 2 for a bad configuration,
 * --ckpt_path winning, and validate after --init_from CKPT scoring exactly
 * as validate --ckpt_path CKPT.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/trainer/internal.h"
#include "capture.h"
#include "fake_model.h"
#include "lgen/checkpoint.h"

#define FIX "tests/fixtures/init_from/"
#define SENTINEL 42.0f

static char root[256];
static char out[1 << 16], err[1 << 16];

static void make_root(void) {
    snprintf(root, sizeof root, "/tmp/lginit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void remove_root(void) {
    if (root[0])
        capture_remove_tree(root);
}

/* `fake ARGS... --default_root_dir ROOT --enable_progress_bar false` through
 * lg_main; returns its status, stdout and stderr in out and err. */
static int run(const char *first, ...) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = "fake";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc++] = "--default_root_dir";
    argv[argc++] = root;
    argv[argc++] = "--enable_progress_bar";
    argv[argc++] = "false";
    argv[argc] = NULL;
    return capture_main(&fake_def, argc, argv, root, out, sizeof out, err, sizeof err);
}

/* ---- lg_tr_init_from on a bare trainer: the values ------------------------ */

static float block[64];
static lg_error lerr;

/* Fills the parameter block with SENTINEL and loads file (with prefix);
 * stdout lands in out. */
static lg_status load(const char *file, const char *prefix) {
    for (size_t i = 0; i < sizeof block / sizeof block[0]; i++)
        block[i] = SENTINEL;
    ck_assert_uint_le(fake_def.n_floats, sizeof block / sizeof block[0]);
    lg_tconfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.init_from = (char *)file;
    cfg.init_prefix = (char *)prefix;
    cfg.ckpt_path = "";
    lg_trainer t;
    memset(&t, 0, sizeof t);
    t.def = &fake_def;
    t.cfg = &cfg;
    t.err = &lerr;
    t.params = block;
    memset(&lerr, 0, sizeof lerr);
    char po[300];
    snprintf(po, sizeof po, "%s/.stdout", root);
    fflush(stdout);
    int so = dup(1);
    FILE *fo = fopen(po, "w");
    dup2(fileno(fo), 1);
    lg_status st = lg_tr_init_from(&t);
    fflush(stdout);
    dup2(so, 1);
    close(so);
    fclose(fo);
    capture_slurp(po, out, sizeof out);
    return st;
}

/* The parameter block of fake_model.c: fc.weight @0 [3, 4], fc.bias @12,
 * stats.running_mean @15 [4], stats.num_batches_tracked @19. */
static void assert_weight(void) {
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq(block[i], 0.25f * (float)i - 1.0f);
}

static void assert_bias(void) {
    ck_assert_float_eq(block[12], 0.5f);
    ck_assert_float_eq(block[13], -0.5f);
    ck_assert_float_eq(block[14], 0.25f);
}

static void assert_untouched(int from, int to) {
    for (int i = from; i < to; i++)
        ck_assert_msg(block[i] == SENTINEL, "block[%d] = %g was written", i, (double)block[i]);
}

START_TEST(test_full_file) {
    make_root();
    ck_assert_int_eq(load(FIX "full.safetensors", ""), LG_OK);
    assert_weight();
    assert_bias();
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(block[15 + i], (float)(i + 1));
    ck_assert_float_eq(block[19], 7.0f); /* the I64 counter */
    assert_untouched(20, 64);
    ck_assert_ptr_nonnull(strstr(out, "loaded 4 tensors (20 values)"));
    ck_assert_ptr_nonnull(strstr(out, "1 file tensor unused (no model tensor of that name): "
                                      "'head.weight'"));
    ck_assert_ptr_nonnull(strstr(out, "every model tensor came from the file"));
}
END_TEST

START_TEST(test_prefix) {
    make_root();
    /* torchvision-style short names land under the prefix */
    ck_assert_int_eq(load(FIX "noprefix.safetensors", "fc."), LG_OK);
    assert_weight();
    assert_bias();
    assert_untouched(15, 64);
    ck_assert_ptr_nonnull(strstr(out, "loaded 2 tensors (15 values) into fc.*"));
    ck_assert_ptr_nonnull(strstr(out, "2 model tensors outside fc.* initialised as usual"));
    ck_assert_ptr_null(strstr(out, "not in the file"));
    /* a prefix also filters: the full file's fc.* names are not fc.fc.* */
    ck_assert_int_eq(load(FIX "full.safetensors", "stats."), LG_ERR_ARG);
    assert_untouched(0, 64);
}
END_TEST

START_TEST(test_partial) {
    make_root();
    ck_assert_int_eq(load(FIX "partial.safetensors", ""), LG_OK);
    assert_weight();
    assert_untouched(12, 64);
    ck_assert_ptr_nonnull(strstr(out, "loaded 1 tensor (12 values)"));
    ck_assert_ptr_nonnull(strstr(out, "3 model tensors not in the file (initialised as usual): "
                                      "'fc.bias', 'stats.running_mean', "
                                      "'stats.num_batches_tracked'"));
}
END_TEST

/* A refused file writes nothing, even where its other tensors were fine. */
START_TEST(test_refused_writes_nothing) {
    make_root();
    static const char *const files[] = {"bad_shape", "bad_dtype", "bad_int", "truncated",
                                        "bad_size", "bad_json", "foreign"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[256];
        snprintf(p, sizeof p, FIX "%s.safetensors", files[i]);
        ck_assert_msg(load(p, "") != LG_OK, "%s was accepted", files[i]);
        assert_untouched(0, 64);
    }
}
END_TEST

/* ---- through lg_main: messages and exit status ---------------------------- */

static void expect(int rc, const char *text) {
    ck_assert_msg(strstr(err, text), "stderr lacks \"%s\":\n%s", text, err);
    ck_assert_ptr_nonnull(strstr(err, "fake: error: --init_from"));
    (void)rc;
}

START_TEST(test_messages) {
    make_root();
    ck_assert_int_eq(run("validate", "--init_from", FIX "bad_shape.safetensors", NULL), 1);
    expect(1, "--init_from '" FIX "bad_shape.safetensors': tensor 'fc.weight' is [4, 3] F32 in "
              "the file, but [3, 4] F32 in the model");
    ck_assert_int_eq(run("validate", "--init_from", FIX "bad_dtype.safetensors", NULL), 1);
    expect(1, "tensor 'fc.weight' is [3, 4] F64 in the file, but [3, 4] F32 in the model");
    ck_assert_int_eq(run("validate", "--init_from", FIX "bad_int.safetensors", NULL), 1);
    expect(1, "tensor 'stats.num_batches_tracked' is [] F32 in the file, but [] I64 in the model");
    /* with a prefix, both names are given */
    ck_assert_int_eq(run("validate", "--init_from", FIX "bad_shape.safetensors", "--init_prefix",
                         "", NULL),
                     1);
    ck_assert_int_eq(run("validate", "--init_from", FIX "noprefix.safetensors", "--init_prefix",
                         "fc.", "--batch_size", "2", NULL),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "loaded 2 tensors (15 values) into fc.*"));
    ck_assert_ptr_nonnull(strstr(out, "using the --init_from weights"));

    /* corrupt files: lg_st_open's reason, after the flag's name */
    ck_assert_int_eq(run("fit", "--init_from", FIX "truncated.safetensors", NULL), 1);
    expect(1, "--init_from: '" FIX "truncated.safetensors' is not a valid checkpoint:");
    ck_assert_int_eq(run("fit", "--init_from", FIX "bad_size.safetensors", NULL), 1);
    expect(1, "header size 1099511627776 does not fit in a file of 10 bytes");
    ck_assert_int_eq(run("fit", "--init_from", FIX "bad_json.safetensors", NULL), 1);
    expect(1, "header is not a JSON object");
    ck_assert_int_eq(run("fit", "--init_from", FIX "no_such_file.safetensors", NULL), 1);
    expect(1, "cannot open checkpoint '" FIX "no_such_file.safetensors': No such file or directory");
    ck_assert_int_eq(run("test", "--init_from", root, NULL), 1);
    expect(1, "is not a regular file");

    /* configuration errors: exit status 2 */
    ck_assert_int_eq(run("validate", "--init_from", FIX "noprefix.safetensors", NULL), 2);
    expect(2, "no tensor name matches the model; --init_prefix fc. would match 2 of its 2 tensors");
    ck_assert_int_eq(run("validate", "--init_from", FIX "full.safetensors", "--init_prefix", "xx.",
                         NULL),
                     2);
    expect(2, "no tensor name matches the model under --init_prefix 'xx.'; no --init_prefix would "
              "match 4 of its 5 tensors");
    ck_assert_int_eq(run("validate", "--init_from", FIX "foreign.safetensors", NULL), 2);
    expect(2, "none of its 1 tensors ('features.0.weight') is a tensor of the model ('fc.weight', "
              "'fc.bias', 'stats.running_mean', 'stats.num_batches_tracked')");
    ck_assert_int_eq(run("validate", "--init_prefix", "fc.", NULL), 2);
    ck_assert_ptr_nonnull(strstr(err, "fake: error: --init_prefix 'fc.' needs --init_from FILE"));
    /* no run directory was left behind by the refused runs */
    char p[400];
    snprintf(p, sizeof p, "%s/lightning_logs/version_0/checkpoints", root);
    ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

/* An lgen checkpoint is a safetensors file with PyTorch names: validating
 * after --init_from CKPT scores exactly what --ckpt_path CKPT scores, and
 * --ckpt_path wins over --init_from (with a note). */
START_TEST(test_same_as_checkpoint) {
    make_root();
    ck_assert_int_eq(run("fit", "--max_steps", "3", NULL), 0);
    char ck[400];
    snprintf(ck, sizeof ck, "%s/lightning_logs/version_0/checkpoints/last.ckpt", root);
    ck_assert_int_eq(access(ck, R_OK), 0);
    ck_assert_int_eq(run("validate", "--ckpt_path", ck, NULL), 0);
    const char *a = strstr(out, "val_loss");
    ck_assert_ptr_nonnull(a);
    char by_ckpt[4096];
    snprintf(by_ckpt, sizeof by_ckpt, "%s", a);

    ck_assert_int_eq(run("validate", "--init_from", ck, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "loaded 4 tensors (20 values)"));
    ck_assert_ptr_nonnull(strstr(out, "2 file tensors unused (no model tensor of that name): "
                                      "'optimizer.state.fc.weight.momentum_buffer'"));
    const char *b = strstr(out, "val_loss");
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(b, by_ckpt);

    /* untrained weights score differently: the comparison above means something */
    ck_assert_int_eq(run("validate", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "val_loss"));
    ck_assert_str_ne(strstr(out, "val_loss"), by_ckpt);

    /* --ckpt_path wins, and says so */
    ck_assert_int_eq(run("validate", "--ckpt_path", ck, "--init_from", FIX "full.safetensors",
                         NULL),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "--init_from " FIX "full.safetensors skipped: the weights "
                                      "come from --ckpt_path"));
    ck_assert_str_eq(strstr(out, "val_loss"), by_ckpt);

    /* fit from --init_from, read back from the saved checkpoint: the train
     * step adds 1 to stats.num_batches_tracked per batch, so one step from
     * the file's 7 saves 8 */
    ck_assert_int_eq(run("fit", "--init_from", FIX "full.safetensors", "--max_steps", "1",
                         "--logger", "false", NULL),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "every model tensor came from the file"));
    snprintf(ck, sizeof ck, "%s/checkpoints/last.ckpt", root);
    lg_st_file f;
    lg_error e;
    ck_assert_msg(lg_st_open(&f, ck, &e) == LG_OK, "%s", e.msg);
    lg_dtype dt;
    int nd;
    int64_t shape[8], n;
    const void *data;
    ck_assert_int_eq(lg_st_get(&f, "stats.num_batches_tracked", &dt, &nd, shape, &data, &e), LG_OK);
    ck_assert_int_eq(dt, LG_DT_I64);
    memcpy(&n, data, 8);
    ck_assert_int_eq(n, 8);
    lg_st_close(&f);
}
END_TEST

static Suite *init_from_suite(void) {
    Suite *s = suite_create("init_from");
    TCase *values = tcase_create("values");
    tcase_add_test(values, test_full_file);
    tcase_add_test(values, test_prefix);
    tcase_add_test(values, test_partial);
    tcase_add_test(values, test_refused_writes_nothing);
    tcase_add_checked_fixture(values, NULL, remove_root);
    suite_add_tcase(s, values);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 60);
    tcase_add_test(runs, test_messages);
    tcase_add_test(runs, test_same_as_checkpoint);
    tcase_add_checked_fixture(runs, NULL, remove_root);
    suite_add_tcase(s, runs);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(init_from_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
