/* lgen/op.h — op identifiers shared by the compiler and the runtime.
 *
 * The rows live in ops.def; this header turns them into an enum and a name
 * table so that both sides (and error messages) agree on every op's name.
 */
#ifndef LGEN_OP_H
#define LGEN_OP_H

#define LG_INF 1e300 /* "no bound" in ops.def ranges */

typedef enum {
#define OP(ID, name, kind, min_in, max_in, grad, doc) LG_OP_##ID,
#include "lgen/ops.def"
    LG_OP_COUNT
} lg_op_id;

/* The .lmod spelling of an op ("conv2d"), or "?" for an out-of-range id. */
const char *lg_op_name(lg_op_id id);

#endif
