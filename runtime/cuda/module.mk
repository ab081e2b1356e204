# runtime/cuda: the CUDA backend (issue 7); see docs/cuda.md.
#
# The kernels' per-thread bodies (runtime/cuda/body.h) are plain C as well as
# CUDA, so `make check` always runs them on the CPU (build/tests/check_cuda_body).
# The CUDA library itself, build/liblgen_cuda.a, is built only where nvcc is
# found (on PATH, or as $(CUDA_HOME)/bin/nvcc); it is kept out of
# RUNTIME_SRCS, which is C only.
CHECK_PROGS += $(BUILD)/tests/check_cuda_body
$(BUILD)/tests/check_cuda_body: runtime/cuda/body.h runtime/include/lgen/cuda.h
