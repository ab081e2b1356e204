# san_flags.sh — sourced by the e2e scripts: when $BUILD/liblgen.a was built
# with ASan/UBSan (`make check-sanitize`), whatever links it must be too.
SAN_FLAGS=""
if nm "${BUILD:-build}/liblgen.a" 2>/dev/null | grep -q __asan_report; then
    SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
fi
