#!/usr/bin/env bash
# ds4ctl download: an interrupted download resumes from its .part with a Range request
# (across runs and within one run), an already complete .part is finished through the
# HTTP 416 path without re-downloading, a changed remote file (ETag) restarts from zero,
# and HF_TOKEN is sent as a bearer header. Every case ends in a byte-identical file.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dl_lib.sh"
start_file_server 300000
G="$DL/gguf"

# 1. interrupted after 100000 bytes, then the server fails: exit 7, .part kept.
echo 100000 > "$SRV_PORTFILE.drop"; echo 500 > "$SRV_PORTFILE.then_status"
out=$("$DS4CTL" download --dir "$DL"); rc=$?
[ $rc -eq 7 ] || fail "interrupted download: exit $rc, expected 7: $out"
[ "$(stat -c %s "$G/model.gguf.part")" = 100000 ] || fail ".part size $(stat -c %s "$G/model.gguf.part" 2>&1)"
[ ! -e "$G/model.gguf" ] || fail "final file exists after a failed download"
grep -q '"code":"DOWNLOAD_FAILED"' <<<"$out" || fail "no DOWNLOAD_FAILED event: $out"
# ... the next run resumes from byte 100000.
rm -f "$SRV_PORTFILE.status"
"$DS4CTL" download --dir "$DL" >/dev/null || fail "resume failed"
grep -q 'GET range=bytes=100000- auth=no -> 206' "$SRV_LOG" || fail "no Range resume in server log: $(cat "$SRV_LOG")"
cmp -s "$MODEL" "$G/model.gguf" || fail "resumed file differs"
[ ! -e "$G/model.gguf.part" ] && [ ! -e "$G/model.gguf.part.json" ] || fail ".part left behind"
[ "$(readlink "$DL/ds4flash.gguf")" = gguf/model.gguf ] || fail "ds4flash.gguf link: $(readlink "$DL/ds4flash.gguf")"

# 2. a drop inside one run is resumed by the same run.
rm -rf "$DL"; mkdir -p "$DL"; : > "$SRV_LOG"
echo 50000 > "$SRV_PORTFILE.drop"
"$DS4CTL" download --dir "$DL" >/dev/null || fail "in-run resume failed"
grep -q 'range=bytes=50000- .*-> 206' "$SRV_LOG" || fail "no in-run resume: $(cat "$SRV_LOG")"
cmp -s "$MODEL" "$G/model.gguf" || fail "in-run resumed file differs"

# 3. complete .part, remote size unknown to HEAD: the Range request gets 416 with
#    "bytes */300000" = .part size, which means complete (Part A failed forever here).
rm -rf "$DL"; mkdir -p "$G"; : > "$SRV_LOG"
cp "$MODEL" "$G/model.gguf.part"; touch "$SRV_PORTFILE.nolen"
"$DS4CTL" download --dir "$DL" >/dev/null || fail "complete .part (416) failed"
grep -q -- '-> 416' "$SRV_LOG" || fail "416 path not taken: $(cat "$SRV_LOG")"
grep -q 'GET range=- ' "$SRV_LOG" && fail "re-downloaded from zero"
cmp -s "$MODEL" "$G/model.gguf" || fail "416-completed file differs"
rm -f "$SRV_PORTFILE.nolen"

# 4. complete .part and HEAD knows the size: no GET at all.
rm -rf "$DL"; mkdir -p "$G"; : > "$SRV_LOG"
cp "$MODEL" "$G/model.gguf.part"
"$DS4CTL" download --dir "$DL" >/dev/null || fail "complete .part failed"
grep -q '^GET' "$SRV_LOG" && fail "GET for a complete .part: $(cat "$SRV_LOG")"
cmp -s "$MODEL" "$G/model.gguf" || fail "complete .part file differs"

# 5. remote changed (ETag v1 -> v2) between attempts: restart from zero, not append.
rm -rf "$DL"; mkdir -p "$G"; : > "$SRV_LOG"
echo 100000 > "$SRV_PORTFILE.drop"; echo 500 > "$SRV_PORTFILE.then_status"
"$DS4CTL" download --dir "$DL" >/dev/null; [ $? -eq 7 ] || fail "setup of the etag case"
rm -f "$SRV_PORTFILE.status"; echo v2 > "$SRV_PORTFILE.etag"
"$DS4CTL" download --dir "$DL" >/dev/null || fail "etag-change download failed"
grep -q 'remote file changed; restarting download' "$DS4_HOME/log" || fail "no 'remote file changed' log line"
[ "$(grep -c '^GET range=- ' "$SRV_LOG")" = 2 ] || fail "expected two full GETs: $(cat "$SRV_LOG")"
cmp -s "$MODEL" "$G/model.gguf" || fail "etag-restarted file differs"
rm -f "$SRV_PORTFILE.etag"

# 6. HF_TOKEN travels as a bearer header (loopback counts as the Hugging Face host in
#    tests) and never reaches the log.
rm -rf "$DL"; mkdir -p "$DL"; : > "$SRV_LOG"
HF_TOKEN=secret-token-123 "$DS4CTL" download --dir "$DL" >/dev/null || fail "download with HF_TOKEN failed"
grep -q '^GET range=- auth=yes' "$SRV_LOG" || fail "no Authorization header: $(cat "$SRV_LOG")"
grep -q secret-token-123 "$DS4_HOME/log" && fail "HF_TOKEN leaked into the log"
echo "ok"
