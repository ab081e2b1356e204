# tests/cuda_detect.mk: the detection ops' device calls in a generated
# trainer (specs/faster_rcnn.lmod --target cuda: the ground truth in the
# batch, anchors, rpn_loss, roi_align, fastrcnn_loss, a refused roi_align).
# Everywhere, no GPU or toolkit. (The kernels' bodies: check_cuda_detect,
# in runtime/cuda/module.mk.)
CHECK_SCRIPTS += tests/cuda/check_detect_target.sh
