#!/bin/sh
# 3x3 stride-1 layers of >= 64 channels over >= 28x28 pixels run oneDNN's
# Winograd kernels by default (layout_of in runtime/ops/conv_dnnl.c), which
# round differently; LGEN_CONV_WINOGRAD=0 keeps them on direct kernels. This
# runs the kernel suite with it: large_conv_winograd then holds the forward
# to direct's tolerance (3e-6), which Winograd's rounding misses.
set -e
BUILD=${BUILD:-build}
LGEN_CONV_WINOGRAD=0 "$BUILD/tests/check_ops"
