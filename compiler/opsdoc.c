/* opsdoc.c — `lgen ops`: the reference of every built-in op, as Markdown,
 * printed from ops.def (through optab) and the shape rules below.
 *
 * specs/LANGUAGE.md holds this output between the markers
 * `<!-- ops:begin -->` and `<!-- ops:end -->`; tests/frontend/cli.sh checks
 * that it is current, so the reference cannot drift from ops.def. The shape
 * rules are written here, next to the table that lists them; shapes.c
 * implements them (one case per op) and check_frontend asserts that every
 * op has a rule.
 */
#include <stdio.h>
#include <string.h>

#include "front.h"
#include "optab.h"

/* Per-sample shapes: the batch dimension B is implicit and not written. */
static const char *const shape_rules[LG_OP_COUNT] = {
    [LG_OP_LINEAR] = "(..., in) -> (..., out_features)",
    [LG_OP_CONV2D] = "(C, H, W) -> (out_channels, H', W'), H' = floor((H + 2p - d(k-1) - 1) / s) + 1; C and "
                     "out_channels divisible by groups",
    [LG_OP_BATCH_NORM] = "(C, ...) -> (C, ...)",
    [LG_OP_LAYER_NORM] = "(..., D) -> (..., D)",
    [LG_OP_MAX_POOL2D] = "(C, H, W) -> (C, H', W') as conv2d with dilation 1 (ceil_mode rounds up); padding <= kernel / 2",
    [LG_OP_AVG_POOL2D] = "(C, H, W) -> (C, H', W') as max_pool2d",
    [LG_OP_ADAPTIVE_AVG_POOL2D] = "(C, H, W) -> (C, output_size)",
    [LG_OP_GLOBAL_AVG_POOL] = "(C, H, W) -> (C)",
    [LG_OP_UPSAMPLE_NEAREST] = "(C, H, W) -> (C, H * scale, W * scale)",
    [LG_OP_RELU] = "same shape",
    [LG_OP_LEAKY_RELU] = "same shape",
    [LG_OP_SIGMOID] = "same shape",
    [LG_OP_TANH] = "same shape",
    [LG_OP_GELU] = "same shape",
    [LG_OP_SILU] = "same shape",
    [LG_OP_DROPOUT] = "same shape",
    [LG_OP_SOFTMAX] = "same shape; dim within the rank",
    [LG_OP_LOG_SOFTMAX] = "same shape; dim within the rank",
    [LG_OP_ADD] = "two equal shapes -> that shape (no broadcasting)",
    [LG_OP_MUL] = "two equal shapes -> that shape (no broadcasting)",
    [LG_OP_CONCAT] = "shapes equal except along dim -> sizes along dim added",
    [LG_OP_SPLIT] = "(..., sum(sizes), ...) -> one output per size (at most 4)",
    [LG_OP_FLATTEN] = "(d0, d1, ...) -> (d0 * d1 * ...)",
    [LG_OP_RESHAPE] = "same element count; one -1 is inferred",
    [LG_OP_TRANSPOSE] = "dims dim0 and dim1 swapped",
    [LG_OP_MEAN] = "any -> scalar (unbatched: over the batch too)",
    [LG_OP_SUM] = "any -> scalar (unbatched: over the batch too)",
    [LG_OP_SCALE] = "same shape",
    [LG_OP_CROSS_ENTROPY] = "logits (..., C) and integer targets (...) -> scalar",
    [LG_OP_BCE_WITH_LOGITS] = "two equal float shapes -> scalar",
    [LG_OP_MSE_LOSS] = "two equal float shapes -> scalar",
    [LG_OP_L1_LOSS] = "two equal float shapes -> scalar",
    [LG_OP_SMOOTH_L1_LOSS] = "two equal float shapes -> scalar",
    [LG_OP_ACCURACY] = "logits (C) and integer labels () -> scalar",
    [LG_OP_TOPK_ACCURACY] = "logits (C) and integer labels () -> scalar; k <= C",
    [LG_OP_ANCHORS] = "feature maps (C, H_l, W_l) -> (A, 4) unbatched, A = sum H_l W_l x ratios (one size per "
                      "map, or all sizes on one map)",
    [LG_OP_RPN_HEAD] = "maps (C, H_l, W_l) with one C -> objectness (A), deltas (A, 4), A = sum H_l W_l num_anchors",
    [LG_OP_PROPOSALS] = "objectness (A), deltas (A, 4), anchors (A, 4) -> boxes (post_nms_top_n, 4)",
    [LG_OP_RPN_LOSS] = "objectness (A), deltas (A, 4), anchors (A, 4), targets (M, 4) -> scalar",
    [LG_OP_ROI_SAMPLE] = "proposals (R, 4), targets (M, 4) -> rois (N, 4), labels i32 (N), box_targets (N, 4), "
                         "N = batch_size_per_image",
    [LG_OP_ROI_ALIGN] = "boxes (R, 4), then L maps (C, H_l, W_l) with L spatial scales -> (R, C, output_size)",
    [LG_OP_FASTRCNN_LOSS] = "class_logits (R, K), box_regression (R, 4K), labels (R), box_targets (R, 4) -> scalar",
    [LG_OP_DETECTIONS] = "class_logits (R, K), box_regression (R, 4K), boxes (R, 4) -> (detections_per_img, 6): "
                         "x1, y1, x2, y2, score, label",
    [LG_OP_VOC_MAP] = "detections (D, 6), targets (M, 4) -> scalar",
};

const char *opsdoc_shape_rule(lg_op_id id) {
    return (unsigned)id < LG_OP_COUNT ? shape_rules[id] : NULL;
}

static void num(FILE *out, double v) {
    if (v >= 1e300)
        fputs("inf", out);
    else if (v <= -1e300)
        fputs("-inf", out);
    else if (v == (double)(long long)v)
        fprintf(out, "%lld", (long long)v);
    else
        fprintf(out, "%g", v);
}

void opsdoc_write(FILE *out) {
    static const char *const kinds[] = {"Layers (own parameters)", "Functions", "Losses (a scalar; a train step "
                                        "can return one)", "Metrics (no gradient)", "Detection"};
    for (int k = 0; k < 5; k++) {
        fprintf(out, "### %s\n\n", kinds[k]);
        for (int i = 0; i < LG_OP_COUNT; i++) {
            const OpInfo *op = optab_get((lg_op_id)i);
            if ((int)op->kind != k)
                continue;
            fprintf(out, "#### `%s`\n\n%s.\n\n", op->name, op->doc);
            if (op->max_in < 0)
                fprintf(out, "- inputs: %d or more tensors\n", op->min_in);
            else if (op->min_in == op->max_in)
                fprintf(out, "- inputs: %d tensor%s\n", op->min_in, op->min_in == 1 ? "" : "s");
            else
                fprintf(out, "- inputs: %d to %d tensors\n", op->min_in, op->max_in);
            fprintf(out, "- shape: %s\n", shape_rules[i] ? shape_rules[i] : "?");
            fprintf(out, "- gradient: %s\n", op->grad ? "yes" : "no");
            if (op->nattrs) {
                fputs("\n| attribute | type | default | range | meaning |\n| --- | --- | --- | --- | --- |\n", out);
                for (int a = 0; a < op->nattrs; a++) {
                    const OpAttr *at = &op->attrs[a];
                    fprintf(out, "| `%s` | %s | %s | ", at->name, optab_attr_type_name(at->type),
                            at->dflt ? at->dflt : "required");
                    if (at->type == AT_ENUM) {
                        for (const char *c = at->choices; *c; c++) /* '|' would end the table cell */
                            fputs(*c == '|' ? " \\| " : (char[]){*c, 0}, out);
                    }
                    else if (at->type == AT_BOOL || at->type == AT_STR || at->type == AT_TENSOR)
                        fputs("-", out);
                    else {
                        fputc('[', out);
                        num(out, at->lo);
                        fputs(", ", out);
                        num(out, at->hi);
                        fputc(']', out);
                    }
                    fprintf(out, " | %s |\n", at->doc);
                }
            }
            if (op->nparams) {
                fputs("\nParameters (state_dict names under the layer's name):", out);
                for (int p = 0; p < op->nparams; p++)
                    fprintf(out, "%s `%s` %s%s", p ? "," : "", op->params[p].name, op->params[p].doc,
                            op->params[p].trainable ? "" : " (buffer)");
                fputs("\n", out);
            }
            fputs("\n", out);
        }
    }
}
