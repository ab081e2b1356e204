#!/bin/sh
# tests/fuzz/quick.sh — the brief fuzz run of make check: a fixed seed and a
# fixed number of inputs, so that the same tree gives the same verdict (a
# time limit made CI depend on the machine's speed). `make fuzz` is the long,
# open-ended run; what it finds goes into tests/fuzz/regress/.
FUZZ_EXTRA="-seed=1 -runs=${FUZZ_RUNS:-20000}" exec tests/fuzz/run.sh 120
