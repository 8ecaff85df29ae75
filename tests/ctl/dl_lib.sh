# tests/ctl/dl_lib.sh - starts the range-capable test file server (httpfile.py) for the
# download tests; sourced after lib.sh. Sets SRV_PORTFILE, SRV_LOG, MODEL (the source
# file) and DS4_MODEL_URL.
start_file_server() { # size_bytes [magic]
    MODEL="$T/src.gguf"
    python3 - "$MODEL" "$1" "${2:-GGUF}" <<'PY'
import sys, random
random.seed(7)
n = int(sys.argv[2])
data = sys.argv[3].encode()[:4] + bytes(random.getrandbits(8) for _ in range(n - 4))
open(sys.argv[1], "wb").write(data)
PY
    SRV_PORTFILE="$T/srv.port"; SRV_LOG="$T/srv.log"
    python3 "$ROOT/tests/ctl/httpfile.py" "$MODEL" "$SRV_PORTFILE" "$SRV_LOG" 120 &
    PIDS_TO_KILL+=($!)
    wait_for 10 test -s "$SRV_PORTFILE" || fail "file server did not start"
    export DS4_MODEL_URL="http://127.0.0.1:$(cat "$SRV_PORTFILE")/repo/resolve/main/model.gguf"
    export DS4_MODEL_FILE=model.gguf DS4_MIN_RAM_GB=0 DS4_DISK_RESERVE_MB=0 DS4_DOWNLOAD_RETRIES=1
    DL="$T/dl"; mkdir -p "$DL"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
