#!/bin/sh
# tests/frontend/big.sh — inputs that would overflow a recursive compiler:
# a 100,000-layer network, a 100,000-stage pipeline, parentheses and
# expressions nested 100,000 deep. lgen must finish (quickly) with a
# result or a located error, never crash. Generated here, not committed.
set -u
LGEN=${LGEN:-build/lgen}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# The head of a valid spec (everything but the network).
head_part() {
    sed -n '1,/^network/p' tests/diag/ok_minimal.lmod | sed '$d'
}
tail_part() {
    sed -n '/^step train/,$p' tests/diag/ok_minimal.lmod
}

# 100,000 layers, one statement each
{
    head_part
    echo 'network net(x: f32[1, 28, 28]) -> f32[10] {'
    echo '    h = x |> flatten |> linear(8)'
    awk 'BEGIN { for (i = 0; i < 100000; i++) print "    h = h |> linear(8) |> relu" }'
    echo '    return linear(h, 10)'
    echo '}'
    echo
    tail_part
} >"$tmp/layers.lmod"
"$LGEN" summary "$tmp/layers.lmod" >"$tmp/out" 2>"$tmp/err" || bad "100,000 layers: exit $? $(head -3 "$tmp/err")"
grep -q 'h.99999 *linear' "$tmp/out" || bad "100,000 layers: no layer h.99999 in the summary"
grep -q 'trainable params: 7206370 ' "$tmp/out" || bad "100,000 layers: parameter count $(grep trainable "$tmp/out")"

# 100,000 stages in one pipeline
{
    head_part
    echo 'network net(x: f32[1, 28, 28]) -> f32[10] {'
    printf '    h = x |> flatten |> linear(8)'
    awk 'BEGIN { for (i = 0; i < 100000; i++) printf " |> relu" }'
    echo
    echo '    return linear(h, 10)'
    echo '}'
    echo
    tail_part
} >"$tmp/pipe.lmod"
"$LGEN" check "$tmp/pipe.lmod" 2>"$tmp/err" || bad "100,000-stage pipeline: exit $? $(head -3 "$tmp/err")"
"$LGEN" fmt "$tmp/pipe.lmod" >/dev/null || bad "fmt of the long pipeline"

# parentheses nested 100,000 deep: a located error, exit 1
{
    head_part
    echo 'network net(x: f32[1, 28, 28]) -> f32[10] {'
    printf '    k = '
    awk 'BEGIN { for (i = 0; i < 100000; i++) printf "("; printf "1"; for (i = 0; i < 100000; i++) printf ")"; print "" }'
    echo '    return x |> flatten |> linear(10)'
    echo '}'
    tail_part
} >"$tmp/parens.lmod"
"$LGEN" check "$tmp/parens.lmod" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || bad "deep parentheses: exit $rc (want 1)"
grep -q 'parens.lmod:[0-9]*:[0-9]*: error: input is nested too deeply' "$tmp/err" || bad "deep parentheses: $(head -2 "$tmp/err")"

# a sum of 100,000 terms (a left-deep tree): a located error, exit 1
{
    head_part
    echo 'network net(x: f32[1, 28, 28]) -> f32[10] {'
    printf '    k = 1'
    awk 'BEGIN { for (i = 0; i < 100000; i++) printf " + 1" }'
    echo
    echo '    return x |> flatten |> linear(k)'
    echo '}'
    tail_part
} >"$tmp/sum.lmod"
"$LGEN" check "$tmp/sum.lmod" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || bad "deep sum: exit $rc (want 1)"
grep -q 'error: expression nested more than 2000 levels deep' "$tmp/err" || bad "deep sum: $(head -2 "$tmp/err")"

# if-blocks nested 5,000 deep
{
    head_part
    echo 'network net(x: f32[1, 28, 28]) -> f32[10] {'
    awk 'BEGIN { for (i = 0; i < 5000; i++) print "if true {"; for (i = 0; i < 5000; i++) print "}" }'
    echo '    return x |> flatten |> linear(10)'
    echo '}'
    tail_part
} >"$tmp/ifs.lmod"
"$LGEN" check "$tmp/ifs.lmod" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || bad "deep ifs: exit $rc (want 1)"
grep -q 'error: ' "$tmp/err" || bad "deep ifs: no error message"

echo "big: $fail failed"
[ $fail -eq 0 ]
