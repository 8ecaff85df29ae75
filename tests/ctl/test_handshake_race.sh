#!/usr/bin/env bash
# Lease-before-read vs stopping-before-recount (spec §21.7): with no idle grace the
# watchdog tries to stop the server the moment the last client goes, while new clients
# keep arriving. Every ensure that reports ready must leave a server that answers
# right away: none may be handed a server that is about to get SIGTERM.
source "$(dirname "$0")/lib.sh"
DS4_IDLE_GRACE_S=0 DS4_SHUTDOWN_GRACE_S=2 FAKE_LOAD_MS=100 setup_runtime
n=${DS4_TEST_QUICK:+6}; n=${n:-12}
for i in $(seq "$n"); do
    sleep 300 & c=$!
    out=$("$DS4CTL" ensure --client-pid $c) || { kill -9 $c; fail "ensure $i failed: $out"; }
    code=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$DS4_PORT/v1/models', timeout=2).status)" 2>/dev/null)
    [ "$code" = 200 ] || { kill -9 $c; fail "iteration $i: ready server did not answer ($code): $out"; }
    sleep 0.$((RANDOM % 10))
    kill -9 $c; wait $c 2>/dev/null
    sleep 0.$((RANDOM % 10))$((RANDOM % 10))
done
echo "ok ($n rounds, $(grep -c 'sent SIGTERM' "$DS4_HOME/log") stops, $(grep -c '\] start ds4-server$' "$DS4_HOME/log") starts, $(grep -c 'a lease appeared; not stopping' "$DS4_HOME/log") aborted stops)"
