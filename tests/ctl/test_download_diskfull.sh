#!/usr/bin/env bash
# ds4ctl download on a full disk: the pre-flight check refuses with "need X GB free",
# and when space runs out mid-transfer (size unknown in advance) the download stops
# with exit 8 and a clear message, keeps the .part for a later resume and never
# creates the final file. Needs root to mount a 256 KiB tmpfs; skipped otherwise.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dl_lib.sh"
MNT="$T/small"; mkdir -p "$MNT"
if ! mount -t tmpfs -o size=256k tmpfs "$MNT" 2>/dev/null; then
    echo "cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN); skipping"; exit 77
fi
trap 'umount "$MNT" 2>/dev/null; cleanup' EXIT
start_file_server 600000
out=$("$DS4CTL" download --dir "$MNT"); rc=$?
[ $rc -eq 8 ] || fail "pre-flight: exit $rc, expected 8: $out"
grep -q 'need .* free in .*, have' <<<"$out" || fail "pre-flight message: $out"

touch "$SRV_PORTFILE.nolen"   # size unknown: only the write itself can find the limit
out=$("$DS4CTL" download --dir "$MNT"); rc=$?
[ $rc -eq 8 ] || fail "mid-transfer: exit $rc, expected 8: $out"
grep -q 'disk full while writing' <<<"$out" || fail "mid-transfer message: $out"
[ -s "$MNT/gguf/model.gguf.part" ] || fail ".part not kept"
[ ! -e "$MNT/gguf/model.gguf" ] || fail "final file created on a full disk"
echo ok
