#!/usr/bin/env bash
# External frontends (Codex, Claude Code, SDK scripts) hold no lease but keep TCP
# connections open: with no lease left, the watchdog waits while the server still has
# ESTABLISHED connections ("still has clients; waiting") and stops it once they close.
source "$(dirname "$0")/lib.sh"
setup_runtime
sleep 300 & c=$!; PIDS_TO_KILL+=($c)
"$DS4CTL" ensure --client-pid $c >/dev/null || fail "ensure failed"
spid=$(json_field "$DS4_HOME/server.json" pid)
# an idle keep-alive connection, like an SDK client between requests
python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $DS4_PORT))
s.sendall(b'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n'); s.recv(4096)
time.sleep(6)
" & conn=$!; PIDS_TO_KILL+=($conn)
sleep 0.5
"$DS4CTL" release --client-pid $c
wait_for 6 grep -q 'no active ds4 leases, but ds4-server still has clients; waiting' "$DS4_HOME/log" \
    || fail "watchdog did not wait for the open connection"
alive "$spid" || fail "server stopped while a client was connected"
wait $conn 2>/dev/null
wait_for 10 test ! -e "$DS4_HOME/server.json" || fail "server not stopped after the connection closed"
alive "$spid" && fail "server still alive"
echo ok
