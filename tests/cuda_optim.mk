# The device optimizer (issue 7, lgen/cuda_optim.h) on any machine: its
# bodies against the CPU optimizer (check_cuda_optim), and the trainer with
# GPU steps that keep parameters, gradients and optimizer state on the
# device, through a fake device in host memory (check_cuda_resident).
CHECK_PROGS += $(BUILD)/tests/check_cuda_optim
$(BUILD)/tests/check_cuda_optim: runtime/cuda/optim_body.h runtime/cuda/body.h runtime/include/lgen/cuda_optim.h
CHECK_PROGS += $(BUILD)/tests/check_cuda_resident
$(BUILD)/tests/check_cuda_resident: tests/check_cuda_resident.c tests/trainer/fake_model.c tests/trainer/capture.c tests/trainer/capture.h \
                                    tests/trainer/fake_model.h runtime/cuda/optim_body.h \
                                    runtime/include/lgen/cuda_optim.h $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/trainer -o $@ tests/check_cuda_resident.c tests/trainer/fake_model.c tests/trainer/capture.c \
	    $(BUILD)/liblgen.a $(LDFLAGS) $(CHECK_LIBS) $(RUNTIME_LIBS)

# Device checks (make check-gpu, runtime/cuda/module.mk): the optimizer
# kernels against the CPU optimizer, and tests/gpu/resident.sh's generated
# trainers (ckpt_diff compares their checkpoints). Built by `make` where nvcc
# is found, so CI compiles them.
ifneq ($(NVCC),)
$(BUILD)/tests/gpu/gpu_optim: tests/gpu/gpu_optim.c $(LIBLGEN_CUDA) $(BUILD)/liblgen.a runtime/cuda/optim_body.h \
                              runtime/include/lgen/cuda_optim.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBLGEN_CUDA) $(BUILD)/liblgen.a $(LDFLAGS) $(RUNTIME_LIBS) $(CUDA_LDLIBS)

$(BUILD)/tests/gpu/ckpt_diff: tests/gpu/ckpt_diff.c $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/liblgen.a $(LDFLAGS) $(RUNTIME_LIBS)

cuda: $(BUILD)/tests/gpu/gpu_optim $(BUILD)/tests/gpu/ckpt_diff
endif

# NAME_cuda.c's own transfers and optimizer step (lenet, resnet20) on a fake
# device in host memory, against the CPU optimizer. No toolkit needed.
CHECK_SCRIPTS += tests/cuda/check_resident_gen.sh
