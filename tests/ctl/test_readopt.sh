#!/usr/bin/env bash
# A server ds4ctl spawned whose server.json was lost (deleted by hand, disk trouble) is
# recognised by the marker ds4ctl put in its environment (DS4CTL_HOME + spawn token),
# re-adopted as managed instead of being reported as a foreign process, and still
# stopped by the watchdog once the last client is gone.
source "$(dirname "$0")/lib.sh"
setup_runtime
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
"$DS4CTL" ensure --client-pid $c >/dev/null || fail "ensure failed"
spid=$(json_field "$DS4_HOME/server.json" pid)
rm "$DS4_HOME/server.json"
out=$("$DS4CTL" ensure --client-pid $c) || fail "ensure after losing server.json failed: $out"
grep -q "re-adopted ds4-server pid=$spid" "$DS4_HOME/log" || fail "not re-adopted"
[ "$(json_field "$DS4_HOME/server.json" pid)" = "$spid" ] || fail "record names another pid"
grep -q '"managed": true' "$DS4_HOME/server.json" || fail "re-adopted server not managed"
[ "$(grep -c '\] start ds4-server$' "$DS4_HOME/log")" = 1 ] || fail "a second server was spawned"
"$DS4CTL" release --client-pid $c
wait_for 10 test ! -e "$DS4_HOME/server.json" || fail "re-adopted server not stopped"
alive "$spid" && fail "re-adopted server still alive"
echo ok
