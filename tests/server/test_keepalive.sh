#!/usr/bin/env bash
# test_keepalive.sh - stream keepalives (spec/server.md §9.1 REC): with a
# tiny --sse-ping-interval every stream carries them during prefill: chat
# ": prefill" comments, Anthropic `ping` events, repeated Responses
# `response.in_progress` events (Codex and Claude Code count events, not
# comments), and the streams still end properly.
source "$(dirname "$0")/lib.sh"
start_server --test-script "$HERE/script.json" --sse-ping-interval 0.001
long=$(python3 -c 'print(" ".join("w%d" % i for i in range(600)))')
sse() { curl -sN -H 'Content-Type: application/json' --data-binary "$2" "$BASE$1" >"$TMP/sse"; }

sse /v1/chat/completions "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}]}"
grep -q '^: prefill$' "$TMP/sse" || fail "chat: no keepalive comment: $(head -c 600 "$TMP/sse")"
tail -n 2 "$TMP/sse" | grep -q '^data: \[DONE\]$' || fail "chat stream did not end with [DONE]"

# (another prompt than the chat request's: reusing its whole KV would leave no prefill to ping in)
sse /v1/messages "{\"stream\":true,\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"x $long\"}]}"
grep -q '^event: ping$' "$TMP/sse" || fail "anthropic: no ping event"
head -n 1 "$TMP/sse" | grep -q '^event: message_start$' || fail "anthropic: message_start is not first"
grep -q '^event: message_stop$' "$TMP/sse" || fail "anthropic: no message_stop"

sse /v1/responses "{\"stream\":true,\"input\":\"$long\"}"
n=$(grep -c '^event: response.in_progress$' "$TMP/sse")
(( n >= 2 )) || fail "responses: $n in_progress events, expected repeated ones"
grep -q '^event: response.completed$' "$TMP/sse" || fail "responses: no response.completed"
seqs=$(sed -n 's/.*"sequence_number":\([0-9]*\).*/\1/p' "$TMP/sse" | tr '\n' ' ')
python3 -c 'import sys; s=list(map(int,sys.argv[1].split())); sys.exit(0 if s==list(range(len(s))) else 1)' "$seqs" \
    || fail "responses: sequence numbers not 0..n-1: $seqs"
echo "keepalive checks passed"
