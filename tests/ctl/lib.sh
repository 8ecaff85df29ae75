# tests/ctl/lib.sh - shared setup for the ds4ctl shell tests (sourced, not run).
#
# Gives each test a private state dir (DS4_HOME, HOME), a free loopback port, a fake
# runtime dir with a tiny "model" so no download is needed, the fake ds4-server, short
# timings, and a cleanup trap that stops only the processes this test started (by pid,
# read from the state files it created) - never anything by name.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${DS4_BUILD:-build}
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
if [ -x "$BUILD/bin/ds4ctl" ]; then DS4CTL="$BUILD/bin/ds4ctl"; else DS4CTL="$ROOT/ds4ctl"; fi
# (a parallel `make` may be relinking it right now: give it a few seconds)
for _ in $(seq 50); do [ -x "$DS4CTL" ] && break; sleep 0.2; done
[ -x "$DS4CTL" ] || { echo "ds4ctl not built ($DS4CTL)"; exit 1; }
command -v python3 >/dev/null || { echo "python3 missing; skipping"; exit 77; }
export DS4CTL

T=$(mktemp -d /tmp/ds4ctl-test.XXXXXX)
# Work on a private copy: other engineers' parallel `make` may relink ./ds4ctl while a
# test runs (a half-written binary reads "Permission denied").
cp "$DS4CTL" "$T/ds4ctl" && DS4CTL="$T/ds4ctl" || { echo "cannot copy $DS4CTL"; exit 1; }
export HOME="$T/home" DS4_HOME="$T/home/.pi/ds4"
mkdir -p "$HOME" "$DS4_HOME"
PIDS_TO_KILL=()

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A runtime dir that looks like a ds4 checkout, with a present, tiny model.
setup_runtime() {
    export DS4_RUNTIME_DIR="$T/rt"
    mkdir -p "$DS4_RUNTIME_DIR/gguf"
    touch "$DS4_RUNTIME_DIR/Makefile" "$DS4_RUNTIME_DIR/ds4_server.c" "$DS4_RUNTIME_DIR/download_model.sh"
    printf 'GGUF-fake-model' > "$DS4_RUNTIME_DIR/gguf/model.gguf"
    export DS4_MODEL_FILE=model.gguf DS4_VERIFY=none
    export DS4_SERVER_BIN="$ROOT/tests/ctl/fake/ds4-server"
    export DS4_PORT=$(free_port)
    export DS4_MIN_RAM_GB=0 DS4_IDLE_GRACE_S=${DS4_IDLE_GRACE_S:-1} DS4_WATCHDOG_POLL_S=1
    export DS4_SHUTDOWN_GRACE_S=${DS4_SHUTDOWN_GRACE_S:-5} DS4_READY_TIMEOUT_MS=${DS4_READY_TIMEOUT_MS:-20000}
    export FAKE_LOAD_MS=${FAKE_LOAD_MS:-300} FAKE_MAX_S=120
}

json_field() { # file key -> value of "key": value (first match), quotes stripped
    sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" "$1" | head -n 1
}

wait_for() { # seconds command... : poll every 0.1 s
    local end=$((SECONDS + $1)); shift
    while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.1; done
    "$@"
}

alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

cleanup() {
    local p
    # Only processes this test started: recorded server and watchdog, plus helpers.
    if [ -f "$DS4_HOME/server.json" ]; then
        p=$(json_field "$DS4_HOME/server.json" pid)
        if [ -n "$p" ] && grep -q "$T" "/proc/$p/environ" 2>/dev/null; then kill -9 "$p" 2>/dev/null; fi
    fi
    if [ -f "$DS4_HOME/watchdog.state.json" ]; then
        p=$(json_field "$DS4_HOME/watchdog.state.json" pid)
        if [ -n "$p" ] && grep -q "$T" "/proc/$p/environ" 2>/dev/null; then kill -9 "$p" 2>/dev/null; fi
    fi
    for p in "${PIDS_TO_KILL[@]+"${PIDS_TO_KILL[@]}"}"; do kill -9 "$p" 2>/dev/null; done
    if [ "${KEEP_T:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; echo "---- log"; tail -n 40 "$DS4_HOME/log" 2>/dev/null; exit 1; }

# The real pi CLI for the extension tests: $DS4_PI_BIN, build/pi-env (tests/ctl/install-pi.sh),
# or pi on PATH. Skips the test (exit 77) when none is installed.
need_pi() {
    PI=${DS4_PI_BIN:-}
    [ -n "$PI" ] || { [ -x "$ROOT/build/pi-env/node_modules/.bin/pi" ] && PI="$ROOT/build/pi-env/node_modules/.bin/pi"; }
    [ -n "$PI" ] || PI=$(command -v pi 2>/dev/null || true)
    [ -n "$PI" ] && [ -x "$PI" ] || { echo "pi CLI not installed (run tests/ctl/install-pi.sh or set DS4_PI_BIN); skipping"; exit 77; }
    PI_BIN_DIR=$(dirname "$PI")
    export PI_OFFLINE=1 PI_SKIP_VERSION_CHECK=1
}
