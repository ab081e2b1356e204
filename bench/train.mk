# bench/train.mk — `make bench`: MLP and LeNet, the generated trainers side
# by side with PyTorch on 2 threads (bench/train.py prints the ratios).
BENCH_TARGETS += bench-train
.PHONY: bench-train
bench-train: $(LGEN) $(LIBLGEN)
	$(PYTHON) bench/train.py --lgen $(LGEN) --build $(BUILD)/bench
