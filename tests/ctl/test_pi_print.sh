#!/usr/bin/env bash
# The real pi CLI, headless, with the extension and the fake server (spec §21.16):
# registration (--list-models), a cold start in print mode (canned answer, one spawn,
# model-level compat visible in the request), the server stopping after pi quits
# (lease released, idle grace), a warm second run reusing the server, `/ds4` without
# a UI, and the failure fast path (one ensure, turn aborted, no retry storm).
source "$(dirname "$0")/lib.sh"
need_pi
setup_runtime
export FAKE_REQ_LOG="$T/req.log"
# count ds4ctl invocations through a wrapper
cat > "$T/ds4ctl-wrap" <<SH
#!/bin/sh
echo "\$*" >> "$T/ctl-calls"
exec "$DS4CTL" "\$@"
SH
chmod +x "$T/ds4ctl-wrap"
export DS4CTL="$T/ds4ctl-wrap"
pi_run() { (cd "$T" && timeout 60 "$PI" --no-extensions -e "$ROOT/pi" --no-session --no-context-files "$@"); }

out=$(pi_run --list-models ds4 2>&1) || fail "list-models failed: $out"
grep -Eq 'ds4 +deepseek-v4-flash +100K +384K +yes +no' <<<"$out" || fail "registration row: $out"

out=$(DS4_IDLE_GRACE_S=2 pi_run --model ds4/deepseek-v4-flash -p "hello" 2>"$T/err") || fail "print mode failed: $out $(cat "$T/err")"
[ "$out" = "Hello from fake ds4." ] || fail "answer: $out"
[ "$(grep -c '\] start ds4-server$' "$DS4_HOME/log")" = 1 ] || fail "expected one spawn"
python3 - "$T/req.log" <<'PY' || fail "request payload"
import json, sys
r = json.loads(open(sys.argv[1]).readline())
assert r["model"] == "deepseek-v4-flash", r["model"]
assert r.get("max_tokens") == 32000, r.get("max_tokens")
assert "store" not in r and "max_completion_tokens" not in r, r.keys()
assert r.get("thinking") == {"type": "enabled"}, r.get("thinking")
assert [m["role"] for m in r["messages"]] == ["system", "user"]
PY
spid=$(json_field "$DS4_HOME/server.json" pid)
[ ! -e "$DS4_HOME/clients/"*.json ] 2>/dev/null || [ -z "$(ls "$DS4_HOME/clients")" ] || fail "lease not released on quit: $(ls "$DS4_HOME/clients")"
wait_for 10 test ! -e "$DS4_HOME/server.json" || fail "server not stopped after pi quit"
alive "$spid" && fail "server process still alive"

# warm reuse: a long idle grace, two runs, one spawn
: > "$DS4_HOME/log"
DS4_IDLE_GRACE_S=30 pi_run --model ds4/deepseek-v4-flash -p "one" >/dev/null 2>&1 || fail "warm run 1"
DS4_IDLE_GRACE_S=30 pi_run --model ds4/deepseek-v4-flash -p "two" >/dev/null 2>&1 || fail "warm run 2"
[ "$(grep -c '\] start ds4-server$' "$DS4_HOME/log")" = 1 ] || fail "warm reuse spawned twice"
"$T/ds4ctl-wrap" stop --force >/dev/null || fail "stop"

# /ds4 without a UI
pi_run -p "/ds4" >/dev/null 2>&1 || fail "/ds4 in print mode failed"

# failure fast path: one ensure, aborted turn, clear message on stderr
: > "$T/ctl-calls"
out=$(DS4_MIN_RAM_GB=100000 pi_run --model ds4/deepseek-v4-flash -p "hello" 2>"$T/err"); rc=$?
[ $rc -ne 0 ] || fail "failing ensure did not fail the run"
grep -q 'Request was aborted' "$T/err" || fail "turn not aborted: $(cat "$T/err")"
grep -q 'needs at least 100000 GB RAM' "$T/err" || fail "no reason on stderr: $(cat "$T/err")"
[ "$(grep -c '^--events jsonl ensure' "$T/ctl-calls")" = 1 ] || fail "ensure ran $(grep -c ensure "$T/ctl-calls") times"
echo ok
