#!/bin/sh
# init_from.sh — --init_from on generated trainers, end to end.
#
# 1. lenet (no Python needed): a checkpoint is a safetensors file with
#    PyTorch names, so `validate --init_from CKPT` must print exactly the
#    metrics of `validate --ckpt_path CKPT`, and differ from the untrained run.
# 2. torchvision (skipped without torch, torchvision, safetensors and PIL):
#    a random resnet18 state_dict (tests/e2e/init_from_ref.py) goes through
#    examples/convert_resnet.py --pth into specs/resnet.lmod's trainer; its
#    predictions for one image must equal torchvision's (eval mode) to 1e-5,
#    the report must say every tensor came from the file, and without
#    --keep-fc the two fc tensors are reported missing. A wrong prefix and a
#    state_dict of another arch are refused with their messages.
# 3. torchvision's resnet50 (random, converted) against the parameter table
#    of specs/faster_rcnn.lmod's generated trainer under backbone.body.
#    (tests/e2e/init_from_names.py), when lgen can generate the detector.
#
# Environment: LGEN, BUILD, CC (set by `make check`).
set -eu
BUILD=${BUILD:-build}
LGEN=${LGEN:-$BUILD/lgen}
out=$BUILD/tests/e2e/init_from.$$
rm -rf "$out"
mkdir -p "$out"
fail() { echo "init_from: FAIL: $* (files in $out)"; exit 1; }
. tests/e2e/san_flags.sh
gen() { # gen SPEC DIR: generate and build a trainer
    "$LGEN" "$1" -o "$2" >"$2.lgen.log" 2>&1 || { cat "$2.lgen.log"; fail "lgen $1 failed"; }
    make -s -C "$2" CC="${CC:-cc}" CFLAGS="-O2 -Werror $SAN_FLAGS" LDFLAGS="$SAN_FLAGS" >"$2.make.log" 2>&1 ||
        { cat "$2.make.log"; fail "the trainer of $1 does not build"; }
}
quiet="--enable_progress_bar false"

# ---- 1. lenet: --init_from CKPT scores as --ckpt_path CKPT -------------------
if [ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    gen specs/lenet.lmod "$out/lenet"
    exe=$out/lenet/lenet
    data="--data_dir $BUILD/tests/e2e/data $quiet --num_workers 0 --limit_val_batches 4"
    "$exe" fit $data --default_root_dir "$out/l" --max_steps 20 --num_sanity_val_steps 0 \
        >"$out/lfit.log" 2>&1 || { tail "$out/lfit.log"; fail "lenet fit failed"; }
    ck=$out/l/lightning_logs/version_0/checkpoints/last.ckpt
    [ -f "$ck" ] || fail "no $ck"
    metrics() { grep -E '^ *val_(loss|acc) ' "$1"; }
    "$exe" validate $data --default_root_dir "$out/l" --ckpt_path "$ck" >"$out/lck.log" 2>&1 ||
        { cat "$out/lck.log"; fail "validate --ckpt_path failed"; }
    "$exe" validate $data --default_root_dir "$out/l" --init_from "$ck" >"$out/linit.log" 2>&1 ||
        { cat "$out/linit.log"; fail "validate --init_from failed"; }
    "$exe" validate $data --default_root_dir "$out/l" >"$out/l0.log" 2>&1 || fail "validate failed"
    [ -n "$(metrics "$out/lck.log")" ] || { cat "$out/lck.log"; fail "validate printed no val_loss"; }
    [ "$(metrics "$out/lck.log")" = "$(metrics "$out/linit.log")" ] ||
        fail "validate --init_from CKPT differs from --ckpt_path CKPT"
    [ "$(metrics "$out/lck.log")" != "$(metrics "$out/l0.log")" ] ||
        fail "the untrained weights score like the trained ones: the comparison proves nothing"
    grep -q "every model tensor came from the file" "$out/linit.log" || fail "no load report"
    echo "init_from: lenet validate --init_from CKPT = --ckpt_path CKPT:" $(metrics "$out/linit.log")
else
    echo "init_from: lenet part skipped (no /usr/share/datasets/fashion-mnist)"
fi

# ---- 2. torchvision resnet18 -> convert_resnet.py -> resnet trainer ----------
if ! python3 -c "import torch, torchvision, safetensors, PIL" 2>/dev/null; then
    echo "init_from: SKIP torchvision part: python3 cannot import torch, torchvision, safetensors and PIL"
    rm -rf "$out"
    exit 0
fi
python3 tests/e2e/init_from_ref.py "$out" || fail "init_from_ref.py failed"
python3 examples/convert_resnet.py --arch resnet18 --pth "$out/rand.pth" --keep-fc -o "$out/full.safetensors" \
    >"$out/conv.log" 2>&1 || { cat "$out/conv.log"; fail "convert_resnet.py --keep-fc failed"; }
python3 examples/convert_resnet.py --arch resnet18 --pth "$out/rand.pth" -o "$out/body.safetensors" \
    >>"$out/conv.log" 2>&1 || { cat "$out/conv.log"; fail "convert_resnet.py failed"; }
grep -q "122 tensors" "$out/conv.log" && grep -q "120 tensors, .* (fc dropped)" "$out/conv.log" ||
    { cat "$out/conv.log"; fail "expected 122 tensors with fc, 120 without"; }
if python3 examples/convert_resnet.py --arch resnet34 --pth "$out/rand.pth" -o "$out/x.safetensors" \
    >"$out/conv34.log" 2>&1; then fail "a resnet18 state_dict was converted as resnet34"; fi
grep -q "is not a torchvision resnet34 state_dict: of its tensor names, 96 are missing (layer1.2.bn1.bias, " "$out/conv34.log" ||
    { cat "$out/conv34.log"; fail "wrong message for a resnet18 file given as resnet34"; }

# specs/resnet.lmod (resnet18, 10 classes, 224x224)
gen specs/resnet.lmod "$out/resnet"
exe=$out/resnet/resnet
pred() { # pred NAME FLAGS...: predict img.png, print the probabilities
    name=$1; shift
    "$exe" predict --predict_input "$out/img.png" --default_root_dir "$out/$name" $quiet "$@" \
        >"$out/$name.log" 2>&1 || { cat "$out/$name.log"; fail "predict $* failed"; }
    tail -1 "$out/$name/lightning_logs/version_0/predictions.csv" | cut -d, -f4-
}
close() { # close A B TOL: the comma lists agree within TOL
    python3 -c "import sys; a, b = ([float(x) for x in s.split(',')] for s in sys.argv[1:3]); \
sys.exit(not (len(a) == len(b) == 10 and max(abs(x - y) for x, y in zip(a, b)) <= float(sys.argv[3])))" "$1" "$2" "$3"
}
ref=$(cat "$out/ref.csv")
got=$(pred full --init_from "$out/full.safetensors")
grep -q "loaded 122 tensors (11191262 values)" "$out/full.log" &&
    grep -q "every model tensor came from the file" "$out/full.log" || { cat "$out/full.log"; fail "load report"; }
close "$got" "$ref" 1e-5 || fail "predictions after --init_from ($got) differ from torchvision's ($ref)"
echo "init_from: resnet18 from torchvision: lgen $got"
echo "init_from:                       torchvision $ref"
untrained=$(pred none)
if close "$untrained" "$ref" 1e-3; then fail "the untrained trainer predicts like torchvision: the test proves nothing"; fi
pred body --init_from "$out/body.safetensors" >/dev/null
grep -q "loaded 120 tensors" "$out/body.log" &&
    grep -q "2 model tensors not in the file (initialised as usual): 'fc.weight', 'fc.bias'" "$out/body.log" ||
    { cat "$out/body.log"; fail "report without fc"; }
if "$exe" predict --predict_input "$out/img.png" --default_root_dir "$out/bad" $quiet \
    --init_from "$out/body.safetensors" --init_prefix backbone.body. >"$out/bad.log" 2>&1; then
    fail "a prefix that matches nothing was accepted"
else
    rc=$?
fi
[ $rc -eq 2 ] || fail "a prefix that matches nothing exits $rc, expected 2"
grep -q "no tensor name matches the model under --init_prefix 'backbone.body.'; no --init_prefix would match 120 of its 120 tensors" "$out/bad.log" ||
    { cat "$out/bad.log"; fail "wrong message for a prefix that matches nothing"; }

# ---- 3. resnet50 into the detector's backbone.body.* ---------------------------
# The detector's trainer takes minutes to build: its generated parameter
# table is checked instead (names, shapes, I64 counters), for the README's
# `--init_from resnet50.safetensors --init_prefix backbone.body.`.
if "$LGEN" specs/faster_rcnn.lmod -o "$out/frcnn" >"$out/frcnn.log" 2>&1; then
    python3 examples/convert_resnet.py --arch resnet50 --random 0 -o "$out/r50.safetensors" >"$out/conv50.log" 2>&1 ||
        { cat "$out/conv50.log"; fail "convert_resnet.py --arch resnet50 failed"; }
    python3 tests/e2e/init_from_names.py "$out/frcnn/faster_rcnn.c" "$out/r50.safetensors" backbone.body. ||
        fail "torchvision's resnet50 does not fit faster_rcnn's backbone.body.*"
else
    echo "init_from: detector part skipped: lgen cannot generate specs/faster_rcnn.lmod yet ($(grep -m1 'error:' "$out/frcnn.log"))"
fi
rm -rf "$out"
echo "init_from: PASS"
