/* optab.c — the op table built from ops.def (see optab.h). */
#include "optab.h"

#include <string.h>

#define INT AT_INT
#define FLOAT AT_FLOAT
#define FLOAT_OR_NONE AT_FLOAT_NONE
#define BOOL AT_BOOL
#define STR AT_STR
#define ENUM AT_ENUM
#define INT2 AT_INT2
#define INTS AT_INTS
#define FLOATS AT_FLOATS
#define TENSOR AT_TENSOR
#define LAYER OPK_LAYER
#define FUNC OPK_FUNC
#define LOSS OPK_LOSS
#define METRIC OPK_METRIC
#define DETECT OPK_DETECT
#define TRAIN true
#define BUFFER false

/* ENUM rows keep their choice list in `lo`; other rows keep a number. The
 * two helpers pick the right member without a cast warning either way. */
#define ATTR_LO_NUM(x) _Generic((x), char *: 0.0, const char *: 0.0, default: (x))
#define ATTR_LO_STR(x) _Generic((x), char *: (x), const char *: (x), default: NULL)

/* Every ATTR and PARAM row in ops.def order, tagged with its op; fill()
 * groups them per op. */
typedef struct AttrRow {
    lg_op_id op;
    OpAttr a;
} AttrRow;
typedef struct ParamRow {
    lg_op_id op;
    OpParam p;
} ParamRow;

static const AttrRow attr_rows[] = {
#define ATTR(ID, name, type, dflt, lo, hi, doc) \
    {LG_OP_##ID, {name, type, dflt, ATTR_LO_NUM(lo), (double)(hi), ATTR_LO_STR(lo), doc}},
#include "lgen/ops.def"
};
static const ParamRow param_rows[] = {
#define PARAM(ID, name, role, doc) {LG_OP_##ID, {name, role, doc}},
#include "lgen/ops.def"
};

#define NATTR_ROWS ((int)(sizeof attr_rows / sizeof *attr_rows))
#define NPARAM_ROWS ((int)(sizeof param_rows / sizeof *param_rows))

static OpAttr attrs_by_op[NATTR_ROWS];
static OpParam params_by_op[NPARAM_ROWS];
static OpInfo table[LG_OP_COUNT];
static const char *names[LG_OP_COUNT];
static bool ready;

/* The table is filled on first use; the data are constants, so this is the
 * same on every run (and the compiler is single-threaded). */
static void fill(void) {
    if (ready)
        return;
    int i = 0;
#define OP(ID, name_, kind_, min_in_, max_in_, grad_, doc_)                      \
    table[i] = (OpInfo){LG_OP_##ID, name_, kind_, min_in_, max_in_, grad_, doc_, \
                        NULL, 0, NULL, 0};                                       \
    names[i] = name_;                                                            \
    i++;
#include "lgen/ops.def"
    int na = 0, np = 0;
    for (int op = 0; op < LG_OP_COUNT; op++) {
        table[op].attrs = &attrs_by_op[na];
        for (int r = 0; r < NATTR_ROWS; r++)
            if ((int)attr_rows[r].op == op)
                attrs_by_op[na++] = attr_rows[r].a, table[op].nattrs++;
        table[op].params = &params_by_op[np];
        for (int r = 0; r < NPARAM_ROWS; r++)
            if ((int)param_rows[r].op == op)
                params_by_op[np++] = param_rows[r].p, table[op].nparams++;
    }
    ready = true;
}

const OpInfo *optab_get(lg_op_id id) {
    fill();
    return (unsigned)id < LG_OP_COUNT ? &table[id] : NULL;
}

const OpInfo *optab_find(const char *name) {
    fill();
    for (int i = 0; i < LG_OP_COUNT; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

int optab_attr_index(const OpInfo *op, const char *name) {
    for (int i = 0; i < op->nattrs; i++)
        if (strcmp(op->attrs[i].name, name) == 0)
            return i;
    return -1;
}

const char *optab_kind_name(OpKind k) {
    static const char *const n[] = {"layer", "func", "loss", "metric", "detect"};
    return (unsigned)k < 5 ? n[k] : "?";
}

const char *optab_attr_type_name(AttrType t) {
    static const char *const n[] = {"int",           "float",          "bool",            "string",
                                    "enum",          "int or (h, w)",  "tuple of ints",   "tuple of floats",
                                    "tensor",        "float or none"};
    return (unsigned)t < 10 ? n[t] : "?";
}

const char *const *optab_names(void) {
    fill();
    return names;
}
