#!/bin/sh
# tests/cuda/check_target.sh — `lgen SPEC -o DIR --target c|cuda|all` (issue 7),
# on any machine (no CUDA toolkit needed).
#
# --target c writes NAME.c and the Makefile only; cuda and all add
# NAME_cuda.c (the steps on a GPU), which compiles warning-free against the
# runtime headers (lgen/cuda.h needs no CUDA headers); the Makefile builds
# with CUDA by default for `cuda` only. A bad --target is a usage error (2).
# `make CUDA=1` with no toolkit says what it skips and builds the CPU trainer.
set -u
BUILD=${BUILD:-build}
. tests/e2e/san_flags.sh # the sanitizers, under make check-sanitize
LGEN=${LGEN:-$BUILD/lgen}
CC=${CC:-cc}
fail=0
bad() { echo "FAIL: $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$LGEN" specs/mlp.lmod -o "$tmp/x" --target gpu >"$tmp/out" 2>"$tmp/err"
[ $? -eq 2 ] || bad "--target gpu: exit status is not 2"
grep -q "^lgen: error: --target takes c, cuda or all, found 'gpu'" "$tmp/err" || bad "--target gpu said: $(cat "$tmp/err")"
"$LGEN" specs/mlp.lmod -o "$tmp/x" --target >"$tmp/out" 2>"$tmp/err"
[ $? -eq 2 ] || bad "--target without a value: exit status is not 2"

"$LGEN" specs/mlp.lmod -o "$tmp/c" --target c || bad "--target c failed"
[ -f "$tmp/c/mlp.c" ] && [ ! -e "$tmp/c/mlp_cuda.c" ] || bad "--target c: $(ls "$tmp/c")"
grep -q "^CUDA ?= 0" "$tmp/c/Makefile" || bad "--target c: the Makefile does not default to CUDA=0"
"$LGEN" specs/mlp.lmod -o "$tmp/plain" || bad "no --target failed"
cmp -s "$tmp/c/mlp.c" "$tmp/plain/mlp.c" || bad "--target c and the default differ"

for spec in lenet mlp resnet20; do
    for t in cuda all; do
        out=$tmp/$spec-$t
        "$LGEN" "specs/$spec.lmod" -o "$out" --target $t || { bad "$spec --target $t failed"; continue; }
        [ -f "$out/${spec}_cuda.c" ] || { bad "$spec --target $t wrote no ${spec}_cuda.c"; continue; }
    done
    cmp -s "$tmp/$spec-cuda/${spec}_cuda.c" "$tmp/$spec-all/${spec}_cuda.c" || bad "$spec: cuda and all differ"
    grep -q "^CUDA ?= 1" "$tmp/$spec-cuda/Makefile" || bad "$spec --target cuda: the Makefile does not default to CUDA=1"
    grep -q "^CUDA ?= 0" "$tmp/$spec-all/Makefile" || bad "$spec --target all: the Makefile does not default to CUDA=0"
    f=$tmp/$spec-cuda/${spec}_cuda.c
    $CC -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iruntime/include -fsyntax-only "$f" ||
        bad "$spec: ${spec}_cuda.c does not compile warning-free"
    # readable: every op with its spec line; the calls the issue names
    grep -q "// .*($spec.lmod:[0-9]*)" "$f" || bad "$spec: no spec-line comments in ${spec}_cuda.c"
    grep -q "lg_cuda_init(&gpu.c" "$f" || bad "$spec: no device arena"
    grep -q "lg_cuda_upload_async" "$f" || bad "$spec: batches not copied on the copy stream"
    grep -q "lg_cuda_linear_forward" "$f" || bad "$spec: no cuBLASLt linear"
    grep -q "const lg_cuda_trainer lg_cuda_trainer_steps" "$f" || bad "$spec: no lg_cuda_trainer_steps"
    # the steps only launch: no allocation in them
    awk '/^static lg_status .*_gpu_.*_step\(/ { in_step = 1 } in_step && /alloc\(|lg_cuda_init/ { print } /^}/ { in_step = 0 }' "$f" |
        grep -q . && bad "$spec: an allocation inside a step"
done
# the device tests' specs (tests/gpu) and the op-family specs of tests/cuda too
for spec in tests/gpu/bnnet.lmod tests/gpu/actnet.lmod tests/cuda/*.lmod; do
    name=$(basename "$spec" .lmod)
    "$LGEN" "$spec" -o "$tmp/$name" --target cuda || { bad "$spec --target cuda failed"; continue; }
    $CC -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iruntime/include -fsyntax-only "$tmp/$name/${name}_cuda.c" ||
        bad "$spec: ${name}_cuda.c does not compile warning-free"
done
# every dense op has a device call (tests/cuda/structnet.lmod, lossnet.lmod)
f=$tmp/structnet/structnet_cuda.c
for call in lg_cuda_split lg_cuda_concat lg_cuda_transpose lg_cuda_mul_backward lg_cuda_upsample_nearest_forward \
    lg_cuda_upsample_nearest_backward lg_cuda_adaptive_avg_pool_forward lg_cuda_adaptive_avg_pool_backward \
    lg_cuda_layer_norm_forward lg_cuda_layer_norm_backward lg_cuda_topk_accuracy lg_cuda_softmax_forward; do
    grep -q "$call(" "$f" || bad "structnet: no $call"
done
# average pooling through cuDNN where its windows are PyTorch's, the own
# kernels for ceil_mode windows over the edge and for max pooling (arg-max)
grep -q "lg_cuda_pool_forward(c, gpu.avgpool_p, " "$f" || bad "structnet: avg_pool2d(2) not through cuDNN"
grep -q "lg_cuda_pool_backward(c, gpu.avgpool_p, " "$f" || bad "structnet: avg_pool2d(2)'s backward not through cuDNN"
grep -q "lg_cuda_avg_pool2d_forward(c, &gpu.pool_u, " "$f" || bad "structnet: the ceil_mode avg_pool2d not on the own kernel"
grep -q "lg_cuda_max_pool2d_backward(" "$f" || bad "structnet: max_pool2d's backward not on the own kernel"
grep -q "lg_cuda_pool_forward(c, gpu.avgpool_stem, " "$tmp/bnnet/bnnet_cuda.c" || bad "bnnet: avg_pool2d not through cuDNN"
grep -q "lg_cuda_bn_forward_train(c, gpu.bn_h_1, h_0, h_1, NULL, NULL, params + H_1_RUNNING_MEAN, params + H_1_RUNNING_VAR," "$f" ||
    bad "structnet: batch_norm(affine: false) does not pass NULL weight and bias with its running statistics"
grep -q "lg_batch_norm_forward(ctx, &h_1_dims, n, 1, h_0, NULL, NULL, params + H_1_RUNNING_MEAN, params + H_1_RUNNING_VAR, " \
    "$tmp/structnet/structnet.c" || bad "structnet.c: batch_norm(affine: false) does not pass its running statistics in their places"
f=$tmp/lossnet/lossnet_cuda.c
for kind in MSE L1 SMOOTH_L1 BCE_WITH_LOGITS; do
    grep -q "lg_cuda_reduce(c, LG_CUDA_LOSS_$kind, [01], [0-9.e-]*f, dt, " "$f" || bad "lossnet: no $kind loss in the compute dtype"
    grep -q "lg_cuda_loss_backward(c, LG_CUDA_LOSS_$kind, [01], [0-9.e-]*f, dt, " "$f" || bad "lossnet: no $kind backward in the compute dtype"
done
grep -q "lg_cuda_softmax_backward(c, dt, 1, " "$f" || bad "lossnet: no log_softmax backward in the compute dtype"
grep -q "lg_cuda_softmax_backward(c, dt, 0, " "$f" || bad "lossnet: no softmax backward in the compute dtype"
grep -q "lg_cuda_add(c, LG_CUDA_F32, " "$f" || bad "lossnet: the sum of scalar losses is not float32"
# mixed precision is refused by no spec (every dense op has an f16/bf16 path)
for f in "$tmp"/lenet-cuda/lenet_cuda.c "$tmp"/mlp-cuda/mlp_cuda.c "$tmp"/resnet20-cuda/resnet20_cuda.c \
    "$tmp"/bnnet/bnnet_cuda.c "$tmp"/actnet/actnet_cuda.c "$tmp"/structnet/structnet_cuda.c "$tmp"/lossnet/lossnet_cuda.c; do
    grep -q "f16/bf16 path on the GPU yet" "$f" && bad "$(basename "$f"): refuses 16-mixed/bf16-mixed"
done
grep -q "lg_cuda_conv_forward" "$tmp/lenet-cuda/lenet_cuda.c" || bad "lenet: convolutions not through cuDNN"
grep -q "lg_cuda_bn_forward_train" "$tmp/resnet20-cuda/resnet20_cuda.c" || bad "resnet20: batch norm not through cuDNN"
# the same spec, the same bytes
"$LGEN" specs/lenet.lmod -o "$tmp/lenet-again" --target cuda && cmp -s "$tmp/lenet-again/lenet_cuda.c" "$tmp/lenet-cuda/lenet_cuda.c" ||
    bad "lenet_cuda.c differs between two runs"

# make CUDA=1 without a toolkit: says so, builds the CPU trainer
make -s -C "$tmp/mlp-all" CUDA=1 CUDA_HOME=/nonexistent CFLAGS="-O0 $SAN_FLAGS" LDFLAGS="$SAN_FLAGS" >"$tmp/make.out" 2>&1 || bad "make CUDA=1 without a toolkit failed: $(tail -3 "$tmp/make.out")"
grep -q "cuda: skipped: no CUDA toolkit at CUDA_HOME=/nonexistent" "$tmp/make.out" || bad "make CUDA=1 without a toolkit said: $(head -3 "$tmp/make.out")"
[ -x "$tmp/mlp-all/mlp" ] || bad "make CUDA=1 without a toolkit built no CPU trainer"
nm --defined-only "$tmp/mlp-all/mlp" 2>/dev/null | grep -q lg_cuda_trainer_steps && bad "the CPU trainer has GPU steps"
[ $fail -eq 0 ] && echo "ok: --target c|cuda|all, NAME_cuda.c warning-free for lenet, mlp, resnet20; make CUDA=1 without a toolkit"
exit $fail
