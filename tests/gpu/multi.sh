#!/usr/bin/env bash
# tests/gpu/multi.sh - the multi-GPU checks (--gpus), in one device call.
#   split: tests/unit/test_cuda_multi (oracle cases with the layers split over
#          "0,0", "0,0,0" and, with two devices, "0,1": bit-identical to one GPU);
#   full:  (two GPUs) the full 43-layer q2 model from ds4-synth (--vocab bytes,
#          ~81 GiB: more than one 80 GB card holds), `ds4 golden` on it with the
#          CPU backend (the reference) and with --gpus $DS4_MULTI_GPUS, the two
#          output files compared (greedy tokens must agree; logits are
#          expected bit-identical), then bench/gpu_decode --gpus on it.
# usage (device machine, `run` with kind nvidia-h100-x2, carry [".gpu-multigpu"]):
#   DS4_GPU_BUNDLE=.gpu-multigpu bash tests/gpu/multi.sh
#   bench8: the 8-layer full-width model on one GPU and split, for the split's cost.
# Knobs: DS4_MULTI_STEPS (split,full,bench,bench8), DS4_MULTI_GPUS (0,1), DS4_GPU_CTX
# (2048), DS4_GPU_GEN (16). The prompt: 32 fixed token ids (a deterministic
# sequence after BOS), logits recorded at every position, 16 greedy steps,
# written as a DS4GOLD1 reference with empty rows for `ds4 golden --like`.
# Output: stdout and $OUT/multi.log. Exit status: 0 only if every step passed.
set -u -o pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/ds4-gpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/multi.log") 2>&1
t0=$SECONDS
B=${DS4_GPU_BUNDLE:-.gpu-multigpu}
STEPS=${DS4_MULTI_STEPS:-split,full,bench,bench8}
GPUS=${DS4_MULTI_GPUS:-0,1}
CTX=${DS4_GPU_CTX:-2048}
GEN=${DS4_GPU_GEN:-16}
step() { [[ ",$STEPS," == *",$1,"* ]]; }
source tests/gpu/bundle_run.sh # run BIN ARGS...: the bundle's binary
el() { echo "$((SECONDS - t0)) s"; }
echo "== $(date -u +%FT%TZ) multi.sh steps=$STEPS gpus=$GPUS"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader 2>/dev/null
nvidia-smi topo -m 2>/dev/null | head -5
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
fail=0

if step split; then
    echo "== test_cuda_multi ($(el))"
    timeout 400 bash -c "$(declare -f run); B=$B; run test_cuda_multi" | grep -v '^ok ' || fail=1
    [[ ${PIPESTATUS[0]} -eq 0 ]] || fail=1
fi

model=${DS4_MULTI_MODEL:-}
if (step full || step bench) && [[ $ngpu -lt 2 && $GPUS == *1* ]]; then
    echo "== full/bench need two GPUs, $ngpu present: skipped"
    STEPS=${STEPS//full/}; STEPS=${STEPS//bench8/}; STEPS=${STEPS//bench/}
fi
if step full || step bench; then
    if [[ -z $model ]]; then
        # tmpfs when it has room (no disk write, the pages are the page cache), else /tmp.
        dir=/tmp
        shm=$(df -B1G --output=avail /dev/shm 2>/dev/null | tail -1 | tr -d ' ')
        [[ ${shm:-0} -gt 90 ]] && dir=/dev/shm
        df -h "$dir" | tail -1
        model=$dir/ds4-full-43.gguf
        echo "== ds4-synth --preset full --vocab bytes -> $model ($(el))"
        s=$SECONDS
        run ds4-synth --preset full --vocab bytes -o "$model" | tail -2 || fail=1
        echo "synth: $((SECONDS - s)) s"
        ls -l "$model"
    fi
fi
if step full; then
    CASE=/tmp/multi-ref.golden
    python3 - "$CASE" "${DS4_MULTI_VOCAB:-129280}" <<'EOF'
import struct, sys
V, T, G = int(sys.argv[2]), 32, 16
toks = [0] + [(i * 7919 + 1013) % V for i in range(1, T)]
magic = open("tests/data/oracle/tiny-a/cases/c02_short_chat.golden", "rb").read(8)
with open(sys.argv[1], "wb") as f:
    f.write(magic + struct.pack("<8I", 1, V, T, T, G, 3, 0, 0))
    f.write(struct.pack("<%di" % T, *toks) + struct.pack("<%di" % T, *range(T)))
    f.write(bytes(4 * V * T * 2) + bytes(4 * G) + bytes(4 * V * G))
print("prompt ids:", toks)
EOF
    thr=$(( $(nproc) - 2 ))
    echo "== CPU reference (--threads $thr) and GPU (--gpus $GPUS) goldens, side by side ($(el))"
    ( s=$SECONDS; run ds4 golden -m "$model" --like "$CASE" -o /tmp/multi-cpu.golden --backend cpu --threads $thr \
        && echo "cpu golden: $((SECONDS - s)) s" ) > /tmp/multi-cpu.log 2>&1 &
    cpu=$!
    s=$SECONDS
    run ds4 golden -m "$model" --like "$CASE" -o /tmp/multi-gpu.golden --gpus "$GPUS" || fail=1
    echo "gpu golden (--gpus $GPUS, load included): $((SECONDS - s)) s"
    nvidia-smi --query-gpu=index,memory.used --format=csv,noheader 2>/dev/null
    wait $cpu || fail=1
    cat /tmp/multi-cpu.log
    echo "== compare ($(el))"
    python3 tests/data/oracle/read_golden.py /tmp/multi-cpu.golden | grep greedy | sed 's/^/cpu /'
    python3 tests/data/oracle/read_golden.py /tmp/multi-gpu.golden | grep greedy | sed 's/^/gpu /'
    python3 tests/data/oracle/read_golden.py /tmp/multi-cpu.golden /tmp/multi-gpu.golden | tail -1
    if cmp -s /tmp/multi-cpu.golden /tmp/multi-gpu.golden; then echo "RESULT: --gpus $GPUS output file byte-identical to the CPU's"
    else
        echo "RESULT: files differ"
        python3 - <<'EOF' || fail=1
import sys
sys.path.insert(0, "tests/data/oracle")
import read_golden as r
a, b = r.read("/tmp/multi-cpu.golden"), r.read("/tmp/multi-gpu.golden")
same = a["greedy_tokens"] == b["greedy_tokens"]
print("greedy tokens agree:", same)
sys.exit(0 if same else 1)
EOF
    fi
fi
if step bench; then
    echo "== gpu_decode --gpus $GPUS ($(el))"
    run gpu_decode -m "$model" --gpus "$GPUS" --ctx "$CTX" --gen "$GEN" || fail=1
fi
if step bench8; then
    # The split's cost: the 8-layer full-width model on one GPU and on $GPUS.
    m8=/tmp/ds4-full-8.gguf
    echo "== bench8: ds4-synth --layers 8 ($(el))"
    [[ -f $m8 ]] || run ds4-synth --preset full --layers 8 --vocab bytes -o $m8 | tail -1 || fail=1
    run gpu_decode -m $m8 --ctx "$CTX" --gen 32 || fail=1
    run gpu_decode -m $m8 --ctx "$CTX" --gen 32 --gpus "$GPUS" || fail=1
fi
echo "== done in $(el), fail=$fail"
exit $fail
