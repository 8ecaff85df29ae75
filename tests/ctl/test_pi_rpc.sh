#!/usr/bin/env bash
# pi in RPC mode (spec §21.16 scenario 4): the first prompt shows the start-up
# notifications in order (preparing ... starting ds4-server, ds4-server ready) and then
# the answer; the second prompt takes the fast path and shows none.
source "$(dirname "$0")/lib.sh"
need_pi
setup_runtime
out=$(cd "$T" && python3 "$ROOT/tests/ctl/pi_rpc_driver.py" prompt prompt -- "$PI" --mode rpc --no-extensions -e "$ROOT/pi" \
      --no-session --no-context-files --model ds4/deepseek-v4-flash) || fail "rpc run failed: $out"
printf '%s\n' "$out" > "$T/rpc.out"
python3 - "$T/rpc.out" <<'PY' || fail "notifications: $out"
import json
import sys
lines = [json.loads(l) for l in open(sys.argv[1]).read().strip().splitlines()]
first, second = lines
n = first["notify"]
assert n[0] == "preparing ds4-server", n
assert "starting ds4-server" in n and n[-1] == "ds4-server ready", n
assert n.index("starting ds4-server") < n.index("ds4-server ready"), n
assert first["text"] == "Hello from fake ds4.", first
assert second["notify"] == [], second
assert second["text"] == "Hello from fake ds4.", second
PY
echo ok
