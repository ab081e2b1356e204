/* check_codegen_ir.c — tests of the IR, compile-time autodiff and memory plan
 * on a hand-built LeNet-5 graph (the shapes specs/lenet.lmod lowers to): the
 * backward ops autodiff appends, gradient sums at a fan-out, no gradient for
 * metrics or the network input, relu fusion, in-place backward ops, and an
 * arena smaller than the naive one with no two live buffers overlapping. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "ir.h"
#include "plan.h"

static IrValue *layer(IrProgram *p, IrGraph *g, IrKind k, IrValue *x, const char *name, int ndim,
                      const int *dim, const int *wdim, int wnd, int out) {
    int w = ir_add_param(p, ir_fmt(p, "%s.weight", name), IR_TRAIN, wnd, wdim);
    int b = ir_add_param(p, ir_fmt(p, "%s.bias", name), IR_TRAIN, 1, &out);
    IrValue *in[3] = {x, ir_param_value(p, g, w, IR_ST_PARAM), ir_param_value(p, g, b, IR_ST_PARAM)};
    IrValue *y = ir_op1(g, k, 3, in, name, IR_F32, 1, ndim, dim);
    y->def->param = w;
    y->def->nparam = 2;
    y->def->a.bias = 1;
    return y;
}

static IrValue *unary(IrGraph *g, IrKind k, IrValue *x, const char *name, int ndim, const int *dim) {
    return ir_op1(g, k, 1, &x, name, IR_F32, 1, ndim, dim);
}

static IrValue *pool(IrGraph *g, IrValue *x, const char *name, int ndim, const int *dim) {
    IrValue *y = unary(g, LG_OP_MAX_POOL2D, x, name, ndim, dim);
    IrValue *am = ir_value(g, ir_fmt(g->prog, "%s_argmax", name), IR_I32, 1, ndim, dim);
    am->def = y->def;
    y->def->out[1] = am;
    y->def->nout = 2;
    return y;
}

/* LeNet-5 for (1, 28, 28): conv(6,5,p2) relu pool conv(16,5) relu pool
 * flatten linear(120) relu linear(84) relu linear(10); CE loss + accuracy. */
static void build_lenet(IrProgram *p) {
    ir_program_init(p, "lenet");
    IrGraph *g = &p->graphs[IR_STEP_TRAIN];
    g->present = 1;
    int img[3] = {1, 28, 28};
    int image = ir_add_input(p, "image", IR_F32, 3, img);
    int label = ir_add_input(p, "label", IR_I32, 0, NULL);
    IrValue *x = ir_input_value(p, g, image);
    int s1[3] = {6, 28, 28}, w1[4] = {6, 1, 5, 5};
    x = layer(p, g, LG_OP_CONV2D, x, "conv1", 3, s1, w1, 4, 6);
    x = unary(g, LG_OP_RELU, x, "relu1", 3, s1);
    int s2[3] = {6, 14, 14};
    x = pool(g, x, "pool1", 3, s2);
    int s3[3] = {16, 10, 10}, w3[4] = {16, 6, 5, 5};
    x = layer(p, g, LG_OP_CONV2D, x, "conv2", 3, s3, w3, 4, 16);
    x = unary(g, LG_OP_RELU, x, "relu2", 3, s3);
    int s4[3] = {16, 5, 5};
    x = pool(g, x, "pool2", 3, s4);
    int f[1] = {400};
    x = unary(g, LG_OP_FLATTEN, x, "flatten", 1, f);
    x->storage = IR_ST_VIEW;
    x->base = x->def->in[0];
    int h1[1] = {120}, wf1[2] = {120, 400};
    x = layer(p, g, LG_OP_LINEAR, x, "fc1", 1, h1, wf1, 2, 120);
    x = unary(g, LG_OP_RELU, x, "relu3", 1, h1);
    int h2[1] = {84}, wf2[2] = {84, 120};
    x = layer(p, g, LG_OP_LINEAR, x, "fc2", 1, h2, wf2, 2, 84);
    x = unary(g, LG_OP_RELU, x, "relu4", 1, h2);
    int h3[1] = {10}, wf3[2] = {10, 84};
    IrValue *logits = layer(p, g, LG_OP_LINEAR, x, "fc3", 1, h3, wf3, 2, 10);
    IrValue *in[2] = {logits, ir_input_value(p, g, label)};
    g->loss = ir_op1(g, LG_OP_CROSS_ENTROPY, 2, in, "loss", IR_F32, 0, 0, NULL);
    IrValue *acc = ir_op1(g, LG_OP_ACCURACY, 2, in, "acc", IR_F32, 0, 0, NULL);
    ir_log(g, "train_loss", g->loss);
    ir_log(g, "train_acc", acc);
}

static int count_kind(const IrGraph *g, IrKind k) {
    int n = 0;
    for (int i = 0; i < g->nops; i++)
        n += !g->ops[i]->dead && g->ops[i]->kind == k;
    return n;
}

START_TEST(test_lenet_backward) {
    IrProgram p;
    build_lenet(&p);
    IrGraph *g = &p.graphs[IR_STEP_TRAIN];
    ck_assert_int_eq(p.nparams, 10);
    ck_assert_uint_eq(p.param_floats, 6 * 25 + 6 + 16 * 150 + 16 + 120 * 400 + 120 + 84 * 120 + 84 + 840 + 10);
    ck_assert_int_eq(ad_backward(&p, stderr), 0);
    ck_assert_int_eq(count_kind(g, IR_SEED), 1);
    ck_assert_int_eq(count_kind(g, IR_CONV2D_BWD), 2);
    ck_assert_int_eq(count_kind(g, IR_LINEAR_BWD), 3);
    ck_assert_int_eq(count_kind(g, IR_RELU_BWD), 4);
    ck_assert_int_eq(count_kind(g, IR_MAX_POOL2D_BWD), 2);
    ck_assert_int_eq(count_kind(g, IR_CROSS_ENTROPY_BWD), 1);
    ck_assert_int_eq(count_kind(g, IR_ACCUM), 0);
    /* the first conv needs no input gradient: the image is not trainable */
    for (int i = g->nforward; i < g->nops; i++) {
        IrOp *op = g->ops[i];
        if (op->kind == IR_CONV2D_BWD && op->fwd->in[0]->storage == IR_ST_INPUT)
            ck_assert_int_eq(op->nout, 0);
        if (op->kind == IR_CONV2D_BWD || op->kind == IR_LINEAR_BWD) {
            ck_assert_int_eq(op->in[3]->storage, IR_ST_GRAD);
            ck_assert_int_eq(op->in[4]->storage, IR_ST_GRAD);
        }
    }
    /* backward runs in reverse layer order: fc3 first, conv1 last */
    IrOp *first = NULL, *last = NULL;
    for (int i = g->nforward; i < g->nops; i++)
        if (g->ops[i]->kind == IR_LINEAR_BWD || g->ops[i]->kind == IR_CONV2D_BWD) {
            if (!first)
                first = g->ops[i];
            last = g->ops[i];
        }
    ck_assert_str_eq(first->fwd->out[0]->name, "fc3");
    ck_assert_str_eq(last->fwd->out[0]->name, "conv1");
    ir_program_free(&p);
}
END_TEST

/* Every pair of batched arena values whose lifetimes overlap must occupy
 * disjoint ranges. */
static void assert_no_overlap(IrGraph *g) {
    for (int i = 0; i < g->nvalues; i++) {
        IrValue *a = g->values[i];
        if (a->storage != IR_ST_ARENA || !a->batched || a->first < 0)
            continue;
        ck_assert_uint_le(a->offset + ir_numel(a), g->arena_per_sample);
        for (int j = i + 1; j < g->nvalues; j++) {
            IrValue *b = g->values[j];
            if (b->storage != IR_ST_ARENA || !b->batched || b->first < 0)
                continue;
            int overlap_t = a->first <= b->last && b->first <= a->last;
            int overlap_m = a->offset < b->offset + ir_numel(b) && b->offset < a->offset + ir_numel(a);
            if (overlap_t && overlap_m)
                ck_abort_msg("%s [%d,%d]@%zu and %s [%d,%d]@%zu overlap", a->name, a->first, a->last,
                             a->offset, b->name, b->first, b->last, b->offset);
        }
    }
}

START_TEST(test_lenet_plan) {
    IrProgram p;
    build_lenet(&p);
    IrGraph *g = &p.graphs[IR_STEP_TRAIN];
    ck_assert_int_eq(ad_backward(&p, stderr), 0);
    plan_graph(g);
    ck_assert_int_eq(g->nfused, 4); /* every relu follows a conv or linear */
    ck_assert_int_eq(count_kind(g, LG_OP_RELU), 0);
    ck_assert_int_gt(g->ninplace, 0);
    ck_assert_uint_gt(g->arena_per_sample, 0);
    ck_assert_uint_lt(g->arena_per_sample, g->naive_per_sample);
    assert_no_overlap(g);
    /* the forward activations the backward reads stay live until then */
    int seen = 0;
    for (int i = 0; i < g->nvalues; i++)
        if (!strcmp(g->values[i]->name, "conv1") && g->values[i]->def) {
            /* the fused conv1 |> relu output, read by relu's backward */
            ck_assert_int_ge(g->values[i]->last, g->nforward);
            seen++;
        }
    ck_assert_int_eq(seen, 1);
    ir_program_free(&p);
}
END_TEST

/* relu before max_pool2d is moved after it (4x fewer elements), runs in
 * place on the pool's output; the linear layers' relus stay fused. */
START_TEST(test_relu_pool_swap) {
    IrProgram p;
    build_lenet(&p);
    IrGraph *g = &p.graphs[IR_STEP_TRAIN];
    plan_rewrite(g);
    for (int i = 0; i < g->nops; i++)
        if (g->ops[i]->kind == LG_OP_RELU && g->ops[i]->in[0]->def->kind == LG_OP_CONV2D)
            ck_abort_msg("relu still reads a conv output");
    int after_pool = 0;
    for (int i = 0; i + 1 < g->nops; i++)
        if (g->ops[i]->kind == LG_OP_MAX_POOL2D && g->ops[i + 1]->kind == LG_OP_RELU &&
            g->ops[i + 1]->in[0] == g->ops[i]->out[0])
            after_pool++;
    ck_assert_int_eq(after_pool, 2);
    for (int i = 0; i < g->nops; i++)
        ck_assert_int_eq(g->ops[i]->index, i);
    ck_assert_int_eq(ad_backward(&p, stderr), 0);
    plan_graph(g);
    ck_assert_int_eq(g->nfused, 2);
    int relu_in_place = 0;
    for (int i = 0; i < g->nops; i++)
        relu_in_place += g->ops[i]->kind == LG_OP_RELU && g->ops[i]->in_place;
    ck_assert_int_eq(relu_in_place, 2);
    assert_no_overlap(g);
    ir_program_free(&p);
}
END_TEST

/* y = relu(x) used twice (two heads added): the gradient of the shared value
 * is the sum of the two, and metrics get no gradient. */
START_TEST(test_fan_out_sum) {
    IrProgram p;
    ir_program_init(&p, "t");
    IrGraph *g = &p.graphs[IR_STEP_TRAIN];
    g->present = 1;
    int d8[1] = {8}, d4[1] = {4}, w1[2] = {8, 8}, w2[2] = {4, 8};
    IrValue *x = ir_input_value(&p, g, ir_add_input(&p, "image", IR_F32, 1, d8));
    IrValue *h = layer(&p, g, LG_OP_LINEAR, x, "a", 1, d8, w1, 2, 8);
    IrValue *r = unary(g, LG_OP_TANH, h, "t", 1, d8);
    IrValue *y1 = layer(&p, g, LG_OP_LINEAR, r, "b", 1, d4, w2, 2, 4);
    IrValue *y2 = layer(&p, g, LG_OP_LINEAR, r, "c", 1, d4, w2, 2, 4);
    IrValue *in[2] = {y1, y2};
    IrValue *s = ir_op1(g, LG_OP_ADD, 2, in, "s", IR_F32, 1, 1, d4);
    IrValue *lab = ir_input_value(&p, g, ir_add_input(&p, "label", IR_I32, 0, NULL));
    IrValue *in2[2] = {s, lab};
    g->loss = ir_op1(g, LG_OP_CROSS_ENTROPY, 2, in2, "loss", IR_F32, 0, 0, NULL);
    ir_op1(g, LG_OP_ACCURACY, 2, in2, "acc", IR_F32, 0, 0, NULL);
    ck_assert_int_eq(ad_backward(&p, stderr), 0);
    ck_assert_int_eq(count_kind(g, IR_ACCUM), 1);
    ck_assert_int_eq(count_kind(g, IR_TANH_BWD), 1);
    ck_assert_int_eq(count_kind(g, IR_LINEAR_BWD), 3);
    plan_graph(g);
    assert_no_overlap(g);
    ir_program_free(&p);
}
END_TEST

START_TEST(test_no_rule_is_an_error) {
    IrProgram p;
    ir_program_init(&p, "t");
    IrGraph *g = &p.graphs[IR_STEP_TRAIN];
    g->present = 1;
    int d8[1] = {8}, w1[2] = {8, 8};
    IrValue *x = ir_input_value(&p, g, ir_add_input(&p, "image", IR_F32, 1, d8));
    IrValue *h = layer(&p, g, LG_OP_LINEAR, x, "a", 1, d8, w1, 2, 8);
    IrValue *t = unary(g, LG_OP_RPN_HEAD, h, "rpn", 1, d8); /* ir.c lowers it; autodiff never sees one */
    g->loss = ir_op1(g, LG_OP_MEAN, 1, &t, "loss", IR_F32, 0, 0, NULL);
    char buf[256] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    ck_assert_int_eq(ad_backward(&p, f), 1);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "no backward rule for 'rpn_head'"));
    ir_program_free(&p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("codegen_ir");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_lenet_backward);
    tcase_add_test(tc, test_lenet_plan);
    tcase_add_test(tc, test_fan_out_sum);
    tcase_add_test(tc, test_relu_pool_swap);
    tcase_add_test(tc, test_no_rule_is_an_error);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
