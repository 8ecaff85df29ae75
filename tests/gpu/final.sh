#!/usr/bin/env bash
# tests/gpu/final.sh - the whole GPU check of one commit in a single device
# call (device budget is scarce): every CUDA test suite at once (they are
# small and share the card), the 8-layer full-width model synthesized
# meanwhile, then the decode/prefill benches (fast, --exact, --exact with the
# general exact F16 kernel (DS4_CUDA_F16X=0), 2048-token prefill chunks) one at a time, and
# last, with the GPU idle, the CPU decode benchmark of bench/cpu_decode.sh
# when its static binaries (.cpu-bench/) were carried too.
# usage (device machine): run with carry [".gpu-NAME", ".cpu-bench"]:
#   DS4_GPU_BUNDLE=.gpu-NAME bash tests/gpu/final.sh
# (the tracked tree is ~36 MiB of the 64 MiB a call may carry: if the bundles do
# not fit, strip them and carry them as one tar.xz, ~4 MiB, unpacked first.)
# Only 8 files come back from $OUT: the logs of the passing suites are removed.
# Knobs: DS4_FINAL_STEPS (tests,bench,ab,prof,cpu), DS4_FINAL_AB (knob sets to compare), DS4_FINAL_PROF_MODES (fast exact),
# DS4_FINAL_CTX (contexts of the fast bench, 2048,8192), DS4_FINAL_CPU_SWEEP (ds4-bench args).
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/ds4-final}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/final.log") 2>&1
B=${DS4_GPU_BUNDLE:-.gpu}
STEPS=${DS4_FINAL_STEPS:-tests,bench,ab,prof,cpu}
step() { [[ ",$STEPS," == *",$1,"* ]]; }
source tests/gpu/bundle_run.sh # run BIN ARGS...: the bundle's binary
t0=$SECONDS
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1) x $(nvidia-smi -L | wc -l); bundle $B ($(cat "$B/COMMIT" 2>/dev/null))"
model=/dev/shm/ds4-full-8.gguf
fail=0
if step tests; then
    run ds4-synth --preset full --layers 8 --vocab bytes -o "$model" >"$OUT/synth.log" 2>&1 &
    synth=$!
    # Waits name their jobs: a bare `wait` also waits for the tee above, forever.
    jobs_=()
    for t in test_cuda_ops test_cuda_gemm test_cuda_golden test_cuda_multi test_cuda_session; do
        (timeout -k 10 420 bash -c "$(declare -f run); B=$B; run $t" >"$OUT/$t.log" 2>&1; echo "rc=$?" >>"$OUT/$t.log") &
        jobs_+=($!)
    done
    (DS4_CUDA_F16X=0 timeout -k 10 420 bash -c "$(declare -f run); B=$B; run test_cuda_golden" >"$OUT/golden-f16x0.log" 2>&1;
     echo "rc=$?" >>"$OUT/golden-f16x0.log") &
    jobs_+=($!)
    (DS4_CUDA_F16X=0 timeout -k 10 420 bash -c "$(declare -f run); B=$B; run test_cuda_ops" >"$OUT/ops-f16x0.log" 2>&1;
     echo "rc=$?" >>"$OUT/ops-f16x0.log") &
    jobs_+=($!)
    wait "${jobs_[@]}"
    for f in test_cuda_ops test_cuda_gemm test_cuda_golden test_cuda_multi test_cuda_session golden-f16x0 ops-f16x0; do
        echo "-- $f: $(grep -E '^# ' "$OUT/$f.log" | tail -1) $(tail -1 "$OUT/$f.log")"
        grep -E '^(FAIL|not ok)' "$OUT/$f.log" | head -5
        if tail -1 "$OUT/$f.log" | grep -q 'rc=0'; then rm -f "$OUT/$f.log"; else fail=1; fi
    done
    echo "== tests done ($((SECONDS - t0)) s)"
    wait "$synth"
fi
if step bench; then
    [[ -f $model ]] || run ds4-synth --preset full --layers 8 --vocab bytes -o "$model" >"$OUT/synth.log" 2>&1
    echo "== bench fast, default chunk ($((SECONDS - t0)) s)"
    run gpu_decode -m "$model" --ctx "${DS4_FINAL_CTX:-2048,8192}" --gen 32 || fail=1
    echo "== bench --exact ($((SECONDS - t0)) s)"
    run gpu_decode -m "$model" --ctx 2048 --gen 32 --exact || fail=1
    echo "== bench --exact DS4_CUDA_F16X=0 ($((SECONDS - t0)) s)"
    DS4_CUDA_F16X=0 run gpu_decode -m "$model" --ctx 2048 --gen 32 --exact || fail=1
    echo "== bench fast, 2048-token chunks ($((SECONDS - t0)) s)"
    DS4_BENCH_CHUNK=2048 DS4_CUDA_BATCH=2048 run gpu_decode -m "$model" --ctx 8192 --gen 8 || fail=1
fi
if step ab && [[ -n ${DS4_FINAL_AB:-} ]]; then
    # A/B of kernel knobs on the same card: decode at 2k with the defaults,
    # then once per ';'-separated set of VAR=VALUE assignments, then the
    # defaults again (the run-to-run spread).
    [[ -f $model ]] || run ds4-synth --preset full --layers 8 --vocab bytes -o "$model" >"$OUT/synth.log" 2>&1
    IFS=';' read -r -a abs <<<"default;$DS4_FINAL_AB;default"
    for v in "${abs[@]}"; do
        echo "== A/B $v ($((SECONDS - t0)) s)"
        # shellcheck disable=SC2086
        env $([[ $v == default ]] || echo "$v") bash -c "$(declare -f run); B=$B; run gpu_decode -m $model --ctx 2048 --gen 64" \
            | grep -E '^ +2048|greedy' || fail=1
    done
fi
if step prof; then
    # Where a replayed decode step's time goes (bench/kprof/kprof.c): one
    # profile per kernel mode, written under $OUT.
    [[ -f $model ]] || run ds4-synth --preset full --layers 8 --vocab bytes -o "$model" >"$OUT/synth.log" 2>&1
    for mode in ${DS4_FINAL_PROF_MODES:-fast exact}; do
        echo "== kernel profile, $mode ($((SECONDS - t0)) s)"
        CUDA_INJECTION64_PATH=$PWD/$B/bin/libds4kprof.so DS4_KPROF_OUT=$OUT/kprof-$mode.txt \
            run gpu_decode -m "$model" --ctx 2048 --gen 32 $([[ $mode == exact ]] && echo --exact) || fail=1
        head -4 "$OUT/kprof-$mode.txt"
    done
fi
rm -f "$model"
if step cpu && [[ -x .cpu-bench/ds4-bench ]]; then
    echo "== CPU decode ($((SECONDS - t0)) s)"
    DS4_CPU_SWEEP=${DS4_FINAL_CPU_SWEEP:---ctx-start 64 --ctx-max 128 --step-incr 64 --gen-tokens 32} \
        OUT=$OUT timeout 300 bash bench/cpu_decode.sh .cpu-bench || fail=1
fi
echo "== done in $((SECONDS - t0)) s, fail=$fail"
exit $fail
