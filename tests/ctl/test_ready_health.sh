#!/usr/bin/env bash
# Readiness with a server that listens before its model is loaded (as this
# repository's ds4-server does): /v1/models answers at once but /health is 503
# "Loading model"; ensure must wait for /health, not report ready early.
source "$(dirname "$0")/lib.sh"
FAKE_LOAD_MS=50 setup_runtime
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
out=$(FAKE_HEALTH_LOADING_MS=2500 "$DS4CTL" ensure --client-pid $c) || fail "ensure failed: $out"
ms=$(grep -o '"elapsedMs":[0-9]*' <<<"$out" | grep -o '[0-9]*$')
[ "${ms:-0}" -ge 2400 ] || fail "reported ready after $ms ms, while /health still said loading"
code=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$DS4_PORT/health', timeout=2).status)")
[ "$code" = 200 ] || fail "/health after ready: $code"
"$DS4CTL" stop --force >/dev/null
echo "ok (ready after $ms ms)"
