/* check_frontend.c — Check suite of lgen's front end (compiler/: lexer,
 * parser, sema, shapes, fmt, diagnostics).
 *
 * Each test runs the real passes on a spec (from specs/, tests/diag/ or a
 * string written to a temporary file) and asserts on the results: values of
 * hparams, data-module descriptors, graph shapes, PyTorch parameter names
 * (compared with torchvision's state_dicts in tests/fixtures/frontend/),
 * diagnostics text and counts, fmt idempotence. Run from the top directory.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx.h"
#include "eval.h"
#include "front.h"

/* A context whose diagnostics go to a memory buffer. */
typedef struct Fx {
    Ctx ctx;
    char *diag;
    size_t diag_len;
    Module *mod;
    int errors;
} Fx;

static void fx_init(Fx *fx) {
    memset(fx, 0, sizeof *fx);
    ctx_init(&fx->ctx);
    fx->ctx.err = open_memstream(&fx->diag, &fx->diag_len);
    ck_assert_ptr_nonnull(fx->ctx.err);
}

static const char *fx_diag(Fx *fx) {
    fflush(fx->ctx.err);
    return fx->diag ? fx->diag : "";
}

static void fx_free(Fx *fx) {
    fclose(fx->ctx.err);
    free(fx->diag);
    ctx_free(&fx->ctx);
}

static int fx_run(Fx *fx, const char *path) {
    fx->errors = front_run(&fx->ctx, path, &fx->mod);
    return fx->errors;
}

/* Writes text to a temporary .lmod file and runs the front end on it. */
static int fx_run_text(Fx *fx, const char *text, char *path, size_t size) {
    snprintf(path, size, "/tmp/check_frontend_XXXXXX.lmod");
    int fd = mkstemps(path, 5);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq((long)write(fd, text, n), (long)n);
    close(fd);
    int r = fx_run(fx, path);
    unlink(path);
    return r;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static Network *net_named(Module *m, const char *name) {
    return ast_find_network(m, name);
}

static GParam *param_named(Graph *g, const char *name) {
    for (int i = 0; i < g->nparams; i++)
        if (strcmp(g->params[i]->name, name) == 0)
            return g->params[i];
    return NULL;
}

static void assert_shape(const Shape *s, int rank, const int64_t *dims) {
    ck_assert_int_eq(s->rank, rank);
    for (int i = 0; i < rank; i++)
        ck_assert_int_eq(s->dim[i], dims[i]);
}

/* ---- diagnostics ---------------------------------------------------------- */

START_TEST(test_suggest) {
    const char *ops[] = {"conv2d", "linear", "max_pool2d", "relu"};
    ck_assert_str_eq(diag_closest("conv2", ops, 4), "conv2d");
    ck_assert_str_eq(diag_closest("linaer", ops, 4), "linear");
    ck_assert_str_eq(diag_closest("maxpool2d", ops, 4), "max_pool2d");
    ck_assert_ptr_null(diag_closest("softmax", ops, 4));
    ck_assert_ptr_null(diag_closest("relu", ops, 4)); /* an exact match is no suggestion */
}
END_TEST

START_TEST(test_line_col_and_caret) {
    Fx fx;
    fx_init(&fx);
    const char *text = "a\n\tbc d\n";
    int f = diag_add_file(&fx.ctx, "t.lmod", text, strlen(text));
    int line, col;
    diag_line_col(&fx.ctx, (Loc){f, 3, 5}, &line, &col); /* "bc" after a tab */
    ck_assert_int_eq(line, 2);
    ck_assert_int_eq(col, 9);
    diag_error(&fx.ctx, (Loc){f, 3, 5}, "bad '%s'", "bc");
    diag_note(&fx.ctx, (Loc){f, 6, 7}, "here");
    ck_assert_str_eq(fx_diag(&fx), "t.lmod:2:9: error: bad 'bc'\n"
                                   "    2 |         bc d\n"
                                   "      |         ^~\n"
                                   "t.lmod:2:12: note: here\n"
                                   "    2 |         bc d\n"
                                   "      |            ^\n");
    ck_assert_int_eq(fx.ctx.nerrors, 1);
    /* the same error at the same place is printed once (and counted) */
    size_t len = strlen(fx_diag(&fx));
    diag_error(&fx.ctx, (Loc){f, 3, 5}, "bad '%s'", "bc");
    ck_assert_int_eq(strlen(fx_diag(&fx)), len);
    ck_assert_int_eq(fx.ctx.nerrors, 2);
    fx_free(&fx);
}
END_TEST

START_TEST(test_several_errors_one_run) {
    Fx fx;
    fx_init(&fx);
    char path[64];
    char *base = read_all("tests/diag/ok_minimal.lmod");
    ck_assert_ptr_nonnull(base);
    /* three independent mistakes in three blocks */
    char *text = malloc(strlen(base) + 256);
    strcpy(text, base);
    char *p = strstr(text, "linear(32)");
    ck_assert_ptr_nonnull(p);
    memcpy(p, "linaer(32)", 10);
    p = strstr(text, "batch_size = 8");
    memcpy(p, "batch_sise = 8", 14);
    p = strstr(text, "optimizer sgd");
    memcpy(p, "optimizer sdg", 13);
    ck_assert_int_eq(fx_run_text(&fx, text, path, sizeof path), 3);
    const char *d = fx_diag(&fx);
    ck_assert_ptr_nonnull(strstr(d, "error: unknown op or block 'linaer'"));
    ck_assert_ptr_nonnull(strstr(d, "note: did you mean 'linear'?"));
    ck_assert_ptr_nonnull(strstr(d, "error: unknown data setting 'batch_sise'"));
    ck_assert_ptr_nonnull(strstr(d, "note: did you mean 'batch_size'?"));
    ck_assert_ptr_nonnull(strstr(d, "error: unknown optimizer 'sdg'"));
    ck_assert_ptr_nonnull(strstr(d, "note: did you mean 'sgd'?"));
    free(text);
    free(base);
    fx_free(&fx);
}
END_TEST

START_TEST(test_every_op_has_a_shape_rule) {
    for (int i = 0; i < LG_OP_COUNT; i++)
        ck_assert_msg(opsdoc_shape_rule((lg_op_id)i) != NULL, "op %d (%s) has no shape rule in compiler/opsdoc.c", i,
                      lg_op_name((lg_op_id)i));
}
END_TEST

/* ---- evaluation and hparams ------------------------------------------------- */

START_TEST(test_hparam_values) {
    Fx fx;
    fx_init(&fx);
    char path[64];
    const char *text = "model t \"t\"\n"
                       "hparams {\n"
                       "    a: int = 7 // 2 \"floor division\"\n"
                       "    b: int = -7 // 2 \"floors toward minus infinity\"\n"
                       "    c: int = -7 % 3 \"modulo has the divisor's sign\"\n"
                       "    d: float = a * 0.5 + 1 \"uses a\"\n"
                       "    e: bool = a > 2 && !(b == -4) \"logic\"\n"
                       "    f: enum(x, y) = y \"an enum\"\n"
                       "    g: int = max(a, 10) \"builtin\"\n"
                       "    h: float = 3 \"an int default widens\"\n"
                       "}\n";
    fx_run_text(&fx, text, path, sizeof path); /* errors: no data/steps; hparams still evaluated */
    Module *m = fx.mod;
    ck_assert_int_eq(m->nhparams, 8);
    ck_assert_int_eq(m->hparams[0].value.i, 3);
    ck_assert_int_eq(m->hparams[1].value.i, -4);
    ck_assert_int_eq(m->hparams[2].value.i, 2);
    ck_assert_int_eq(m->hparams[3].value.type, TY_FLOAT);
    ck_assert_double_eq(m->hparams[3].value.f, 2.5);
    ck_assert_int_eq(m->hparams[4].value.type, TY_BOOL);
    ck_assert_int_eq(m->hparams[4].value.i, 0);
    ck_assert_int_eq(m->hparams[5].value.type, TY_ENUM);
    ck_assert_str_eq(m->hparams[5].value.s, "y");
    ck_assert_int_eq(m->hparams[6].value.i, 10);
    ck_assert_int_eq(m->hparams[7].value.type, TY_FLOAT);
    ck_assert_double_eq(m->hparams[7].value.f, 3.0);
    fx_free(&fx);
}
END_TEST

START_TEST(test_override) {
    Fx fx;
    fx_init(&fx);
    HparamOverride o = {"hidden", "100", false};
    fx.ctx.overrides = &o;
    fx.ctx.noverrides = 1;
    ck_assert_int_eq(fx_run(&fx, "specs/lenet.lmod"), 0);
    ck_assert(o.used);
    Graph *g = net_named(fx.mod, "lenet")->graph;
    GParam *w = param_named(g, "fc1.weight");
    ck_assert_ptr_nonnull(w);
    assert_shape(&w->shape, 2, (int64_t[]){100, 400});
    Hparam *h = ast_find_hparam(fx.mod, "hidden");
    ck_assert_int_eq(h->value.i, 100);
    ck_assert(h->is_static); /* it fixes a layer width */
    ck_assert(!ast_find_hparam(fx.mod, "lr")->is_static); /* the optimizer reads it at run time */
    fx_free(&fx);

    fx_init(&fx);
    HparamOverride bad = {"hidden", "0", false};
    fx.ctx.overrides = &bad;
    fx.ctx.noverrides = 1;
    ck_assert_int_eq(fx_run(&fx, "specs/lenet.lmod"), 1);
    ck_assert_ptr_nonnull(strstr(fx_diag(&fx), "the -D value of hparam 'hidden' is 0, outside its range [1, 4096]"));
    fx_free(&fx);
}
END_TEST

/* ---- lenet end to end -------------------------------------------------------- */

START_TEST(test_lenet) {
    Fx fx;
    fx_init(&fx);
    ck_assert_int_eq(fx_run(&fx, "specs/lenet.lmod"), 0);
    ck_assert_str_eq(fx_diag(&fx), "");
    Module *m = fx.mod;
    ck_assert_str_eq(m->name, "lenet");
    /* dataset */
    ck_assert_int_eq(m->ndatasets, 1);
    Dataset *d = m->datasets[0];
    ck_assert_int_eq(d->format, FMT_IDX);
    ck_assert_int_eq(d->nmirrors, 2);
    ck_assert_str_eq(d->mirrors[0], "file:///usr/share/datasets/fashion-mnist/");
    ck_assert_int_eq(d->nfiles, 4);
    ck_assert_str_eq(d->files[0].sha256, "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7");
    ck_assert_int_eq(d->nsplits, 2);
    ck_assert_int_eq(d->splits[1].npaths, 2);
    ck_assert_str_eq(d->splits[1].paths[1], "t10k-labels-idx1-ubyte.gz");
    /* data module */
    DataBlock *db = m->data;
    ck_assert_int_eq(db->nsplits, 3);
    ck_assert_str_eq(db->splits[0].name, "train");
    ck_assert_double_eq(db->splits[0].lo, 0.0);
    ck_assert_double_eq_tol(db->splits[0].hi, 0.9, 1e-12);
    ck_assert_str_eq(db->splits[1].name, "val");
    ck_assert_double_eq_tol(db->splits[1].lo, 0.9, 1e-12);
    ck_assert_double_eq(db->splits[1].hi, 1.0);
    ck_assert_int_eq(db->splits[1].seed, 42);
    ck_assert_str_eq(db->splits[2].source->name, "test");
    ck_assert_int_eq(db->splits[0].ntransforms, 1);
    ck_assert_int_eq(db->splits[0].transforms[0].kind, TF_NORMALIZE);
    ck_assert_float_eq_tol(db->splits[0].transforms[0].f[0], 0.286f, 1e-6f);
    ck_assert_float_eq_tol(db->splits[0].transforms[0].f[5], 0.353f, 1e-6f);
    assert_shape(&db->splits[0].image_shape, 3, (int64_t[]){1, 28, 28});
    ck_assert_int_eq(db->batch_size->ref, REF_HPARAM);
    /* network */
    Graph *g = net_named(m, "lenet")->graph;
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->ninputs, 1);
    assert_shape(&g->outputs[0]->shape, 1, (int64_t[]){10});
    ck_assert_int_eq(g->nparams, 10);
    GParam *w = param_named(g, "conv1.weight");
    ck_assert_ptr_nonnull(w);
    assert_shape(&w->shape, 4, (int64_t[]){6, 1, 5, 5});
    assert_shape(&param_named(g, "conv2.weight")->shape, 4, (int64_t[]){16, 6, 5, 5});
    assert_shape(&param_named(g, "fc1.weight")->shape, 2, (int64_t[]){120, 400});
    assert_shape(&param_named(g, "fc3.bias")->shape, 1, (int64_t[]){10});
    /* a node's attributes are resolved with ops.def defaults */
    GNode *conv1 = w->node;
    ck_assert_int_eq(conv1->op, LG_OP_CONV2D);
    ck_assert_int_eq(conv1->attrs[0].i, 6);       /* out_channels */
    ck_assert_int_eq(conv1->attrs[1].ints[1], 5); /* kernel (h, w) */
    ck_assert_int_eq(conv1->attrs[2].ints[0], 1); /* stride default */
    ck_assert(conv1->attrs[2].defaulted);
    ck_assert_int_eq(conv1->attrs[3].ints[0], 2); /* padding */
    assert_shape(&conv1->outputs[0]->shape, 3, (int64_t[]){6, 28, 28});
    ck_assert_int_eq(conv1->flops, 2LL * 6 * 28 * 28 * 25);
    /* steps */
    ck_assert_int_eq(m->nsteps, 4);
    Graph *train = m->steps[0]->graph;
    ck_assert_ptr_nonnull(train->loss);
    ck_assert_int_eq(train->loss->shape.rank, 0);
    ck_assert_int_eq(train->nlogs, 1);
    ck_assert_str_eq(train->log_names[0], "train_loss");
    Graph *val = m->steps[1]->graph;
    ck_assert_int_eq(val->nlogs, 2);
    ck_assert_str_eq(val->log_names[1], "val_acc");
    ck_assert_int_eq(val->ninputs, 2); /* b.image, b.label */
    /* optimizer, scheduler, trainer */
    ck_assert_int_eq(m->optimizer->kind, OPTIM_SGD);
    ck_assert_int_eq(m->scheduler->nphases, 1);
    ck_assert_int_eq(m->scheduler->phases[0].kind, SCHED_COSINE);
    ck_assert_int_eq(m->trainer->ncallbacks, 2);
    fx_free(&fx);
}
END_TEST

/* ---- parameter names vs torchvision ---------------------------------------------- */

/* Compares "name d0 d1 ..." lines with the graphs' parameters, in order
 * when ordered; prefix_nets prefixes each name with its network's name;
 * skip_nbt ignores num_batches_tracked (torchvision's pretrained detection
 * backbones use frozen norms without it). */
static void compare_state_dict(Module *m, const char *const *nets, int nnets, bool prefix_nets, bool skip_nbt,
                               const char *fixture, bool ordered) {
    char *text = read_all(fixture);
    ck_assert_msg(text != NULL, "cannot read %s", fixture);
    int nlines = 0, matched = 0;
    int pos = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        nlines++;
        char name[256];
        int64_t dims[8];
        int nd = 0, off = 0;
        ck_assert_int_eq(sscanf(line, "%255s%n", name, &off), 1);
        char *p = line + off;
        long long v;
        int used;
        while (nd < 8 && sscanf(p, "%lld%n", &v, &used) == 1) {
            dims[nd++] = v;
            p += used;
        }
        GParam *found = NULL;
        int idx = 0;
        for (int k = 0; k < nnets && !found; k++) {
            Graph *g = net_named(m, nets[k])->graph;
            ck_assert_ptr_nonnull(g);
            for (int i = 0; i < g->nparams; i++, idx++) {
                char full[300];
                snprintf(full, sizeof full, "%s%s%s", prefix_nets ? nets[k] : "", prefix_nets ? "." : "",
                         g->params[i]->name);
                if (strcmp(full, name) == 0) {
                    found = g->params[i];
                    break;
                }
            }
        }
        ck_assert_msg(found != NULL, "%s: no parameter '%s' in the spec", fixture, name);
        if (ordered) {
            ck_assert_msg(idx == pos, "%s: '%s' is parameter %d in the spec, %d in torchvision", fixture, name, idx,
                          pos);
        }
        pos++;
        ck_assert_msg(found->shape.rank == nd, "%s: '%s' has rank %d, torchvision %d", fixture, name,
                      found->shape.rank, nd);
        for (int i = 0; i < nd; i++)
            ck_assert_msg(found->shape.dim[i] == dims[i], "%s: '%s' dim %d is %lld, torchvision %lld", fixture, name,
                          i, (long long)found->shape.dim[i], (long long)dims[i]);
        matched++;
    }
    int total = 0;
    for (int k = 0; k < nnets; k++) {
        Graph *g = net_named(m, nets[k])->graph;
        for (int i = 0; i < g->nparams; i++)
            total += !(skip_nbt && strcmp(g->params[i]->leaf, "num_batches_tracked") == 0);
    }
    ck_assert_int_eq(matched, nlines);
    ck_assert_msg(total == nlines, "%s: the spec has %d parameters, torchvision %d", fixture, total, nlines);
    free(text);
}

/* A pipeline of several transforms with arguments: resnet20's CIFAR-10
 * augmentation, random_crop(32, padding: 4) |> random_horizontal_flip(0.5). */
START_TEST(test_transform_pipeline) {
    Fx fx;
    fx_init(&fx);
    ck_assert_int_eq(fx_run(&fx, "specs/resnet20.lmod"), 0);
    DataBlock *db = fx.mod->data;
    ck_assert_str_eq(db->splits[0].name, "train");
    ck_assert_int_ge(db->splits[0].ntransforms, 2);
    ck_assert_int_eq(db->splits[0].transforms[0].kind, TF_RANDOM_CROP);
    ck_assert_int_eq(db->splits[0].transforms[0].i[0], 32);
    ck_assert_int_eq(db->splits[0].transforms[0].i[2], 4);
    ck_assert_int_eq(db->splits[0].transforms[1].kind, TF_RANDOM_HFLIP);
    ck_assert_float_eq_tol(db->splits[0].transforms[1].f[0], 0.5f, 1e-6f);
    fx_free(&fx);
}
END_TEST

START_TEST(test_resnet18_torchvision_names) {
    Fx fx;
    fx_init(&fx);
    ck_assert_int_eq(fx_run(&fx, "specs/resnet.lmod"), 0);
    const char *nets[] = {"resnet"};
    compare_state_dict(fx.mod, nets, 1, false, false, "tests/fixtures/frontend/resnet18_state_dict.txt", true);
    fx_free(&fx);
}
END_TEST

START_TEST(test_resnet50_torchvision_names) {
    Fx fx;
    fx_init(&fx);
    HparamOverride o = {"arch", "resnet50", false};
    fx.ctx.overrides = &o;
    fx.ctx.noverrides = 1;
    ck_assert_int_eq(fx_run(&fx, "specs/resnet.lmod"), 0);
    const char *nets[] = {"resnet"};
    compare_state_dict(fx.mod, nets, 1, false, false, "tests/fixtures/frontend/resnet50_state_dict.txt", true);
    fx_free(&fx);
}
END_TEST

START_TEST(test_faster_rcnn_torchvision_names) {
    Fx fx;
    fx_init(&fx);
    ck_assert_int_eq(fx_run(&fx, "specs/faster_rcnn.lmod"), 0);
    const char *nets[] = {"backbone", "rpn", "roi_heads"};
    /* by name: the FPN computes top-down, so its layers are created in another order */
    compare_state_dict(fx.mod, nets, 3, true, false, "tests/fixtures/frontend/fasterrcnn_resnet50_fpn_state_dict.txt",
                       false);
    /* static detection shapes: 3 anchors x (128^2 + 64^2 + 32^2 + 16^2 + 8^2) locations */
    Graph *rpn = net_named(fx.mod, "rpn")->graph;
    assert_shape(&rpn->outputs[0]->shape, 1, (int64_t[]){65472});
    assert_shape(&rpn->outputs[1]->shape, 2, (int64_t[]){65472, 4});
    Step *train = fx.mod->steps[0];
    ck_assert_int_eq(train->kind, STEP_TRAIN);
    ck_assert_int_eq(train->graph->nlogs, 5); /* the four losses and their sum */
    fx_free(&fx);
}
END_TEST

/* ---- imports, blocks, naming --------------------------------------------------------- */

START_TEST(test_import_block) {
    Fx fx;
    fx_init(&fx);
    ck_assert_int_eq(fx_run(&fx, "tests/diag/ok_import.lmod"), 0);
    ck_assert_int_eq(fx.mod->nimports, 1);
    ck_assert_ptr_nonnull(fx.mod->imports[0].module);
    Graph *g = net_named(fx.mod, "net")->graph;
    GParam *w = param_named(g, "head.h.weight");
    ck_assert_msg(w != NULL, "no head.h.weight (the block's layer under the call's name)");
    assert_shape(&w->shape, 2, (int64_t[]){64, 784});
    assert_shape(&param_named(g, "head.out.weight")->shape, 2, (int64_t[]){10, 64});
    fx_free(&fx);
}
END_TEST

START_TEST(test_cycle_error) {
    Fx fx;
    fx_init(&fx);
    ck_assert_int_ge(fx_run(&fx, "tests/diag/cycles.lmod"), 1);
    ck_assert_ptr_nonnull(strstr(fx_diag(&fx), "'up' calls itself through a cycle: up -> down -> up"));
    fx_free(&fx);
}
END_TEST

START_TEST(test_shape_error_names_both_lines) {
    Fx fx;
    fx_init(&fx);
    ck_assert_int_eq(fx_run(&fx, "tests/diag/shapes.lmod"), 2);
    const char *d = fx_diag(&fx);
    ck_assert_ptr_nonnull(strstr(d, "shapes.lmod:23:9: error: shape mismatch: 'add' needs equal shapes, found "
                                    "f32[6, 28, 28] and f32[8, 26, 26]"));
    ck_assert_ptr_nonnull(strstr(d, "shapes.lmod:21:5: note: 'a' is f32[6, 28, 28], produced here"));
    ck_assert_ptr_nonnull(strstr(d, "shapes.lmod:22:5: note: 'b' is f32[8, 26, 26], produced here"));
    fx_free(&fx);
}
END_TEST

/* ---- fmt ------------------------------------------------------------------------------ */

START_TEST(test_fmt_idempotent_on_specs) {
    DIR *dir = opendir("specs");
    ck_assert_ptr_nonnull(dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".lmod") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "specs/%s", de->d_name);
        Fx fx;
        fx_init(&fx);
        int f = diag_load_file(&fx.ctx, path, true);
        ck_assert_int_ge(f, 0);
        char *once = fmt_source(&fx.ctx, f);
        ck_assert_msg(once != NULL, "fmt failed on %s: %s", path, fx_diag(&fx));
        int g = diag_add_file(&fx.ctx, "again.lmod", once, strlen(once));
        char *twice = fmt_source(&fx.ctx, g);
        ck_assert_ptr_nonnull(twice);
        ck_assert_msg(strcmp(once, twice) == 0, "fmt is not idempotent on %s", path);
        ck_assert_msg(strcmp(once, diag_file(&fx.ctx, f)->text) == 0, "%s is not in canonical layout", path);
        fx_free(&fx);
        n++;
    }
    closedir(dir);
    ck_assert_int_ge(n, 5);
}
END_TEST

START_TEST(test_fmt_keeps_comments) {
    Fx fx;
    fx_init(&fx);
    const char *src = "# head\nmodel  m \"d\"   # trailing\n\n\n\nhparams{a:int=1 \"x\" # after a\n}\n# tail\n";
    int f = diag_add_file(&fx.ctx, "c.lmod", src, strlen(src));
    char *out = fmt_source(&fx.ctx, f);
    ck_assert_ptr_nonnull(out);
    /* line breaks stay where they were (at most one blank line) */
    ck_assert_str_eq(out, "# head\nmodel m \"d\"  # trailing\n\nhparams { a: int = 1 \"x\"  # after a\n}\n# tail\n");
    fx_free(&fx);
}
END_TEST

START_TEST(test_fmt_refuses_syntax_errors) {
    Fx fx;
    fx_init(&fx);
    const char *src = "model m \"d\"\nhparams { a: = 1 }\n";
    int f = diag_add_file(&fx.ctx, "e.lmod", src, strlen(src));
    ck_assert_ptr_null(fmt_source(&fx.ctx, f));
    ck_assert_ptr_nonnull(strstr(fx_diag(&fx), "e.lmod:2:14: error: syntax error"));
    fx_free(&fx);
}
END_TEST

/* ---- robustness ------------------------------------------------------------------------- */

START_TEST(test_deep_parentheses) {
    Fx fx;
    fx_init(&fx);
    int depth = 50000;
    char *src = malloc((size_t)depth * 2 + 64);
    char *p = src + sprintf(src, "model m \"d\"\nhparams { a: int = ");
    for (int i = 0; i < depth; i++)
        *p++ = '(';
    *p++ = '1';
    for (int i = 0; i < depth; i++)
        *p++ = ')';
    strcpy(p, " \"x\" }\n");
    char path[64];
    ck_assert_int_ge(fx_run_text(&fx, src, path, sizeof path), 1);
    ck_assert_ptr_nonnull(strstr(fx_diag(&fx), "error: input is nested too deeply"));
    free(src);
    fx_free(&fx);
}
END_TEST

START_TEST(test_garbage_input) {
    /* bytes that are not a spec at all: errors, no crash */
    Fx fx;
    fx_init(&fx);
    const char src[] = "\x01\x02model \xff\xfe{{{ ))) \"\n network ( -> [ ] |> |> \0 step";
    char path[64];
    snprintf(path, sizeof path, "/tmp/check_frontend_XXXXXX.lmod");
    int fd = mkstemps(path, 5);
    ck_assert_int_eq((long)write(fd, src, sizeof src - 1), (long)(sizeof src - 1));
    close(fd);
    ck_assert_int_ge(fx_run(&fx, path), 1);
    unlink(path);
    ck_assert_ptr_nonnull(strstr(fx_diag(&fx), "error:"));
    fx_free(&fx);
}
END_TEST

static Suite *frontend_suite(void) {
    Suite *s = suite_create("frontend");
    TCase *tc = tcase_create("diag");
    tcase_add_test(tc, test_suggest);
    tcase_add_test(tc, test_transform_pipeline);
    tcase_add_test(tc, test_line_col_and_caret);
    tcase_add_test(tc, test_several_errors_one_run);
    tcase_add_test(tc, test_every_op_has_a_shape_rule);
    suite_add_tcase(s, tc);
    tc = tcase_create("sema");
    tcase_add_test(tc, test_hparam_values);
    tcase_add_test(tc, test_override);
    tcase_add_test(tc, test_cycle_error);
    tcase_add_test(tc, test_import_block);
    suite_add_tcase(s, tc);
    tc = tcase_create("shapes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lenet);
    tcase_add_test(tc, test_shape_error_names_both_lines);
    tcase_add_test(tc, test_resnet18_torchvision_names);
    tcase_add_test(tc, test_resnet50_torchvision_names);
    tcase_add_test(tc, test_faster_rcnn_torchvision_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("fmt");
    tcase_add_test(tc, test_fmt_idempotent_on_specs);
    tcase_add_test(tc, test_fmt_keeps_comments);
    tcase_add_test(tc, test_fmt_refuses_syntax_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("robustness");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_deep_parentheses);
    tcase_add_test(tc, test_garbage_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(frontend_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
