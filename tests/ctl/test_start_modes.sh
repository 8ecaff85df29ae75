#!/usr/bin/env bash
# `ds4ctl start` for users without pi: --keep-alive holds a lease that ends at its
# deadline (then the server stops after the idle grace); --hold holds a lease while
# ds4ctl runs and releases it on Ctrl-C; `stop` refuses while a lease exists and
# --force overrides; `logs` shows the server's output.
source "$(dirname "$0")/lib.sh"
setup_runtime
"$DS4CTL" start --keep-alive 3s >/dev/null || fail "start --keep-alive failed"
spid=$(json_field "$DS4_HOME/server.json" pid)
lease=$(ls "$DS4_HOME/clients")
grep -q '"client": "keep-alive"' "$DS4_HOME/clients/$lease" || fail "no keep-alive lease"
grep -q '"expiresAt"' "$DS4_HOME/clients/$lease" || fail "keep-alive lease lost its deadline"
out=$("$DS4CTL" stop); [ $? -eq 1 ] || fail "stop with a lease did not refuse: $out"
grep -q 'refusing to stop: 1 valid lease' <<<"$out" || fail "refusal message: $out"
"$DS4CTL" logs -n 50 | grep -q "listening on http://127.0.0.1:$DS4_PORT" || fail "logs lack the server output"
wait_for 12 test ! -e "$DS4_HOME/server.json" || fail "server still up after the keep-alive deadline"
alive "$spid" && fail "server alive"

"$DS4CTL" start --hold > "$T/hold.out" 2>&1 & h=$!
wait_for 10 grep -q '"type":"ready"' "$T/hold.out" || fail "start --hold not ready: $(cat "$T/hold.out")"
[ -e "$DS4_HOME/clients/$h.json" ] || fail "no lease for the holding ds4ctl"
kill -INT $h; wait $h || fail "start --hold did not exit cleanly on SIGINT"
[ ! -e "$DS4_HOME/clients/$h.json" ] || fail "lease not released on Ctrl-C"
"$DS4CTL" stop --force >/dev/null || fail "stop --force failed"
[ ! -e "$DS4_HOME/server.json" ] || fail "server.json left after stop"
echo ok
