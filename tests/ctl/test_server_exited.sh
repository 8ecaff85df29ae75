#!/usr/bin/env bash
# A server that dies before becoming ready: exit 11 with the log tail in the error
# event; three such failures within 10 minutes trip the crash-loop guard (exit 15)
# instead of restarting forever; `recover` resets it and the next ensure works.
source "$(dirname "$0")/lib.sh"
setup_runtime
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
for i in 1 2 3; do
    out=$(FAKE_EXIT_EARLY=1 "$DS4CTL" ensure --client-pid $c); rc=$?
    [ $rc -eq 11 ] || fail "early exit $i: exit $rc, expected 11: $out"
    grep -q 'ds4-server exited before becoming ready' <<<"$out" || fail "message: $out"
    grep -q 'exiting early' <<<"$out" || fail "log tail missing from the error event: $out"
done
out=$("$DS4CTL" ensure --client-pid $c); rc=$?
[ $rc -eq 15 ] || fail "crash loop: exit $rc, expected 15: $out"
grep -q 'keeps failing' <<<"$out" || fail "crash-loop message: $out"
"$DS4CTL" recover >/dev/null || fail "recover failed"
"$DS4CTL" ensure --client-pid $c >/dev/null || fail "ensure after recover failed"
echo ok
