#!/usr/bin/env bash
# Several pi processes sending their first ds4 request at the same time (spec §21.16
# scenario 5): all get the answer, exactly one server is spawned, and the lock is never
# held twice (each "start ds4-server" happens once).
source "$(dirname "$0")/lib.sh"
need_pi
FAKE_LOAD_MS=2000 setup_runtime
n=${DS4_TEST_QUICK:+2}; n=${n:-3}
pids=()
for i in $(seq "$n"); do
    (cd "$T" && timeout 90 "$PI" --no-extensions -e "$ROOT/pi" --no-session --no-context-files \
        --model ds4/deepseek-v4-flash -p "hello $i" > "$T/pi.$i" 2>&1) & pids+=($!)
done
for i in $(seq "$n"); do
    wait "${pids[$((i-1))]}" || fail "pi $i failed: $(cat "$T/pi.$i")"
    [ "$(cat "$T/pi.$i")" = "Hello from fake ds4." ] || fail "pi $i answer: $(cat "$T/pi.$i")"
done
[ "$(grep -c '\] start ds4-server$' "$DS4_HOME/log")" = 1 ] || fail "expected exactly one spawn"
echo ok
