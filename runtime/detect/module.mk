# runtime/detect: detection ops (anchors, box coder, matcher, sampler, NMS,
# proposals, RoIAlign, Faster R-CNN losses, post-processing, VOC mAP).
RUNTIME_SRCS += runtime/detect/boxes.c runtime/detect/rpn.c runtime/detect/roi.c \
                runtime/detect/batch.c runtime/detect/draw.c \
                runtime/detect/voc_map.c
