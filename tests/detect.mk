# tests/detect.mk: the detection ops' tests (fixtures from torchvision in
# tests/fixtures/detect/) and the VOC-layout data set generator.
CHECK_PROGS += $(BUILD)/tests/check_detect
