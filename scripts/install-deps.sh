#!/bin/sh
# Installs what lgen needs to build and test on Debian 12, skipping what is
# there already. Run as root (or with sudo available). `make demo`, `make deps`
# and .ci/run call it. Set LGEN_PY_DEPS=1 to also install the Python packages
# the interop tests and benchmarks use (safetensors, numpy; torch for bench/).
set -eu

PKGS="build-essential pkg-config flex bison check libsubunit-dev libjansson-dev
libcurl4-openssl-dev libarchive-dev libxml2-dev libpng-dev libjpeg62-turbo-dev
libopenblas-dev dataset-fashion-mnist graphviz python3"

# data pipeline (issue 5): sha256 through libcrypto, .gz through zlib
PKGS="$PKGS libssl-dev zlib1g-dev"
PKGS="$PKGS libdnnl-dev valgrind"   # bench/ops_bench (oneDNN conv comparison); valgrind runs on the tests
PKGS="$PKGS libdnnl-dev"   # the runtime: float32 conv2d through oneDNN (runtime/ops/conv_dnnl.c, -ldnnl -lgomp)
PKGS="$PKGS clang libclang-rt-14-dev"   # front end fuzzing (libFuzzer + ASan/UBSan): make fuzz, tests/fuzz
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
else
    echo "install-deps: all Debian packages present"
fi

if [ "${LGEN_PY_DEPS:-0}" = 1 ]; then
    python3 -c 'import safetensors, numpy' 2>/dev/null || python3 -m pip install -q safetensors numpy
fi
