#!/usr/bin/env bash
# A server that dies after it was ready (crash, OOM kill): the watchdog notices within
# a poll, logs it and forgets the record; the next ensure starts a fresh server.
source "$(dirname "$0")/lib.sh"
DS4_IDLE_GRACE_S=30 setup_runtime
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
"$DS4CTL" ensure --client-pid $c >/dev/null || fail "ensure failed"
s1=$(json_field "$DS4_HOME/server.json" pid)
kill -9 "$s1"
wait_for 5 grep -q "ds4-server pid=$s1 exited unexpectedly" "$DS4_HOME/log" || fail "crash not noticed"
wait_for 3 test ! -e "$DS4_HOME/server.json" || fail "dead server's record kept"
out=$("$DS4CTL" ensure --client-pid $c) || fail "ensure after the crash failed: $out"
s2=$(json_field "$DS4_HOME/server.json" pid)
[ "$s2" != "$s1" ] && alive "$s2" || fail "no new server after the crash"
[ "$(grep -c '\] start ds4-server$' "$DS4_HOME/log")" = 2 ] || fail "expected exactly two spawns"
"$DS4CTL" stop --force >/dev/null
echo ok
