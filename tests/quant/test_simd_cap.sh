#!/usr/bin/env bash
# test_simd_cap.sh - DS4_SIMD caps the kernel level the dispatcher picks, and
# every capped level still passes the bit-exactness suite (the dispatched
# public functions, not only the per-level tables, must equal the references).
set -u
bin="${DS4_BUILD:-build}/tests/test_quant_dot"
[[ -x $bin ]] || { echo "missing $bin (build first)"; exit 1; }
for level in scalar avx2 avx512; do
    out=$(DS4_SIMD=$level DS4_TEST_QUICK=1 "$bin" 2>&1) || { echo "$out"; echo "suite failed under DS4_SIMD=$level"; exit 1; }
    picked=$(sed -n 's/^# dispatcher picked //p' <<<"$out")
    # the cap may be above what this CPU has; then a lower level is picked
    case "$level:$picked" in
        scalar:scalar|avx2:avx2|avx2:scalar|avx512:avx512|avx512:avx2|avx512:scalar) ;;
        *) echo "DS4_SIMD=$level picked '$picked'"; exit 1 ;;
    esac
    echo "DS4_SIMD=$level -> $picked"
done
