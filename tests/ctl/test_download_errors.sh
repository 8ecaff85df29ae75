#!/usr/bin/env bash
# ds4ctl download failures end in a clear error and never in a final file: HTTP 500
# (retried, then exit 7), 404 (exit 7, names the URL), 401 (exit 7 with the HF_TOKEN
# hint), a file without the GGUF magic (exit 9, quarantined as .bad-<ts>), and SHA-256
# verification (match -> recorded; mismatch -> exit 9).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dl_lib.sh"
start_file_server 65536
G="$DL/gguf"
expect() { # code status grep-pattern
    rm -rf "$DL"; mkdir -p "$DL"
    echo "$2" > "$SRV_PORTFILE.status"
    out=$(DS4_DOWNLOAD_RETRIES=2 "$DS4CTL" download --dir "$DL"); rc=$?
    rm -f "$SRV_PORTFILE.status"
    [ $rc -eq "$1" ] || fail "HTTP $2: exit $rc, expected $1: $out"
    grep -q "$3" <<<"$out" || fail "HTTP $2: message lacks '$3': $out"
    [ ! -e "$G/model.gguf" ] || fail "HTTP $2: final file exists"
}
expect 7 500 'HTTP 500'
expect 7 404 'not found'
expect 7 401 'HF_TOKEN'
grep -q 'retrying in 1s' "$DS4_HOME/log" || fail "500 was not retried"

# SHA-256 known and matching: verified and recorded.
rm -rf "$DL"; mkdir -p "$DL"
DS4_MODEL_SHA256=$(sha "$MODEL") "$DS4CTL" download --dir "$DL" >/dev/null || fail "sha256 match failed"
grep -q "\"sha256\": \"$(sha "$MODEL")\"" "$G/model.gguf.json" || fail "sha256 not recorded"
# Mismatch: exit 9, nothing final, the bytes kept aside.
rm -rf "$DL"; mkdir -p "$DL"
out=$(DS4_MODEL_SHA256=$(printf '0%.0s' $(seq 64)) "$DS4CTL" download --dir "$DL"); rc=$?
[ $rc -eq 9 ] || fail "sha mismatch: exit $rc: $out"
grep -q 'failed verification' <<<"$out" || fail "sha mismatch message: $out"
[ ! -e "$G/model.gguf" ] || fail "sha mismatch left a final file"
ls "$G"/model.gguf.bad-* >/dev/null 2>&1 || fail "mismatching file not kept aside"

# Not a GGUF at all.
kill "${PIDS_TO_KILL[0]}"; PIDS_TO_KILL=(); rm -f "$SRV_PORTFILE"
start_file_server 65536 HTML
rm -rf "$DL"; mkdir -p "$DL"
out=$("$DS4CTL" download --dir "$DL"); rc=$?
[ $rc -eq 9 ] || fail "no magic: exit $rc: $out"
grep -q 'GGUF magic' <<<"$out" || fail "no-magic message: $out"
[ ! -e "$G/model.gguf" ] || fail "non-GGUF became the final file"
echo ok
