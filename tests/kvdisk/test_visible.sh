#!/usr/bin/env bash
# test_visible.sh - checkpoints keyed by what clients replay (spec/server.md
# §13.1, §11.4; issue 7):
#  * thinking turn: the client replays without the reasoning; after another
#    conversation replaced the live session, the evict checkpoint (keyed by
#    the visible transcript, holding the hidden reasoning) resumes it whole;
#  * Codex-style Responses tool loop across a restart: the shutdown
#    checkpoint carries the tool-id -> DSML map, the new process refills its
#    tool memory from it, renders the replayed call byte-exact, and resumes
#    with every token of the previous process cached;
#  * continued checkpoints during a long prefill: a later prompt that shares
#    only the first part restores the last continued frontier inside it.
source "$(dirname "$0")/lib.sh"
cat >"$TMP/s2.json" <<'JSON'
[
  {"match": "TOOLRESULT-42", "text": "The tool answered.</think>The directory has 42 files."},
  {"match": "TOOLTEST", "text": "I should list the files.</think>Listing files.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"bash\">\n<｜DSML｜parameter name=\"command\" string=\"true\">ls -la && echo \"done\"</｜DSML｜parameter>\n<｜DSML｜parameter name=\"timeout\" string=\"false\">30</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>"},
  {"text": "Let me think.</think>Hello from ds4."}
]
JSON
F=(--test-script "$TMP/s2.json" --kv-cache-min-tokens 8 --kv-cache-boundary-align-tokens 0)
D="$TMP/kv"
start_kv_server "${F[@]}" --kv-disk-dir "$D"

http POST /v1/chat/completions '{"messages":[{"role":"user","content":"hello there, thinking mode"}]}'
expect 200 '"reasoning_content":"Let me think."' "thinking 1"
t1=$(( $(num prompt_tokens "$BODY_OUT") + $(num completion_tokens "$BODY_OUT") ))
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"another conversation"}]}'
expect 200 '"content":"Hello from ds4."' "interruption"
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"hello there, thinking mode"},{"role":"assistant","content":"Hello from ds4."},{"role":"user","content":"again"}]}'
expect 200 '"content":"Hello from ds4."' "thinking 2"
(( $(num cached_tokens "$BODY_OUT") == t1 )) || fail "thinking 2 cached $(num cached_tokens "$BODY_OUT"), expected $t1 (prompt + hidden reasoning + answer from disk)"
grep -q 'visible-transcript key' "$TMP/server.log" || fail "no visible-transcript checkpoint"

TOOLS='"tools":[{"type":"function","name":"bash","parameters":{"type":"object"}}]'
http POST /v1/responses '{"input":"TOOLTEST codex",'"$TOOLS"'}'
expect 200 '"type":"function_call"' "responses 1"
call_id=$(sed -n 's/.*"call_id":"\(call_[0-9a-f]*\)".*/\1/p' <<<"$BODY_OUT")
args=$(python3 -c 'import json,sys; o=json.loads(sys.stdin.read()); print(json.dumps([i for i in o["output"] if i["type"]=="function_call"][0]["arguments"]))' <<<"$BODY_OUT")
msg=$(python3 -c 'import json,sys; o=json.loads(sys.stdin.read()); print(json.dumps([i for i in o["output"] if i["type"]=="message"][0]["content"][0]["text"]))' <<<"$BODY_OUT")
r1=$(( $(num input_tokens "$BODY_OUT") + $(num output_tokens "$BODY_OUT") ))
stop_kv_server
grep -q 'saved shutdown checkpoint' "$TMP/server-$KV_RUN.log" || fail "no shutdown checkpoint"

start_kv_server "${F[@]}" --kv-disk-dir "$D"
grep -q 'restored 1 tool-call ids' "$TMP/server.log" || fail "tool map not restored at startup: $(grep 'kv cache' "$TMP/server.log")"
http POST /v1/responses "{\"input\":[{\"role\":\"user\",\"content\":\"TOOLTEST codex\"},{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":$msg}]},{\"type\":\"function_call\",\"call_id\":\"$call_id\",\"name\":\"bash\",\"arguments\":$args},{\"type\":\"function_call_output\",\"call_id\":\"$call_id\",\"output\":\"TOOLRESULT-42\"}],$TOOLS}"
expect 200 'The directory has 42 files.' "responses 2 after restart"
(( $(num cached_tokens "$BODY_OUT") == r1 )) || fail "responses replay after restart cached $(num cached_tokens "$BODY_OUT"), expected $r1"
stop_kv_server
echo "thinking resume $t1 tokens; Codex tool loop after restart $r1 tokens"

# Continued checkpoints every 64 tokens of a ~400-token prefill.
D2="$TMP/kv2"
start_kv_server "${F[@]}" --kv-disk-dir "$D2" --kv-cache-continued-interval-tokens 64 --kv-cache-cold-max-tokens 0
long=$(python3 -c 'print(" ".join("word%d" % i for i in range(150)))')
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"'"$long"' END-A"}],"thinking":false,"max_tokens":4}'
[[ $STATUS == 200 ]] || fail "long prompt: $STATUS"
pl=$(num prompt_tokens "$BODY_OUT")
n_cont=$(grep -c 'saved continued checkpoint' "$TMP/server.log")
(( n_cont == pl / 64 )) || fail "$n_cont continued checkpoints for a $pl-token prompt, expected $((pl / 64))"
# Same start, different end, and a different conversation in between.
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"something else"}],"thinking":false,"max_tokens":4}'
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"'"$long"' END-B"}],"thinking":false,"max_tokens":4}'
rc=$(num cached_tokens "$BODY_OUT")
(( rc > 0 && rc % 64 == 0 && rc >= pl - 64 - 8 )) || fail "shared-start prompt cached $rc, expected the last continued frontier below $pl"
stop_kv_server
echo "continued: $n_cont checkpoints over $pl tokens; a diverging prompt restored $rc"

# Continued checkpoints during decode: a short prompt and a long greedy
# answer (no script entry matches) cross the 64-token frontiers while
# generating; the generation itself is unchanged by the saves.
start_kv_server "${KV_FLAGS[@]}" --kv-disk-dir "$TMP/kv3" --kv-cache-continued-interval-tokens 64 --kv-cache-cold-max-tokens 0
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"tell a long story"}],"thinking":false,"temperature":0,"max_tokens":150,"logprobs":true}'
[[ $STATUS == 200 ]] || fail "long answer: $STATUS"
ans=$BODY_OUT
total=$(( $(num prompt_tokens "$ans") + $(num completion_tokens "$ans") ))
n_dec=$(grep -c 'saved continued checkpoint' "$TMP/server.log")
(( total >= 64 )) || fail "the greedy answer stopped after $total tokens: cannot cross a frontier"
(( n_dec == total / 64 )) || fail "$n_dec continued checkpoints during a $total-token run, expected $((total / 64))"
stop_kv_server
start_kv_server "${KV_FLAGS[@]}"
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"tell a long story"}],"thinking":false,"temperature":0,"max_tokens":150,"logprobs":true}'
python3 -c 'import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); sys.exit(a["choices"][0]!=b["choices"][0])' "$ans" "$BODY_OUT" \
    || fail "decode with continued saves differs from decode without"
stop_kv_server
echo "decode: $n_dec continued checkpoints over $total tokens, output unchanged"
