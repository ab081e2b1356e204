#!/bin/sh
# The float32 conv2d runs through oneDNN by default (runtime/ops/conv_dnnl.c);
# im2col + GEMM is its fallback. This runs the kernel suite again with the
# fallback forced, so both paths stay checked against the PyTorch fixtures
# and the thread-count independence tests.
set -e
BUILD=${BUILD:-build}
LGEN_CONV=im2col "$BUILD/tests/check_ops"
