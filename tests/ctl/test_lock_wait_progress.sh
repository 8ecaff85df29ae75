#!/usr/bin/env bash
# A second client arriving during the first launch's download waits for the lock and
# sees why: a "waiting" event naming the holder, and the holder's download progress
# relayed from progress.json. Both end with the same, single server.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dl_lib.sh"
start_file_server 400000
setup_runtime
rm "$DS4_RUNTIME_DIR/gguf/model.gguf"
echo 20000 > "$SRV_PORTFILE.slow"          # ~2 s download
sleep 300 & a=$!; PIDS_TO_KILL+=($a)
sleep 300 & b=$!; PIDS_TO_KILL+=($b)
"$DS4CTL" ensure --client-pid $a > "$T/a.out" 2>&1 & ea=$!
wait_for 5 test -s "$DS4_RUNTIME_DIR/gguf/model.gguf.part" || fail "first download did not start"
"$DS4CTL" ensure --client-pid $b > "$T/b.out" 2>&1 || fail "second ensure failed: $(cat "$T/b.out")"
wait $ea || fail "first ensure failed: $(cat "$T/a.out")"
grep -q "\"type\":\"waiting\",\"phase\":\"lock\",\"holderPid\":$ea,\"holderOperation\":\"ensure\"" "$T/b.out" \
    || fail "no waiting event naming the holder: $(cat "$T/b.out")"
grep -q '"type":"progress","phase":"download","message":"[0-9.]* KB / 400.0 KB' "$T/b.out" \
    || fail "holder's progress not relayed: $(cat "$T/b.out")"
[ "$(grep -c '\] start ds4-server$' "$DS4_HOME/log")" = 1 ] || fail "expected one spawn"
[ ! -e "$DS4_HOME/progress.json" ] || fail "progress.json left after the lock was released"
cmp -s "$MODEL" "$DS4_RUNTIME_DIR/gguf/model.gguf" || fail "model differs"
"$DS4CTL" stop --force >/dev/null
echo ok
