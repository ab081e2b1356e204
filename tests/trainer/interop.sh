#!/bin/sh
# interop.sh — checkpoints in the safetensors layout, checked with Python's
# `safetensors` package against what the C side wrote and reads
# (tests/trainer/interop.py). Run by `make check` from the top directory.
BUILD=${BUILD:-build}
if ! python3 -c "import safetensors, numpy" 2>/dev/null; then
    echo "SKIP: python3 cannot import safetensors and numpy (pip install safetensors numpy)"
    exit 0
fi
exec python3 tests/trainer/interop.py "$BUILD/tests/trainer_fake"
