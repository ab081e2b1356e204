# bench/ops.mk — `make bench-ops` (part of `make bench`): lgen's CPU kernels
# (conv on LeNet / ResNet-20 / ResNet-18 shapes, linear, SGD/Adam steps,
# sgemm) beside PyTorch on the same shapes in the same run, and oneDNN's
# conv forward for the im2col-vs-oneDNN choice (bench/README.md).
BENCH_TARGETS += bench-ops
OPS_BENCH_THREADS ?= 2

$(BUILD)/bench/ops_bench: bench/ops_bench.c $(LIBLGEN)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBLGEN) $(LDFLAGS) -ldnnl $(RUNTIME_LIBS)

.PHONY: bench-ops
bench-ops: $(BUILD)/bench/ops_bench
	$(PYTHON) bench/ops_compare.py $(BUILD)/bench/ops_bench $(OPS_BENCH_THREADS)
