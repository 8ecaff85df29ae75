#!/usr/bin/env bash
# The pi extension's unit tests (provider definition through a stub API, the /ds4 log
# window with stub tui/theme and raw keys), run with the jiti shipped with pi.
source "$(dirname "$0")/lib.sh"
need_pi
JITI="$PI_BIN_DIR/jiti"
[ -x "$JITI" ] || { echo "jiti not found next to pi ($PI_BIN_DIR); skipping"; exit 77; }
env -u DS4_PORT -u DS4_CTX "$JITI" "$ROOT/pi/test/unit.test.ts"
