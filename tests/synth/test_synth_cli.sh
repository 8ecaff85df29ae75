#!/usr/bin/env bash
# test_synth_cli.sh - ds4-synth from the command line, judged by `ds4 inspect`
# and `ds4 golden`: the tiny preset is VALID, byte-identical for one seed and
# runs to non-degenerate logits; sparse full-size
# files are VALID as the real DeepSeek V4 Flash with exactly the tensor bytes
# of spec/model.md §10 (q2 and q4) and take no disk space; the demo model is
# generated once and then reused from the cache.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${DS4_BUILD:-build}
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
if [ -x "$BUILD/bin/ds4-synth" ]; then SYNTH="$BUILD/bin/ds4-synth"; DS4="$BUILD/bin/ds4"
else SYNTH="$ROOT/ds4-synth"; DS4="$ROOT/ds4"; fi
[ -x "$SYNTH" ] && [ -x "$DS4" ] || { echo "missing $SYNTH or $DS4 (build first)"; exit 1; }
T=$(mktemp -d /tmp/ds4-synth-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# tiny: VALID, deterministic, seed-dependent
"$SYNTH" -q --preset tiny --vocab bytes --seed 5 -o "$T/a.gguf" || fail "tiny a"
"$SYNTH" -q --preset tiny --vocab bytes --seed 5 --threads 1 -o "$T/b.gguf" || fail "tiny b"
"$SYNTH" -q --preset tiny --vocab bytes --seed 6 -o "$T/c.gguf" || fail "tiny c"
cmp -s "$T/a.gguf" "$T/b.gguf" || fail "same seed gave different files"
cmp -s "$T/a.gguf" "$T/c.gguf" && fail "different seeds gave the same file"
out=$("$DS4" inspect "$T/a.gguf") || { echo "$out" | tail -3; fail "inspect tiny"; }
grep -q '^VALID: a smaller model' <<<"$out" || fail "tiny not VALID: $(tail -1 <<<"$out")"
grep -q 'compress_ratios.*\[i32 × 6\] 0,0,4,128,4,128' <<<"$out" || fail "tiny ratios"
grep -q 'swiglu_clamp_exp.*\[f32 × 6\]' <<<"$out" || fail "tiny clamp array type"
ls "$T"/*.part-* >/dev/null 2>&1 && fail "a .part file was left behind"

# the engine runs it: `ds4 golden` on the token sequence of an oracle case
# (tiny-a has the same 512-token vocabulary size) gives finite, spread logits
# and a greedy continuation that is not one token repeated
ref="$ROOT/tests/data/oracle/tiny-a/cases/c04_window_edge.golden"
"$DS4" golden -m "$T/a.gguf" --like "$ref" -o "$T/a.golden" >/dev/null || fail "ds4 golden"
python3 - "$T/a.golden" <<'PY' || fail "golden logits degenerate"
import math, struct, sys
b = open(sys.argv[1], 'rb').read()
assert b[:8] == b'DS4GOLD1'
V, T, P, G = struct.unpack_from('<4I', b, 12)
o = 40 + 4 * (T + P)
rows = [struct.unpack_from('<%df' % V, b, o + 4 * V * r) for r in range(2 * P)]
o += 8 * P * V
greedy = struct.unpack_from('<%di' % G, b, o)
for r in rows:
    assert all(math.isfinite(x) for x in r), "non-finite logit"
    m = sum(r) / V
    sd = math.sqrt(sum((x - m) ** 2 for x in r) / V)
    assert 0.5 < sd < 50, "logit std %g" % sd
assert len(set(greedy)) > 1, "greedy %s" % (greedy,)
print("golden: %d rows, greedy %s" % (len(rows), list(greedy)))
PY

# sparse full-size files: the real shape, exact byte counts, holes only
# (q2 with the default, real vocabulary when tokenizer.json is here; q4 with the byte vocabulary)
tj="$ROOT/tests/data/tokenizer/tokenizer.json"
q2vocab="--vocab bytes"; [ -r "$tj" ] && q2vocab="--tokenizer $tj"
for r in "q2 86714775900" "q4 164628167004"; do
    set -- $r
    v="--vocab bytes"; [ "$1" = q2 ] && v=$q2vocab
    "$SYNTH" -q --preset full $v --recipe "$1" --sparse -o "$T/full-$1.gguf" || fail "sparse full $1"
    out=$("$DS4" inspect "$T/full-$1.gguf") || { echo "$out" | tail -3; fail "inspect full $1"; }
    grep -q '^VALID: DeepSeek V4 Flash (the real shape' <<<"$out" || fail "full $1 not the real shape: $(tail -1 <<<"$out")"
    got=$(awk '$1 == "total" && $3 == "params" {print $4}' <<<"$out")
    [ "$got" = "$2" ] || fail "full $1: tensor data $got bytes, spec/model.md §10 says $2"
    kb=$(du -k "$T/full-$1.gguf" | cut -f1)
    [ "$kb" -lt 65536 ] || fail "sparse full $1 uses $kb KiB of disk"
    echo "full $1 ($v): $got bytes of tensor data, $kb KiB on disk"
    rm -f "$T/full-$1.gguf"
done

# --layers keeps the real schedule; a bad shape is refused with the engine's reason
"$SYNTH" -q --layers 5 --vocab bytes --sparse -o "$T/l5.gguf" || fail "layers 5"
out=$("$DS4" inspect "$T/l5.gguf") || fail "inspect layers 5"
grep -q 'compress_ratios.*0,0,4,128,4$' <<<"$out" || fail "layers 5 schedule: $(grep compress_ratios <<<"$out")"
grep -q 'hash_layer_count *3$' <<<"$out" || fail "layers 5 hash layers"
if msg=$("$SYNTH" -q --preset tiny --vocab bytes --embd 200 -o "$T/bad.gguf" 2>&1); then fail "embd 200 accepted"; fi
grep -q 'embedding_length\|blocks' <<<"$msg" || fail "embd 200: unhelpful message: $msg"
[ -e "$T/bad.gguf" ] && fail "a refused shape left a file"

# the demo model: generated on first use, reused afterwards
if [ -r "$ROOT/tests/data/tokenizer/tokenizer.json" ]; then
    p=$(DS4_CACHE_DIR="$T/cache" DS4_TOKENIZER_JSON="$ROOT/tests/data/tokenizer/tokenizer.json" "$SYNTH" -q --demo) || fail "demo"
    [ "$p" = "$T/cache/demo.gguf" ] || fail "demo path $p"
    m1=$(stat -c %Y.%i "$p")
    p2=$(DS4_CACHE_DIR="$T/cache" "$SYNTH" -q --demo) || fail "demo again"
    [ "$p2" = "$p" ] && [ "$(stat -c %Y.%i "$p")" = "$m1" ] || fail "demo was regenerated instead of reused"
    out=$("$DS4" inspect "$p") || fail "inspect demo"
    grep -q 'tokenizer.ggml.tokens *\[string × 129280\]' <<<"$out" || fail "demo vocabulary"
    grep -q '^VALID' <<<"$out" || fail "demo not VALID"
fi
echo "ok"
