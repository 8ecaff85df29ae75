#!/usr/bin/env bash
# ds4ctl with the real ds4-server (this repository's build) and the tiny synthetic
# model: ensure spawns it with the handbook argv (steering off, small context), waits
# for readiness, the fast path reuses it, the pi extension gets an answer through it,
# and the watchdog stops it gracefully (SIGTERM, exit) after the last lease is gone.
# Skipped when the server binary or the tiny model is missing.
source "$(dirname "$0")/lib.sh"
if [ "$BUILD" = "$ROOT/build" ]; then SERVER="$ROOT/ds4-server"; else SERVER="$BUILD/bin/ds4-server"; fi
TINY="$ROOT/tests/data/oracle/tiny-a/ds4-synth-tiny-a.gguf"
[ -x "$SERVER" ] || { echo "no ds4-server binary at $SERVER; skipping"; exit 77; }
[ -f "$TINY" ] || { echo "tiny model $TINY missing; skipping"; exit 77; }
setup_runtime
cp "$TINY" "$DS4_RUNTIME_DIR/gguf/model.gguf"
export DS4_SERVER_BIN="$SERVER" DS4_DIR_STEERING_FFN=0 DS4_DIR_STEERING_ATTN=0 DS4_CTX=16384 \
       DS4_LOCK_FILE="$T/ds4.lock" DS4_IDLE_GRACE_S=1 DS4_SHUTDOWN_GRACE_S=20
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
out=$("$DS4CTL" ensure --client-pid $c) || fail "ensure with the real server failed: $out"
grep -q '"alreadyRunning":false' <<<"$out" || fail "not a fresh start: $out"
grep -q -- "--ctx 16384 --kv-disk-dir $DS4_HOME/kv --kv-disk-space-mb 8192 --port $DS4_PORT\$" "$DS4_HOME/log" \
    || fail "unexpected argv: $(grep '^\[.*\] \$ ' "$DS4_HOME/log")"
spid=$(json_field "$DS4_HOME/server.json" pid)
"$DS4CTL" status | grep -q 'identity ok' || fail "identity of the real server not verified"
out=$("$DS4CTL" ensure --client-pid $c) || fail "second ensure failed"
grep -q '"alreadyRunning":true' <<<"$out" || fail "fast path not taken: $out"
if [ "${DS4_PI_BIN:-}" ] || [ -x "$ROOT/build/pi-env/node_modules/.bin/pi" ]; then
    need_pi
    (cd "$T" && timeout 120 "$PI" --no-extensions -e "$ROOT/pi" --no-session --no-context-files \
        --model ds4/deepseek-v4-flash:off -p "hello" > "$T/pi.out" 2>&1) || fail "pi through the real server failed: $(cat "$T/pi.out")"
fi
"$DS4CTL" release --client-pid $c
wait_for 30 test ! -e "$DS4_HOME/server.json" || fail "real server not stopped"
alive "$spid" && fail "real server still alive"
grep -q 'still alive after' "$DS4_HOME/log" && fail "real server needed SIGKILL"
echo ok
