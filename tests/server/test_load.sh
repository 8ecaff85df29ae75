#!/usr/bin/env bash
# test_load.sh - 8 concurrent clients x 20 requests (4 x 5 with
# DS4_TEST_QUICK=1), a quarter of them disconnecting mid-stream; the server
# must end healthy, idle and correct. Real sampling (no test script).
source "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node not installed"
# Disconnecting requests ask for a ~2000-token scripted answer; the others sample.
python3 -c 'import json; print(json.dumps([{"match": "LONGTEXT", "text": " ".join("word%d" % (i % 10) for i in range(1000))}]))' >"$TMP/load-script.json"
start_server --max-queue 64 --test-script "$TMP/load-script.json"
if [[ -n ${DS4_TEST_QUICK:-} ]]; then export CLIENTS=4 PER=5; else export CLIENTS=8 PER=20; fi
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$SERVER_PID/status"; }
curl -s -d '{"messages":[{"role":"user","content":"warm"}],"max_tokens":4}' "$BASE/v1/chat/completions" >/dev/null
rss0=$(rss)
BASE=$BASE node "$HERE/load.mjs" || fail "load.mjs"
kill -0 "$SERVER_PID" || fail "server died under load"
rss1=$(rss)
echo "RSS before ${rss0} kB, after ${rss1} kB"
# Per-request leaks (e.g. per-thread caches) would grow this by hundreds of MB.
# (Sanitizer builds keep freed memory in quarantine: no bound there.)
grep -q __asan_init "$SERVER" || (( rss1 - rss0 < 65536 )) || fail "RSS grew by $(( (rss1 - rss0) / 1024 )) MiB under load"
