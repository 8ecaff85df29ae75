#!/usr/bin/env bash
# client_openclaw.sh - OpenClaw (npm `openclaw`), headless `openclaw agent exec`, against
# ds4-server over /v1/chat/completions: the config of OpenClaw's own ds4 provider page
# (models.providers.ds4, api "openai-completions", DeepSeek thinking format), pinned
# with --config so no operator state is read. The scripted model asks for OpenClaw's
# exec tool (`echo ds4-tool-$((6*7))`); OpenClaw must run it, send a role "tool"
# message back in a second chat request, and print the scripted final answer.
source "$(dirname "$0")/lib.sh"
need_client openclaw
write_script <<'EOF'
[
  {"match": "ds4-tool-42", "text": "The command ran.</think>DS4-OPENCLAW-DONE: the shell said ds4-tool-42."},
  {"match": "DS4OPENCLAWTEST", "text": "I will run the command.</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"exec\">\n<｜DSML｜parameter name=\"command\" string=\"true\">echo ds4-tool-$((6*7))</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>"},
  {"text": "</think>ds4 test"}
]
EOF
start_server
ctx=${DS4_CLIENTS_CTX:-65536}
cat >"$T/openclaw.json" <<EOF
{
  "agents": { "defaults": { "model": { "primary": "ds4/deepseek-v4-flash" } } },
  "models": {
    "mode": "merge",
    "providers": {
      "ds4": {
        "baseUrl": "$BASE/v1",
        "apiKey": "ds4-local",
        "api": "openai-completions",
        "timeoutSeconds": 300,
        "models": [{
          "id": "deepseek-v4-flash",
          "name": "DeepSeek V4 Flash (ds4)",
          "reasoning": true,
          "input": ["text"],
          "cost": { "input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0 },
          "contextWindow": $ctx,
          "maxTokens": 8192,
          "compat": {
            "supportsUsageInStreaming": true,
            "supportsReasoningEffort": true,
            "maxTokensField": "max_tokens",
            "supportsStrictMode": false,
            "thinkingFormat": "deepseek",
            "supportedReasoningEfforts": ["low", "medium", "high", "xhigh"]
          }
        }]
      }
    }
  }
}
EOF
run_client openclaw agent exec --config "$T/openclaw.json" --cwd "$T/work" --model ds4/deepseek-v4-flash \
    --json --timeout "$CLIENT_TIMEOUT" "DS4OPENCLAWTEST: run the shell command the test expects."
[[ $CLIENT_RC == 0 ]] || fail "openclaw agent exec exited $CLIENT_RC"
python3 - "$T/client.out" <<'PY' || fail "JSON result"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] is True and r["status"] == "ok", r
assert r["final"] == "DS4-OPENCLAW-DONE: the shell said ds4-tool-42.", r["final"]
assert r["provider"] == "ds4" and r["model"] == "deepseek-v4-flash", r
assert r["toolSummary"]["calls"] == 1 and r["toolSummary"]["tools"] == ["exec"] and r["toolSummary"]["failures"] == 0, r["toolSummary"]
PY
trace_requests
python3 - "$T/requests.jsonl" <<'PY' || fail "requests did not carry the tool round trip"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert len(reqs) == 2, f"{len(reqs)} generation requests"
assert all(" chat " in r["_hdr"] for r in reqs), [r["_hdr"] for r in reqs]
msgs = reqs[1]["messages"]
calls = [c for m in msgs if m["role"] == "assistant" for c in (m.get("tool_calls") or [])]
tools = [m for m in msgs if m["role"] == "tool"]
assert calls and calls[-1]["function"]["name"] == "exec", calls
assert json.loads(calls[-1]["function"]["arguments"]) == {"command": "echo ds4-tool-$((6*7))"}, calls[-1]
assert tools and tools[-1]["tool_call_id"] == calls[-1]["id"], (calls, tools)
c = tools[-1]["content"]
c = c if isinstance(c, str) else json.dumps(c)
assert "ds4-tool-42" in c, c
# DeepSeek thinking format: the reasoning goes back with the tool call.
assert [m.get("reasoning_content") for m in msgs if m.get("tool_calls")] == ["I will run the command."], msgs
print("tool round trip ok:", calls[-1]["id"], repr(c[:120]))
PY
[[ $(grep -c '^POST /v1/chat/completions 200$' "$REQLOG") == 2 ]] || fail "request log: $(cat "$REQLOG")"
echo "ok $NAME ($(openclaw --version 2>&1 | tail -n 1))"
