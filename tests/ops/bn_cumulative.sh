#!/bin/sh
# bn_cumulative.sh — batch_norm(momentum: none) in a generated trainer: after
# 3 training steps on a 12-row CSV (batches of 4, in order) the checkpoint's
# running_mean and running_var equal PyTorch's BatchNorm1d(3, momentum=None)
# on the same batches (the cumulative average of the batch statistics).
# The expected values were printed by tests/fixtures/gen_bn_cumulative.py.
set -eu
BUILD=${BUILD:-build}
LGEN=${LGEN:-$BUILD/lgen}
CC=${CC:-cc}
. tests/e2e/san_flags.sh
dir=$(mktemp -d "${TMPDIR:-/tmp}/bn_cumulative.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "bn_cumulative: FAIL: $*"; exit 1; }

# row i, feature j: ((7i + 3j) mod 11) / 4 - 1 + 0.1 j; label i mod 2
cat > "$dir/data.csv" <<'CSV'
-1,-0.15,0.7,0
0.75,1.6,-0.3,1
-0.25,0.6,1.45,0
1.5,-0.4,0.45,1
0.5,1.35,-0.55,0
-0.5,0.35,1.2,1
1.25,-0.65,0.2,0
0.25,1.1,-0.8,1
-0.75,0.1,0.95,0
1,-0.9,-0.05,1
0,0.85,1.7,0
-1,-0.15,0.7,1
CSV
sha=$(sha256sum "$dir/data.csv" | cut -d' ' -f1)
cat > "$dir/bnc.lmod" <<LMOD
model bnc "batch_norm(momentum: none) on a tiny CSV"

hparams {
    lr: float = 0.1 in (0, 1) "SGD learning rate"
}

dataset tiny {
    mirror "file://$dir/"
    file "data.csv" sha256 "$sha"
    format csv(features: 3, classes: 2)
    split train("data.csv")
}

data {
    train = tiny.train
    batch_size = 4
    num_workers = 0
    shuffle = false
}

network net(x: f32[3]) -> f32[2] {
    h = x |> batch_norm(momentum: none, name: "bn")
    return linear(h, 2)
}

step train(b) {
    loss = cross_entropy(net(b.image), b.label)
    log train_loss = loss
    return loss
}

optimizer sgd(lr: lr)
LMOD
"$LGEN" "$dir/bnc.lmod" -o "$dir/gen" > /dev/null || fail "lgen failed"
grep -q "lg_batch_norm_step_dims" "$dir/gen/bnc.c" || fail "the train step does not take the cumulative factor"
make -s -C "$dir/gen" CC="$CC" CFLAGS="-O2 -Werror $SAN_FLAGS" LDFLAGS="$SAN_FLAGS" > "$dir/make.log" 2>&1 ||
    { cat "$dir/make.log"; fail "the trainer does not build warning-free"; }
$CC -std=c11 -D_GNU_SOURCE -O1 $SAN_FLAGS -Iruntime/include -o "$dir/ckpt_get" tests/ops/ckpt_get.c \
    "$BUILD/liblgen.a" -ljansson -lcurl -larchive -lxml2 -lpng -ljpeg -lpthread -lm -lcrypto -lz
(cd "$dir/gen" && ./bnc fit --max_steps 3 --enable_progress_bar false > "$dir/fit.log" 2>&1) ||
    { cat "$dir/fit.log"; fail "fit failed"; }
ckpt="$dir/gen/lightning_logs/version_0/checkpoints/last.ckpt"
[ -f "$ckpt" ] || fail "no $ckpt"

check() { # tensor expected...
    name=$1; shift
    "$dir/ckpt_get" "$ckpt" "$name" > "$dir/got" || fail "cannot read $name"
    echo "$@" | tr ' ' '\n' | paste "$dir/got" - | awk -v name="$name" '
        { d = $1 - $2; if (d < 0) d = -d; a = $2 < 0 ? -$2 : $2
          if (d > 1e-5 * (1 + a)) { printf "bn_cumulative: FAIL: %s[%d] = %s, PyTorch %s\n", name, NR - 1, $1, $2; bad = 1 } }
        END { exit bad }' || exit 1
}
# PyTorch 2.15, BatchNorm1d(3, momentum=None), 3 training calls
check bn.running_mean 0.1458333134651184 0.3083333373069763 0.47083336114883423
check bn.running_var 0.8454861044883728 0.711805522441864 0.6163194179534912
echo "bn_cumulative: ok: running statistics after 3 steps equal PyTorch's momentum=None"
