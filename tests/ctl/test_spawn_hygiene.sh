#!/usr/bin/env bash
# What a spawned server (and the watchdog) inherits (spec §21.9): a session of its own,
# not a child of ds4ctl, stdin /dev/null, stdout/stderr the log, none of ds4ctl's
# descriptors (no lock file, no pipe to the caller: a caller reading ds4ctl's stdout
# gets EOF as soon as ds4ctl exits), no HF_TOKEN, and the DS4CTL_* identity marker.
source "$(dirname "$0")/lib.sh"
setup_runtime
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
# Caller's stdout is a pipe: $(...) returns only if nothing else holds it open.
out=$(HF_TOKEN=hf-secret-xyz timeout 20 "$DS4CTL" ensure --client-pid $c) || fail "ensure failed or hung: $out"
spid=$(json_field "$DS4_HOME/server.json" pid)
wpid=$(json_field "$DS4_HOME/watchdog.state.json" pid)
mysid=$(sed 's/^.*) //' /proc/$$/stat | awk '{print $4}')
for p in $spid $wpid; do
    read -r _ _ _ ppid _ sid _ < <(sed 's/^.*) //' "/proc/$p/stat" | awk '{print 0,0,$1,$2,$3,$4,0}')
    # double fork: the intermediate child called setsid and exited, so the process
    # is in a session of its own that has no leader and can never get a terminal
    [ "$sid" != "$mysid" ] || fail "pid $p shares the caller's session $sid"
    alive "$sid" && fail "the session leader $sid of pid $p is still alive"
    [ "$ppid" != "$$" ] || fail "pid $p is a child of the test shell"
    [ "$(readlink /proc/$p/fd/0)" = /dev/null ] || fail "pid $p stdin: $(readlink /proc/$p/fd/0)"
    [ "$(readlink /proc/$p/fd/1)" = "$DS4_HOME/log" ] || fail "pid $p stdout: $(readlink /proc/$p/fd/1)"
    for f in /proc/$p/fd/*; do
        t=$(readlink "$f")
        case $t in pipe:*) [ "$p" = "$wpid" ] || fail "server $p holds a pipe on ${f##*/}: $t" ;; esac
        case $t in *lock.flock) fail "pid $p inherited the lifecycle lock (fd ${f##*/})" ;; esac
    done
    tr '\0' '\n' < /proc/$p/environ | grep -q '^HF_TOKEN=' && fail "pid $p got HF_TOKEN"
done
tr '\0' '\n' < /proc/$spid/environ | grep -q "^DS4CTL_HOME=$DS4_HOME\$" || fail "server lacks DS4CTL_HOME"
tr '\0' '\n' < /proc/$spid/environ | grep -q "^DS4CTL_SPAWN_TOKEN=$(json_field "$DS4_HOME/server.json" spawnToken)\$" \
    || fail "server's spawn token differs from the record"
for f in /proc/$wpid/fd/*; do case $(readlink "$f") in pipe:*) fail "watchdog holds a pipe (fd ${f##*/})" ;; esac; done
"$DS4CTL" stop --force >/dev/null
echo ok
