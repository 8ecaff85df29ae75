#!/usr/bin/env bash
# test_reuse.sh - KV prefix reuse (spec/server.md §12.1, §14): a second
# request that extends the first conversation prefills only the new tokens.
# Checked three ways: usage cached/cache_write tokens, the /metrics counters,
# and Anthropic's three-way input split summing to the prompt size.
source "$(dirname "$0")/lib.sh"
start_server --test-script "$HERE/script.json"
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
echo "prefix reuse ok"
