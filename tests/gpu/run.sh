#!/usr/bin/env bash
# tests/gpu/run.sh - everything the CUDA backend needs a GPU for, in one call
# (for the device machine: `run` with carry [".gpu"], or any box with a GPU):
#   1. binaries: built here with nvcc for this GPU's architecture, or, when
#      .gpu/ holds a prebuilt bundle (see below), taken from it: the device
#      image need not have the project's libraries;
#   2. the CUDA op tests (every kernel against its CPU twin at real sizes);
#   3. the oracle goldens on the GPU (tests/unit/test_cuda_golden.c);
#   4. a reduced-depth full-width model from ds4-synth (random data, written
#      to local disk) and the decode/prefill benchmark bench/gpu_decode.c.
# Output goes to stdout and $OUT/gpu-run.log. Knobs: DS4_GPU_LAYERS (8),
# DS4_GPU_CTX (2048,8192), DS4_GPU_GEN (16), DS4_GPU_STEPS (ops,golden,bench; also gemm).
# Backend knobs (environment, any program): DS4_CUDA_GRAPH=0 (no graph decode),
# DS4_CUDA_SYNC=1 (synchronize after every op, so a faulting kernel is named),
# DS4_CUDA_PROFILE=1 (per-op GPU time table at exit), DS4_CUDA_NT (8/16/32),
# DS4_CUDA_BATCH (most tokens per batch, 1024), DS4_CUDA_GEMM=0 (prefill GEMMs off),
# DS4_CUDA_GX_STAGE (0/1/2 routed-expert weight paths), DS4_BENCH_CHUNK (gpu_decode prefill chunk).
#
# Prebuilt bundle (made on a dev machine with nvcc and no GPU):
#   make BUILD=build-gpu CUDA=1 CU_ARCHS="-gencode arch=compute_90,code=sm_90" \
#        build-gpu/tests/test_cuda_ops build-gpu/tests/test_cuda_golden \
#        build-gpu/bin/ds4-synth build-gpu/bench/gpu_decode
#   then copy those binaries to .gpu/bin and every library `ldd` lists (the
#   loader and libc included) to .gpu/lib; tests/gpu/bundle.sh does both.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/ds4-gpu}
mkdir -p "$OUT"
LOG=$OUT/gpu-run.log
LAYERS=${DS4_GPU_LAYERS:-8}
CTX=${DS4_GPU_CTX:-2048,8192}
GEN=${DS4_GPU_GEN:-16}
STEPS=${DS4_GPU_STEPS:-ops,golden,bench}
exec > >(tee -a "$LOG") 2>&1
t0=$SECONDS
echo "== $(date -u +%FT%TZ) $(nvidia-smi -L 2>/dev/null | head -1)"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>/dev/null

bundle=${DS4_GPU_BUNDLE:-.gpu}
if [[ -x $bundle/bin/test_cuda_ops && -x $bundle/lib/ld-linux-x86-64.so.2 ]]; then
    libpath=$PWD/$bundle/lib:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:/usr/lib/x86_64-linux-gnu:/usr/lib64:/usr/local/cuda/lib64
    run() { local b=$1; shift; "$PWD/$bundle/lib/ld-linux-x86-64.so.2" --library-path "$libpath" "$PWD/$bundle/bin/$b" "$@"; }
    echo "== using the prebuilt bundle in $bundle/"
else
    arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
    arch=${arch:-90}
    echo "== building for sm_$arch"
    make -j"$(nproc)" BUILD=build-gpu CUDA=1 CU_ARCHS="-gencode arch=compute_$arch,code=sm_$arch" \
        build-gpu/tests/test_cuda_ops build-gpu/tests/test_cuda_golden build-gpu/bin/ds4-synth \
        build-gpu/bench/gpu_decode >"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log"; exit 1; }
    run() { local b=$1; shift; local p; for p in build-gpu/tests build-gpu/bin build-gpu/bench; do
        [[ -x $p/$b ]] && { "$p/$b" "$@"; return; }; done; echo "no $b"; return 127; }
fi
fail=0
step() { [[ ",$STEPS," == *",$1,"* ]]; }

if step ops; then
    echo "== op tests ($((SECONDS - t0)) s)"
    timeout 300 bash -c "$(declare -f run); libpath='${libpath:-}'; bundle='$bundle'; run test_cuda_ops" || fail=1
fi
if step gemm; then
    echo "== prefill GEMM tests ($((SECONDS - t0)) s)"
    timeout 300 bash -c "$(declare -f run); libpath='${libpath:-}'; bundle='$bundle'; run test_cuda_gemm" || fail=1
fi
if step golden; then
    echo "== goldens on the GPU ($((SECONDS - t0)) s)"
    timeout 400 bash -c "$(declare -f run); libpath='${libpath:-}'; bundle='$bundle'; run test_cuda_golden" || fail=1
fi
if step bench; then
    model=${DS4_GPU_MODEL:-/tmp/ds4-full-$LAYERS.gguf}
    if [[ ! -f $model ]]; then
        echo "== ds4-synth --preset full --layers $LAYERS ($((SECONDS - t0)) s)"
        run ds4-synth --preset full --layers "$LAYERS" --vocab bytes -o "$model" || fail=1
    fi
    echo "== gpu_decode ($((SECONDS - t0)) s)"
    run gpu_decode -m "$model" --ctx "$CTX" --gen "$GEN" || fail=1
fi
echo "== done in $((SECONDS - t0)) s, fail=$fail"
exit $fail
