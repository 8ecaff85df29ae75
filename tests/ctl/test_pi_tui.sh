#!/usr/bin/env bash
# The /ds4 log window end to end in the real pi TUI (driven through tmux): it opens as
# an overlay titled "ds4 log • live" showing the sanitised log tail (ANSI removed, CR
# progress updates as lines), k scrolls up ("1 lines up"), End returns to live, q
# closes it. Skipped without tmux or pi.
source "$(dirname "$0")/lib.sh"
need_pi
command -v tmux >/dev/null || { echo "tmux not installed; skipping"; exit 77; }
{ for i in $(seq 1 100); do echo "log line $i"; done; printf '\033[31mcoloured\033[0m\nprogress 10%%\rprogress 20%%\n'; } > "$DS4_HOME/log"
S="ds4ctl-test-$$"
tmux new-session -d -s "$S" -x 120 -y 40 "cd '$T' && HOME='$HOME' DS4_HOME='$DS4_HOME' PI_OFFLINE=1 PI_SKIP_VERSION_CHECK=1 '$PI' --no-extensions -e '$ROOT/pi' --no-session --no-context-files" \
    || { echo "tmux cannot start a session here; skipping"; exit 77; }
trap 'tmux kill-session -t "$S" 2>/dev/null; cleanup' EXIT
pane() { tmux capture-pane -t "$S" -p; }
wait_for 30 bash -c "tmux capture-pane -t '$S' -p | grep -q 'pi v'" || fail "pi did not start: $(pane)"
sleep 1
tmux send-keys -t "$S" "/ds4"; sleep 0.5; tmux send-keys -t "$S" Enter
wait_for 10 bash -c "tmux capture-pane -t '$S' -p | grep -q 'ds4 log • live'" || fail "window did not open: $(pane)"
p=$(pane)
grep -q '│ progress 20%' <<<"$p" && grep -q '│ progress 10%' <<<"$p" || fail "CR progress not split into lines: $p"
grep -q '│ coloured ' <<<"$p" || fail "ANSI not stripped: $p"
grep -q 'q/Esc close' <<<"$p" || fail "help row missing: $p"
tmux send-keys -t "$S" k
wait_for 5 bash -c "tmux capture-pane -t '$S' -p | grep -q 'ds4 log • 1 lines up'" || fail "k did not scroll: $(pane)"
tmux send-keys -t "$S" End
wait_for 5 bash -c "tmux capture-pane -t '$S' -p | grep -q 'ds4 log • live'" || fail "End did not return to live: $(pane)"
tmux send-keys -t "$S" q
wait_for 5 bash -c "! tmux capture-pane -t '$S' -p | grep -q 'ds4 log •'" || fail "q did not close: $(pane)"
echo ok
