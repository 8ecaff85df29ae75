#!/usr/bin/env bash
# client_pi.sh - pi (@mariozechner/pi-coding-agent), headless `pi -p`, through this
# repository's pi extension (pi/) and ds4ctl, against the real ds4-server over
# /v1/chat/completions: the extension runs `ds4ctl ensure`, which spawns the server
# (DS4_SERVER_EXTRA_ARGS adds the test script and the trace), and pi talks to it with
# the provider the extension registers. The scripted model asks for pi's bash tool
# (`echo ds4-tool-$((6*7))`); pi must run it, send a role "tool" message back in a
# second request, and print the scripted final answer; then the server stops by
# itself after pi quits (lease released, idle grace).
source "$(dirname "$0")/lib.sh"
need_client pi
if [[ -x $BUILD/bin/ds4ctl ]]; then DS4CTL="$BUILD/bin/ds4ctl"; else DS4CTL="$ROOT/ds4ctl"; fi
[[ -x $DS4CTL ]] || skip "ds4ctl not built"
[[ -x $SERVER ]] || skip "no server binary at $SERVER (build first)"
[[ -f $MODEL ]] || skip "model $MODEL not found (run tests/clients/run.sh)"
# private copies: a parallel `make` may relink the binaries mid-test
cp "$DS4CTL" "$T/ds4ctl" && cp "$SERVER" "$T/ds4-server" || fail "cannot copy the binaries"
export DS4CTL="$T/ds4ctl"
write_script <<'EOF'
[
  {"match": "ds4-tool-42", "text": "The command ran.</think>DS4-PI-DONE: the shell said ds4-tool-42."},
  {"match": "DS4PITEST", "text": "I will run the command.</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"bash\">\n<｜DSML｜parameter name=\"command\" string=\"true\">echo ds4-tool-$((6*7))</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>"},
  {"text": "</think>ds4 test"}
]
EOF
# ds4ctl's state and a runtime dir that looks like a ds4 checkout holding the model
# (as tests/ctl/lib.sh does), the real server, a free port, short timings.
export DS4_HOME="$HOME/.pi/ds4" DS4_RUNTIME_DIR="$T/rt"
mkdir -p "$DS4_HOME" "$DS4_RUNTIME_DIR/gguf"
touch "$DS4_RUNTIME_DIR/Makefile" "$DS4_RUNTIME_DIR/ds4_server.c" "$DS4_RUNTIME_DIR/download_model.sh"
ln -s "$MODEL" "$DS4_RUNTIME_DIR/gguf/model.gguf"
export DS4_MODEL_FILE=model.gguf DS4_VERIFY=none DS4_SERVER_BIN="$T/ds4-server" \
       DS4_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])') \
       DS4_CTX=${DS4_CLIENTS_CTX:-65536} DS4_DIR_STEERING_FFN=0 DS4_DIR_STEERING_ATTN=0 \
       DS4_MIN_RAM_GB=0 DS4_IDLE_GRACE_S=1 DS4_WATCHDOG_POLL_S=1 DS4_SHUTDOWN_GRACE_S=20 \
       DS4_READY_TIMEOUT_MS=60000 DS4_LOCK_FILE="$T/ds4.lock" DS4_ALLOW_TEST_SCRIPT=1 \
       DS4_SERVER_EXTRA_ARGS="--test-script $T/script.json --trace $TRACE"
export PI_OFFLINE=1 PI_SKIP_VERSION_CHECK=1
extra_cleanup() { "$DS4CTL" stop --force >/dev/null 2>&1; }
run_client pi --no-extensions -e "$ROOT/pi" --no-session --no-context-files \
    --model ds4/deepseek-v4-flash -p "DS4PITEST: run the shell command the test expects."
[[ $CLIENT_RC == 0 ]] || fail "pi -p exited $CLIENT_RC"
[[ $(cat "$T/client.out") == "DS4-PI-DONE: the shell said ds4-tool-42." ]] || fail "scripted final answer not printed"
grep -q 'start ds4-server$' "$DS4_HOME/log" || fail "ds4ctl did not start the server: $(tail -n 20 "$DS4_HOME/log")"
spid=$(sed -n 's/^[[:space:]]*"pid":[[:space:]]*\([0-9]*\).*/\1/p' "$DS4_HOME/server.json" 2>/dev/null | head -n 1)
# pi quit: lease released, the server stops after the idle grace.
for _ in $(seq 300); do [[ -e $DS4_HOME/server.json ]] || break; sleep 0.1; done
[[ -e $DS4_HOME/server.json ]] && fail "server not stopped after pi quit: $(tail -n 20 "$DS4_HOME/log")"
# (a zombie counts as gone: in a container, PID 1 may not reap the orphan)
[[ -n $spid ]] && kill -0 "$spid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$spid/status" 2>/dev/null \
    && fail "server process $spid still alive"
trace_requests
python3 - "$T/requests.jsonl" <<'PY' || fail "requests did not carry the tool round trip"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert len(reqs) == 2, f"{len(reqs)} generation requests"
assert all(" chat " in r["_hdr"] for r in reqs), [r["_hdr"] for r in reqs]
msgs = reqs[1]["messages"]
calls = [c for m in msgs if m["role"] == "assistant" for c in (m.get("tool_calls") or [])]
tools = [m for m in msgs if m["role"] == "tool"]
assert calls and calls[-1]["function"]["name"] == "bash", calls
assert json.loads(calls[-1]["function"]["arguments"]) == {"command": "echo ds4-tool-$((6*7))"}, calls[-1]
assert tools and tools[-1]["tool_call_id"] == calls[-1]["id"], (calls, tools)
c = tools[-1]["content"]
c = c if isinstance(c, str) else json.dumps(c)
assert "ds4-tool-42" in c, c
assert [m.get("reasoning_content") for m in msgs if m.get("tool_calls")] == ["I will run the command."], msgs
# the tool loop continued the live KV (the extension's deepseek thinking format
# replays reasoning_content, so the second prompt extends the first)
assert " cached=0 " not in reqs[1]["_hdr"], reqs[1]["_hdr"]
print("tool round trip ok:", calls[-1]["id"], repr(c[:120]), reqs[1]["_hdr"].split(" prompt=")[1])
PY
echo "ok $NAME (pi $(pi --version 2>&1 | tail -n 1))"
