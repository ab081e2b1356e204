#!/bin/sh
# tests/fuzz/run.sh [SECONDS] — runs the libFuzzer front-end target for
# SECONDS (default $FUZZ_SECONDS, else 600; FUZZ_EXTRA adds libFuzzer flags) on a corpus seeded from specs/
# and tests/diag/. Prints the run's summary; exits nonzero if a crash was
# found (the reproducer is left in build/fuzz/). `make fuzz` builds and
# calls it; make check calls it with 15 seconds when clang's libFuzzer is
# installed (Debian: clang, libclang-rt-14-dev) and says SKIP otherwise.
set -u
secs=${1:-${FUZZ_SECONDS:-600}}
BUILD=${BUILD:-build}
bin=$BUILD/fuzz/fuzz_frontend
if [ ! -x "$bin" ]; then
    if ! make -s BUILD="$BUILD" "$bin" >/dev/null 2>&1; then
        echo "SKIP: cannot build $bin (needs clang and libclang-rt-14-dev)"
        exit 0
    fi
fi
corpus=$BUILD/fuzz/corpus
mkdir -p "$corpus" "$BUILD/fuzz/crashes"
for f in specs/*.lmod tests/diag/*.lmod tests/diag/inc/*.lmod tests/frontend/*.lmod tests/fuzz/regress/*.lmod; do
    [ -f "$f" ] && cp "$f" "$corpus/seed-$(basename "$f")"
done
start=$(date +%s)
"$bin" "$corpus" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -dict=tests/fuzz/lmod.dict -artifact_prefix="$BUILD/fuzz/crashes/" -print_final_stats=1 ${FUZZ_EXTRA:-} \
    >"$BUILD/fuzz/last.log" 2>&1
rc=$?
end=$(date +%s)
grep -aE '^stat::number_of_executed_units|^stat::peak_rss_mb|^Done|^INFO: Running|SUMMARY|ERROR' "$BUILD/fuzz/last.log" | head -20
echo "fuzz: ran $((end - start)) s, exit $rc, corpus $(ls "$corpus" | wc -l) inputs"
[ $rc -eq 0 ]
