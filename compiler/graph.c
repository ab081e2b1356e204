/* graph.c — `lgen graph`: Graphviz DOT of every network (after shape_check).
 *
 * One cluster per network; a node per op labelled with its layer name, op
 * and output shape (inputs as ellipses, layers with parameters as boxes,
 * plain functions as rounded boxes); an edge per value use. `dot -Tpng`
 * renders it. Output is deterministic (graph order), so it diffs in git.
 */
#include <string.h>

#include "front.h"
#include "optab.h"

static void esc(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void write_network(Ctx *ctx, Network *net, int k, FILE *out) {
    Graph *g = net->graph;
    fprintf(out, "  subgraph cluster_%d {\n    label=\"", k);
    esc(out, net->name);
    fputs("\";\n    fontname=\"Helvetica\";\n", out);
    for (int i = 0; i < g->nnodes; i++) {
        GNode *n = g->nodes[i];
        const char *opname = n->kind == GN_INPUT ? "input" : optab_get(n->op)->name;
        const char *name = n->layer ? n->layer : n->kind == GN_INPUT ? n->outputs[0]->name : NULL;
        fprintf(out, "    n%d_%d [label=\"", k, n->id);
        if (name) {
            esc(out, name);
            fputs("\\n", out);
        }
        esc(out, opname);
        for (int o = 0; o < n->noutputs; o++) {
            fputs(o ? " " : "\\n", out);
            esc(out, ast_shape_str(ctx, n->outputs[o]->dtype, &n->outputs[o]->shape));
        }
        const char *shape = n->kind == GN_INPUT ? "ellipse" : n->nparams ? "box" : "box, style=rounded";
        fprintf(out, "\", shape=%s];\n", shape);
    }
    for (int i = 0; i < g->nnodes; i++) {
        GNode *n = g->nodes[i];
        for (int j = 0; j < n->ninputs; j++)
            fprintf(out, "    n%d_%d -> n%d_%d;\n", k, n->inputs[j]->producer->id, k, n->id);
    }
    for (int i = 0; i < g->noutputs; i++) {
        fprintf(out, "    out%d_%d [label=\"output %d\", shape=ellipse];\n", k, i, i);
        fprintf(out, "    n%d_%d -> out%d_%d;\n", k, g->outputs[i]->producer->id, k, i);
    }
    fputs("  }\n", out);
}

void graph_write_dot(Ctx *ctx, Module *mod, FILE *out) {
    fputs("digraph lmod {\n  node [fontname=\"Helvetica\", fontsize=10];\n  rankdir=TB;\n", out);
    int k = 0;
    for (int i = 0; i < mod->nnetworks; i++)
        if (mod->networks[i]->graph)
            write_network(ctx, mod->networks[i], k++, out);
    for (int m = 0; m < mod->nimports; m++) {
        Module *im = mod->imports[m].module;
        for (int i = 0; im && i < im->nnetworks; i++)
            if (im->networks[i]->graph)
                write_network(ctx, im->networks[i], k++, out);
    }
    fputs("}\n", out);
}
