# tests/cuda_boxes.mk: the device proposals, RoI sampling and detections
# (runtime/cuda/boxes_body.h, the launch sequences of boxes_run.h) run on
# the CPU against runtime/detect's kernels. Everywhere, no GPU or toolkit.
CHECK_PROGS += $(BUILD)/tests/check_cuda_boxes
$(BUILD)/tests/check_cuda_boxes: runtime/cuda/boxes_body.h runtime/cuda/boxes_run.h runtime/cuda/body.h \
    runtime/include/lgen/cuda.h
# tests/gpu/gpu_boxes.c (the device test of boxes.cu) linked against a host
# stand-in of liblgen_cuda.a (tests/cuda/boxes_host.c on fake_device.c): the same comparisons
# at faster_rcnn.lmod's sizes, on the CPU. Everywhere, a few seconds.
CHECK_PROGS += $(BUILD)/tests/check_cuda_boxes_full
$(BUILD)/tests/check_cuda_boxes_full: tests/gpu/gpu_boxes.c tests/gpu/harness.h tests/cuda/boxes_host.c tests/cuda/fake_device.c \
    runtime/cuda/boxes_body.h \
    runtime/cuda/boxes_run.h runtime/cuda/body.h runtime/include/lgen/cuda.h $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DREPEAT=0 -DBITWISE=1 -o $@ tests/gpu/gpu_boxes.c tests/cuda/boxes_host.c \
	    tests/cuda/fake_device.c $(BUILD)/liblgen.a $(LDFLAGS) \
	    $(RUNTIME_LIBS)
# faster_rcnn's generated CUDA steps (faster_rcnn_shapes at CI size) on the
# device in host memory of check_steps_gen.sh, with the detection launchers
# of tests/cuda/fake_detect.c and boxes_host.c: fit, validate (val_map),
# test and predict equal to the CPU trainer's. Needs build/vocgen.
CHECK_SCRIPTS += tests/cuda/check_detect_steps_gen.sh
