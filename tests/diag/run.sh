#!/bin/sh
# tests/diag/run.sh — golden diagnostics: for every tests/diag/NAME.lmod,
# `lgen check` must print exactly NAME.expected on stderr and exit with the
# status on its first line ("exit 1"). Run from the top directory with LGEN
# set (make check does); `tests/diag/run.sh --update` rewrites the goldens
# after a deliberate change (review the diff!).
set -u
LGEN=${LGEN:-build/lgen}
dir=tests/diag
update=0
[ "${1:-}" = "--update" ] && update=1
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for spec in "$dir"/*.lmod; do
    name=$(basename "$spec" .lmod)
    exp="$dir/$name.expected"
    "$LGEN" check "$spec" >"$tmp/out" 2>"$tmp/err"
    code=$?
    { echo "exit $code"; cat "$tmp/err"; } >"$tmp/got"
    if [ -s "$tmp/out" ]; then
        echo "FAIL $name: lgen check wrote to stdout"
        fail=$((fail + 1))
        continue
    fi
    if [ $update = 1 ]; then
        cp "$tmp/got" "$exp"
        continue
    fi
    if [ ! -f "$exp" ]; then
        echo "FAIL $name: no $exp (run tests/diag/run.sh --update and review it)"
        fail=$((fail + 1))
    elif cmp -s "$tmp/got" "$exp"; then
        pass=$((pass + 1))
    else
        echo "FAIL $name: diagnostics differ from $exp:"
        diff -u "$exp" "$tmp/got" | head -40
        fail=$((fail + 1))
    fi
done
echo "diag: $pass passed, $fail failed"
[ $fail -eq 0 ]
