# bench/check_time.mk — the front end's speed: `lgen check specs/faster_rcnn.lmod`
# (target: under 20 ms) and lenet, wall and CPU time (bench/check_time.py;
# bench/check_time.sh is the same without Python, wall time only).
BENCH_TARGETS += bench-check-time

.PHONY: bench-check-time
bench-check-time: $(BUILD)/lgen
	$(PYTHON) bench/check_time.py --lgen $(BUILD)/lgen specs/faster_rcnn.lmod 50
	$(PYTHON) bench/check_time.py --lgen $(BUILD)/lgen specs/lenet.lmod 50
