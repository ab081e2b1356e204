# tests/faster_rcnn.mk — the Faster R-CNN detector end to end
# (tests/e2e/faster_rcnn.sh): specs/faster_rcnn.lmod builds; a vocgen data
# set served over loopback HTTP is downloaded, extracted, parsed, trained on
# and evaluated (val_map) by the trainer generated from
# tests/e2e/faster_rcnn_shapes.lmod; test, predict and resume. Needs
# build/vocgen (tests/detect.mk).
CHECK_SCRIPTS += tests/e2e/faster_rcnn.sh
