#!/usr/bin/env bash
# tests/gpu/h200_full.sh - issue 8's full-depth figure: the whole 43-layer q2
# model (ds4-synth --preset full --vocab bytes, 80.8 GiB) decoded on ONE card
# that holds it (H200, 141 GB), in one device call. The model is written to
# /dev/shm (the machine's disk is smaller than the model; tmpfs is grown to
# fit when it is not large enough), then bench/gpu_decode runs on it.
# usage (device machine, `run` with kind nvidia-h200 and needs_h200, carry the
# bundle): DS4_GPU_BUNDLE=.gpu-NAME bash tests/gpu/h200_full.sh
# Knobs: DS4_GPU_CTX (2048,8192), DS4_GPU_GEN (32).
set -u -o pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/ds4-gpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/h200_full.log") 2>&1
t0=$SECONDS
B=${DS4_GPU_BUNDLE:-.gpu}
source tests/gpu/bundle_run.sh # run BIN ARGS...: the bundle's binary
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1); bundle $B ($(cat "$B/COMMIT" 2>/dev/null))"
free -g | head -2
need=$((84 * 1024 * 1024))   # KiB: 80.8 GiB of tensors plus headroom
have=$(df -k --output=avail /dev/shm | tail -1)
if [[ $have -lt $need ]]; then
    mount -o remount,size=$((need / 1024 / 1024 + 4))G /dev/shm || { echo "cannot grow /dev/shm ($have KiB free)"; exit 1; }
fi
df -h /dev/shm | tail -1
model=/dev/shm/ds4-full-43.gguf
run ds4-synth --preset full --vocab bytes -o "$model" || exit 1
echo "== synthesized in $((SECONDS - t0)) s"
run gpu_decode -m "$model" --ctx "${DS4_GPU_CTX:-2048,8192}" --gen "${DS4_GPU_GEN:-32}"
rc=$?
rm -f "$model"
echo "== done in $((SECONDS - t0)) s, rc=$rc"
exit $rc
