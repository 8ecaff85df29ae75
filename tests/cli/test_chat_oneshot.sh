#!/usr/bin/env bash
# test_chat_oneshot.sh - `ds4 -p` and piped chat on the tiny model, without a
# terminal: the answer alone on stdout (reasoning and status on stderr),
# greedy runs are deterministic, -n is honoured and counted, --dump-logprobs
# writes one JSON line per sampled token with K alternatives, multi-turn input
# reuses the KV (prefilling only the new tokens) and gives bit-identical
# log-probabilities to --no-cache, bad flags and a missing model are refused
# with a message, SIGINT cancels a long prefill, steering reaches the model,
# and `ds4 --help` lists the subcommands and the chat options.
. "$(dirname "$0")/lib.sh"

# --help: subcommands and chat options
out=$("$DS4" --help) || fail "ds4 --help exit"
for w in inspect golden tokenize render chat -p --ctx --temp --top-k --top-p --min-p --seed --max-tokens --system \
    --dir-steering-file --dir-steering-ffn --dir-steering-attn --backend --threads --nothink --think-max \
    --dump-logprobs --logprobs-top-k /ctx /read; do
    grep -q -- "$w" <<<"$out" || fail "ds4 --help does not mention $w"
done

# one-shot, no thinking, greedy: answer on stdout, stats on stderr, deterministic
"$DS4" -m "$MODEL" -p "Hello there" --nothink --temp 0 -n 24 >"$T/a.out" 2>"$T/a.err" || { cat "$T/a.err"; fail "one-shot exit"; }
"$DS4" -m "$MODEL" -p "Hello there" --nothink --temp 0 -n 24 >"$T/b.out" 2>"$T/b.err" || fail "one-shot again"
[ -s "$T/a.out" ] || fail "one-shot printed nothing on stdout"
cmp -s "$T/a.out" "$T/b.out" || fail "greedy one-shot is not deterministic"
grep -q '^\[max tokens: 24 tokens, [0-9.]* t/s | prompt [0-9]* tokens, 0 reused' "$T/a.err" || fail "stats line: $(cat "$T/a.err")"
# with -q nothing but the answer
"$DS4" -m "$MODEL" -p "Hello there" --nothink --temp 0 -n 24 -q >"$T/q.out" 2>"$T/q.err" || fail "quiet exit"
[ ! -s "$T/q.err" ] || fail "-q still wrote to stderr: $(cat "$T/q.err")"
cmp -s "$T/a.out" "$T/q.out" || fail "-q changed the answer"
# a different prompt gives a different answer (the prompt reaches the model)
"$DS4" -m "$MODEL" -p "Something else entirely" --nothink --temp 0 -n 24 -q >"$T/c.out" || fail "one-shot c"
cmp -s "$T/a.out" "$T/c.out" && fail "two prompts, same greedy answer"
# sampling with a seed is reproducible, another seed differs
"$DS4" -m "$MODEL" -p "Hi" --nothink --seed 7 -n 40 -q >"$T/s1" || fail "seed 7"
"$DS4" -m "$MODEL" -p "Hi" --nothink --seed 7 -n 40 -q >"$T/s2" || fail "seed 7 again"
"$DS4" -m "$MODEL" -p "Hi" --nothink --seed 8 -n 40 -q >"$T/s3" || fail "seed 8"
cmp -s "$T/s1" "$T/s2" || fail "same seed, different output"
cmp -s "$T/s1" "$T/s3" && fail "seeds 7 and 8 gave the same 40 tokens"

# thinking (default): stdout is not a terminal, so reasoning goes to stderr
"$DS4" -m "$MODEL" -p "Hello there" --temp 0 -n 24 >"$T/t.out" 2>"$T/t.err" || fail "thinking one-shot"
[ "$(wc -c <"$T/t.err")" -gt 80 ] || fail "thinking: no reasoning on stderr"
grep -q '^\[max tokens: 24 tokens' "$T/t.err" || fail "thinking stats"

# --dump-logprobs: 24 lines (no EOS in 24 tokens of this prompt) with K=3 alternatives
"$DS4" -m "$MODEL" -p "Hello there" --nothink --temp 0 -n 24 -q --dump-logprobs "$T/lp.jsonl" --logprobs-top-k 3 >"$T/lp.out" || fail "logprobs run"
cmp -s "$T/a.out" "$T/lp.out" || fail "--dump-logprobs changed the answer"
python3 - "$T/lp.jsonl" <<'PY' || fail "logprobs file"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert len(rows) == 24, len(rows)
for i, r in enumerate(rows):
    assert r["turn"] == 1 and r["pos"] == rows[0]["pos"] + i, r
    assert len(r["top"]) == 3, r
    assert r["logprob"] <= 0 and r["top"][0]["logprob"] >= r["top"][1]["logprob"] >= r["top"][2]["logprob"]
    # greedy: the sampled token is the most likely one
    assert r["id"] == r["top"][0]["id"] and abs(r["logprob"] - r["top"][0]["logprob"]) < 1e-6, r
    assert isinstance(r["bytes"], list)
PY

# piped multi-turn chat: each line is a turn; turns 2 and 3 reuse the KV
for mode in --nothink --think; do
    printf 'hello\nsecond turn\nthird turn\n' | "$DS4" -m "$MODEL" $mode --temp 0 -n 20 --ctx 4096 \
        --dump-logprobs "$T/mt$mode.jsonl" >"$T/mt.out" 2>"$T/mt.err" || fail "piped chat $mode"
    [ "$(grep -c '^\[max tokens: 20 tokens' "$T/mt.err")" = 3 ] || fail "piped chat $mode: 3 turns expected: $(grep '^\[' "$T/mt.err")"
    reused=$(grep '^\[max tokens' "$T/mt.err" | sed -E 's/.*prompt ([0-9]+) tokens, ([0-9]+) reused, ([0-9]+) prefilled.*/\2/' | tr '\n' ' ')
    set -- $reused
    [ "$1" = 0 ] && [ "$2" -gt 0 ] && [ "$3" -gt "$2" ] || fail "piped chat $mode: reused tokens per turn: $reused"
    # the same conversation prefilled from scratch every turn: identical log-probabilities
    printf 'hello\nsecond turn\nthird turn\n' | "$DS4" -m "$MODEL" $mode --temp 0 -n 20 --ctx 4096 --no-cache \
        --dump-logprobs "$T/nc$mode.jsonl" >/dev/null 2>"$T/nc.err" || fail "--no-cache $mode"
    grep -q ', 0 reused' "$T/nc.err" || fail "--no-cache reused tokens"
    grep -q '"turn":3' "$T/mt$mode.jsonl" || fail "no third turn in the dump ($mode)"
    cmp -s "$T/mt$mode.jsonl" "$T/nc$mode.jsonl" || fail "KV reuse changed the log-probabilities ($mode)"
done

# slash commands from a pipe
printf '/think-max\n/nothink\n/ctx 2048\n/read %s\n/bogus\n/quit\nnot reached\n' "$ROOT/tests/data/oracle/tiny-a/config.json" |
    "$DS4" -m "$MODEL" --temp 0 -n 5 >"$T/sl.out" 2>"$T/sl.err" || fail "slash commands exit"
grep -q 'thinking: max (served as high' "$T/sl.err" || fail "/think-max below the context gate"
grep -q 'thinking: none' "$T/sl.err" || fail "/nothink"
grep -q 'context: 2048 tokens' "$T/sl.err" || fail "/ctx"
grep -q '(read [0-9]* bytes from' "$T/sl.err" || fail "/read"
[ "$(grep -c '^\[max tokens: 5 tokens' "$T/sl.err")" = 1 ] || fail "/read should run exactly one turn: $(cat "$T/sl.err")"
grep -q 'unknown command /bogus' "$T/sl.err" || fail "unknown command"

# SIGINT during a long prefill cancels it: exit 130, no reply
for i in $(seq 1500); do printf 'the cache of layer %d holds tokens. ' "$i"; done >"$T/long.txt"
"$DS4" -m "$MODEL" --ctx 32768 --nothink -p "$(cat "$T/long.txt")" >"$T/pc.out" 2>"$T/pc.err" &
pid=$!
sleep "$SLOW"
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" = 130 ] || fail "SIGINT during prefill: exit $rc, expected 130 ($(cat "$T/pc.err"))"
grep -q '^\[prefill cancelled' "$T/pc.err" || fail "SIGINT during prefill: $(cat "$T/pc.err")"
[ ! -s "$T/pc.out" ] || fail "a reply after a cancelled prefill"

# refusals
"$DS4" -m "$MODEL" --temp abc -p x >/dev/null 2>"$T/e1"; [ $? = 2 ] || fail "--temp abc accepted"
grep -q -- "--temp 'abc'" "$T/e1" || fail "--temp message: $(cat "$T/e1")"
"$DS4" -m "$MODEL" --frobnicate >/dev/null 2>"$T/e2"; [ $? = 2 ] || fail "unknown option accepted"
"$DS4" -m "$T/none.gguf" -p x >/dev/null 2>"$T/e3"; [ $? = 1 ] || fail "missing model: exit"
grep -q "none.gguf" "$T/e3" || fail "missing model: message does not name the file: $(cat "$T/e3")"
"$DS4" -m "$MODEL" --ctx 16 -p "$(head -c 400 "$ROOT/tests/data/oracle/tiny-a/config.json")" >/dev/null 2>"$T/e4"; [ $? = 1 ] || fail "prompt over the context: exit"
grep -q 'context is 16' "$T/e4" || fail "prompt over the context: $(cat "$T/e4")"
"$DS4" -m "$MODEL" --dir-steering-ffn 2 -p x >/dev/null 2>"$T/e5"; [ $? = 1 ] || fail "steering scale without a file"
# steering with the oracle's vectors changes the answer, scale 0 does not
"$DS4" -m "$MODEL" -p "Hello there" --nothink --temp 0 -n 24 -q --dir-steering-file "$ROOT/tests/data/oracle/tiny-a/steering.f32" --dir-steering-ffn 0 >"$T/st0" || fail "steering 0"
"$DS4" -m "$MODEL" -p "Hello there" --nothink --temp 0 -n 24 -q --dir-steering-file "$ROOT/tests/data/oracle/tiny-a/steering.f32" --dir-steering-ffn 8 --dir-steering-attn 4 >"$T/st8" || fail "steering 8"
cmp -s "$T/a.out" "$T/st0" || fail "steering scale 0 changed the answer"
cmp -s "$T/a.out" "$T/st8" && fail "steering scale 8 did not change the answer"
echo "ok"
