#!/bin/sh
# trainer_mirror.sh — the generated trainer's --data_dir and --mirror flags.
#
# Compiles specs/lenet.lmod, serves Debian's Fashion-MNIST files from a
# loopback HTTP server (tests/data/http_server.py) and runs the trainer with a
# fresh --data_dir and --mirror pointing at the server: the four files must be
# fetched from the mirror (it goes before the spec's file:// mirror), verified
# and cached; a second run must make no request at all (verified cache,
# offline), and a --mirror that serves wrong bytes into an empty cache must
# fail with a checksum error and leave nothing behind.
#
# Environment: LGEN, BUILD, CC (set by `make check`).
set -eu
BUILD=${BUILD:-build}
. tests/e2e/san_flags.sh # the sanitizers, under make check-sanitize
LGEN=${LGEN:-$BUILD/lgen}
FASHION=/usr/share/datasets/fashion-mnist
if [ ! -r $FASHION/train-images-idx3-ubyte.gz ]; then
    echo "SKIP: $FASHION missing (apt-get install dataset-fashion-mnist)"; exit 0
fi
out=$BUILD/tests/data/trainer_mirror
rm -rf "$out"
mkdir -p "$out/www"
fail() { echo "trainer_mirror: FAIL: $*"; exit 1; }

"$LGEN" specs/lenet.lmod -o "$out/gen" || fail "lgen specs/lenet.lmod failed"
make -s -C "$out/gen" CC="${CC:-cc}" CFLAGS="-O2 $SAN_FLAGS" LDFLAGS="$SAN_FLAGS" >"$out/make.log" 2>&1 ||
    { cat "$out/make.log"; fail "the generated trainer does not build"; }
exe=$out/gen/lenet

ln -s $FASHION/*.gz "$out/www/"
printf 'not the data set\n' >"$out/www/bad"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
         t10k-labels-idx1-ubyte.gz; do
    mkdir -p "$out/www/broken"
    cp "$out/www/bad" "$out/www/broken/$f"
done
python3 tests/data/http_server.py "$out/www" "$out/port" "$out/requests.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT INT TERM
i=0
while [ ! -s "$out/port" ]; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "the test HTTP server did not start"
    sleep 0.05
done
url="http://127.0.0.1:$(cat "$out/port")"
run="fit --max_epochs 1 --limit_train_batches 2 --limit_val_batches 1 --num_sanity_val_steps 0 --enable_progress_bar false"

"$exe" $run --data_dir "$out/cache" --mirror "$url/files/" --default_root_dir "$out/r1" \
    >"$out/run1.log" 2>&1 || { tail -20 "$out/run1.log"; fail "fit with --mirror failed"; }
n=$(grep -c '^GET /files/' "$out/requests.log" || true)
[ "$n" = 4 ] || { cat "$out/requests.log"; fail "expected 4 requests to the --mirror, got $n"; }
for f in train-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -f "$out/cache/fashion/$f" ] || fail "$f not in the --data_dir cache"
    [ -f "$out/cache/fashion/$f.sha256" ] || fail "$f has no verification stamp"
    cmp -s "$out/cache/fashion/$f" "$FASHION/$f" || fail "$f differs from the original"
done
echo "trainer_mirror: fetched 4 files through --mirror into --data_dir"

"$exe" $run --data_dir "$out/cache" --mirror "$url/files/" --default_root_dir "$out/r2" \
    >"$out/run2.log" 2>&1 || { tail -20 "$out/run2.log"; fail "second fit failed"; }
n=$(wc -l <"$out/requests.log")
[ "$n" = 4 ] || fail "the second run made requests although the cache was verified"
echo "trainer_mirror: second run used the verified cache, no requests"

# A mirror serving wrong bytes: refused; the spec's own file:// mirror then works.
"$exe" $run --data_dir "$out/cache2" --mirror "$url/files/broken/" --default_root_dir "$out/r3" \
    >"$out/run3.log" 2>&1 || { tail -20 "$out/run3.log"; fail "fit after a bad --mirror failed"; }
grep -q "sha256 mismatch" "$out/run3.log" || { cat "$out/run3.log"; fail "no checksum warning"; }
cmp -s "$out/cache2/fashion/train-labels-idx1-ubyte.gz" "$FASHION/train-labels-idx1-ubyte.gz" ||
    fail "the bad mirror's bytes were kept"
echo "trainer_mirror: a --mirror with wrong bytes was refused and the next mirror used"
echo "trainer_mirror: PASS"
