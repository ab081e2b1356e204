/* summary.c — `lgen summary`: a per-layer table of every network, known
 * before training.
 *
 * Input: a Module after shape_check. Output (stdout): for each network, one
 * row per op — name, op, output shape (per sample, B implicit), parameters,
 * FLOPs per sample (2 per multiply-add), activation bytes per sample — and
 * totals, like Lightning's ModelSummary plus the last two columns.
 */
#include <string.h>

#include "front.h"
#include "optab.h"

static void human(char *buf, size_t n, double v, const char *unit) {
    const char *suf[] = {"", " K", " M", " G", " T"};
    int k = 0;
    while (v >= 1000 && k < 4)
        v /= 1000, k++;
    if (k == 0)
        snprintf(buf, n, "%.0f%s%s", v, unit[0] ? " " : "", unit);
    else
        snprintf(buf, n, "%.1f%s%s", v, suf[k], unit);
}

static void write_network(Ctx *ctx, Network *net, FILE *out) {
    Graph *g = net->graph;
    fprintf(out, "network %s\n", net->name);
    fprintf(out, "  %-4s %-28s %-16s %-24s %12s %12s %12s\n", "#", "name", "op", "output", "params", "flops",
            "act bytes");
    int64_t tp = 0, ttp = 0, tf = 0, tb = 0;
    int row = 0;
    for (int i = 0; i < g->nnodes; i++) {
        GNode *n = g->nodes[i];
        const char *opname = n->kind == GN_INPUT ? "input" : optab_get(n->op)->name;
        const char *name = n->layer ? n->layer : n->outputs[0]->name ? n->outputs[0]->name : "";
        int64_t np = 0;
        for (int k = 0; k < n->nparams; k++) {
            int64_t c = 1;
            for (int d = 0; d < n->params[k]->shape.rank; d++)
                c *= n->params[k]->shape.dim[d];
            np += c;
            if (n->params[k]->trainable)
                ttp += c;
        }
        tp += np;
        tf += n->flops;
        tb += n->act_bytes;
        char shape[128] = "";
        for (int k = 0; k < n->noutputs; k++) {
            const char *s = ast_shape_str(ctx, n->outputs[k]->dtype, &n->outputs[k]->shape);
            size_t len = strlen(shape);
            snprintf(shape + len, sizeof shape - len, "%s%s", k ? " " : "", s);
        }
        char p[32], fl[32], b[32];
        human(p, sizeof p, (double)np, "");
        human(fl, sizeof fl, (double)n->flops, "");
        human(b, sizeof b, (double)n->act_bytes, "B");
        fprintf(out, "  %-4d %-28s %-16s %-24s %12s %12s %12s\n", row++, name, opname, shape, np ? p : "-",
                n->flops ? fl : "-", b);
    }
    char a[32], b2[32], c[32], d[32];
    human(a, sizeof a, (double)ttp, "");
    human(b2, sizeof b2, (double)(tp - ttp), "");
    human(c, sizeof c, (double)tf, "FLOPs");
    human(d, sizeof d, (double)tb, "B");
    fprintf(out, "  trainable params: %lld (%s); non-trainable: %lld (%s); parameter memory %.2f MB\n",
            (long long)ttp, a, (long long)(tp - ttp), b2, (double)tp * 4 / 1e6);
    fprintf(out, "  per sample: %s forward, %s of activations\n\n", c, d);
}

void summary_write(Ctx *ctx, Module *mod, FILE *out) {
    for (int i = 0; i < mod->nnetworks; i++)
        if (mod->networks[i]->graph)
            write_network(ctx, mod->networks[i], out);
    for (int m = 0; m < mod->nimports; m++) {
        Module *im = mod->imports[m].module;
        for (int i = 0; im && i < im->nnetworks; i++)
            if (im->networks[i]->graph)
                write_network(ctx, im->networks[i], out);
    }
}
