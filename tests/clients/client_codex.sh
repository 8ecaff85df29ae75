#!/usr/bin/env bash
# client_codex.sh - Codex CLI (@openai/codex), headless `codex exec`, against ds4-server
# over /v1/responses: a custom model provider (wire_api "responses", no login, no
# retries), the workspace-write sandbox. The scripted model asks for the
# exec_command tool (`echo ds4-tool-$((6*7))`); Codex must run it, send the output
# back as a function_call_output in a second /v1/responses request, and print the
# scripted final answer.
source "$(dirname "$0")/lib.sh"
need_client codex
# First entry whose match occurs in the rendered prompt wins: the tool result
# (only present once the command really ran: the command text says $((6*7)), not 42)
# must come before the user's marker, which stays in every later prompt.
write_script <<'EOF'
[
  {"match": "ds4-tool-42", "text": "The command ran.</think>DS4-CODEX-DONE: the shell said ds4-tool-42."},
  {"match": "DS4CODEXTEST", "text": "I will run the command.</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"exec_command\">\n<｜DSML｜parameter name=\"cmd\" string=\"true\">echo ds4-tool-$((6*7))</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>"},
  {"text": "</think>ds4 test"}
]
EOF
start_server
export CODEX_HOME="$HOME/.codex"
mkdir -p "$CODEX_HOME"
# The configuration docs/clients.md shows, with this test's port and no retries
# (a failure should fail the test, not be retried five times).
cat >"$CODEX_HOME/config.toml" <<EOF
model = "deepseek-v4-flash"
model_provider = "ds4"
check_for_update_on_startup = false

[model_providers.ds4]
name = "ds4"
base_url = "$BASE/v1"
wire_api = "responses"
stream_idle_timeout_ms = 1000000
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false
EOF
run_client codex exec --skip-git-repo-check --sandbox workspace-write "DS4CODEXTEST: run the shell command the test expects."
[[ $CLIENT_RC == 0 ]] || fail "codex exec exited $CLIENT_RC"
grep -q 'DS4-CODEX-DONE: the shell said ds4-tool-42.' "$T/client.out" || fail "scripted final answer not printed"
trace_requests
python3 - "$T/requests.jsonl" <<'PY' || fail "requests did not carry the tool round trip"
import json, re, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert len(reqs) >= 2, f"{len(reqs)} generation requests"
assert all(" responses " in r["_hdr"] for r in reqs), [r["_hdr"] for r in reqs]
last = reqs[-1]["input"]
calls = [i for i in last if i.get("type") == "function_call"]
outs = [i for i in last if i.get("type") == "function_call_output"]
assert calls and calls[-1]["name"] == "exec_command", calls
assert "ds4-tool-$((6*7))" in calls[-1]["arguments"], calls[-1]
assert outs and outs[-1]["call_id"] == calls[-1]["call_id"], (calls, outs)
out = outs[-1]["output"]
out = out if isinstance(out, str) else json.dumps(out)
assert "ds4-tool-42" in out, out
# the tool loop continued the live KV instead of prefilling the prompt again
hdr = reqs[-1]["_hdr"]
cached, prompt = int(re.search(r" cached=(\d+)", hdr).group(1)), int(re.search(r" prompt=(\d+)", hdr).group(1))
assert cached > prompt // 2, hdr
print("tool round trip ok:", calls[-1]["call_id"], repr(out[:120]))
PY
grep -q '^POST /v1/responses 200$' "$REQLOG" || fail "no /v1/responses in the request log"
echo "ok $NAME ($(codex --version 2>&1 | tail -n 1))"
