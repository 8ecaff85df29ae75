#!/usr/bin/env bash
# client_claude_code.sh - Claude Code (@anthropic-ai/claude-code), headless `claude -p`,
# against ds4-server over /v1/messages: ANTHROPIC_BASE_URL at the server (no /v1),
# a dummy ANTHROPIC_API_KEY, every model tier mapped to deepseek-v4-flash, non-
# essential traffic off. The scripted model asks for the Bash tool
# (`echo ds4-tool-$((6*7))`); Claude Code must run it (allowed by --allowedTools),
# send a tool_result back in a second /v1/messages request, and print the scripted
# final answer. A second run, `claude -p /context`, must get its token counts from
# /v1/messages/count_tokens (checked in the request log).
source "$(dirname "$0")/lib.sh"
need_client claude
write_script <<'EOF'
[
  {"match": "ds4-tool-42", "text": "The command ran.</think>DS4-CLAUDE-DONE: the shell said ds4-tool-42."},
  {"match": "DS4CLAUDETEST", "text": "I will run the command.</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"Bash\">\n<｜DSML｜parameter name=\"command\" string=\"true\">echo ds4-tool-$((6*7))</｜DSML｜parameter>\n<｜DSML｜parameter name=\"description\" string=\"true\">Print the test marker</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>"},
  {"text": "</think>ds4 test"}
]
EOF
start_server
m=deepseek-v4-flash
export ANTHROPIC_BASE_URL="$BASE" ANTHROPIC_API_KEY=dsv4-local \
       ANTHROPIC_MODEL=$m ANTHROPIC_DEFAULT_OPUS_MODEL=$m ANTHROPIC_DEFAULT_SONNET_MODEL=$m \
       ANTHROPIC_DEFAULT_HAIKU_MODEL=$m ANTHROPIC_SMALL_FAST_MODEL=$m CLAUDE_CODE_SUBAGENT_MODEL=$m \
       CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1 \
       DISABLE_ERROR_REPORTING=1 CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1 \
       CLAUDE_STREAM_IDLE_TIMEOUT_MS=600000 CLAUDE_CODE_MAX_CONTEXT_TOKENS=${DS4_CLIENTS_CTX:-65536} \
       CLAUDE_CODE_MAX_RETRIES=0
run_client claude -p --allowedTools 'Bash(echo:*)' -- "DS4CLAUDETEST: run the shell command the test expects."
[[ $CLIENT_RC == 0 ]] || fail "claude -p exited $CLIENT_RC"
grep -q 'DS4-CLAUDE-DONE: the shell said ds4-tool-42.' "$T/client.out" || fail "scripted final answer not printed"
trace_requests
python3 - "$T/requests.jsonl" <<'PY' || fail "requests did not carry the tool round trip"
import json, re, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
mine = [r for r in reqs if "DS4CLAUDETEST" in json.dumps(r.get("messages", []))]
assert len(mine) >= 2, f"{len(mine)} of {len(reqs)} generation requests carry the prompt"
assert all(" anthropic " in r["_hdr"] for r in mine), [r["_hdr"] for r in mine]
msgs = mine[-1]["messages"]
uses = [b for m in msgs if m["role"] == "assistant" and isinstance(m["content"], list) for b in m["content"] if b.get("type") == "tool_use"]
results = [b for m in msgs if m["role"] == "user" and isinstance(m["content"], list) for b in m["content"] if b.get("type") == "tool_result"]
assert uses and uses[-1]["name"] == "Bash" and uses[-1]["input"]["command"] == "echo ds4-tool-$((6*7))", uses
assert results and results[-1]["tool_use_id"] == uses[-1]["id"], (uses, results)
c = results[-1]["content"]
c = c if isinstance(c, str) else json.dumps(c)
assert "ds4-tool-42" in c, c
# the tool loop continued the live KV instead of prefilling the prompt again
hdr = mine[-1]["_hdr"]
cached, prompt = int(re.search(r" cached=(\d+)", hdr).group(1)), int(re.search(r" prompt=(\d+)", hdr).group(1))
assert cached > prompt // 2, hdr
print("tool round trip ok:", uses[-1]["id"], repr(c[:120]))
PY
grep -q '^POST /v1/messages?beta=true 200$' "$REQLOG" || fail "no /v1/messages?beta=true in the request log: $(cat "$REQLOG")"
# -p answers never count tokens; its /context command does (one count_tokens
# per system part, tool and skill), with the same configuration.
: >"$REQLOG"
run_client claude -p -- /context
[[ $CLIENT_RC == 0 ]] || fail "claude -p /context exited $CLIENT_RC"
grep -q 'Tokens' "$T/client.out" || fail "/context printed no token table"
n=$(grep -c '^POST /v1/messages/count_tokens?beta=true 200$' "$REQLOG")
[[ $n -ge 1 ]] || fail "no successful count_tokens in the request log: $(cat "$REQLOG")"
grep -v '^POST /v1/messages/count_tokens?beta=true 200$' "$REQLOG" | grep -q . && fail "unexpected requests: $(cat "$REQLOG")"
echo "count_tokens ok: $n calls from /context"
echo "ok $NAME ($(claude --version 2>&1 | tail -n 1))"
