# tests/ops.mk — the CPU kernels and optimizers against PyTorch fixtures and
# finite differences (issue 3).
CHECK_PROGS += $(BUILD)/tests/check_ops
$(BUILD)/tests/check_ops: tests/check_ops_cases.inc tests/check_ops_fixture.h
CHECK_PROGS += $(BUILD)/tests/check_optim
$(BUILD)/tests/check_optim: tests/check_ops_fixture.h
# the same suite on the im2col + GEMM conv path (oneDNN off)
CHECK_SCRIPTS += tests/ops/im2col.sh
# ... and with oneDNN's channel split forced (conv_dnnl.c's split_of)
CHECK_SCRIPTS += tests/ops/split.sh
# ... and with Winograd off (LGEN_CONV_WINOGRAD=0: direct kernels only)
CHECK_SCRIPTS += tests/ops/direct.sh
# no allocation inside kernel calls once lg_conv2d_prepare ran (malloc counted)
CHECK_PROGS += $(BUILD)/tests/check_ops_alloc
# batch_norm(momentum: none) in a generated trainer against PyTorch
CHECK_SCRIPTS += tests/ops/bn_cumulative.sh
