/* autodiff.h — reverse-mode differentiation at compile time, IR to IR.
 *
 * ad_backward appends to the training graph the ops that compute the gradient
 * of its loss with respect to every trainable parameter. Each forward op's
 * backward rule emits ordinary IR ops (a conv2d's gradient is one
 * conv2d_backward op that writes dx and accumulates into the weight and bias
 * gradients); gradients of values used more than once are summed with
 * accumulate ops; metrics and values that do not depend on a parameter get no
 * gradient. The emitter has no gradient cases: it prints what this pass made.
 */
#ifndef LGEN_AUTODIFF_H
#define LGEN_AUTODIFF_H

#include "ir.h"

/* Differentiates p's training graph (if present, with a loss). Returns 0, or
 * the number of ops it could not differentiate, writing one line naming each
 * to stderr-like `errs` (a FILE *, may be NULL). */
int ad_backward(IrProgram *p, void *errs);

#endif
