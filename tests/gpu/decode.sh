#!/usr/bin/env bash
# tests/gpu/decode.sh - one device call for the decode-speed work: op tests and
# goldens of the bundle under test, then the 8-layer full-width bench for it
# (fast and --exact) and for a baseline build side by side (bin/gpu_decode_base
# in the same bundle, when present), then a per-op
# profile (nsys when the machine has it, else DS4_CUDA_PROFILE with graphs off).
# usage (device machine, carry the bundle): DS4_GPU_BUNDLE=.gpu-decode bash tests/gpu/decode.sh
# Knobs: DS4_GPU_STEPS (ops,golden,bench,exact,base,prof; also f16x: op tests, goldens and the
# --exact bench with DS4_CUDA_F16X=1, the opt-in index-order F16 decode kernel; and gprof: the
# per-op table of ONE graph-replayed decode step - the events ds4cu_after records while the step is
# captured become graph nodes, timed at the first replay; untried), DS4_GPU_CTX (2048), DS4_GPU_GEN (32).
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/ds4-gpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/decode.log") 2>&1
t0=$SECONDS
B=${DS4_GPU_BUNDLE:-.gpu-decode}
CTX=${DS4_GPU_CTX:-2048}
GEN=${DS4_GPU_GEN:-32}
STEPS=${DS4_GPU_STEPS:-ops,golden,bench,exact,base,prof}
step() { [[ ",$STEPS," == *",$1,"* ]]; }
run() { local b=$1 bin=$2; shift 2
    "$PWD/$b/lib/ld-linux-x86-64.so.2" --library-path "$PWD/$b/lib:/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu:/usr/local/cuda/lib64" "$PWD/$b/bin/$bin" "$@"; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null
fail=0
if step ops; then echo "== ops ($((SECONDS - t0)) s)"; timeout 300 bash -c "$(declare -f run); run $B test_cuda_ops" | grep -v '^ok ' || fail=1; fi
if step golden; then echo "== golden ($((SECONDS - t0)) s)"; timeout 400 bash -c "$(declare -f run); run $B test_cuda_golden" | grep -v '^ok ' | tail -20 || fail=1; fi
model=/tmp/ds4-full-8.gguf
if step bench || step base || step prof; then
    [[ -f $model ]] || { echo "== synth ($((SECONDS - t0)) s)"; run $B ds4-synth --preset full --layers 8 --vocab bytes -o $model >/dev/null || fail=1; }
fi
if step bench; then echo "== bench $B fast ($((SECONDS - t0)) s)"; run $B gpu_decode -m $model --ctx "$CTX" --gen "$GEN" || fail=1; fi
if step exact; then echo "== bench $B --exact ($((SECONDS - t0)) s)"; run $B gpu_decode -m $model --ctx "$CTX" --gen "$GEN" --exact || fail=1; fi
if step base && [[ -x $B/bin/gpu_decode_base ]]; then echo "== bench baseline fast ($((SECONDS - t0)) s)"; run $B gpu_decode_base -m $model --ctx "$CTX" --gen "$GEN" || fail=1; fi
if step f16x; then
    echo "== DS4_CUDA_F16X=1: ops, goldens, bench --exact ($((SECONDS - t0)) s)"
    export DS4_CUDA_F16X=1
    timeout 300 bash -c "$(declare -f run); run $B test_cuda_ops" | grep -v '^ok ' || fail=1
    timeout 400 bash -c "$(declare -f run); run $B test_cuda_golden" | grep -v '^ok ' | tail -5 || fail=1
    [[ -f $model ]] || run $B ds4-synth --preset full --layers 8 --vocab bytes -o $model >/dev/null || fail=1
    run $B gpu_decode -m $model --ctx "$CTX" --gen "$GEN" --exact || fail=1
    unset DS4_CUDA_F16X
fi
if step gprof; then
    echo "== profile of one graph-replayed decode step ($((SECONDS - t0)) s)"
    [[ -f $model ]] || run $B ds4-synth --preset full --layers 8 --vocab bytes -o $model >/dev/null || fail=1
    DS4_CUDA_PROFILE=1 run $B gpu_decode -m $model --ctx 2048 --gen 2 2>&1 | tail -45
fi
if step prof; then
    echo "== profile ($((SECONDS - t0)) s)"
    NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
    if [[ -n $NSYS ]]; then
        timeout 200 "$NSYS" profile -o "$OUT/dec" --force-overwrite true --cuda-graph-trace=node -t cuda \
            bash -c "$(declare -f run); run $B gpu_decode -m $model --ctx 256 --gen 64" >/dev/null 2>&1
        timeout 120 "$NSYS" stats -q --report cuda_gpu_kern_sum --format csv "$OUT/dec.nsys-rep" > "$OUT/kern.csv" 2>/dev/null
        head -45 "$OUT/kern.csv" | cut -c1-200
        rm -f "$OUT/dec.sqlite"
    else
        echo "no nsys; DS4_CUDA_PROFILE with graphs off"
        DS4_CUDA_GRAPH=0 DS4_CUDA_PROFILE=1 run $B gpu_decode -m $model --ctx "$CTX" --gen 16 2>&1 | tail -45
    fi
fi
echo "== done in $((SECONDS - t0)) s, fail=$fail"
