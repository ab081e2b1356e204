#!/bin/sh
# tools/devrun/run.sh — `make check-gpu`'s tests from prebuilt binaries, on a
# GPU machine that cannot build or install anything (see README.md here).
#
# Run from the repository root:  OUT=/some/dir sh tools/devrun/run.sh
# (ONLY="name ..." runs those tests alone; "diag" runs tools/devrun/diag.sh).
# Unpacks .devrun/bundle.tar.xz (binaries built on Debian 12 from the commit
# in COMMIT, their non-CUDA shared libraries in lib/) into $DEVRUN_DIR
# (/tmp/lgen-devrun), finds cuDNN/cuBLAS/cudart, checks `ldd`, then runs the
# check-gpu list with BUILD=<bundle>/build PREBUILT=1 MIRROR=.devrun/data,
# each under `timeout`, all within DEADLINE seconds (400). Output goes to
# $OUT/log.txt, the per-test results to $OUT/summary.txt (PASS, SKIP, FAIL,
# TIMEOUT, NOT RUN); the exit status is 0 when all passed.
set -u
R=$(pwd)
D=$R/.devrun # the bundle and the data (tools/devrun/mkbundle.sh makes them)
OUT=${OUT:-/tmp/devrun-out}
mkdir -p "$OUT"
U=${DEVRUN_DIR:-/tmp/lgen-devrun}
DEADLINE=${DEADLINE:-400}
start=$(date +%s)
: >"$OUT/summary.txt"

unpack() { # unpack DIR: the bundle into DIR/devrun
    rm -rf "$1" && mkdir -p "$1" || return 2
    if command -v xz >/dev/null 2>&1; then
        xz -dc "$D/bundle.tar.xz" | tar -xf - -C "$1"
    else
        py=$(command -v python3 || echo /opt/torch/.venv/bin/python3)
        "$py" -c 'import lzma, sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' \
            "$D/bundle.tar.xz" "$1"
    fi
}

main() {
    echo "== devrun: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname) in $R, OUT=$OUT"
    [ -f tests/gpu/compare_trainers.sh ] || { echo "FAIL: not in the repository root"; return 2; }
    # ---- unpack (into the repository when $U does not let programs run: noexec)
    unpack "$U"
    B=$U/devrun
    if ! "$B/build/lgen" --version >/dev/null 2>&1; then
        echo "cannot run $B/build/lgen; unpacking into $D/unpacked"
        rm -rf "$U"
        U=$D/unpacked
        unpack "$U"
        B=$U/devrun
    fi
    [ -x "$B/build/tests/gpu/gpu_kernels" ] || { echo "FAIL: unpacking $D/bundle.tar.xz into $U"; return 2; }
    echo "bundle: $(du -sh "$B" | cut -f1) in $B; packed at commit $(head -1 "$B/COMMIT")"
    cat "$D/BUILDINFO" 2>/dev/null
    echo "repo HEAD: $(git rev-parse HEAD 2>/dev/null)"

    # ---- the system, before our libraries are on the path
    echo "== system"
    nvidia-smi -L 2>&1
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv 2>&1
    ls -l /dev/nvidiactl 2>&1
    uname -a
    head -2 /etc/os-release 2>/dev/null
    ldd --version 2>&1 | head -1
    gcc --version 2>&1 | head -1
    echo "nproc $(nproc)"

    # ---- CUDA libraries: /usr/local/cuda/lib64 first, then PyTorch's wheels, then anywhere
    cudadirs=
    for l in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13 libcudart.so.13; do
        f=
        for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
            [ -e "$d/$l" ] && { f=$d/$l; break; }
        done
        [ -n "$f" ] || f=$(ls /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib/$l 2>/dev/null | head -1)
        [ -n "$f" ] || f=$(timeout 60 find /opt /usr/local /usr/lib /usr/lib64 -name "$l" 2>/dev/null | head -1)
        if [ -n "$f" ]; then
            d=$(dirname "$f")
            echo "found $l: $f -> $(readlink -f "$f")"
            case ":$cudadirs:" in *":$d:"*) ;; *) cudadirs=${cudadirs:+$cudadirs:}$d ;; esac
        else
            echo "NOT FOUND: $l"
        fi
    done
    # the rest of PyTorch's nvidia/*/lib after them (what a wheel's cuDNN may load: nvrtc, its own cuBLAS)
    extra=
    for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib; do
        [ -d "$d" ] || continue
        case ":$cudadirs:" in *":$d:"*) ;; *) extra=${extra:+$extra:}$d ;; esac
    done
    LD_LIBRARY_PATH=$B/lib${cudadirs:+:$cudadirs}${extra:+:$extra}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    ls /opt/torch/.venv/lib/python3*/site-packages/ 2>/dev/null | grep -i -E '^nvidia|^torch-' | tr '\n' ' '; echo

    # ---- the tools the test scripts use, with our libraries on the path
    for t in "awk BEGIN{}" "sort /dev/null" "od -An -N1 /dev/zero" "tail -n1 /dev/null" "sed -n 1p /dev/null" \
        "grep -q x /dev/null" "paste /dev/null" "mktemp -u" "timeout 5 true" "tee /dev/null"; do
        $t </dev/null >/dev/null 2>"$U/tool.err"
        [ $? -le 1 ] || echo "WARNING: '$t' fails with the bundle's libraries: $(head -2 "$U/tool.err")"
    done

    # ---- ldd of every binary
    echo "== ldd"
    nf=0
    while read -r b; do
        if ldd "$B/$b" >"$U/ldd.out" 2>&1; then
            if grep -q "not found" "$U/ldd.out"; then
                echo "NOT FOUND in $b:"; grep "not found" "$U/ldd.out"; nf=1
            fi
        else
            echo "ldd $b failed: $(head -3 "$U/ldd.out")"; nf=1
        fi
    done <"$B/BINARIES"
    [ $nf -eq 0 ] && echo "ldd: every library found for $(wc -l <"$B/BINARIES") binaries"
    echo "-- ldd build/tests/gpu/specs/faster_rcnn_shapes/faster_rcnn_shapes:"
    ldd "$B/build/tests/gpu/specs/faster_rcnn_shapes/faster_rcnn_shapes"

    # ---- the tests, in check-gpu's order
    BUILD=$B/build LGEN=$B/build/lgen VOCGEN=$B/build/vocgen PREBUILT=1 MIRROR=file://$D/data/
    export BUILD LGEN VOCGEN PREBUILT MIRROR
    echo "BUILD=$BUILD LGEN=$LGEN PREBUILT=1 MIRROR=$MIRROR DEADLINE=$DEADLINE"

    set -- "gpu_kernels 60 $BUILD/tests/gpu/gpu_kernels" "gpu_detect 60 $BUILD/tests/gpu/gpu_detect" \
        "gpu_boxes 60 $BUILD/tests/gpu/gpu_boxes" "gpu_lenet 60 $BUILD/tests/gpu/gpu_lenet" \
        "faster_rcnn.sh 120 sh tests/gpu/faster_rcnn.sh" "gpu_optim 45 $BUILD/tests/gpu/gpu_optim" \
        "compare_trainers.sh 240 sh tests/gpu/compare_trainers.sh" "resident.sh 150 sh tests/gpu/resident.sh" \
        "diag 240 sh tools/devrun/diag.sh" "speed 200 sh tools/devrun/speed.sh"
    left=$#
    for t in "$@"; do
        set -- $t
        name=$1 cap=$2
        shift 2
        left=$((left - 1))
        case " ${ONLY:-gpu_kernels gpu_detect gpu_boxes gpu_lenet faster_rcnn.sh gpu_optim compare_trainers.sh resident.sh} " in
        *" $name "*) ;;
        *) continue ;;
        esac
        # what is left of DEADLINE, less 15 s for each test still to come
        rem=$((DEADLINE - ($(date +%s) - start) - 15 * left))
        [ $rem -lt $cap ] && cap=$rem
        if [ $cap -lt 5 ]; then
            echo "NOT RUN  $name (DEADLINE $DEADLINE s reached)" >>"$OUT/summary.txt"
            continue
        fi
        echo
        echo "== $name (timeout $cap s): $*"
        t0=$(date +%s)
        { timeout -k 5 "$cap" "$@" </dev/null 2>&1; echo $? >"$U/rc"; } | tee "$U/last.$name"
        rc=$(cat "$U/rc" 2>/dev/null); rc=${rc:-255}
        dt=$(($(date +%s) - t0))
        echo "== $name: exit $rc after $dt s"
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then res="TIMEOUT"
        elif [ $rc -ne 0 ]; then res="FAIL"
        elif grep -q "^SKIP" "$U/last.$name" 2>/dev/null; then res="SKIP"
        else res="PASS"; fi
        printf '%-8s %-20s exit %3d  %4d s (limit %d s)\n' "$res" "$name" "$rc" "$dt" "$cap" >>"$OUT/summary.txt"
    done
    echo
    echo "== summary ($(($(date +%s) - start)) s in all)"
    cat "$OUT/summary.txt"
}

main 2>&1 | tee "$OUT/log.txt"
# exit 0 only when every test ran and passed (SKIP, without a device, is not a pass)
[ -s "$OUT/summary.txt" ] && ! grep -q -v "^PASS" "$OUT/summary.txt"
