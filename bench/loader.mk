# bench/loader.mk: the data loader against torchvision's ImageFolder DataLoader (issue 5).
# `make bench-loader` prints both figures and their ratio; the torch side is
# skipped with a note when torch/torchvision are missing. The two sides run
# alternately, LOADER_BENCH_ROUNDS times, and the best figure of each counts,
# so that load from other processes on the machine hits both alike.
BENCH_TARGETS += bench-loader
LOADER_BENCH_DIR ?= $(BUILD)/bench/loader_data
LOADER_BENCH_N   ?= 1000
LOADER_BENCH_WORKERS ?= 2
LOADER_BENCH_ROUNDS ?= 2

$(BUILD)/bench/loader_bench: bench/loader_bench.c $(LIBLGEN)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBLGEN) $(LDFLAGS) $(RUNTIME_LIBS)

.PHONY: bench-loader
bench-loader: $(BUILD)/bench/loader_bench
	@echo "== loader: decode + random crop + flip + normalize + batch, 64x64 PNGs, $(LOADER_BENCH_WORKERS) workers"
	@rm -f $(BUILD)/bench/loader_lgen.txt $(BUILD)/bench/loader_torch.txt; \
	torch=0; $(PYTHON) -c 'import torch, torchvision' 2>/dev/null && torch=1; \
	for r in $$(seq $(LOADER_BENCH_ROUNDS)); do \
	    $(BUILD)/bench/loader_bench $(LOADER_BENCH_DIR) $(LOADER_BENCH_N) $(LOADER_BENCH_WORKERS) 3 | tee -a $(BUILD)/bench/loader_lgen.txt || exit 1; \
	    [ $$torch = 1 ] && { $(PYTHON) bench/loader_torch.py $(LOADER_BENCH_DIR) $(LOADER_BENCH_WORKERS) 3 | tee -a $(BUILD)/bench/loader_torch.txt || exit 1; }; \
	done; \
	if [ $$torch = 1 ]; then \
	    a=$$(sed -n 's/^lgen: \([0-9]*\) .*/\1/p' $(BUILD)/bench/loader_lgen.txt | sort -n | tail -1); \
	    b=$$(sed -n 's/^torchvision [^:]*: \([0-9]*\) .*/\1/p' $(BUILD)/bench/loader_torch.txt | sort -n | tail -1); \
	    echo "loader: lgen $$a images/s, torchvision $$b images/s, ratio $$(awk "BEGIN{printf \"%.2f\", $$a/$$b}")x (target >= 3x)"; \
	    c=$$(sed -n 's/^lgen cpu: \([0-9]*\) .*/\1/p' $(BUILD)/bench/loader_lgen.txt | sort -n | tail -1); \
	    d=$$(sed -n 's/^torchvision cpu: \([0-9]*\) .*/\1/p' $(BUILD)/bench/loader_torch.txt | sort -n | tail -1); \
	    echo "loader per CPU-second (insensitive to other load): lgen $$c, torchvision $$d, ratio $$(awk "BEGIN{printf \"%.2f\", $$c/$$d}")x"; \
	else echo "loader: torchvision not installed; skipping the comparison"; fi
