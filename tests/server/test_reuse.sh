#!/usr/bin/env bash
# test_reuse.sh - KV prefix reuse (spec/server.md §12.1, §14): a second
# request that extends the first conversation prefills only the new tokens.
# Checked three ways: usage cached/cache_write tokens, the /metrics counters,
# and Anthropic's three-way input split summing to the prompt size.
source "$(dirname "$0")/lib.sh"
start_server --test-script "$HERE/script.json" --trace "$TMP/trace.txt"
num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$2" | head -n 1; }
metric() { curl -s "$BASE/metrics" | sed -n "s/^$1 \([0-9]*\).*/\1/p"; }

# Turn 1 (thinking off so the next request re-renders the answer exactly).
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"PLAIN first question"}],"thinking":false,"max_tokens":64}'
expect 200 '"content":"Plain answer without thinking."' "turn 1"
p1=$(num prompt_tokens "$BODY_OUT"); c1=$(num completion_tokens "$BODY_OUT")
[[ $(num cached_tokens "$BODY_OUT") == 0 ]] || fail "turn 1 claims cached tokens: $BODY_OUT"
before=$(metric ds4_prefilled_tokens_total)

# Turn 2 extends turn 1 with the assistant answer and a new user message.
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"PLAIN first question"},{"role":"assistant","content":"Plain answer without thinking."},{"role":"user","content":"PLAIN second"}],"thinking":false,"max_tokens":64}'
expect 200 '"content":"Plain answer without thinking."' "turn 2"
p2=$(num prompt_tokens "$BODY_OUT"); r2=$(num cached_tokens "$BODY_OUT"); w2=$(num cache_write_tokens "$BODY_OUT")
after=$(metric ds4_prefilled_tokens_total)
(( r2 >= p1 + c1 )) || fail "turn 2 cached $r2 tokens, expected >= turn 1 prompt+completion $((p1 + c1))"
(( r2 + w2 == p2 )) || fail "cached $r2 + written $w2 != prompt $p2"
(( after - before == w2 )) || fail "metrics prefilled grew by $((after - before)), usage says $w2"
(( w2 < p2 / 2 )) || fail "turn 2 prefilled $w2 of $p2 tokens: no reuse"
echo "turn 1: prompt $p1 + gen $c1; turn 2: prompt $p2, cached $r2, prefilled $w2"

# Turn 3 through Anthropic: input + cache_read + cache_creation = prompt, and
# the answer of turn 2 (still in the live session) is reused.
http POST /v1/messages '{"max_tokens":64,"thinking":{"type":"disabled"},"messages":[{"role":"user","content":"PLAIN first question"},{"role":"assistant","content":"Plain answer without thinking."},{"role":"user","content":"PLAIN second"},{"role":"assistant","content":"Plain answer without thinking."},{"role":"user","content":"PLAIN third"}]}'
expect 200 '"stop_reason":"end_turn"' "anthropic"
i=$(num input_tokens "$BODY_OUT"); cr=$(num cache_read_input_tokens "$BODY_OUT"); cc=$(num cache_creation_input_tokens "$BODY_OUT")
(( cr >= p2 )) || fail "anthropic turn 3 reused $cr tokens, expected >= $p2: $BODY_OUT"
http POST /v1/messages/count_tokens '{"messages":[{"role":"user","content":"PLAIN first question"},{"role":"assistant","content":"Plain answer without thinking."},{"role":"user","content":"PLAIN second"},{"role":"assistant","content":"Plain answer without thinking."},{"role":"user","content":"PLAIN third"}],"thinking":{"type":"disabled"}}'
n3=$(num input_tokens "$BODY_OUT")
(( i + cr + cc == n3 )) || fail "anthropic split $i+$cr+$cc != count_tokens $n3"
# A stop-string hit does not evaluate past the cut, so the session stays a
# true history: the next turn, which replays the cut answer, reuses it.
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"STOPTEST"}],"thinking":false,"stop":["5"],"max_tokens":64}'
expect 200 '"content":" 3, 4, "' "stop 1"
ps=$(num prompt_tokens "$BODY_OUT"); cs=$(num completion_tokens "$BODY_OUT")
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"STOPTEST"},{"role":"assistant","content":" 3, 4, "},{"role":"user","content":"PLAIN go on"}],"thinking":false,"max_tokens":64}'
expect 200 '"content":" 3, 4, 5, 6, 7"' "stop 2"
(( $(num cached_tokens "$BODY_OUT") >= ps + cs - 1 )) || fail "session lost after a stop-string hit: $BODY_OUT"
# Thinking mode (the default): the replay drops the old reasoning, yet the
# live KV (which holds it) is continued through the visible transcript (§12.3).
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"hello"}]}'
expect 200 '"reasoning_content":"Let me think."' "thinking 1"
t1=$(( $(num prompt_tokens "$BODY_OUT") + $(num completion_tokens "$BODY_OUT") ))
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"Hello from ds4."},{"role":"user","content":"again"}]}'
expect 200 '"content":"Hello from ds4."' "thinking 2"
(( $(num cached_tokens "$BODY_OUT") == t1 )) || fail "thinking turn 2 cached $(num cached_tokens "$BODY_OUT"), expected $t1: $BODY_OUT"
# Codex-style Responses loop: full replay of the call without the hidden
# reasoning; the tool output is all that is prefilled.
http POST /v1/responses '{"input":"TOOLTEST codex","tools":[{"type":"function","name":"bash","parameters":{"type":"object"}}]}'
expect 200 '"type":"function_call"' "responses 1"
call_id=$(sed -n 's/.*"call_id":"\(call_[0-9a-f]*\)".*/\1/p' <<<"$BODY_OUT")
args=$(python3 -c 'import json,sys; o=json.loads(sys.stdin.read()); print(json.dumps([i for i in o["output"] if i["type"]=="function_call"][0]["arguments"]))' <<<"$BODY_OUT")
msg=$(python3 -c 'import json,sys; o=json.loads(sys.stdin.read()); print(json.dumps([i for i in o["output"] if i["type"]=="message"][0]["content"][0]["text"]))' <<<"$BODY_OUT")
r1=$(( $(num input_tokens "$BODY_OUT") + $(num output_tokens "$BODY_OUT") ))
http POST /v1/responses "{\"input\":[{\"role\":\"user\",\"content\":\"TOOLTEST codex\"},{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":$msg}]},{\"type\":\"function_call\",\"call_id\":\"$call_id\",\"name\":\"bash\",\"arguments\":$args},{\"type\":\"function_call_output\",\"call_id\":\"$call_id\",\"output\":\"TOOLRESULT-42\"}],\"tools\":[{\"type\":\"function\",\"name\":\"bash\",\"parameters\":{\"type\":\"object\"}}]}"
expect 200 'The directory has 42 files.' "responses 2"
(( $(num cached_tokens "$BODY_OUT") == r1 )) || fail "responses replay cached $(num cached_tokens "$BODY_OUT"), expected $r1: $BODY_OUT"
# --trace recorded every job with its cache decision and texts.
grep -q '^==== #1 .* chat model=deepseek-v4-flash stream=0 .* cached=0 ' "$TMP/trace.txt" || fail "trace lacks job 1: $(head -c 400 "$TMP/trace.txt")"
grep -q "^---- rendered prompt$" "$TMP/trace.txt" || fail "trace lacks the rendered prompt"
grep -q "^---- finish=stop gen=[0-9]* stop=5 " "$TMP/trace.txt" || fail "trace lacks the stop-string finish"
grep -q '"content":"PLAIN second"' "$TMP/trace.txt" || fail "trace lacks the raw request"
echo "prefix reuse ok"
