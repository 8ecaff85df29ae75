#!/usr/bin/env bash
# Someone else on the port: a non-ds4 program is reported (exit 10, its pid and
# command line) and never killed; a ds4-server started by hand is used as unmanaged,
# `stop` refuses to touch it (exit 13), and the watchdog leaves it running.
source "$(dirname "$0")/lib.sh"
setup_runtime
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
python3 -m http.server --bind 127.0.0.1 "$DS4_PORT" >/dev/null 2>&1 & other=$!; PIDS_TO_KILL+=($other)
wait_for 5 bash -c "$DS4CTL status | grep -q 'port owner    pid $other'" || fail "listener not seen"
out=$("$DS4CTL" ensure --client-pid $c); rc=$?
[ $rc -eq 10 ] || fail "foreign listener: exit $rc, expected 10: $out"
grep -q "port $DS4_PORT is in use by pid $other (.*http.server" <<<"$out" || fail "message does not name the owner: $out"
alive $other || fail "the foreign process was killed"
grep -q 'start ds4-server' "$DS4_HOME/log" && fail "a server was spawned onto a taken port"
kill $other; wait $other 2>/dev/null

# a hand-started ds4-server (no ds4ctl marker)
env -u DS4_HOME "$DS4_SERVER_BIN" --port "$DS4_PORT" > "$T/hand.log" 2>&1 & hand=$!; PIDS_TO_KILL+=($hand)
wait_for 5 grep -q listening "$T/hand.log" || fail "hand server did not start"
out=$("$DS4CTL" ensure --client-pid $c) || fail "ensure with a hand-started ds4-server failed: $out"
grep -q "using an unmanaged ds4-server on :$DS4_PORT (pid $hand)" <<<"$out" || fail "no unmanaged warning: $out"
grep -q '"managed": false' "$DS4_HOME/server.json" || fail "not recorded as unmanaged"
"$DS4CTL" stop --force >/dev/null; rc=$?
[ $rc -eq 13 ] || fail "stop of an unmanaged server: exit $rc, expected 13"
"$DS4CTL" release --client-pid $c
sleep 4
alive $hand || fail "the watchdog killed a hand-started server"
echo ok
