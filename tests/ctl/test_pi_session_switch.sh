#!/usr/bin/env bash
# A session switch in pi (/new; likewise /reload, /resume, /fork) re-creates the
# extension instance but must not drop the lease: the heartbeat lives process-wide, so
# after idling well past the lease TTL the server still runs and the next prompt takes
# the fast path (no start-up notifications). Part A lost the lease here (§15.5).
# Short timings: heartbeat 1 s, lease TTL 3 s, idle grace 1 s.
source "$(dirname "$0")/lib.sh"
need_pi
setup_runtime
export DS4_HEARTBEAT_S=1 DS4_LEASE_TTL_S=3 DS4_IDLE_GRACE_S=1
out=$(cd "$T" && python3 "$ROOT/tests/ctl/pi_rpc_driver.py" prompt new sleep=8 \
      "cmd=$DS4CTL status --json" prompt -- \
      "$PI" --mode rpc --no-extensions -e "$ROOT/pi" --no-session --no-context-files --model ds4/deepseek-v4-flash) \
      || fail "rpc run failed: $out"
printf '%s\n' "$out" > "$T/rpc.out"
python3 - "$T/rpc.out" <<'PY' || fail "session switch: $out"
import json
import sys
l = [json.loads(x) for x in open(sys.argv[1]).read().strip().splitlines()]
first, status, second = l[0], json.loads(l[1]["cmd"]), l[2]
assert first["text"] == "Hello from fake ds4.", first
assert status["server"]["alive"] is True, status["server"]
assert status["validLeases"] == 1, status["leases"]
assert second["notify"] == [], second
assert second["text"] == "Hello from fake ds4.", second
PY
[ "$(grep -c '\] start ds4-server$' "$DS4_HOME/log")" = 1 ] || fail "server was restarted"
wait_for 8 test ! -e "$DS4_HOME/server.json" || fail "server not stopped after pi quit"
echo ok
