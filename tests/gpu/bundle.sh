#!/usr/bin/env bash
# tests/gpu/bundle.sh - builds the GPU binaries here (nvcc needed, no GPU) for
# one architecture (default sm_90: H100/H200) and packs them with every shared
# library they load, glibc's loader included, into .gpu/ (ignored by git), so
# tests/gpu/run.sh can run them on a machine whose image lacks the project's
# libraries: `run` with carry [".gpu"].
set -eu
cd "$(dirname "$0")/../.."
arch=${1:-90}
bins="build-gpu/tests/test_cuda_ops build-gpu/tests/test_cuda_golden build-gpu/bin/ds4-synth build-gpu/bench/gpu_decode"
make -j"$(nproc)" BUILD=build-gpu CUDA=1 CU_ARCHS="-gencode arch=compute_$arch,code=sm_$arch" \
    NVFLAGS="-O3 -std=c++17 -lineinfo -gencode arch=compute_$arch,code=sm_$arch -Xcompiler -Wall,-Wextra,-Werror -Isrc --fmad=false" $bins
rm -rf .gpu && mkdir -p .gpu/bin .gpu/lib
for b in $bins; do
    cp "$b" .gpu/bin/
    ldd "$b" | awk '/=>/ {print $3} /ld-linux/ {print $1}'
done | sort -u | grep -v '^$' | grep -v libcuda.so | while read -r l; do cp -L "$l" .gpu/lib/; done
du -sh .gpu
