#!/usr/bin/env bash
# tests/gpu/bundle.sh - builds the GPU binaries here (nvcc needed, no GPU) for
# one architecture (default sm_90: H100/H200) and packs them with every shared
# library they load, glibc's loader included, into .gpu/ (ignored by git), so
# tests/gpu/run.sh can run them on a machine whose image lacks the project's
# libraries: `run` with carry [".gpu"].
# DS4_GPU_BUNDLE=.gpu-x picks another bundle folder (built in build-gpu-x), so
# several engineers can keep bundles side by side; run.sh takes the same knob.
set -eu
cd "$(dirname "$0")/../.."
arch=${1:-90}
bundle=${DS4_GPU_BUNDLE:-.gpu}
bd=build-gpu${bundle#.gpu}
bins="$bd/tests/test_cuda_ops $bd/tests/test_cuda_gemm $bd/tests/test_cuda_golden $bd/bin/ds4-synth $bd/bin/ds4 $bd/bench/gpu_decode"
bins="$bins $bd/tests/test_cuda_multi $bd/tests/test_cuda_session" # --gpus split path; rewind marks
bins="$bins $bd/lib/libds4kprof.so" # kernel profile of replayed graphs (CUDA_INJECTION64_PATH)
make -j"$(nproc)" BUILD=$bd CUDA=1 CU_ARCHS="-gencode arch=compute_$arch,code=sm_$arch" \
    NVFLAGS="-O3 -std=c++17 -lineinfo -gencode arch=compute_$arch,code=sm_$arch -Xcompiler -Wall,-Wextra,-Werror -Isrc --fmad=false" $bins
rm -rf "$bundle" && mkdir -p "$bundle/bin" "$bundle/lib"
for b in $bins; do
    cp "$b" "$bundle/bin/"
    ldd "$b" | awk '/=>/ {print $3} /ld-linux/ {print $1}'
done | sort -u | grep -v '^$' | grep -v libcuda.so | while read -r l; do cp -L "$l" "$bundle/lib/"; done
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tests bench || echo +dirty)" >"$bundle/COMMIT"
du -sh "$bundle"
