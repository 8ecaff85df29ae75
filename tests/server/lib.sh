# tests/server/lib.sh - shared helpers for the ds4-server integration tests.
# Sourced by tests/server/test_*.sh. Starts ./ds4-server on a free loopback
# port with the tiny synthetic model and tears it down on exit. Tests skip
# (exit 77) when the server binary is missing or cannot load the tiny model,
# and when node/npm (for the SDK tests) are unavailable.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/server"
BUILD=${DS4_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
if [[ $BUILD == "$ROOT/build" ]]; then SERVER="$ROOT/ds4-server"; else SERVER="$BUILD/bin/ds4-server"; fi
MODEL=${DS4_TEST_MODEL:-$ROOT/tests/data/oracle/tiny-a/ds4-synth-tiny-a.gguf}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ds4-server-test.XXXXXX")
SERVER_PID=
PORT=
BASE=

# Sanitizer builds: one known leak outside the server (see lsan.supp).
export LSAN_OPTIONS="suppressions=$HERE/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [[ -f $TMP/server.log ]] && { echo "---- server log"; tail -n 40 "$TMP/server.log"; }; exit 1; }

cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# start_server [extra flags...]: --port 0, waits for /health 200; skips if the
# model cannot be loaded (engine not there yet).
start_server() {
    [[ -x $SERVER ]] || skip "no server binary at $SERVER (build first)"
    [[ -f $MODEL ]] || skip "tiny model $MODEL not found"
    : >"$TMP/server.log" # truncate now: a second server must not be found by the first one's log
    DS4_LOCK_FILE="$TMP/ds4.lock" DS4_ALLOW_TEST_SCRIPT=1 \
        "$SERVER" -m "$MODEL" --host 127.0.0.1 --port 0 --ctx 4096 "$@" >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        if [[ -z $PORT ]]; then
            PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/server.log" | head -n 1)
            [[ -n $PORT ]] && BASE="http://127.0.0.1:$PORT"
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$TMP/server.log"
            skip "ds4-server could not start with the tiny model (engine not available yet?)"
        fi
        if [[ -n $BASE ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/health") == 200 ]]; then
            export BASE PORT
            return 0
        fi
        sleep 0.1
    done
    fail "server did not become healthy in 30 s"
}

# node_setup: installs the real SDKs into tests/server/node_modules once
# (cached between runs; reinstalled when package-lock.json changes).
node_setup() {
    command -v node >/dev/null || skip "node not installed"
    command -v npm >/dev/null || skip "npm not installed"
    local stamp="$HERE/node_modules/.ds4-lock-stamp"
    if [[ ! -f $stamp ]] || ! cmp -s "$stamp" "$HERE/package-lock.json"; then
        (cd "$HERE" && npm ci --no-audit --no-fund >"$TMP/npm.log" 2>&1) || { tail -n 20 "$TMP/npm.log"; skip "npm ci failed (no registry access?)"; }
        cp "$HERE/package-lock.json" "$stamp"
    fi
}

# script_file NAME: path of a test-script JSON written by the caller.
write_script() { cat >"$TMP/script.json"; echo "$TMP/script.json"; }

# http METHOD PATH [BODY] -> sets STATUS and BODY_OUT
http() {
    local method=$1 path=$2 body=${3:-}
    if [[ -n $body ]]; then
        STATUS=$(curl -s -o "$TMP/resp" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' --data-binary "$body" "$BASE$path")
    else
        STATUS=$(curl -s -o "$TMP/resp" -w '%{http_code}' -X "$method" "$BASE$path")
    fi
    BODY_OUT=$(cat "$TMP/resp")
}

expect() {  # expect STATUS SUBSTRING [label]
    [[ $STATUS == "$1" ]] || fail "${3:-request}: status $STATUS, expected $1; body: $BODY_OUT"
    [[ $BODY_OUT == *"$2"* ]] || fail "${3:-request}: body lacks '$2': $BODY_OUT"
}

stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_STATUS=$?
    fi
    SERVER_PID= PORT= BASE=
}
