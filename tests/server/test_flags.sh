#!/usr/bin/env bash
# test_flags.sh - ds4-server command line without a model (spec/server.md
# §2): --help lists every flag, the handbook command line parses verbatim
# (it then fails to load the absent model: exit 1, not 2), bad values and
# unknown flags exit 2, a public bind needs --api-key, --test-script needs
# DS4_ALLOW_TEST_SCRIPT=1, a second instance is refused by the lock.
source "$(dirname "$0")/lib.sh"
[[ -x $SERVER ]] || skip "no server binary at $SERVER (build first)"
export DS4_LOCK_FILE="$TMP/ds4.lock"
"$SERVER" --help >"$TMP/help" || fail "--help exit $?"
for f in --model --host --port --ctx --kv-disk-dir --kv-disk-space-mb --mpp --dir-steering-file --dir-steering-ffn \
         --dir-steering-attn --cors --chdir --trace --api-key --insecure-public --backend --threads --test-script; do
    grep -q -- "$f" "$TMP/help" || fail "--help does not list $f"
done
grep -q 'TEST ONLY' "$TMP/help" || fail "--help does not mark --test-script as test-only"

"$SERVER" -m "$TMP/none.gguf" --port 0 --ctx 100000 --kv-disk-dir ./kv --kv-disk-space-mb 8192 --mpp auto \
    --dir-steering-file F --dir-steering-ffn -2 >"$TMP/out" 2>&1
rc=$?
[[ $rc == 1 ]] || { cat "$TMP/out"; fail "handbook command line: exit $rc, expected 1 (model missing)"; }
grep -q 'none.gguf' "$TMP/out" || fail "load error does not name the model file: $(cat "$TMP/out")"

"$SERVER" --ctx 0 >"$TMP/out" 2>&1; [[ $? == 2 ]] || fail "--ctx 0 not refused with exit 2"
grep -q "ctx" "$TMP/out" || fail "--ctx error does not name the flag"
"$SERVER" --no-such-flag >"$TMP/out" 2>&1; [[ $? == 2 ]] || fail "unknown flag not refused with exit 2"
grep -q "usage:" "$TMP/out" || fail "unknown flag does not print usage"
"$SERVER" --host 0.0.0.0 >"$TMP/out" 2>&1; [[ $? == 2 ]] || fail "public bind without key accepted"
grep -q -- "--api-key" "$TMP/out" || fail "public bind refusal does not mention --api-key"
env -u DS4_ALLOW_TEST_SCRIPT "$SERVER" --test-script "$HERE/script.json" >"$TMP/out" 2>&1
[[ $? == 2 ]] || fail "--test-script accepted without DS4_ALLOW_TEST_SCRIPT=1"

# Single instance: hold the lock, a second server must exit 2.
exec 9>"$DS4_LOCK_FILE"
flock -n 9 || fail "cannot take the test lock"
"$SERVER" -m "$TMP/none.gguf" --port 0 >"$TMP/out" 2>&1; rc=$?
[[ $rc == 2 ]] || fail "second instance: exit $rc, expected 2"
grep -q "already running" "$TMP/out" || fail "second instance message: $(cat "$TMP/out")"
echo "flag checks passed"
