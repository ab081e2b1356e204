/* plan.h — the memory plan, fixed at compile time.
 *
 * plan_graph runs after autodiff. It first fuses where it pays (a relu right
 * after a linear, conv2d or batch_norm whose output nothing else reads runs
 * on that op's output buffer, so the pre-activation is never stored twice),
 * marks elementwise backward ops whose input dies there as in place, then
 * computes every arena value's lifetime (first op to last use, views counted
 * as uses of the memory they stand for) and places it at the lowest offset
 * of one arena where nothing live overlaps it (first fit, in op order, so the
 * same graph always gives the same plan).
 *
 * Batched values are sized per sample: their offset and size are multiplied
 * by the batch size at run time (one arena of arena_per_sample * B floats).
 * Unbatched values (scalars, per-channel statistics) go in a small fixed
 * region after it (arena_fixed floats), never reused.
 */
#ifndef LGEN_PLAN_H
#define LGEN_PLAN_H

#include "ir.h"

/* Algebraic rewrites of a forward graph, before autodiff: relu followed by
 * max_pool2d becomes max_pool2d followed by relu (the same values and
 * gradients, on a smaller tensor). */
void plan_rewrite(IrGraph *g);

/* Plans one graph (fusion, in-place, offsets). */
void plan_graph(IrGraph *g);
/* Plans every present graph of p. */
void plan_program(IrProgram *p);

/* The value whose memory v uses (v itself unless it is a view). */
IrValue *plan_root(IrValue *v);

#endif
