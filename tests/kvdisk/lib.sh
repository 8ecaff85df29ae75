# tests/kvdisk/lib.sh - helpers for the disk KV cache server tests (issue 7).
# Builds on tests/server/lib.sh (free port, tiny model, teardown). Adds: a
# second and third server in one test (start/stop by name), a chat request
# helper that keeps the body, /metrics readers, and a skip when the server
# binary has no disk cache (no ds4_kvdisk_* metrics).
source "$(dirname "${BASH_SOURCE[0]}")/../server/lib.sh"
KV_HERE="$ROOT/tests/kvdisk"
[[ -n ${DS4_KVDISK_SERVER:-} ]] && SERVER=$DS4_KVDISK_SERVER

cat >"$TMP/kvscript.json" <<'JSON'
[
  {"match": "KVTURN2", "text": "Second answer, also scripted."},
  {"match": "KVTURN1", "text": "First answer, scripted."}
]
JSON

# The system prompt makes the cold anchor (the last <｜User｜> before the first
# <｜Assistant｜>) long enough to pass --kv-cache-min-tokens.
SYS="You are the disk cache test assistant. Answer briefly, be exact, and keep every number as given."
TURN1_MSGS='[{"role":"system","content":"'"$SYS"'"},{"role":"user","content":"KVTURN1 what is in the cache?"}]'
TURN2_MSGS='[{"role":"system","content":"'"$SYS"'"},{"role":"user","content":"KVTURN1 what is in the cache?"},{"role":"assistant","content":"First answer, scripted."},{"role":"user","content":"KVTURN2 and after a restart?"}]'
KV_COMMON='"thinking":false,"temperature":0,"max_tokens":48,"logprobs":true,"top_logprobs":5'
KV_FLAGS=(--test-script "$TMP/kvscript.json" --kv-cache-min-tokens 8 --kv-cache-boundary-align-tokens 0)

num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$2" | head -n 1; }
metric() { curl -s "$BASE/metrics" | sed -n "s/^$1 \([0-9]*\).*/\1/p"; }

# start_kv_server [flags...]: like start_server, then skips if the binary has
# no disk cache. Log in $TMP/server.log (copied to $TMP/server-N.log on stop).
KV_RUN=0
start_kv_server() {
    # start_server reads the port from server.log, possibly before the new
    # process has truncated the previous server's log: remove it first.
    : >"$TMP/server.log"
    start_server "$@"
    if [[ " $* " == *" --kv-disk-dir "* ]] && ! curl -s "$BASE/metrics" | grep -q '^ds4_kvdisk_'; then
        skip "this ds4-server has no disk KV cache (no ds4_kvdisk_* metrics)"
    fi
}
stop_kv_server() {
    stop_server
    KV_RUN=$((KV_RUN + 1))
    cp "$TMP/server.log" "$TMP/server-$KV_RUN.log"
}
kill9_kv_server() {
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID= PORT= BASE=
    KV_RUN=$((KV_RUN + 1))
    cp "$TMP/server.log" "$TMP/server-$KV_RUN.log"
}

chat() {  # chat MESSAGES_JSON -> BODY_OUT, STATUS
    http POST /v1/chat/completions '{"messages":'"$1"','"$KV_COMMON"'}'
}

TURN3_MSGS='[{"role":"system","content":"'"$SYS"'"},{"role":"user","content":"KVTURN1 what is in the cache?"},{"role":"assistant","content":"First answer, scripted."},{"role":"user","content":"KVTURN2 and after a restart?"},{"role":"assistant","content":"Second answer, also scripted."},{"role":"user","content":"KVTURN2 once more"}]'

# reference MESSAGES -> REF_BODY: the uncached answer (fresh server, no disk
# cache, nothing live).
reference() {
    start_kv_server "${KV_FLAGS[@]}"
    chat "$1"
    [[ $STATUS == 200 ]] || fail "reference run: $STATUS $BODY_OUT"
    REF_BODY=$BODY_OUT
    (( $(num cached_tokens "$REF_BODY") == 0 )) || fail "reference run claims cached tokens: $REF_BODY"
    stop_kv_server
}

# same_answer BODY REF label: content, logprobs (the real logits' values and
# top-5 alternatives of every position) and prompt size are identical.
same_answer() {
    python3 - "$1" "$2" "$3" <<'PY' || fail "$3: answer differs from the uncached run"
import json, sys
a, b, label = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
ca, cb = a["choices"][0], b["choices"][0]
ok = True
for k in ("message", "logprobs", "finish_reason"):
    if ca.get(k) != cb.get(k):
        print(f"{label}: {k} differs:\n  got {json.dumps(ca.get(k))[:600]}\n  ref {json.dumps(cb.get(k))[:600]}")
        ok = False
if a["usage"]["prompt_tokens"] != b["usage"]["prompt_tokens"]:
    print(f"{label}: prompt_tokens {a['usage']['prompt_tokens']} vs {b['usage']['prompt_tokens']}"); ok = False
if not ca.get("logprobs", {}).get("content"):
    print(f"{label}: no logprobs"); ok = False
sys.exit(0 if ok else 1)
PY
}

kv_files() { find "$1" -maxdepth 1 -name '*.kv' -type f | sort; }
kv_bytes() { find "$1" -maxdepth 1 -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }

# Mounts made by a test are undone before tests/server/lib.sh removes $TMP.
KV_MOUNTS=()
kv_cleanup() {
    local m
    for m in "${KV_MOUNTS[@]+"${KV_MOUNTS[@]}"}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    cleanup
}
trap kv_cleanup EXIT
# kv_mount_tmpfs DIR OPTS: 0 if mounted (needs root and mount(2)).
kv_mount_tmpfs() {
    mkdir -p "$1"
    [[ $(id -u) == 0 ]] || return 1
    mount -t tmpfs -o "$2" tmpfs "$1" 2>/dev/null || return 1
    KV_MOUNTS+=("$1")
}

# turn1_dir DIR [model]: runs turn 1 on a fresh server over DIR and stops it
# (cold + shutdown checkpoints). Sets P1, C1.
turn1_dir() {
    local saved_model=$MODEL
    [[ -n ${2:-} ]] && MODEL=$2
    start_kv_server "${KV_FLAGS[@]}" --kv-disk-dir "$1"
    chat "$TURN1_MSGS"
    expect 200 '"content":"First answer, scripted."' "turn 1"
    P1=$(num prompt_tokens "$BODY_OUT"); C1=$(num completion_tokens "$BODY_OUT")
    stop_kv_server
    MODEL=$saved_model
}
# The checkpoint holding turn 1's whole conversation (the largest file).
biggest_kv() { find "$1" -maxdepth 1 -name '*.kv' -type f -printf '%s %p\n' | sort -n | tail -n 1 | cut -d' ' -f2; }
