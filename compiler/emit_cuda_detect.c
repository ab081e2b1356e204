/* emit_cuda_detect.c — the CUDA target's calls for the detection ops of
 * Faster R-CNN (anchors, proposals, roi_sample, roi_align, the RPN and
 * Fast R-CNN losses, detections, voc_map): one lg_cuda_* call per op, as
 * emit_cuda.c does for the dense ops. An op with no call yet returns 1 and
 * emit_cuda.c reports it with its spec line. */
#include "emit_cuda_internal.h"

int emit_cuda_detect_op(CudaEmit *X, IrGraph *g, IrOp *op) {
    (void)X, (void)g;
    switch (op->kind) {
    default:
        return 1;
    }
}
