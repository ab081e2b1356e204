/* emit_cuda.h — the CUDA half of code generation (`lgen SPEC -o DIR
 * --target cuda|all`): emit_cuda.c prints DIR/NAME_cuda.c, the same steps
 * as emit_c.c's NAME.c running on one GPU through lgen/cuda.h. It reads the
 * IR after emit_c_file named its values (cname) and parameters
 * (E->param_names), so emit.c calls it right after emit_c_file. */
#ifndef LGEN_EMIT_CUDA_H
#define LGEN_EMIT_CUDA_H

#include "emit_internal.h"

/* Prints NAME_cuda.c into E->f. Returns the number of errors (an op with no
 * device kernel call yet, reported with its spec line). */
int emit_cuda_file(Emit *E);

#endif
