#!/usr/bin/env bash
# download_model.sh (repo root) keeps the handbook's interface: `./download_model.sh q2`
# in a checkout downloads into ./gguf and links ./ds4flash.gguf; any other variant is
# refused with exit 1; pointed at by DS4_DOWNLOAD_SCRIPT it refuses at once instead of
# waiting forever for the lock its caller holds.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dl_lib.sh"
start_file_server 100000
(cd "$DL" && "$ROOT/download_model.sh" q2) > "$T/w.out" 2>&1 || fail "wrapper failed: $(cat "$T/w.out")"
cmp -s "$MODEL" "$DL/gguf/model.gguf" || fail "downloaded file differs"
[ "$(readlink "$DL/ds4flash.gguf")" = gguf/model.gguf ] || fail "ds4flash.gguf not linked"
grep -q 'ds4 download: ./ds4flash.gguf -> gguf/model.gguf' "$T/w.out" || fail "handbook line missing: $(cat "$T/w.out")"
(cd "$DL" && "$ROOT/download_model.sh" q8) >/dev/null 2>&1; [ $? -eq 1 ] || fail "q8 not refused"
# as DS4_DOWNLOAD_SCRIPT inside ensure: fails fast with the script's exit status
setup_runtime
rm "$DS4_RUNTIME_DIR/gguf/model.gguf"
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
out=$(DS4_DOWNLOAD_SCRIPT="$ROOT/download_model.sh" timeout 20 "$DS4CTL" ensure --client-pid $c); rc=$?
[ $rc -eq 7 ] || fail "ensure with the wrapper as DS4_DOWNLOAD_SCRIPT: exit $rc, expected 7: $out"
grep -q 'DS4_DOWNLOAD_SCRIPT points at this wrapper' "$DS4_HOME/log" || fail "wrapper did not explain itself"
echo ok
