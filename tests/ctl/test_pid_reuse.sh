#!/usr/bin/env bash
# A reused pid is never mistaken for the server or a client: a server.json naming a
# live unrelated process (wrong start time, or right start time but another program)
# is treated as stale and nothing is signalled; a lease whose start time does not match
# its live pid is deleted by the watchdog as "start time mismatch".
source "$(dirname "$0")/lib.sh"
setup_runtime
sleep 300 & victim=$!; PIDS_TO_KILL+=($victim)
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
record() { # pid processStart processStartId
    cat > "$DS4_HOME/server.json" <<J
{
  "managedBy": "pi-sd4-provider",
  "pid": $1,
  "baseUrl": "http://127.0.0.1:$DS4_PORT/v1",
  "binary": "$DS4_SERVER_BIN",
  "args": [],
  "startedAt": 0,
  "processStart": "$2",
  "processStartId": "$3",
  "managed": true
}
J
}
# 1. the recorded pid now belongs to `sleep`, started at another time
record $victim "Thu Jan  1 00:00:00 1970" "old-boot:1"
out=$("$DS4CTL" ensure --client-pid $c) || fail "ensure with a reused server pid failed: $out"
grep -q "stale server.json (pid $victim reused" "$DS4_HOME/log" || fail "reuse not detected"
alive $victim || fail "the unrelated process was killed"
[ "$(json_field "$DS4_HOME/server.json" pid)" != $victim ] || fail "server.json still names the unrelated pid"
"$DS4CTL" stop --force >/dev/null || fail "stop of the real server failed"

# 2. right start time (as ps prints it) but not our executable: stop refuses to signal
start=$(LC_ALL=C ps -o lstart= -p $victim | sed 's/^ *//;s/ *$//')
record $victim "$start" ""
out=$("$DS4CTL" stop --force); rc=$?
[ $rc -eq 0 ] || fail "stop on a foreign record: exit $rc: $out"
grep -q "stale record removed: pid $victim does not run" <<<"$out" || fail "stop message: $out"
alive $victim || fail "stop signalled a process that is not our server"

# 3. a lease whose pid is alive but started at another time
"$DS4CTL" ensure --client-pid $c >/dev/null || fail "ensure failed"
mkdir -p "$DS4_HOME/clients"
cat > "$DS4_HOME/clients/$victim.json" <<J
{"managedBy": "pi-sd4-provider", "usesDs4": true, "pid": $victim, "processStart": "Thu Jan  1 00:00:00 1970"}
J
wait_for 5 test ! -e "$DS4_HOME/clients/$victim.json" || fail "mismatched lease not removed"
grep -q "removed lease $victim.json (start time mismatch)" "$DS4_HOME/log" || fail "reason not logged"
[ -e "$DS4_HOME/clients/$c.json" ] || fail "the real client's lease was removed"
alive $victim || fail "lease owner was signalled"
echo ok
