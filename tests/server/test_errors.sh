#!/usr/bin/env bash
# test_errors.sh - raw HTTP (curl) checks of every error path of §8 and the
# cheap endpoints: statuses, envelopes per API family, limits, auth, CORS.
source "$(dirname "$0")/lib.sh"
start_server --max-body-mb 1 --max-connections 6

# malformed JSON, per family
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"x"}'
expect 400 '{"error":{"message":"invalid JSON request' "malformed chat"
http POST /v1/messages '{"messages":'
expect 400 '{"type":"error","error":{"type":"invalid_request_error","message":"invalid JSON request' "malformed anthropic"
http POST /v1/responses 'not json'
expect 400 '"type":"invalid_request_error"' "malformed responses"
http POST /v1/chat/completions '[1,2]'
expect 400 'JSON object' "array body"
# wrong types
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"stream":"yes"}'
expect 400 "field 'stream' must be a boolean" "stream type"
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"max_tokens":"10"}'
expect 400 'max_tokens' "max_tokens type"
http POST /v1/messages '{"messages":[{"role":"user","content":"x"}],"stop_sequences":7}'
expect 400 '"type":"error"' "stop_sequences type"
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"extreme"}'
expect 400 'reasoning_effort' "bad effort"
# unknown roles, empty and missing fields
http POST /v1/chat/completions '{"messages":[{"role":"wizard","content":"x"}]}'
expect 400 'role \"wizard\"' "unknown chat role"
http POST /v1/messages '{"messages":[{"role":"system","content":"x"},{"role":"bot","content":"y"}]}'
expect 400 '"type":"error"' "unknown anthropic role"
http POST /v1/chat/completions '{"messages":[]}'
expect 400 'messages must not be empty' "empty chat messages"
http POST /v1/messages '{"messages":[],"max_tokens":5}'
expect 400 '"type":"invalid_request_error","message":"invalid JSON request: messages must not be empty"' "empty anthropic messages"
http POST /v1/chat/completions '{"model":"x"}'
expect 400 'missing messages' "missing messages"
http POST /v1/responses '{"model":"x"}'
expect 400 'missing input' "missing input"
http POST /v1/completions '{"max_tokens":3}'
expect 400 'missing prompt' "missing prompt"
# context length (ctx 4096)
long=$(head -c 30000 /dev/zero | tr '\0' 'a')
http POST /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"$long b c d e f g h i j k\"}]}"
expect 400 '"param":"messages","code":"context_length_exceeded"' "ctx chat"
[[ $BODY_OUT == *'"n_ctx":4096'* ]] || fail "ctx body lacks n_ctx: $BODY_OUT"
http POST /v1/completions "{\"prompt\":\"$long x y z w v u t s r q p o n m l k j\"}"
expect 400 '"param":"prompt"' "ctx completions"
http POST /v1/responses "{\"input\":\"$long x y z w v u t s r q p o n m l k j\"}"
expect 400 '"param":"input"' "ctx responses"
http POST /v1/messages "{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"$long x y z w v u t s r q p o n m l k j\"}]}"
expect 400 '{"type":"error","error":{"type":"invalid_request_error","message":"Prompt has ' "ctx anthropic"
# features refused rather than ignored
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{}}}}'
expect 400 'constrained decoding' "json_schema"
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"n":3}'
expect 400 'n=3 is not supported' "n>1"
http POST /v1/responses '{"input":"x","tool_choice":"required"}'
expect 400 'tool_choice=required not supported' "responses tool_choice"
http POST /v1/responses '{"input":"x","previous_response_id":"resp_nope"}'
expect 400 "Previous response with id 'resp_nope' not found" "unknown previous_response_id"
# tool outputs answering calls nobody made (§12.4)
http POST /v1/responses '{"input":[{"type":"function_call_output","call_id":"call_ghost","output":"x"}]}'
expect 400 'Responses continuation state is not available for call_id call_ghost; retry by replaying the full input history' "orphan responses output"
http POST /v1/messages '{"max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_ghost","content":"x"}]}]}'
expect 400 '"message":"Anthropic continuation state is not available for tool_use_id toolu_ghost' "orphan anthropic result"
# HTTP/1.1 request bodies: chunked transfer encoding and Expect: 100-continue (§18.17)
STATUS=$(printf '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}' | curl -s -o "$TMP/resp" -w '%{http_code}' \
    -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary @- "$BASE/v1/chat/completions")
BODY_OUT=$(cat "$TMP/resp")
expect 200 '"object":"chat.completion"' "chunked body"
STATUS=$(curl -s -o "$TMP/resp" -w '%{http_code}' -H 'Expect: 100-continue' -H 'Content-Type: application/json' \
    --data-binary '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}' "$BASE/v1/chat/completions")
BODY_OUT=$(cat "$TMP/resp")
expect 200 '"object":"chat.completion"' "expect 100-continue"
# JSON nesting limit
deep=$(printf '[%.0s' $(seq 300))$(printf ']%.0s' $(seq 300))
http POST /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"metadata\":$deep}"
expect 400 'nesting deeper than 256' "depth"
# body limit (1 MiB here)
head -c 2000000 /dev/zero | tr '\0' 'a' >"$TMP/big"
STATUS=$(curl -s -o "$TMP/resp" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/big" "$BASE/v1/messages")
BODY_OUT=$(cat "$TMP/resp")
expect 413 '"type":"request_too_large"' "body limit"
# routing
http GET /v1/nothing
expect 404 '{"error":{"message":"unknown endpoint","type":"invalid_request_error"}}' "unknown path"
http GET /v1/chat/completions
expect 404 'unknown endpoint' "GET on POST route"
http POST /v1/chat/completions/ '{}'
expect 404 'unknown endpoint' "trailing slash"
http GET /v1/models/deepseek-chat
expect 200 '"id":"deepseek-chat"' "alias model"
http GET /v1/models/gpt-4
expect 404 'unknown endpoint' "unknown model"
http GET '/v1/models?client_version=0.1'
expect 200 '"models":[]' "codex models"
STATUS=$(curl -s -o /dev/null -D "$TMP/hdr" -w '%{http_code}' -X OPTIONS "$BASE/v1/chat/completions")
[[ $STATUS == 204 ]] || fail "OPTIONS status $STATUS"
grep -qi '^content-type' "$TMP/hdr" && fail "204 carries a Content-Type"
grep -qi '^access-control' "$TMP/hdr" && fail "CORS headers without --cors"
# cheap endpoints
http GET /health
expect 200 '"status":"ok"' "health"
http POST /tokenize '{"content":"hello<think>","with_pieces":true}'
expect 200 '"piece":"<think>"' "tokenize"
ids=$(curl -s -X POST -d '{"content":"hello world"}' "$BASE/tokenize" | sed 's/.*"tokens":\(\[[^]]*\]\).*/\1/')
http POST /detokenize "{\"tokens\":$ids}"
expect 200 '"content":"hello world"' "detokenize"
http POST /detokenize '{"tokens":[99999]}'
expect 400 'not a token id' "detokenize range"
http POST '/v1/messages/count_tokens?beta=true' '{"messages":[{"role":"user","content":"hi"}]}'
expect 200 '"input_tokens":' "count_tokens"
http POST /v1/messages/count_tokens '{"messages":5}'
expect 400 '"type":"error"' "count_tokens bad"
http GET /props
expect 200 '"n_ctx":4096' "props"
http GET /metrics
expect 200 'ds4_requests_total{endpoint="chat"}' "metrics"
[[ $BODY_OUT == *ds4_queue_depth* && $BODY_OUT == *ds4_errors_total* ]] || fail "metrics lacks gauges: $BODY_OUT"

# header block limit (MHD answers 431) and the connection cap: idle sockets
# beyond --max-connections are refused, and the server recovers once they go.
python3 - "$PORT" <<'PY' || fail "header/connection limits"
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
s.settimeout(5)
head = s.recv(64)
assert head.startswith(b"HTTP/1.1 431"), head
s.close()
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(6)]
time.sleep(0.3)
extra = socket.create_connection(("127.0.0.1", port))
extra.settimeout(3)
try:
    extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    got = extra.recv(64)
except OSError:
    got = b""
assert got == b"", got          # refused while the cap is reached
for c in idle: c.close()
time.sleep(0.3)
ok = socket.create_connection(("127.0.0.1", port))
ok.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
ok.settimeout(5)
assert ok.recv(64).startswith(b"HTTP/1.1 200"), "not recovered"
PY

# --- auth and CORS (second server) ---
stop_server
start_server --api-key sekret --cors
http GET /health
expect 200 '"status":"ok"' "health open with key"
http POST /v1/chat/completions '{"messages":[{"role":"user","content":"x"}]}'
expect 401 '"type":"authentication_error"' "no key"
http POST /v1/messages '{"messages":[{"role":"user","content":"x"}]}'
expect 401 '{"type":"error","error":{"type":"authentication_error"' "no key anthropic"
STATUS=$(curl -s -o "$TMP/resp" -w '%{http_code}' -H 'Authorization: Bearer sekret' -d '{"messages":[{"role":"user","content":"PLAIN"}],"max_tokens":2}' "$BASE/v1/chat/completions")
[[ $STATUS == 200 ]] || fail "bearer key refused: $STATUS $(cat "$TMP/resp")"
STATUS=$(curl -s -o "$TMP/resp" -w '%{http_code}' -H 'x-api-key: sekret' -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}' "$BASE/v1/messages")
[[ $STATUS == 200 ]] || fail "x-api-key refused: $STATUS $(cat "$TMP/resp")"
STATUS=$(curl -s -o /dev/null -D "$TMP/hdr" -w '%{http_code}' -X OPTIONS "$BASE/v1/messages")
[[ $STATUS == 204 ]] || fail "OPTIONS with cors: $STATUS"
grep -qi '^access-control-allow-origin: \*' "$TMP/hdr" || fail "no CORS header with --cors"
curl -s -D "$TMP/hdr" -o /dev/null "$BASE/v1/nothing"
grep -qi '^access-control-allow-origin' "$TMP/hdr" || fail "no CORS header on errors"
stop_server
[[ $SERVER_STATUS == 0 ]] || fail "SIGTERM exit status $SERVER_STATUS"
echo "all error checks passed"
