#!/usr/bin/env bash
# bench/cpu_decode.sh - the CPU decode benchmark of issue 5 in one go, for a
# machine that should not build anything (the device host): static CPU-only
# binaries are made here first with
#
#   make BUILD=build-cpubench CUDA=0 LDFLAGS=-static build-cpubench/bin/ds4-bench \
#        build-cpubench/bin/ds4-synth build-cpubench/bench/matvec build-cpubench/bench/kernel_cycles
#   mkdir -p .cpu-bench && cp build-cpubench/bin/ds4-bench build-cpubench/bin/ds4-synth \
#        build-cpubench/bench/matvec build-cpubench/bench/kernel_cycles .cpu-bench/ \
#        && git rev-parse --short HEAD > .cpu-bench/COMMIT
#
# and the folder (git-ignored) is carried over: bash bench/cpu_decode.sh .cpu-bench
#
# It synthesizes the bench model (ds4-synth --layers 4 --experts 32 --vocab
# bytes --seed 11: width 4096, 3.16 GB, 1.331 GB read per decoded token) to
# tmpfs, then runs build/bench/matvec (kernels against measured bandwidth,
# all threads and one), kernel_cycles (in-cache kernel speed), and ds4-bench
# at 1 and all threads in both modes (exact, --fast), plus a thread sweep and
# an A/B knob (DS4_POOL_PARTS=1: one fixed part per thread). DS4_POOL_STATS=1
# reports the serial time per run.
# Everything goes to stdout and $OUT/cpu-decode.log; CSVs to $OUT.
set -u
B=${1:-.cpu-bench}
OUT=${OUT:-/tmp/ds4-cpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/cpu-decode.log") 2>&1
NT=$(nproc)
MODEL=${DS4_CPU_MODEL:-/dev/shm/ds4-cpu-bench.gguf}
PROMPT=${DS4_CPU_PROMPT:-README.md}
t0=$SECONDS
echo "== $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo) x $NT, $(free -g | awk '/Mem:/{print $2}') GiB"
grep -o -m1 -w 'avx512_vnni\|avx512vnni' /proc/cpuinfo | head -1
# The device's copy of the tree may carry another .git; the bundle records its commit.
echo "== binaries built from $(cat "$B/COMMIT" 2>/dev/null || echo 'an unrecorded commit') (tree here: $(git rev-parse --short HEAD 2>/dev/null))"

echo "== synth"
"$B/ds4-synth" --layers 4 --experts 32 --vocab bytes --seed 11 -o "$MODEL" || exit 1

echo "== kernel_cycles (in cache)"
"$B/kernel_cycles" avx2 avx512 | grep -E "Q8_0|F16|IQ2|Q2_K"

echo "== matvec, $NT threads and 1, 1 GiB, best of 3"
"$B/matvec" --threads "$NT" --reps 3

run() {  # label, "VAR=value ..." (or ""), ds4-bench arguments
    local label=$1 envs=$2; shift 2
    echo "== ds4-bench $label ${envs:-(default knobs)}"
    # shellcheck disable=SC2086
    env $envs DS4_POOL_STATS=1 "$B/ds4-bench" -m "$MODEL" --prompt-file "$PROMPT" --csv "$OUT/$label.csv" "$@"
}
# DS4_CPU_SWEEP / DS4_CPU_SHORT override the sweeps (a quick check of this script).
read -r -a SWEEP <<< "${DS4_CPU_SWEEP:---ctx-start 64 --ctx-max 256 --step-incr 64 --gen-tokens 32}"
read -r -a SHORT <<< "${DS4_CPU_SHORT:---ctx-start 64 --ctx-max 128 --step-incr 64 --gen-tokens 32}"
run "exact-t$NT" "" "${SWEEP[@]}" --threads "$NT"
run "fast-t$NT" "" "${SWEEP[@]}" --threads "$NT" --fast
run exact-t1 "" "${SWEEP[@]}" --threads 1
run fast-t1 "" "${SWEEP[@]}" --threads 1 --fast
run "parts1-t$NT" "DS4_POOL_PARTS=1" "${SHORT[@]}" --threads "$NT"
for t in 4 8 12; do
    if [ "$t" -lt "$NT" ]; then run "exact-t$t" "" "${SHORT[@]}" --threads "$t"; fi
done
run "exact-t$NT-again" "" "${SHORT[@]}" --threads "$NT"
echo "== done in $((SECONDS - t0)) s"
rm -f "$MODEL"
