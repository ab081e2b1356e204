# runtime/cuda: the CUDA backend (issue 7); see docs/cuda.md.
#
# The kernels' per-thread bodies (runtime/cuda/body.h) are plain C as well as
# CUDA, so `make check` always runs them on the CPU (build/tests/check_cuda_body).
# The CUDA library itself, build/liblgen_cuda.a, is built only where nvcc is
# found (on PATH, or as $(CUDA_HOME)/bin/nvcc): kernels.cu by nvcc, once,
# for sm_80 and sm_90 (SASS only, warnings are errors), and cuda.c by $(CC)
# against the toolkit's headers. It is kept out of RUNTIME_SRCS, which is C
# only. `make check-gpu` runs tests/gpu/ (needs a device; SKIPs without one).

CUDA_HOME ?= /usr/local/cuda
ifeq ($(origin NVCC),undefined)
NVCC := $(shell command -v nvcc 2>/dev/null || { test -x "$(CUDA_HOME)/bin/nvcc" && echo "$(CUDA_HOME)/bin/nvcc"; })
endif

# The accelerator choice is plain C and part of liblgen.a (CPU-only
# trainers answer --accelerator gpu with a clear message too).
RUNTIME_SRCS += runtime/cuda/accelerator.c
# The device optimizer's per-group constants (lgen/cuda_optim.h): plain C too.
RUNTIME_SRCS += runtime/cuda/optim_prep.c

# Host-side kernel tests: always.
# check_cuda_body: bodies vs PyTorch fixtures; check_cuda_twins: bodies vs
# the CPU kernels (lgen/kernels.h, lgen/optim.h) on the same inputs.
CHECK_PROGS += $(BUILD)/tests/check_cuda_body $(BUILD)/tests/check_cuda_twins \
    $(BUILD)/tests/check_cuda_accel
$(BUILD)/tests/check_cuda_body $(BUILD)/tests/check_cuda_twins: runtime/cuda/body.h \
    runtime/include/lgen/cuda.h
# check_cuda_detect: the detection bodies (detect_body.h) vs runtime/detect.
CHECK_PROGS += $(BUILD)/tests/check_cuda_detect
$(BUILD)/tests/check_cuda_detect: runtime/cuda/detect_body.h runtime/cuda/body.h runtime/include/lgen/cuda.h
# Link checks of the CUDA library; prints "SKIP: no nvcc" where there is none
# (it reads the nvcc found here from LGEN_NVCC).
CHECK_SCRIPTS += tests/cuda/check_link.sh
# lgen --target c|cuda|all and the generated NAME_cuda.c: everywhere (no toolkit needed).
CHECK_SCRIPTS += tests/cuda/check_target.sh
# The trainer runtime with a trainer's GPU steps (a fake lg_cuda_trainer_steps
# over the trainer tests' fake model): accelerator choice, precision,
# skipped steps, errors. Everywhere.
CHECK_PROGS += $(BUILD)/tests/check_cuda_steps
$(BUILD)/tests/check_cuda_steps: tests/check_cuda_steps.c tests/trainer/fake_model.c tests/trainer/fake_model.h tests/trainer/capture.c tests/trainer/capture.h \
                                 $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/trainer -o $@ tests/check_cuda_steps.c tests/trainer/fake_model.c tests/trainer/capture.c \
	    $(BUILD)/liblgen.a $(LDFLAGS) $(CHECK_LIBS) $(RUNTIME_LIBS)
export LGEN_NVCC := $(NVCC)

.PHONY: cuda check-gpu
all: cuda

ifneq ($(NVCC),)
CUDA_ARCHS   := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
NVCC_FLAGS   := -std=c++17 -O2 $(CUDA_ARCHS) -Werror all-warnings -Xcompiler -Wall,-Wextra \
                -Iruntime/include
CUDA_LDLIBS  := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 \
                -lcudnn -lcublasLt -lcublas -lcudart -lstdc++ -lpthread -ldl -lm
LIBLGEN_CUDA := $(BUILD)/liblgen_cuda.a
CUDA_OBJS    := $(BUILD)/obj/runtime/cuda/cuda.o $(BUILD)/obj/runtime/cuda/kernels.o \
                $(BUILD)/obj/runtime/cuda/optim.o
CUDA_HDRS    := runtime/cuda/body.h runtime/cuda/internal.h runtime/cuda/launch.cuh runtime/include/lgen/cuda.h \
                runtime/include/lgen/status.h

$(info cuda: building $(LIBLGEN_CUDA) with $(NVCC) for sm_80 and sm_90)

cuda: $(LIBLGEN_CUDA) $(BUILD)/tests/cuda/lg_cuda_probe

$(BUILD)/obj/runtime/cuda/cuda.o: ALL_CFLAGS += -isystem $(CUDA_HOME)/include
$(BUILD)/obj/runtime/cuda/cuda.o: $(CUDA_HDRS)

$(BUILD)/obj/runtime/cuda/kernels.o: runtime/cuda/kernels.cu $(CUDA_HDRS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

# the device optimizer: no FMA contraction, so its updates round as the CPU's
$(BUILD)/obj/runtime/cuda/optim.o: runtime/cuda/optim.cu runtime/cuda/optim_body.h \
                                   runtime/include/lgen/cuda_optim.h $(CUDA_HDRS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -fmad=false -c $< -o $@

# the detection kernels (anchors, RPN and Fast R-CNN losses): no FMA
# contraction either, so the matcher's IoUs, and with them the sampled
# anchors, are the CPU kernels' bit for bit
CUDA_OBJS += $(BUILD)/obj/runtime/cuda/detect.o
$(BUILD)/obj/runtime/cuda/detect.o: runtime/cuda/detect.cu runtime/cuda/detect_body.h $(CUDA_HDRS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -fmad=false -c $< -o $@

# proposals, RoI sampling, detections: the launch sequences of boxes_run.h
# (which check_cuda_boxes runs on the host); -fmad=false keeps the box
# arithmetic, and so the boxes NMS keeps, the CPU kernels' bit for bit
CUDA_OBJS += $(BUILD)/obj/runtime/cuda/boxes.o
$(BUILD)/obj/runtime/cuda/boxes.o: runtime/cuda/boxes.cu runtime/cuda/boxes_body.h runtime/cuda/boxes_run.h \
                                   $(CUDA_HDRS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -fmad=false -c $< -o $@

$(LIBLGEN_CUDA): $(CUDA_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/cuda/lg_cuda_probe: tests/cuda/probe.c $(LIBLGEN_CUDA) $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBLGEN_CUDA) $(BUILD)/liblgen.a $(LDFLAGS) $(CUDA_LDLIBS)

$(BUILD)/tests/gpu/gpu_kernels: tests/gpu/gpu_kernels.c tests/gpu/harness.h $(LIBLGEN_CUDA) $(BUILD)/liblgen.a runtime/cuda/body.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBLGEN_CUDA) $(BUILD)/liblgen.a $(LDFLAGS) $(CUDA_LDLIBS) -lm

$(BUILD)/tests/gpu/gpu_lenet: tests/gpu/gpu_lenet.c $(LIBLGEN_CUDA) $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBLGEN_CUDA) $(BUILD)/liblgen.a $(LDFLAGS) $(RUNTIME_LIBS) $(CUDA_LDLIBS)

# The device tests are also built by `make` (so CI compiles them), run only here.
cuda: $(BUILD)/tests/gpu/gpu_kernels $(BUILD)/tests/gpu/gpu_lenet

# the detection kernels (detect.cu) against runtime/detect at faster_rcnn's sizes
$(BUILD)/tests/gpu/gpu_detect: tests/gpu/gpu_detect.c tests/gpu/harness.h $(LIBLGEN_CUDA) $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBLGEN_CUDA) $(BUILD)/liblgen.a $(LDFLAGS) $(RUNTIME_LIBS) $(CUDA_LDLIBS)
cuda: $(BUILD)/tests/gpu/gpu_detect

# proposals, RoI sampling, detections (boxes.cu) against runtime/detect at faster_rcnn's sizes
$(BUILD)/tests/gpu/gpu_boxes: tests/gpu/gpu_boxes.c tests/gpu/harness.h $(LIBLGEN_CUDA) $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBLGEN_CUDA) $(BUILD)/liblgen.a $(LDFLAGS) $(RUNTIME_LIBS) $(CUDA_LDLIBS)
cuda: $(BUILD)/tests/gpu/gpu_boxes

# every part runs, the status says whether all passed
check-gpu: cuda $(LGEN) $(BUILD)/vocgen
	@fail=0; for t in ./$(BUILD)/tests/gpu/gpu_kernels ./$(BUILD)/tests/gpu/gpu_detect ./$(BUILD)/tests/gpu/gpu_boxes \
	    ./$(BUILD)/tests/gpu/gpu_lenet tests/gpu/faster_rcnn.sh \
	    ./$(BUILD)/tests/gpu/gpu_optim tests/gpu/compare_trainers.sh tests/gpu/resident.sh; do \
	    echo "== $$t"; BUILD=$(BUILD) LGEN=$(LGEN) $$t || fail=1; done; [ $$fail -eq 0 ]

# `make install` also installs the CUDA library (lgen/cuda.h goes with the
# other headers).
.PHONY: install-cuda
install: install-cuda
install-cuda: $(LIBLGEN_CUDA)
	install -d $(DESTDIR)$(PREFIX)/lib
	install -m 644 $(LIBLGEN_CUDA) $(DESTDIR)$(PREFIX)/lib/liblgen_cuda.a
else
$(info cuda: skipping liblgen_cuda.a (no nvcc on PATH or in CUDA_HOME=$(CUDA_HOME)))
cuda:
check-gpu:
	@echo "SKIP: no nvcc (set CUDA_HOME or put nvcc on PATH)"
endif
