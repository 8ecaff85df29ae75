#!/usr/bin/env bash
# test_shutdown.sh - SIGTERM while a streaming generation runs and another
# request waits (spec/server.md §1.5): the running stream ends with an SSE
# error event ("shutdown requested"), the queued request is answered, the
# process exits 0 promptly.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 not installed"
python3 -c 'import json; print(json.dumps([{"match": "LONGTEXT", "text": " ".join("word%d" % (i % 10) for i in range(1000))}]))' >"$TMP/long.json"
start_server --test-script "$TMP/long.json"
curl -sN -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"LONGTEXT a"}],"max_tokens":3000,"stream":true}' \
    "$BASE/v1/chat/completions" >"$TMP/s1" &
c1=$!
sleep 0.3
curl -s -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"LONGTEXT b"}],"max_tokens":3000}' \
    "$BASE/v1/chat/completions" >"$TMP/s2" &
c2=$!
# The second request must be queued before the signal (a fixed sleep lost
# that race on a loaded machine: curl had not connected yet).
for _ in $(seq 100); do
    curl -s "$BASE/metrics" | grep -q '^ds4_queue_depth [1-9]' && break
    sleep 0.05
done
curl -s "$BASE/metrics" | grep -q '^ds4_queue_depth [1-9]' || fail "second request never queued"
grep -q '"reasoning_content":"' "$TMP/s1" || fail "stream had not started: $(head -c 300 "$TMP/s1")"
t0=$SECONDS
stop_server
(( SECONDS - t0 <= 10 )) || fail "shutdown took $((SECONDS - t0)) s"
[[ $SERVER_STATUS == 0 ]] || fail "exit status $SERVER_STATUS after SIGTERM"
wait $c1 $c2
tail -n 3 "$TMP/s1" | grep -q '"message":"shutdown requested"' || fail "stream did not end with the shutdown error: $(tail -c 300 "$TMP/s1")"
grep -q 'shutdown requested' "$TMP/s2" || fail "queued request got: $(head -c 300 "$TMP/s2")"
echo "shutdown checks passed"
