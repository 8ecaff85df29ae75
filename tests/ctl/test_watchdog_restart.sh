#!/usr/bin/env bash
# A killed watchdog is replaced: by the next lease heartbeat (`ds4ctl lease`) and by
# the next `ensure` (whose fast path checks the watchdog's flock). The replacement
# still stops the server once the client is gone.
source "$(dirname "$0")/lib.sh"
setup_runtime
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
"$DS4CTL" ensure --client-pid $c >/dev/null || fail "ensure failed"
wd() { json_field "$DS4_HOME/watchdog.state.json" pid; }
w1=$(wd); alive "$w1" || fail "no watchdog after ensure"
kill -9 "$w1"; wait_for 3 bash -c "! kill -0 $w1 2>/dev/null || grep -q '^State:.*Z' /proc/$w1/status"
"$DS4CTL" status | grep -q 'watchdog      not running' || fail "status does not show the missing watchdog"
"$DS4CTL" lease --client-pid $c || fail "lease failed"
wait_for 3 bash -c "[ \"\$(sed -n 's/.*\"pid\": \\([0-9]*\\).*/\\1/p' '$DS4_HOME/watchdog.state.json' | head -n1)\" != $w1 ]" || fail "lease did not restart the watchdog"
w2=$(wd); alive "$w2" || fail "restarted watchdog not alive"
kill -9 "$w2"; wait_for 3 bash -c "! kill -0 $w2 2>/dev/null || grep -q '^State:.*Z' /proc/$w2/status"
out=$("$DS4CTL" ensure --client-pid $c) || fail "ensure after killing the watchdog failed: $out"
w3=$(wd); [ "$w3" != "$w2" ] && alive "$w3" || fail "ensure did not restart the watchdog"
spid=$(json_field "$DS4_HOME/server.json" pid)
"$DS4CTL" release --client-pid $c
wait_for 10 test ! -e "$DS4_HOME/server.json" || fail "restarted watchdog did not stop the server"
alive "$spid" && fail "server still alive"
echo ok
