#!/usr/bin/env bash
# The watchdog stops the server after the last lease is gone, once the idle grace has
# passed (DS4_IDLE_GRACE_S; default 60 s, the handbook's "about 60 seconds"), and not
# before. Covers a killed client (pid dead) and an explicit release, and a server that
# ignores SIGTERM (SIGKILL after DS4_SHUTDOWN_GRACE_S).
source "$(dirname "$0")/lib.sh"
[ "$(env -u DS4_IDLE_GRACE_S "$DS4CTL" config --json | grep -o '"idleGraceS": [0-9]*')" = '"idleGraceS": 60' ] \
    || fail "default idle grace is not 60 s"
DS4_IDLE_GRACE_S=2 setup_runtime
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
"$DS4CTL" ensure --client-pid $c >/dev/null || fail "ensure failed"
spid=$(json_field "$DS4_HOME/server.json" pid)
alive "$spid" || fail "server not running"
"$DS4CTL" status | grep -q 'watchdog      running' || fail "no watchdog"
kill -9 $c; t0=$SECONDS
sleep 1
alive "$spid" || fail "server stopped before the idle grace"
wait_for 8 bash -c "! kill -0 $spid 2>/dev/null || grep -q '^State:.*Z' /proc/$spid/status" || fail "server still running $((SECONDS - t0)) s after the last client died"
echo "stopped after $((SECONDS - t0)) s (grace 2 s, poll 1 s)"
wait_for 3 test ! -e "$DS4_HOME/server.json" || fail "server.json left behind"
wait_for 3 bash -c "! $DS4CTL status | grep -q 'watchdog      running'" || fail "watchdog did not exit"
grep -q 'removed lease .* (pid dead)' "$DS4_HOME/log" || fail "dead client's lease not reported"

# Explicit release; a server that ignores SIGTERM is killed after the shutdown grace.
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
FAKE_IGNORE_TERM=1 DS4_SHUTDOWN_GRACE_S=1 "$DS4CTL" ensure --client-pid $c >/dev/null || fail "second ensure failed"
spid=$(json_field "$DS4_HOME/server.json" pid)
"$DS4CTL" release --client-pid $c || fail "release failed"
[ ! -e "$DS4_HOME/clients/$c.json" ] || fail "lease still there after release"
wait_for 12 bash -c "! kill -0 $spid 2>/dev/null || grep -q '^State:.*Z' /proc/$spid/status" || fail "SIGTERM-ignoring server not killed"
grep -q "still alive after 1s; sending SIGKILL" "$DS4_HOME/log" || fail "no SIGKILL escalation logged"
echo ok
