# runtime/ops: CPU kernels, forward and backward (float32 + float64 twins).
RUNTIME_SRCS += runtime/ops/dims.c runtime/ops/ops_f32.c runtime/ops/ops_f64.c
