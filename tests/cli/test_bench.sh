#!/usr/bin/env bash
# test_bench.sh - ds4-bench on the tiny model: the CSV has the documented
# columns and one row per frontier (A, A+S, ..., and B itself when off the
# step grid), positive speeds, KV bytes growing with the context, weight bytes
# per token constant until the indexer starts; the SVG has both series and
# renders (ImageMagick converts it to a PNG of the declared size); weight bytes
# per token of full-size q2/q4 layouts equal spec/model.md §10.2; bad
# arguments are refused.
. "$(dirname "$0")/lib.sh"
[ -x "$BENCH" ] || fail "missing $BENCH"

for i in $(seq 400); do printf 'Bench prompt line %d: the quick brown fox. ' "$i"; done >"$T/prompt.txt"
# tiny-a: indexer top-k 64, so the indexer runs from context 260 on
"$BENCH" -m "$MODEL" --prompt-file "$T/prompt.txt" --ctx-start 200 --ctx-max 330 --step-incr 32 --gen-tokens 4 \
    --threads 2 --bw-mb 32 --csv "$T/b.csv" --svg "$T/b.svg" >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "ds4-bench exit"; }
cat "$T/out"
grep -q '^# bandwidth [0-9.]* GB/s' "$T/out" || fail "no bandwidth line"
python3 - "$T/b.csv" <<'PY' || fail "CSV"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["frontier", "prefill_tps", "decode_tps", "kv_bytes", "weight_bytes_per_token", "bandwidth_fraction"], rows[0]
body = rows[1:]
assert [int(r[0]) for r in body] == [200, 232, 264, 296, 328, 330], [r[0] for r in body]
for r in body:
    assert all(float(x) > 0 for x in r), r
kv = [int(r[3]) for r in body]
assert all(a < b for a, b in zip(kv, kv[1:])), kv
wb = [int(r[4]) for r in body]
assert wb[0] == wb[1] < wb[2] and len(set(wb[2:])) == 1, wb  # indexer weights join after context 259
for r in body:  # the fraction is decode t/s x bytes / bandwidth: same bandwidth on every row
    bw = float(r[2]) * int(r[4]) / float(r[5])
    assert abs(bw / (float(body[0][2]) * int(body[0][4]) / float(body[0][5])) - 1) < 1e-3, r
PY
grep -q '<svg' "$T/b.svg" && grep -q '</svg>' "$T/b.svg" || fail "SVG not closed"
grep -q 'prefill t/s' "$T/b.svg" && grep -q 'decode t/s' "$T/b.svg" || fail "SVG legend"
[ "$(grep -c '<circle' "$T/b.svg")" = 12 ] || fail "SVG: expected 2 series x 6 points"
if command -v convert >/dev/null 2>&1 && convert -list format 2>/dev/null | grep -q ' SVG '; then
    convert "$T/b.svg" "$T/b.png" 2>"$T/convert.err" || { cat "$T/convert.err"; fail "ImageMagick cannot render the SVG"; }
    [ ! -s "$T/convert.err" ] || { cat "$T/convert.err"; fail "ImageMagick complained about the SVG"; }
    [ "$(identify -format '%w %h' "$T/b.png")" = "900 560" ] || fail "PNG size $(identify -format '%w %h' "$T/b.png")"
    # not blank: the plot has ink (a white image has a mean near the maximum)
    m=$(convert "$T/b.png" -colorspace Gray -format '%[fx:mean]' info:)
    awk -v m="$m" 'BEGIN { exit !(m < 0.98) }' || fail "PNG looks blank (mean $m)"
else
    echo "ImageMagick with SVG support not installed (scripts/install-deps.sh): rendering not checked"
    exit 77
fi

# weight bytes per token of the real layouts, without loading the (sparse) models
if [ -x "$SYNTH" ]; then
    "$SYNTH" -q --preset full --vocab bytes --recipe q2 --sparse -o "$T/q2.gguf" || fail "synth q2"
    "$SYNTH" -q --preset full --vocab bytes --recipe q4 --sparse -o "$T/q4.gguf" || fail "synth q4"
    out=$("$BENCH" -m "$T/q2.gguf" --weight-bytes --ctx-start 2051 --ctx-max 2052) || fail "weight bytes q2"
    [ "$out" = $'weight_bytes_per_token context=2051 9195786660\nweight_bytes_per_token context=2052 9559118244' ] ||
        fail "q2 weight bytes (spec 10.2: 9,195,786,660 short, 9,559,118,244 long): $out"
    out=$("$BENCH" -m "$T/q4.gguf" --weight-bytes --ctx-start 100 --ctx-max 100000) || fail "weight bytes q4"
    [ "$out" = $'weight_bytes_per_token context=100 11021881764\nweight_bytes_per_token context=100000 11385213348' ] ||
        fail "q4 weight bytes (spec 10.2: q2 + 1,826,095,104): $out"
    rm -f "$T/q2.gguf" "$T/q4.gguf"
fi

# refusals
"$BENCH" -m "$MODEL" --prompt-file "$T/prompt.txt" --ctx-start 100 --ctx-max 50 --step-incr 8 --gen-tokens 2 >/dev/null 2>"$T/e1"
[ $? = 2 ] || fail "ctx-max < ctx-start accepted"
"$BENCH" -m "$MODEL" --prompt-file "$T/none.txt" --ctx-start 8 --ctx-max 16 --step-incr 8 --gen-tokens 2 >/dev/null 2>"$T/e2"
[ $? = 1 ] && grep -q none.txt "$T/e2" || fail "missing prompt file: $(cat "$T/e2")"
: >"$T/empty.txt"
"$BENCH" -m "$MODEL" --prompt-file "$T/empty.txt" --ctx-start 8 --ctx-max 16 --step-incr 8 --gen-tokens 2 >/dev/null 2>"$T/e3"
[ $? = 1 ] && grep -q 'empty' "$T/e3" || fail "empty prompt file: $(cat "$T/e3")"
"$BENCH" -m "$MODEL" --prompt-file "$T/prompt.txt" --ctx-start 8 --ctx-max 16 --step-incr 0 --gen-tokens 2 >/dev/null 2>&1
[ $? = 2 ] || fail "step 0 accepted"
echo ok
