#!/bin/sh
# tests/frontend/opsdoc.sh [--update] — the op reference in specs/LANGUAGE.md
# (between <!-- ops:begin --> and <!-- ops:end -->) must be exactly what
# `lgen ops` prints from ops.def. --update rewrites that section.
set -u
LGEN=${LGEN:-build/lgen}
doc=specs/LANGUAGE.md
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.new"' EXIT
"$LGEN" ops >"$tmp" || { echo "FAIL: lgen ops"; exit 1; }
awk -v gen="$tmp" '
    /<!-- ops:begin -->/ { print; while ((getline line < gen) > 0) print line; skip = 1; next }
    /<!-- ops:end -->/ { skip = 0 }
    !skip { print }
' "$doc" >"$tmp.new"
if [ "${1:-}" = "--update" ]; then
    cp "$tmp.new" "$doc"
    exit 0
fi
if ! cmp -s "$tmp.new" "$doc"; then
    echo "FAIL: the op reference in $doc is out of date with ops.def; run tests/frontend/opsdoc.sh --update"
    diff "$doc" "$tmp.new" | head -20
    exit 1
fi
echo "opsdoc: up to date"
