#!/usr/bin/env bash
# Five `ds4ctl ensure` at once (five clients, slow-loading server) start exactly one
# server: the flock serialises the slow path, the others find the recorded server and
# only wait for readiness. A second round is served by the lock-free fast path.
source "$(dirname "$0")/lib.sh"
FAKE_LOAD_MS=1500 setup_runtime
pids=(); outs=()
for i in 1 2 3 4 5; do
    sleep 300 & c=$!; PIDS_TO_KILL+=($c)
    "$DS4CTL" ensure --client-pid $c > "$T/out.$i" 2>&1 & pids+=($!)
done
for i in 0 1 2 3 4; do wait "${pids[$i]}" || fail "ensure $((i+1)) failed: $(cat "$T/out.$((i+1))")"; done
n=$(grep -c '\] start ds4-server$' "$DS4_HOME/log")
[ "$n" = 1 ] || fail "expected one spawn, got $n"
spids=$(grep -ho '"type":"ready"[^}]*"pid":[0-9]*' "$T"/out.* | grep -o '[0-9]*$' | sort -u)
[ "$(wc -l <<<"$spids")" = 1 ] || fail "clients were given different servers: $spids"
[ "$(ls "$DS4_HOME/clients" | wc -l)" = 5 ] || fail "expected 5 leases: $(ls "$DS4_HOME/clients")"
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
out=$("$DS4CTL" ensure --client-pid $c) || fail "warm ensure failed: $out"
grep -q '"alreadyRunning":true' <<<"$out" || fail "warm ensure did not take the fast path: $out"
echo ok
