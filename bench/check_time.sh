#!/bin/sh
# bench/check_time.sh [SPEC] [RUNS] — wall time of `lgen check SPEC` (the
# whole front end: read, lex, parse, imports, sema, shape elaboration of
# every network and step), as a user sees it: a fresh process per run.
# Prints the minimum, median and maximum over RUNS runs in milliseconds and
# whether the target (20 ms for specs/faster_rcnn.lmod) is met.
set -u
LGEN=${LGEN:-build/lgen}
spec=${1:-specs/faster_rcnn.lmod}
runs=${2:-50}
target_ms=20
"$LGEN" check "$spec" || { echo "check_time: $spec does not check"; exit 1; }
times=""
i=0
while [ $i -lt "$runs" ]; do
    t0=$(date +%s%N)
    "$LGEN" check "$spec" >/dev/null 2>&1
    t1=$(date +%s%N)
    times="$times $(( (t1 - t0) / 1000 ))"
    i=$((i + 1))
done
echo "$times" | tr ' ' '\n' | grep . | sort -n | awk -v spec="$spec" -v target="$target_ms" -v runs="$runs" '
    { t[NR] = $1 }
    END {
        med = t[int((NR + 1) / 2)]
        printf "lgen check %s: min %.2f ms, median %.2f ms, max %.2f ms over %d runs (target %d ms: %s)\n",
               spec, t[1] / 1000, med / 1000, t[NR] / 1000, runs, target, med / 1000 < target ? "met" : "NOT met"
    }'
