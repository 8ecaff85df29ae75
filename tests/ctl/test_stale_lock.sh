#!/usr/bin/env bash
# The lifecycle lock: a lock/ left by a dead holder (old extension or the handbook's
# mkdir snippet) is taken over; a ds4ctl holder killed with -9 frees the lock at once
# (kernel flock); a living non-flock holder is respected until the timeout (exit 3);
# one without a start time only for 60 s (Part A's rule, for that case alone).
source "$(dirname "$0")/lib.sh"
setup_runtime
# 1. dead non-flock holder
sleep 0.01 & dead=$!; wait $dead
mkdir -p "$DS4_HOME/lock"
printf '{"managedBy":"pi-sd4-provider","pid":%d,"processStart":"Thu Jan  1 00:00:00 1970","createdAt":0}\n' $dead > "$DS4_HOME/lock/owner.json"
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
DS4_LOCK_TIMEOUT_S=5 "$DS4CTL" ensure --client-pid $c >/dev/null || fail "stale lock of a dead process not taken over"
[ ! -e "$DS4_HOME/lock" ] || fail "lock/ not released after ensure"
"$DS4CTL" stop --force >/dev/null || fail "stop failed"

# 2. a ds4ctl holder killed with SIGKILL in the middle of its critical section
cat > "$T/slow.sh" <<SH
#!/bin/sh
echo \$\$ > "$T/slow.pid"
sleep 30
SH
chmod +x "$T/slow.sh"
DS4_DOWNLOAD_SCRIPT="$T/slow.sh" "$DS4CTL" prepare >/dev/null 2>&1 & holder=$!
wait_for 5 test -s "$T/slow.pid" || fail "holder did not start"
PIDS_TO_KILL+=($(cat "$T/slow.pid"))
grep -q '"operation": "prepare"' "$DS4_HOME/lock/owner.json" || fail "holder does not own the lock"
kill -9 $holder; wait $holder 2>/dev/null
# a 2 s lock timeout: only a lock freed by the kernel at the holder's death can pass
DS4_LOCK_TIMEOUT_S=2 "$DS4CTL" ensure --client-pid $c > "$T/ens2.out" || fail "lock of a killed ds4ctl not taken over"; cat "$T/ens2.out"
"$DS4CTL" stop --force >/dev/null

# 3. a living non-flock holder (start time matches): respected, exit 3 after the timeout
sleep 300 & live=$!; PIDS_TO_KILL+=($live)
mkdir -p "$DS4_HOME/lock"
printf '{"managedBy":"pi-sd4-provider","pid":%d,"processStart":"%s","createdAt":0}\n' $live \
    "$(LC_ALL=C ps -o lstart= -p $live | sed 's/^ *//;s/ *$//')" > "$DS4_HOME/lock/owner.json"
out=$(DS4_LOCK_TIMEOUT_S=2 "$DS4CTL" ensure --client-pid $c); rc=$?
[ $rc -eq 3 ] || fail "live holder: exit $rc, expected 3: $out"
grep -q 'Timed out waiting for ds4 lifecycle lock' <<<"$out" || fail "timeout message: $out"
grep -q "held by pid $live" <<<"$out" || fail "holder pid not named: $out"
alive $live || fail "the holder was killed"
[ -e "$DS4_HOME/lock/owner.json" ] || fail "a live holder's lock was removed"

# 4. a living holder without a start time ("unknown", an old extension whose ps
#    failed) cannot be verified: respected while the lock is fresh, taken after 60 s
printf '{"managedBy":"pi-sd4-provider","pid":%d,"processStart":"unknown","createdAt":0}\n' $live > "$DS4_HOME/lock/owner.json"
touch "$DS4_HOME/lock"
out=$(DS4_LOCK_TIMEOUT_S=1 "$DS4CTL" ensure --client-pid $c); rc=$?
[ $rc -eq 3 ] || fail "fresh unverifiable holder: exit $rc, expected 3: $out"
touch -d '2 minutes ago' "$DS4_HOME/lock"
DS4_LOCK_TIMEOUT_S=2 "$DS4CTL" ensure --client-pid $c >/dev/null || fail "old unverifiable lock not taken over"
alive $live || fail "the holder was killed"
echo ok
