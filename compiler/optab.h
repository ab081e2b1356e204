/* optab.h — ops.def as tables the compiler can search.
 *
 * Built at compile time from runtime/include/lgen/ops.def with X-macros, so
 * the compiler's view of ops cannot drift from the runtime's: every op's
 * spelling, kind, input counts, attributes (type, default, range, choices)
 * and parameters. sema and shapes resolve calls against it; summary, graph
 * and the LANGUAGE.md generator (tests/gen_ops_doc) print from it.
 */
#ifndef LGEN_OPTAB_H
#define LGEN_OPTAB_H

#include <stdbool.h>

#include "lgen/op.h"

typedef enum { OPK_LAYER, OPK_FUNC, OPK_LOSS, OPK_METRIC, OPK_DETECT } OpKind;
/* AT_FLOAT_NONE: a float, or the word `none` (kept as the enum value "none") */
typedef enum { AT_INT, AT_FLOAT, AT_BOOL, AT_STR, AT_ENUM, AT_INT2, AT_INTS, AT_FLOATS, AT_TENSOR, AT_FLOAT_NONE } AttrType;

typedef struct OpAttr {
    const char *name;
    AttrType type;
    const char *dflt;   /* .lmod syntax, or NULL when required */
    double lo, hi;      /* INT/FLOAT (and element ranges of INT2/INTS/FLOATS) */
    const char *choices; /* ENUM: "a|b|c" */
    const char *doc;
} OpAttr;

typedef struct OpParam {
    const char *name;
    bool trainable;
    const char *doc;
} OpParam;

typedef struct OpInfo {
    lg_op_id id;
    const char *name;
    OpKind kind;
    int min_in, max_in; /* max -1: any number */
    bool grad;
    const char *doc;
    const OpAttr *attrs;
    int nattrs;
    const OpParam *params;
    int nparams;
} OpInfo;

const OpInfo *optab_get(lg_op_id id);
const OpInfo *optab_find(const char *name);
/* Index of the attribute called name in op, or -1. */
int optab_attr_index(const OpInfo *op, const char *name);
const char *optab_kind_name(OpKind k);   /* "layer", "func", ... */
const char *optab_attr_type_name(AttrType t); /* "int", "int or (h, w)", ... */
/* Every op name, for "did you mean" (LG_OP_COUNT entries). */
const char *const *optab_names(void);

#endif
