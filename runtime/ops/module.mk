# runtime/ops: CPU kernels, forward and backward (float32 + float64 twins).
RUNTIME_SRCS += runtime/ops/dims.c runtime/ops/ops_f32.c runtime/ops/ops_f64.c runtime/ops/conv_dnnl.c \
                runtime/ops/gemm_f32.c
# Kernels and optimizer loops want vectorising: -O3 unswitches their
# loop-invariant branches and -fno-math-errno lets sqrt/exp vectorise (no
# kernel reads errno). Rounding is unchanged (no -ffast-math).
$(BUILD)/obj/runtime/ops/%.o $(BUILD)/obj/runtime/optim/%.o: CFLAGS += -O3 -fno-math-errno
