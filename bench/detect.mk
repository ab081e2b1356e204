# bench/detect.mk: the detection ops of one Faster R-CNN iteration, lgen's
# (build/bench/detect_bench) beside torchvision's (bench/detect_bench.py,
# needs torch; without it only lgen's times are printed).
BENCH_TARGETS += bench-detect

# (LIBLGEN is defined after the fragments are read: name the file.)
$(BUILD)/bench/detect_bench: bench/detect_bench.c $(BUILD)/liblgen.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/liblgen.a $(LDFLAGS) $(RUNTIME_LIBS)

.PHONY: bench-detect
bench-detect: $(BUILD)/bench/detect_bench
	@if $(PYTHON) -c 'import torch, torchvision' 2>/dev/null; then \
	    $(PYTHON) bench/detect_bench.py --bin $(BUILD)/bench/detect_bench; \
	else \
	    echo "bench-detect: torch/torchvision not installed, lgen side only"; \
	    $(BUILD)/bench/detect_bench 2; \
	fi
