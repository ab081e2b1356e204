#!/bin/sh
# Deep layers over small maps run split on Sapphire Rapids-class CPUs: each
# of the two lanes computes half the channels (forward: output channels;
# backward-data: input channels) for the whole batch (split_of in
# runtime/ops/conv_dnnl.c). This runs the kernel suite again with the split
# forced on every shape that allows it (channels a multiple of 32, no
# groups), on any CPU, so the split path stays checked against the PyTorch
# fixtures, the float64 twins and the thread-count independence tests.
set -e
BUILD=${BUILD:-build}
LGEN_CONV_SPLIT=1 "$BUILD/tests/check_ops"
