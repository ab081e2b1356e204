/* check_trainer.c — the Trainer runtime (lgen/trainer.h) driven through
 * lg_main with the hand-written model of tests/trainer/fake_model.c.
 *
 * Each test runs the program in-process with stdout and stderr captured,
 * under a fresh --default_root_dir, and asserts what a user sees: exit
 * status, messages, files under lightning_logs/version_N/, checkpoint
 * contents (read back with lgen/checkpoint.h) and, for resume, final
 * weights byte for byte against a run that never stopped.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <png.h>

#include "../runtime/trainer/internal.h"
#include "capture.h"
#include "fake_model.h"
#include "lgen/checkpoint.h"

static char root[256];
static char out[1 << 16], err[1 << 16];

static void make_root(void) {
    snprintf(root, sizeof root, "/tmp/lgtrainer-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

/* Each test's root is removed after it (fork mode: in the test's process). */
static void remove_root(void) {
    if (root[0])
        capture_remove_tree(root);
}

/* Runs `fake ARGS... --default_root_dir ROOT --enable_progress_bar false`
 * (the root/progress flags unless the list starts with "-" "raw") and
 * returns lg_main's status; stdout/stderr land in out/err. */
static int run_def(const lg_model_def *def, const char *first, ...) {
    char *argv[64];
    int argc = 0, raw = strcmp(first, "raw") == 0;
    argv[argc++] = "fake";
    va_list ap;
    va_start(ap, first);
    for (const char *a = raw ? va_arg(ap, const char *) : first; a; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    if (!raw) {
        argv[argc++] = "--default_root_dir";
        argv[argc++] = root;
        argv[argc++] = "--enable_progress_bar";
        argv[argc++] = "false";
    }
    argv[argc] = NULL;
    return capture_main(def, argc, argv, root, out, sizeof out, err, sizeof err);
}

#define run(...) run_def(&fake_def, __VA_ARGS__, NULL)

static char *path(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

static int exists(const char *rel) {
    struct stat sb;
    return stat(path(rel), &sb) == 0;
}

static int count_ckpts(const char *dirrel, const char *prefix) {
    DIR *d = opendir(path(dirrel));
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static const char *meta(const char *file, const char *key) {
    static char buf[4096];
    lg_st_file f;
    lg_error e;
    ck_assert_msg(lg_st_open(&f, file, &e) == LG_OK, "%s", e.msg);
    const char *v = lg_st_meta(&f, key);
    snprintf(buf, sizeof buf, "%s", v ? v : "(none)");
    lg_st_close(&f);
    return buf;
}

/* Every tensor of a equals b's, byte for byte (metadata may differ). */
static void assert_same_tensors(const char *a, const char *b) {
    lg_st_file fa, fb;
    lg_error e;
    ck_assert_msg(lg_st_open(&fa, a, &e) == LG_OK, "%s", e.msg);
    ck_assert_msg(lg_st_open(&fb, b, &e) == LG_OK, "%s", e.msg);
    ck_assert_int_eq(fa.n_tensors, fb.n_tensors);
    for (int i = 0; i < fa.n_tensors; i++) {
        const char *name = lg_st_name(&fa, i);
        lg_dtype da, db;
        int na, nb;
        int64_t sa[8], sb[8];
        const void *pa, *pb;
        ck_assert_int_eq(lg_st_get(&fa, name, &da, &na, sa, &pa, &e), LG_OK);
        ck_assert_msg(lg_st_get(&fb, name, &db, &nb, sb, &pb, &e) == LG_OK, "%s", e.msg);
        ck_assert_int_eq(da, db);
        ck_assert_int_eq(na, nb);
        size_t n = lg_dtype_size(da);
        for (int d = 0; d < na; d++) {
            ck_assert_int_eq(sa[d], sb[d]);
            n *= (size_t)sa[d];
        }
        ck_assert_msg(memcmp(pa, pb, n) == 0, "tensor '%s' differs between %s and %s", name, a, b);
    }
    lg_st_close(&fa);
    lg_st_close(&fb);
}

/* ---- flags --------------------------------------------------------------- */

START_TEST(test_help_version) {
    make_root();
    ck_assert_int_eq(run("raw", "--help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "fit"));
    ck_assert_ptr_nonnull(strstr(out, "predict"));
    ck_assert_int_eq(run("raw", "fit", "--help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "--lr FLOAT"));
    ck_assert_ptr_nonnull(strstr(out, "learning rate (default 0.1, in (0, 10])"));
    ck_assert_ptr_nonnull(strstr(out, "--max_epochs INT"));
    ck_assert_ptr_nonnull(strstr(out, "(default 3, from the spec)"));
    ck_assert_ptr_nonnull(strstr(out, "--checkpoint.monitor"));
    ck_assert_ptr_nonnull(strstr(out, "--optimizer CHOICE"));
    /* per subcommand: test lists its own limit, not fit's */
    ck_assert_int_eq(run("raw", "test", "--help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "--limit_test_batches"));
    ck_assert_ptr_null(strstr(out, "--limit_train_batches"));
    ck_assert_ptr_nonnull(strstr(out, "--seed INT"));
    ck_assert_ptr_nonnull(strstr(out, "--trainer.seed INT"));
    ck_assert_int_eq(run("raw", "--version"), 0);
    ck_assert_ptr_nonnull(strstr(out, "f00d000000000000000000000000000000000000000000000000000000000001"));
}
END_TEST

START_TEST(test_bad_flags) {
    make_root();
    ck_assert_int_eq(run("fit", "--max_epoch", "3"), 2);
    ck_assert_ptr_nonnull(strstr(err, "fake: error: unknown flag '--max_epoch'; did you mean '--max_epochs'?"));
    ck_assert_int_eq(run("fit", "--max_epochs", "3x"), 2);
    ck_assert_ptr_nonnull(strstr(err, "invalid value '3x' for --max_epochs: expected an integer"));
    ck_assert_int_eq(run("fit", "--lr", "0"), 2);
    ck_assert_ptr_nonnull(strstr(err, "invalid value '0' for --lr: must be > 0"));
    ck_assert_int_eq(run("fit", "--lr", "1e400"), 2);
    ck_assert_int_eq(run("fit", "--optimizer", "sgdd"), 2);
    ck_assert_ptr_nonnull(strstr(err, "expected one of sgd|adam"));
    ck_assert_int_eq(run("fit", "--limit_train_batches", "1.5"), 2);
    ck_assert_ptr_nonnull(strstr(err, "fraction must be in [0.0, 1.0]"));
    ck_assert_int_eq(run("fit", "--precision", "17"), 2);
    ck_assert_int_eq(run("raw", "fit", "--max_epochs"), 2);
    ck_assert_ptr_nonnull(strstr(err, "needs a value"));
    ck_assert_int_eq(run("raw", "fitt", NULL), 2);
    ck_assert_ptr_nonnull(strstr(err, "unknown subcommand 'fitt'; did you mean 'fit'?"));
    ck_assert_int_eq(run("raw", NULL), 2);
    ck_assert_ptr_nonnull(strstr(err, "missing subcommand"));
    ck_assert_int_eq(run("fit", "stray"), 2);
    /* a monitor that is never logged: a usage error naming the choices */
    ck_assert_int_eq(run("fit", "--checkpoint.monitor", "val_accc"), 2);
    ck_assert_ptr_nonnull(strstr(err, "did you mean 'val_acc'?"));
    ck_assert(!exists("lightning_logs/version_0/checkpoints"));
}
END_TEST

START_TEST(test_unsupported) {
    make_root();
    ck_assert_int_eq(run("fit", "--gpus", "2"), 1);
    ck_assert_ptr_nonnull(strstr(err, "built without CUDA"));
    ck_assert_int_eq(run("fit", "--accelerator", "gpu"), 1);
    ck_assert_ptr_nonnull(strstr(err, "built without CUDA"));
    ck_assert_int_eq(run("fit", "--precision", "16"), 1);
    ck_assert_ptr_nonnull(strstr(err, "precision '16-mixed' is not implemented on this build"));
    ck_assert_int_eq(run("fit", "--precision", "bf16"), 1);
    ck_assert_ptr_nonnull(strstr(err, "'bf16-mixed'"));
    ck_assert_int_eq(run("fit", "--devices", "4", "--accelerator", "cpu"), 1);
    /* 1.x spellings that work */
    ck_assert_int_eq(run("fit", "--gpus", "0", "--precision", "32", "--max_epochs", "1",
                         "--progress_bar_refresh_rate", "0"),
                     0);
    ck_assert_int_eq(run("fit", "--accelerator", "auto", "--max_epochs", "1"), 0);
    /* --logger false: checkpoints in <root>/checkpoints, and "last" finds them */
    ck_assert_int_eq(run("fit", "--logger", "false", "--max_epochs", "1"), 0);
    ck_assert(exists("checkpoints/last.ckpt"));
    ck_assert(!exists("lightning_logs/version_2"));
    ck_assert_int_eq(run("fit", "--logger", "false", "--max_epochs", "2", "--ckpt_path", "last",
                         "--checkpoint_callback", "false"), 0);
    ck_assert_ptr_nonnull(strstr(out, "Restored all states from the checkpoint at"));
    ck_assert_ptr_nonnull(strstr(out, "/checkpoints/last.ckpt (epoch 0, step 7)"));
    ck_assert_ptr_null(strstr(out, "lightning_logs"));
    ck_assert_ptr_nonnull(strstr(out, "accelerator auto: using cpu"));
}
END_TEST

START_TEST(test_config) {
    make_root();
    FILE *f = fopen(path("run.json"), "w");
    fputs("{\"trainer\": {\"max_epochs\": 5, \"limit_train_batches\": 0.5, \"gradient_clip_val\": null,"
          " \"seed\": 7},"
          " \"model\": {\"lr\": 0.2, \"optimizer\": \"adam\"},"
          " \"checkpoint\": {\"monitor\": \"val_acc\", \"mode\": \"max\"},"
          " \"seed\": 8}", f);
    fclose(f);
    ck_assert_int_eq(run("fit", "--config", path("run.json"), "--max_epochs", "1", "--print_config"), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"max_epochs\": 1,"));      /* the command line wins */
    ck_assert_ptr_nonnull(strstr(out, "\"limit_train_batches\": 0.5"));
    ck_assert_ptr_nonnull(strstr(out, "\"lr\": 0.2,"));
    ck_assert_ptr_nonnull(strstr(out, "\"optimizer\": \"adam\""));
    ck_assert_ptr_nonnull(strstr(out, "\"monitor\": \"val_acc\""));
    /* "seed" is both an hparam and a trainer flag: sections tell them apart */
    ck_assert_ptr_nonnull(strstr(out, "\"seed\": 7"));
    ck_assert_ptr_nonnull(strstr(out, "\"seed\": 8,"));
    ck_assert(!exists("lightning_logs")); /* print_config runs nothing */
    /* the printed config reads back to the same config */
    f = fopen(path("printed.json"), "w");
    fputs(out, f);
    fclose(f);
    char first[sizeof out];
    memcpy(first, out, sizeof out);
    ck_assert_int_eq(run("fit", "--config", path("printed.json"), "--print_config"), 0);
    ck_assert_str_eq(out, first);
    /* a run saves its effective config beside hparams.yaml */
    ck_assert_int_eq(run("fit", "--config", path("run.json"), "--max_epochs", "1"), 0);
    char saved[sizeof out];
    capture_slurp(path("lightning_logs/version_0/config.json"), saved, sizeof saved);
    ck_assert_ptr_nonnull(strstr(saved, "\"optimizer\": \"adam\""));
    /* unknown keys and bad values in the file are usage errors naming the file */
    f = fopen(path("bad.json"), "w");
    fputs("{\"trainer\": {\"max_epoch\": 5}}", f);
    fclose(f);
    ck_assert_int_eq(run("fit", "--config", path("bad.json")), 2);
    ck_assert_ptr_nonnull(strstr(err, "unknown flag '--max_epoch' in"));
    ck_assert_ptr_nonnull(strstr(err, "did you mean '--max_epochs'?"));
    f = fopen(path("bad.json"), "w");
    fputs("{\"model\": {\"lr\": -1}}", f);
    fclose(f);
    ck_assert_int_eq(run("fit", "--config", path("bad.json")), 2);
    ck_assert_ptr_nonnull(strstr(err, "for --lr in"));
    f = fopen(path("bad.json"), "w");
    fputs("{\"model\": ", f);
    fclose(f);
    ck_assert_int_eq(run("fit", "--config", path("bad.json")), 2);
    ck_assert_ptr_nonnull(strstr(err, "cannot read --config"));
}
END_TEST

/* ---- files as Lightning writes them ---------------------------------------- */

START_TEST(test_fit_files) {
    make_root();
    ck_assert_int_eq(run("fit", "--max_epochs", "2"), 0);
    ck_assert_int_eq(count_ckpts("lightning_logs/version_0", "events.out.tfevents."), 1);
    ck_assert_ptr_nonnull(strstr(out, "`Trainer.fit` stopped: `max_epochs=2` reached."));
    ck_assert_ptr_nonnull(strstr(out, "0  | fc.weight                 | [3, 4]             | train  | 12\n"));
    ck_assert_ptr_nonnull(strstr(out, "15         Trainable params\n5          Non-trainable params"));
    ck_assert(exists("lightning_logs/version_0/hparams.yaml"));
    ck_assert(exists("lightning_logs/version_0/config.json"));
    ck_assert(exists("lightning_logs/version_0/checkpoints/last.ckpt"));
    /* 100 samples, batch 16: 7 steps per epoch; without a monitor the latest is kept */
    ck_assert(exists("lightning_logs/version_0/checkpoints/epoch=1-step=14.ckpt"));
    ck_assert_int_eq(count_ckpts("lightning_logs/version_0/checkpoints", "epoch="), 1);
    char buf[8192];
    capture_slurp(path("lightning_logs/version_0/hparams.yaml"), buf, sizeof buf);
    ck_assert_str_eq(buf, "lr: 0.1\nmomentum: 0.9\nnan_at: -1\nnote: 'hello: world'\n"
                          "optimizer: sgd\nseed: 0\nsleep_ms: 0\n");
    capture_slurp(path("lightning_logs/version_0/metrics.csv"), buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "epoch,lr-SGD,step,train_acc,train_loss,val_acc,val_loss\n", 56) == 0,
                  "%s", buf);
    /* log_every_n_steps 2 (the spec's default): rows at steps 1, 3, 5 */
    ck_assert_ptr_nonnull(strstr(buf, "\n0,0.1,1,,"));
    ck_assert_ptr_nonnull(strstr(buf, "\n0,0.1,3,,"));
    ck_assert_ptr_null(strstr(buf, "\n0,0.1,2,,"));
    /* validation at each epoch end, step = global_step - 1 */
    ck_assert_ptr_nonnull(strstr(buf, "\n0,,6,,,0."));
    ck_assert_ptr_nonnull(strstr(buf, "\n1,,13,,,0."));
    /* the next run gets the next version */
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--seed_everything", "3", "--tensorboard", "false"), 0);
    ck_assert_int_eq(count_ckpts("lightning_logs/version_1", "events.out.tfevents."), 0);
    ck_assert(exists("lightning_logs/version_1/checkpoints/epoch=0-step=7.ckpt"));
    const char *m = meta(path("lightning_logs/version_1/checkpoints/last.ckpt"), "rng");
    ck_assert_ptr_nonnull(strstr(m, "\"seed\":3"));
    ck_assert_str_eq(meta(path("lightning_logs/version_1/checkpoints/last.ckpt"), "global_step"), "7");
}
END_TEST

START_TEST(test_top_k_and_template) {
    make_root();
    ck_assert_int_eq(run("fit", "--max_epochs", "5", "--checkpoint.monitor", "val_loss",
                         "--checkpoint.save_top_k", "2", "--checkpoint.filename",
                         "{epoch}-{val_loss:.3f}"),
                     0);
    ck_assert_int_eq(count_ckpts("lightning_logs/version_0/checkpoints", "epoch="), 2);
    ck_assert(exists("lightning_logs/version_0/checkpoints/last.ckpt"));
    /* the lr column follows the step scheduler (step_size 2, gamma 0.5) */
    char csv[1 << 14];
    capture_slurp(path("lightning_logs/version_0/metrics.csv"), csv, sizeof csv);
    ck_assert_ptr_nonnull(strstr(csv, "\n1,0.1,"));
    ck_assert_ptr_nonnull(strstr(csv, "\n2,0.05,"));
    ck_assert_ptr_nonnull(strstr(csv, "\n4,0.025,"));
    ck_assert_ptr_null(strstr(csv, "\n2,0.1,"));
    /* the kept ones are the two lowest val_loss rows of metrics.csv */
    const char *cb = meta(path("lightning_logs/version_0/checkpoints/last.ckpt"), "callbacks");
    ck_assert_ptr_nonnull(strstr(cb, "val_loss="));
    /* ckpt_path best resolves to that run's best */
    ck_assert_int_eq(run("validate", "--ckpt_path", "best"), 0);
    ck_assert_ptr_nonnull(strstr(out, "Loaded model weights from the checkpoint at"));
    ck_assert_ptr_nonnull(strstr(out, "val_loss="));
    ck_assert_ptr_nonnull(strstr(out, "val_acc"));
    /* every_n_epochs 2 over 4 epochs: only epochs 1 and 3 save */
    ck_assert_int_eq(run("fit", "--max_epochs", "4", "--checkpoint.every_n_epochs", "2",
                         "--checkpoint.save_top_k", "-1"),
                     0);
    ck_assert_int_eq(count_ckpts("lightning_logs/version_2/checkpoints", "epoch="), 2);
    ck_assert(exists("lightning_logs/version_2/checkpoints/epoch=1-step=14.ckpt"));
    ck_assert(exists("lightning_logs/version_2/checkpoints/epoch=3-step=28.ckpt"));
    /* save_last false: no last.ckpt */
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--checkpoint.save_last", "false"), 0);
    ck_assert(!exists("lightning_logs/version_3/checkpoints/last.ckpt"));
    ck_assert(exists("lightning_logs/version_3/checkpoints/epoch=0-step=7.ckpt"));
}
END_TEST

/* ---- exact resume --------------------------------------------------------- */

START_TEST(test_resume_epoch_end) {
    make_root();
    ck_assert_int_eq(run("fit", "--max_epochs", "4"), 0);
    ck_assert_int_eq(run("fit", "--max_epochs", "2"), 0);
    ck_assert_int_eq(run("fit", "--max_epochs", "4", "--ckpt_path", "last"), 0);
    ck_assert_ptr_nonnull(strstr(out, "Restored all states"));
    assert_same_tensors(path("lightning_logs/version_0/checkpoints/last.ckpt"),
                        path("lightning_logs/version_2/checkpoints/last.ckpt"));
    /* the 1.x spelling, with Adam this time */
    ck_assert_int_eq(run("fit", "--max_epochs", "3", "--optimizer", "adam"), 0);
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--optimizer", "adam"), 0);
    ck_assert_int_eq(run("fit", "--max_epochs", "3", "--optimizer", "adam",
                         "--resume_from_checkpoint",
                         path("lightning_logs/version_4/checkpoints/last.ckpt")),
                     0);
    assert_same_tensors(path("lightning_logs/version_3/checkpoints/last.ckpt"),
                        path("lightning_logs/version_5/checkpoints/last.ckpt"));
}
END_TEST

START_TEST(test_resume_mid_epoch) {
    make_root();
    /* 7 batches per epoch, 2 per step: steps end at batches 2, 4, 6, 7. */
#define MID "--max_epochs", "4", "--accumulate_grad_batches", "2", "--gradient_clip_val", "0.5", \
            "--checkpoint.every_n_train_steps", "3", "--checkpoint.save_top_k", "-1",           \
            "--val_check_interval", "0.5"
    ck_assert_int_eq(run("fit", MID), 0);
    ck_assert(exists("lightning_logs/version_0/checkpoints/epoch=1-step=6.ckpt"));
    ck_assert(exists("lightning_logs/version_0/checkpoints/epoch=0-step=3.ckpt"));
    const char *loop = meta(path("lightning_logs/version_0/checkpoints/epoch=1-step=6.ckpt"), "loop");
    ck_assert_ptr_nonnull(strstr(loop, "\"batches_done\":4"));
    ck_assert_ptr_nonnull(strstr(loop, "\"epoch_done\":false"));
    const char *starts[] = {"lightning_logs/version_0/checkpoints/epoch=0-step=3.ckpt",
                            "lightning_logs/version_0/checkpoints/epoch=1-step=6.ckpt",
                            "lightning_logs/version_0/checkpoints/epoch=2-step=12.ckpt"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(run("fit", MID, "--ckpt_path", path(starts[i])), 0);
        char last[64];
        snprintf(last, sizeof last, "lightning_logs/version_%d/checkpoints/last.ckpt", i + 1);
        assert_same_tensors(path("lightning_logs/version_0/checkpoints/last.ckpt"), path(last));
    }
    /* a different run (another seed) does differ: the comparison can fail */
    ck_assert_int_eq(run("fit", MID, "--trainer.seed", "5", "--max_epochs", "4"), 0);
    lg_st_file a, b;
    lg_error e;
    ck_assert_int_eq(lg_st_open(&a, path("lightning_logs/version_0/checkpoints/last.ckpt"), &e), LG_OK);
    ck_assert_int_eq(lg_st_open(&b, path("lightning_logs/version_4/checkpoints/last.ckpt"), &e), LG_OK);
    lg_dtype dt;
    int nd;
    int64_t sh[8];
    const void *pa, *pb;
    lg_st_get(&a, "fc.weight", &dt, &nd, sh, &pa, &e);
    lg_st_get(&b, "fc.weight", &dt, &nd, sh, &pb, &e);
    ck_assert(memcmp(pa, pb, 48) != 0);
    lg_st_close(&a);
    lg_st_close(&b);
#undef MID
}
END_TEST

/* ---- checkpoint files ----------------------------------------------------- */

START_TEST(test_safetensors_roundtrip) {
    make_root();
    float w[6] = {1, 2, 3, 4, 5, 6.5f};
    int64_t n = 42;
    lg_st_tensor ts[] = {{"b.weight", LG_DT_F32, 2, {2, 3}, w},
                         {"a.count", LG_DT_I64, 0, {0}, &n},
                         {"empty", LG_DT_F32, 1, {0}, w}};
    const char *keys[] = {"k"}, *vals[] = {"v \"quoted\""};
    lg_error e;
    ck_assert_int_eq(lg_st_write(path("x.st"), ts, 3, keys, vals, 1, &e), LG_OK);
    lg_st_file f;
    ck_assert_msg(lg_st_open(&f, path("x.st"), &e) == LG_OK, "%s", e.msg);
    ck_assert_int_eq(f.n_tensors, 3);
    ck_assert_str_eq(lg_st_meta(&f, "k"), "v \"quoted\"");
    ck_assert_int_eq((f.data_start - 8) % 8, 0);
    lg_dtype dt;
    int nd;
    int64_t sh[8];
    const void *p;
    ck_assert_int_eq(lg_st_get(&f, "b.weight", &dt, &nd, sh, &p, &e), LG_OK);
    ck_assert_int_eq(dt, LG_DT_F32);
    ck_assert_int_eq(nd, 2);
    ck_assert_int_eq(sh[1], 3);
    ck_assert(memcmp(p, w, sizeof w) == 0);
    ck_assert_int_eq(lg_st_get(&f, "a.count", &dt, &nd, sh, &p, &e), LG_OK);
    ck_assert_int_eq(nd, 0);
    ck_assert(memcmp(p, &n, 8) == 0);
    ck_assert_int_eq(lg_st_get(&f, "nope", &dt, &nd, sh, &p, &e), LG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "no tensor 'nope'"));
    lg_st_close(&f);
    /* TensorBoard's record checksum: CRC-32C's check value */
    ck_assert_uint_eq(lg_crc32c("123456789", 9), 0xe3069283u);
    /* no temporary file is left beside it */
    ck_assert_int_eq(count_ckpts(".", "x.st.tmp"), 0);

    /* corruptions: every one is an error with a message, never a crash */
    FILE *fp = fopen(path("x.st"), "rb");
    unsigned char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    struct {
        const char *what;
        size_t cut;      /* truncate to this length (0: keep) */
        int at;          /* byte to overwrite (-1: none) */
        unsigned char v;
        const char *msg;
    } bad[] = {
        {"truncated data", 0, -1, 0, "do not match"},
        {"short header", 5, -1, 0, "shorter than"},
        {"huge header size", 0, 7, 0x7f, "header size"},
        {"not JSON", 0, 8, 'x', "not a JSON object"},
    };
    bad[0].cut = len - 4;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char copy[4096];
        memcpy(copy, buf, len);
        size_t l = bad[i].cut ? bad[i].cut : len;
        if (bad[i].at >= 0)
            copy[bad[i].at] = bad[i].v;
        fp = fopen(path("bad.st"), "wb");
        fwrite(copy, 1, l, fp);
        fclose(fp);
        ck_assert_msg(lg_st_open(&f, path("bad.st"), &e) == LG_ERR_FORMAT, "%s accepted", bad[i].what);
        ck_assert_msg(strstr(e.msg, bad[i].msg) != NULL, "%s: %s", bad[i].what, e.msg);
    }
    /* overlapping offsets */
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    fp = fopen(path("bad.st"), "wb");
    uint64_t hl = strlen(hdr);
    fwrite(&hl, 8, 1, fp);
    fputs(hdr, fp);
    fwrite(w, 4, 2, fp);
    fclose(fp);
    ck_assert_int_eq(lg_st_open(&f, path("bad.st"), &e), LG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "starts at"));
}
END_TEST

START_TEST(test_refuse_foreign_and_corrupt) {
    make_root();
    ck_assert_int_eq(run("fit", "--max_epochs", "1"), 0);
    /* another spec's trainer refuses it, in fit and in test */
    ck_assert_int_eq(run_def(&fake_other_def, "fit", "--ckpt_path", "last", NULL), 1);
    ck_assert_ptr_nonnull(strstr(err, "written by another spec"));
    ck_assert_int_eq(run_def(&fake_other_def, "test", "--ckpt_path",
                             path("lightning_logs/version_0/checkpoints/last.ckpt"), NULL),
                     1);
    ck_assert_ptr_nonnull(strstr(err, "f00d0000"));
    /* a truncated file */
    char buf[1 << 14];
    FILE *f = fopen(path("lightning_logs/version_0/checkpoints/last.ckpt"), "rb");
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(path("cut.ckpt"), "wb");
    fwrite(buf, 1, n - 10, f);
    fclose(f);
    ck_assert_int_eq(run("fit", "--ckpt_path", path("cut.ckpt")), 1);
    ck_assert_ptr_nonnull(strstr(err, "is not a valid checkpoint"));
    ck_assert_int_eq(run("fit", "--ckpt_path", path("missing.ckpt")), 1);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    /* an optimizer that does not match */
    ck_assert_int_eq(run("fit", "--ckpt_path", "last", "--optimizer", "adam"), 1);
    ck_assert_ptr_nonnull(strstr(err, "optimizer"));
}
END_TEST

/* ---- faults --------------------------------------------------------------- */

START_TEST(test_nan_loss) {
    make_root();
    ck_assert_int_eq(run("fit", "--nan_at", "5", "--checkpoint.every_n_train_steps", "2"), 1);
    ck_assert_ptr_nonnull(strstr(err, "the loss is nan at step 5 (epoch 0, batch 5)"));
    ck_assert_ptr_nonnull(strstr(err, "last.ckpt"));
    /* the last good checkpoint is intact and finite */
    const char *last = path("lightning_logs/version_0/checkpoints/last.ckpt");
    ck_assert_str_eq(meta(last, "global_step"), "4");
    lg_st_file f;
    lg_error e;
    ck_assert_int_eq(lg_st_open(&f, last, &e), LG_OK);
    lg_dtype dt;
    int nd;
    int64_t sh[8];
    const void *p;
    ck_assert_int_eq(lg_st_get(&f, "fc.weight", &dt, &nd, sh, &p, &e), LG_OK);
    for (int i = 0; i < 12; i++) {
        float v;
        memcpy(&v, (const char *)p + 4 * i, 4);
        ck_assert(isfinite(v));
    }
    lg_st_close(&f);
}
END_TEST

START_TEST(test_signal) {
    make_root();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int rc = run("fit", "--sleep_ms", "10", "--max_epochs", "1000", "--accumulate_grad_batches", "2");
        _exit(rc);
    }
    /* wait for training to be under way */
    for (int i = 0; i < 500 && !exists("lightning_logs/version_0/metrics.csv"); i++)
        usleep(10000);
    usleep(300000);
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 130);
    capture_slurp(path(".stdout"), out, sizeof out);
    ck_assert_ptr_nonnull(strstr(out, "Received SIGINT: saved"));
    const char *last = path("lightning_logs/version_0/checkpoints/last.ckpt");
    const char *loop = meta(last, "loop");
    ck_assert_ptr_nonnull(strstr(loop, "\"global_step\":"));
    /* and it resumes from there */
    ck_assert_int_eq(run("fit", "--max_epochs", "2", "--accumulate_grad_batches", "2",
                         "--ckpt_path", "last"), 0);
    ck_assert_ptr_nonnull(strstr(out, "Restored all states"));

    /* SIGTERM the same way; a second signal exits at once */
    pid = fork();
    if (pid == 0)
        _exit(run("fit", "--sleep_ms", "50", "--max_epochs", "1000"));
    for (int i = 0; i < 500 && !exists("lightning_logs/version_2/metrics.csv"); i++)
        usleep(10000);
    usleep(100000);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 143);
    ck_assert(exists("lightning_logs/version_2/checkpoints/last.ckpt"));

    /* a second signal does not wait for the step boundary: SIGTERM, then
     * SIGINT while 5 slow batches still separate it from the next step */
    pid = fork();
    if (pid == 0)
        _exit(run("fit", "--sleep_ms", "200", "--accumulate_grad_batches", "5", "--max_epochs", "1000"));
    for (int i = 0; i < 500 && !exists("lightning_logs/version_3/metrics.csv"); i++)
        usleep(10000);
    usleep(50000);
    kill(pid, SIGTERM);
    usleep(50000);
    kill(pid, SIGINT);
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 130);
    ck_assert(!exists("lightning_logs/version_3/checkpoints/last.ckpt"));
}
END_TEST

/* ---- loop options --------------------------------------------------------- */

START_TEST(test_loop_options) {
    make_root();
    /* limits: 3 batches per epoch, 2 epochs */
    ck_assert_int_eq(run("fit", "--max_epochs", "2", "--limit_train_batches", "3"), 0);
    ck_assert_str_eq(meta(path("lightning_logs/version_0/checkpoints/last.ckpt"), "global_step"), "6");
    /* a fraction: int(7 * 0.5) = 3 */
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--limit_train_batches", "0.5"), 0);
    ck_assert_str_eq(meta(path("lightning_logs/version_1/checkpoints/last.ckpt"), "global_step"), "3");
    /* max_steps stops mid-epoch */
    ck_assert_int_eq(run("fit", "--max_epochs", "-1", "--max_steps", "10"), 0);
    ck_assert_ptr_nonnull(strstr(out, "`Trainer.fit` stopped: `max_steps=10` reached."));
    ck_assert_str_eq(meta(path("lightning_logs/version_2/checkpoints/last.ckpt"), "global_step"), "10");
    /* accumulation: ceil(7 / 3) = 3 steps per epoch */
    ck_assert_int_eq(run("fit", "--max_epochs", "2", "--accumulate_grad_batches", "3"), 0);
    ck_assert_str_eq(meta(path("lightning_logs/version_3/checkpoints/last.ckpt"), "global_step"), "6");
    /* overfit_batches: 2 unshuffled batches, validated on the same ones */
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--overfit_batches", "2"), 0);
    ck_assert_str_eq(meta(path("lightning_logs/version_4/checkpoints/last.ckpt"), "global_step"), "2");
    /* check_val_every_n_epoch 2 over 3 epochs: one validation row; limit_val_batches 0: none */
    ck_assert_int_eq(run("fit", "--max_epochs", "3", "--check_val_every_n_epoch", "2"), 0);
    char buf[8192];
    capture_slurp(path("lightning_logs/version_5/metrics.csv"), buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "\n1,,13,,,0."));
    ck_assert_ptr_null(strstr(buf, "\n0,,6,,,0."));
    ck_assert_ptr_null(strstr(buf, "\n2,,20,,,0."));
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--limit_val_batches", "0"), 0);
    capture_slurp(path("lightning_logs/version_6/metrics.csv"), buf, sizeof buf);
    ck_assert_ptr_null(strstr(buf, ",,6,,,0."));
    /* val_check_interval 2 batches: validation at batches 2, 4, 6 and the end */
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--val_check_interval", "2"), 0);
    capture_slurp(path("lightning_logs/version_7/metrics.csv"), buf, sizeof buf);
    int vals = 0;
    for (char *p = buf; (p = strstr(p, ",,,0.")); p++)
        vals++;
    ck_assert_int_eq(vals, 4);
    ck_assert_int_eq(run("fit", "--val_check_interval", "9"), 2);
    ck_assert_ptr_nonnull(strstr(err, "--val_check_interval (9) must be at most"));
    /* clipping reaches the optimizer: a huge norm bound changes nothing, a
     * small one (norm or value) does */
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--gradient_clip_val", "1e9"), 0);
    ck_assert_int_eq(run("fit", "--max_epochs", "1"), 0);
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--gradient_clip_val", "0.01"), 0);
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--gradient_clip_val", "0.01",
                         "--gradient_clip_algorithm", "value"), 0);
    {
        char v[4][400];
        for (int i = 0; i < 4; i++)
            snprintf(v[i], sizeof v[i], "%.300s/lightning_logs/version_%d/checkpoints/last.ckpt", root,
                     8 + i);
        assert_same_tensors(v[0], v[1]);
        lg_st_file a, b, c;
        lg_error e;
        lg_dtype dt;
        int nd;
        int64_t sh[8];
        const void *pa, *pb, *pc;
        ck_assert_int_eq(lg_st_open(&a, v[1], &e), LG_OK);
        ck_assert_int_eq(lg_st_open(&b, v[2], &e), LG_OK);
        ck_assert_int_eq(lg_st_open(&c, v[3], &e), LG_OK);
        lg_st_get(&a, "fc.weight", &dt, &nd, sh, &pa, &e);
        lg_st_get(&b, "fc.weight", &dt, &nd, sh, &pb, &e);
        lg_st_get(&c, "fc.weight", &dt, &nd, sh, &pc, &e);
        ck_assert(memcmp(pa, pb, 48) != 0);
        ck_assert(memcmp(pa, pc, 48) != 0);
        ck_assert(memcmp(pb, pc, 48) != 0);
        lg_st_close(&a);
        lg_st_close(&b);
        lg_st_close(&c);
    }
    /* fast_dev_run: one batch of each, nothing written */
    ck_assert_int_eq(run("fit", "--fast_dev_run"), 0);
    ck_assert_ptr_nonnull(strstr(out, "fast_dev_run: ran 1 training batch"));
    ck_assert(!exists("lightning_logs/version_12"));
    /* log_every_n_steps 3: rows at steps 2 and 5 */
    ck_assert_int_eq(run("fit", "--max_epochs", "1", "--log_every_n_steps", "3"), 0);
    capture_slurp(path("lightning_logs/version_12/metrics.csv"), buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "\n0,0.1,2,,"));
    ck_assert_ptr_nonnull(strstr(buf, "\n0,0.1,5,,"));
    ck_assert_ptr_null(strstr(buf, "\n0,0.1,1,,"));
}
END_TEST

START_TEST(test_early_stopping) {
    make_root();
    /* nothing counts as an improvement after the first check: patience 2 stops after 3 */
    ck_assert_int_eq(run("fit", "--max_epochs", "50", "--early_stopping.monitor", "val_loss",
                         "--early_stopping.patience", "2", "--early_stopping.min_delta", "100"),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "Signaling Trainer to stop"));
    ck_assert_ptr_nonnull(strstr(out, "`Trainer.fit` stopped: early stopping (val_loss)"));
    ck_assert_str_eq(meta(path("lightning_logs/version_0/checkpoints/last.ckpt"), "epoch"), "2");
    /* min_epochs holds it back */
    ck_assert_int_eq(run("fit", "--max_epochs", "50", "--min_epochs", "5", "--early_stopping.monitor",
                         "val_loss", "--early_stopping.patience", "1", "--early_stopping.min_delta",
                         "100"),
                     0);
    ck_assert_str_eq(meta(path("lightning_logs/version_1/checkpoints/last.ckpt"), "epoch"), "4");
}
END_TEST

START_TEST(test_test_and_predict) {
    make_root();
    ck_assert_int_eq(run("fit", "--max_epochs", "4"), 0);
    ck_assert_int_eq(run("test", "--ckpt_path", "last"), 0);
    ck_assert_ptr_nonnull(strstr(out, "test_acc"));
    char buf[1 << 14];
    capture_slurp(path("lightning_logs/version_1/metrics.csv"), buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "epoch,step,test_acc,test_loss\n"));
    double acc = 0;
    char *row = strchr(buf, '\n') + 1;
    ck_assert_int_eq(sscanf(row, "%*[^,],%*[^,],%lf", &acc), 1);
    ck_assert_msg(acc > 0.7, "test_acc %g after 4 epochs", acc);
    /* untrained weights score worse */
    ck_assert_int_eq(run("test", "--limit_test_batches", "1"), 0);
    ck_assert_ptr_nonnull(strstr(out, "untrained"));
    /* predict: the test split (no predict split), CSV with probabilities */
    ck_assert_int_eq(run("predict", "--ckpt_path", "last"), 0);
    capture_slurp(path("lightning_logs/version_3/predictions.csv"), buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "index,prediction,a,b,c,label\n", 29) == 0, "%s", buf);
    int rows = 0, right = 0;
    for (char *p = strchr(buf, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
        int idx, pred, label;
        float a, b, c;
        ck_assert_int_eq(sscanf(p, "%d,%d,%f,%f,%f,%d", &idx, &pred, &a, &b, &c, &label), 6);
        ck_assert_float_eq_tol(a + b + c, 1.0f, 1e-4f);
        right += pred == label;
        rows++;
    }
    ck_assert_int_eq(rows, 40);
    ck_assert_int_ge(right, 28);
    ck_assert_int_eq(run("predict", "--ckpt_path", "last", "--predict_output", "p.json"), 0);
    capture_slurp(path("lightning_logs/version_4/p.json"), buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "\"probabilities\": ["));
    ck_assert_ptr_nonnull(strstr(buf, "\"class\": \""));
}
END_TEST

/* The real loader (lgen/data.h) under the Trainer: --mirror and --data_dir
 * reach it, worker threads feed it, and resume is still exact. */
START_TEST(test_real_loader) {
    make_root();
    FILE *f = fopen(path("fake.csv"), "w");
    fputs("f0,f1,f2,f3,label\n", f);
    lg_prng r;
    lg_prng_seed(&r, 99);
    for (int i = 0; i < 120; i++) {
        float x[4];
        for (int d = 0; d < 4; d++)
            x[d] = lg_prng_uniform(&r, -1, 1);
        float s0 = x[0] - x[1] + 0.5f * x[2], s1 = -0.5f * x[0] + x[1] + x[2] - x[3],
              s2 = 0.5f * x[1] - x[2] + x[3];
        int y = s0 >= s1 && s0 >= s2 ? 0 : s1 >= s2 ? 1 : 2;
        fprintf(f, "%.6f,%.6f,%.6f,%.6f,%d\n", x[0], x[1], x[2], x[3], y);
    }
    fclose(f);
    char mirror[400], cache[400];
    snprintf(mirror, sizeof mirror, "file://%s/", root);
    snprintf(cache, sizeof cache, "%s/cache", root);
#define CSV "--mirror", mirror, "--data_dir", cache, "--num_workers", "2", "--max_epochs", "3", \
            "--checkpoint.every_n_train_steps", "4", "--checkpoint.save_top_k", "-1"
    ck_assert_msg(run_def(&fake_csv_def, "fit", CSV, NULL) == 0, "%s", err);
    ck_assert_msg(exists("cache/fakecsv/fake.csv"), "the file was not fetched into --data_dir");
    /* 90 training rows, batch 16: 6 steps per epoch; step 4 is mid-epoch 0 */
    ck_assert_str_eq(meta(path("lightning_logs/version_0/checkpoints/last.ckpt"), "global_step"), "18");
    ck_assert_int_eq(run_def(&fake_csv_def, "fit", CSV, "--ckpt_path",
                             path("lightning_logs/version_0/checkpoints/epoch=0-step=4.ckpt"), NULL),
                     0);
    ck_assert_int_eq(run_def(&fake_csv_def, "fit", CSV, "--num_workers", "0", "--ckpt_path",
                             path("lightning_logs/version_0/checkpoints/epoch=1-step=8.ckpt"), NULL),
                     0);
    assert_same_tensors(path("lightning_logs/version_0/checkpoints/last.ckpt"),
                        path("lightning_logs/version_1/checkpoints/last.ckpt"));
    assert_same_tensors(path("lightning_logs/version_0/checkpoints/last.ckpt"),
                        path("lightning_logs/version_2/checkpoints/last.ckpt"));
    /* a checkpoint URL goes through libcurl */
    char url[600];
    snprintf(url, sizeof url, "file://%s", path("lightning_logs/version_0/checkpoints/epoch=2-step=16.ckpt"));
    ck_assert_int_eq(run_def(&fake_csv_def, "fit", CSV, "--ckpt_path", url, NULL), 0);
    assert_same_tensors(path("lightning_logs/version_0/checkpoints/last.ckpt"),
                        path("lightning_logs/version_3/checkpoints/last.ckpt"));
    snprintf(url, sizeof url, "file://%s", path("no/such.ckpt"));
    ck_assert_int_eq(run_def(&fake_csv_def, "fit", CSV, "--ckpt_path", url, NULL), 1);
    ck_assert_ptr_nonnull(strstr(err, "cannot download checkpoint"));
#undef CSV
}
END_TEST

/* A 4x1 gray PNG: the fake model's 4 features, scaled by 1/255 on decode. */
static void write_png(const char *file, const unsigned char px[4]) {
    FILE *f = fopen(file, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, 4, 1, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_row(png, px);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

START_TEST(test_predict_files) {
    make_root();
    ck_assert_int_eq(run("fit", "--max_epochs", "4"), 0);
    /* feature patterns whose class the trained model gets right: x0 high -> a,
     * x1 and x2 high -> b, x3 high -> c */
    const unsigned char px[3][4] = {{255, 0, 128, 0}, {0, 255, 255, 0}, {0, 128, 0, 255}};
    mkdir(path("imgs"), 0755);
    write_png(path("imgs/b.png"), px[1]);
    write_png(path("imgs/a.png"), px[0]);
    write_png(path("c.png"), px[2]);
    ck_assert_msg(run("predict", "--ckpt_path", "last", "--predict_input", path("imgs"),
                      "--predict_input", path("c.png")) == 0, "%s", err);
    char buf[4096];
    capture_slurp(path("lightning_logs/version_1/predictions.csv"), buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "index,file,prediction,a,b,c\n", 28) == 0, "%s", buf);
    char *row = strchr(buf, '\n') + 1;
    const char *want[3] = {"imgs/a.png", "imgs/b.png", "c.png"};
    for (int i = 0; i < 3; i++) {
        int idx, pred;
        char file[512];
        float p[3];
        ck_assert_int_eq(sscanf(row, "%d,%511[^,],%d,%f,%f,%f", &idx, file, &pred, &p[0], &p[1], &p[2]), 6);
        ck_assert_int_eq(idx, i);
        ck_assert_str_eq(file, path(want[i]));
        ck_assert_int_eq(pred, i);
        ck_assert_float_eq_tol(p[0] + p[1] + p[2], 1.0f, 1e-4f);
        row = strchr(row, '\n') + 1;
    }
    ck_assert_int_eq(*row, '\0');
    ck_assert_int_eq(run("predict", "--predict_input", path("nothing.png")), 1);
    ck_assert_ptr_nonnull(strstr(err, "--predict_input"));
}
END_TEST

static Suite *trainer_suite(void) {
    Suite *s = suite_create("trainer");
    TCase *flags = tcase_create("flags");
    tcase_add_test(flags, test_help_version);
    tcase_add_test(flags, test_bad_flags);
    tcase_add_test(flags, test_unsupported);
    tcase_add_test(flags, test_config);
    tcase_add_checked_fixture(flags, NULL, remove_root);
    suite_add_tcase(s, flags);
    TCase *files = tcase_create("files");
    tcase_set_timeout(files, 60);
    tcase_add_test(files, test_fit_files);
    tcase_add_test(files, test_top_k_and_template);
    tcase_add_test(files, test_safetensors_roundtrip);
    tcase_add_test(files, test_refuse_foreign_and_corrupt);
    tcase_add_test(files, test_test_and_predict);
    tcase_add_test(files, test_predict_files);
    tcase_add_checked_fixture(files, NULL, remove_root);
    suite_add_tcase(s, files);
    TCase *resume = tcase_create("resume");
    tcase_set_timeout(resume, 60);
    tcase_add_test(resume, test_resume_epoch_end);
    tcase_add_test(resume, test_resume_mid_epoch);
    tcase_add_test(resume, test_real_loader);
    tcase_add_checked_fixture(resume, NULL, remove_root);
    suite_add_tcase(s, resume);
    TCase *faults = tcase_create("faults");
    tcase_set_timeout(faults, 60);
    tcase_add_test(faults, test_nan_loss);
    tcase_add_test(faults, test_signal);
    tcase_add_test(faults, test_loop_options);
    tcase_add_test(faults, test_early_stopping);
    tcase_add_checked_fixture(faults, NULL, remove_root);
    suite_add_tcase(s, faults);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(trainer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
