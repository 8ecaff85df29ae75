# lib.sh - shared setup for the ds4 CLI and ds4-bench shell tests: finds the
# binaries of the build under test (repository root for `build`, BUILD/bin
# otherwise), a temp dir removed on exit, and the tiny model.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${DS4_BUILD:-build}
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
if [ -x "$BUILD/bin/ds4" ]; then BIN="$BUILD/bin"; else BIN="$ROOT"; fi
DS4="$BIN/ds4"
BENCH="$BIN/ds4-bench"
SYNTH="$BIN/ds4-synth"
MODEL="$ROOT/tests/data/oracle/tiny-a/ds4-synth-tiny-a.gguf"
[ -x "$DS4" ] || { echo "missing $DS4 (build first)"; exit 1; }
[ -f "$MODEL" ] || { echo "missing $MODEL"; exit 1; }
T=$(mktemp -d /tmp/ds4-cli-test-XXXXXX)
cleanup_hooks=()
cleanup() {
    for h in "${cleanup_hooks[@]+"${cleanup_hooks[@]}"}"; do eval "$h"; done
    rm -rf "$T"
}
trap cleanup EXIT
export HOME="$T" DS4_HISTORY="$T/history"
unset NO_COLOR
fail() { echo "FAIL: $*"; exit 1; }
# A slower build (ASan) needs longer waits.
SLOW=1
case $BUILD in *asan*) SLOW=10 ;; esac
