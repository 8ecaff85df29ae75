#!/usr/bin/env bash
# Cancelling a download (SIGTERM, as the pi extension does when pi quits, or Ctrl-C):
# ds4ctl exits 14, keeps the .part with the bytes received so far, releases the
# lifecycle lock, and the next run resumes from there.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dl_lib.sh"
start_file_server 400000
echo 20000 > "$SRV_PORTFILE.slow"      # ~200 KB/s: 2 s for the whole file
"$DS4CTL" download --dir "$DL" > "$T/out" 2>&1 & d=$!
wait_for 5 bash -c "[ -s '$DL/gguf/model.gguf.part' ]" || fail "download did not start"
sleep 0.5
kill -TERM $d; wait $d; rc=$?
[ $rc -eq 14 ] || fail "cancelled download: exit $rc, expected 14: $(cat "$T/out")"
grep -q 'cancelled' "$T/out" || fail "no cancellation message: $(cat "$T/out")"
part=$(stat -c %s "$DL/gguf/model.gguf.part")
[ "$part" -gt 0 ] && [ "$part" -lt 400000 ] || fail ".part size $part"
[ ! -e "$DS4_HOME/lock" ] || fail "lock/ left behind"
rm "$SRV_PORTFILE.slow"
"$DS4CTL" download --dir "$DL" >/dev/null || fail "resume after cancel failed"
grep -q "range=bytes=$part- .*-> 206" "$SRV_LOG" || fail "did not resume from $part: $(cat "$SRV_LOG")"
cmp -s "$MODEL" "$DL/gguf/model.gguf" || fail "file differs after cancel + resume"
echo ok
