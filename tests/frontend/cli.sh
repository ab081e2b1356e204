#!/bin/sh
# tests/frontend/cli.sh — lgen's commands on the specs in specs/:
# every spec checks clean; fmt is idempotent and the committed specs are
# already canonical; fmt -w rewrites in place and keeps comments; graph
# output renders with dot; summary totals; --help, --version and usage
# errors exit 0, 0 and 2. Run from the top directory (make check does).
set -u
LGEN=${LGEN:-build/lgen}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

for s in specs/*.lmod; do
    "$LGEN" check "$s" >"$tmp/out" 2>"$tmp/err" || bad "lgen check $s exited $?: $(head -5 "$tmp/err")"
    [ -s "$tmp/err" ] && bad "lgen check $s printed diagnostics: $(head -5 "$tmp/err")"
    "$LGEN" fmt "$s" >"$tmp/f1" || bad "lgen fmt $s failed"
    cmp -s "$tmp/f1" "$s" || bad "$s is not in canonical layout (lgen fmt -w $s)"
    cp "$tmp/f1" "$tmp/f1.lmod"
    "$LGEN" fmt "$tmp/f1.lmod" >"$tmp/f2" || bad "lgen fmt (second pass) $s failed"
    cmp -s "$tmp/f1" "$tmp/f2" || bad "lgen fmt is not idempotent on $s"
done

# fmt over every test spec that parses (goldens with syntax errors excluded)
for s in tests/diag/*.lmod tests/diag/inc/*.lmod tests/frontend/*.lmod; do
    [ -f "$s" ] || continue
    "$LGEN" fmt "$s" >"$tmp/f1" 2>/dev/null || continue
    cp "$tmp/f1" "$tmp/g.lmod"
    "$LGEN" fmt "$tmp/g.lmod" >"$tmp/f2" || bad "lgen fmt (second pass) $s failed"
    cmp -s "$tmp/f1" "$tmp/f2" || bad "lgen fmt is not idempotent on $s"
done

# a messy file: canonical output exactly, comments kept, fmt -w in place
cp tests/frontend/messy.lmod "$tmp/messy.lmod"
"$LGEN" fmt -w "$tmp/messy.lmod" || bad "lgen fmt -w failed"
cmp -s "$tmp/messy.lmod" tests/frontend/messy.expected || {
    bad "lgen fmt -w output differs from tests/frontend/messy.expected"
    diff -u tests/frontend/messy.expected "$tmp/messy.lmod" | head -30
}
n1=$(grep -c '#' tests/frontend/messy.lmod)
n2=$(grep -c '#' "$tmp/messy.lmod")
[ "$n1" = "$n2" ] || bad "fmt lost comments ($n1 before, $n2 after)"

# graph: DOT that dot renders (when graphviz is installed)
"$LGEN" graph specs/faster_rcnn.lmod >"$tmp/g.dot" || bad "lgen graph failed"
grep -q 'rpn_head' "$tmp/g.dot" || bad "graph of faster_rcnn lacks the rpn_head node"
if command -v dot >/dev/null; then
    dot -Tpng "$tmp/g.dot" -o "$tmp/g.png" || bad "dot could not render lgen graph's output"
    [ -s "$tmp/g.png" ] || bad "dot wrote no png"
fi

# summary: LeNet's parameter count (as torch counts it) and the ResNet-18 total
"$LGEN" summary specs/lenet.lmod >"$tmp/s" || bad "lgen summary failed"
grep -q 'trainable params: 61706 ' "$tmp/s" || bad "lenet summary: expected 61706 trainable params: $(grep trainable "$tmp/s")"
grep -q 'conv1 .*conv2d .*f32\[6, 28, 28\]' "$tmp/s" || bad "lenet summary lacks conv1's row"
grep -q '^train step: [0-9]* ops ([0-9]* backward), activation arena [0-9]* bytes per sample' "$tmp/s" ||
    bad "lenet summary lacks the memory plan: $(tail -3 "$tmp/s")"
"$LGEN" summary specs/resnet.lmod >"$tmp/s" || bad "lgen summary resnet failed"
grep -q 'trainable params: 11181642 ' "$tmp/s" || bad "resnet18 (10 classes): expected 11181642 params: $(grep trainable "$tmp/s")"
"$LGEN" summary -D arch=resnet50 specs/resnet.lmod >"$tmp/s" || bad "lgen summary -D arch=resnet50 failed"
grep -q 'trainable params: 23528522 ' "$tmp/s" || bad "resnet50 (10 classes): expected 23528522 params: $(grep trainable "$tmp/s")"

# imports found through -I, and a missing one
sed 's|import "inc/blocks.lmod"|import "blocks.lmod"|' tests/diag/ok_import.lmod >"$tmp/imp.lmod"
"$LGEN" check "$tmp/imp.lmod" 2>"$tmp/e"; [ $? -eq 1 ] || bad "an import outside the search path should fail"
grep -q "cannot find imported file 'blocks.lmod'" "$tmp/e" || bad "missing import message: $(head -2 "$tmp/e")"
"$LGEN" check -I tests/diag/inc "$tmp/imp.lmod" || bad "lgen check -I tests/diag/inc did not find blocks.lmod"

# command line
"$LGEN" --help >"$tmp/h" || bad "--help exited nonzero"
grep -q 'lgen check' "$tmp/h" || bad "--help does not list lgen check"
"$LGEN" --version | grep -q '^lgen [0-9]' || bad "--version"
"$LGEN" >/dev/null 2>&1; [ $? -eq 2 ] || bad "lgen without arguments should exit 2"
"$LGEN" check --bogus specs/lenet.lmod >/dev/null 2>"$tmp/e"; [ $? -eq 2 ] || bad "unknown option should exit 2"
grep -q "unknown option '--bogus'" "$tmp/e" || bad "unknown option message"
"$LGEN" check "$tmp/none.lmod" 2>"$tmp/e"; [ $? -eq 1 ] || bad "a missing spec should exit 1"
grep -q "^lgen: error: cannot open '.*none.lmod': No such file or directory" "$tmp/e" || bad "missing file message: $(cat "$tmp/e")"
"$LGEN" check -D nosuch=3 specs/lenet.lmod 2>"$tmp/e"; [ $? -eq 1 ] || bad "-D of an unknown hparam should fail"
"$LGEN" check -D hidden=0 specs/lenet.lmod 2>"$tmp/e"; [ $? -eq 1 ] || bad "-D outside the range should fail"
grep -q "outside its range" "$tmp/e" || bad "-D range message: $(cat "$tmp/e")"
"$LGEN" check specs/lenet.lmod specs/mlp.lmod || bad "check of two specs"

echo "cli: $fail failed"
[ $fail -eq 0 ]
