# tests/cuda_boxes.mk: the device proposals, RoI sampling and detections
# (runtime/cuda/boxes_body.h, the launch sequences of boxes_run.h) run on
# the CPU against runtime/detect's kernels. Everywhere, no GPU or toolkit.
CHECK_PROGS += $(BUILD)/tests/check_cuda_boxes
$(BUILD)/tests/check_cuda_boxes: runtime/cuda/boxes_body.h runtime/cuda/boxes_run.h runtime/cuda/body.h \
    runtime/include/lgen/cuda.h
