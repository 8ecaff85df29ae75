#!/usr/bin/env bash
# test_chat_tty.sh - interactive `ds4` under a pseudo-terminal (tmux on a
# private socket): a two-turn conversation with /nothink between the turns
# (the second turn reuses the KV), Ctrl+C in the middle of a long reply
# returns to the prompt and the next turn still generates, Ctrl+C at the
# prompt only discards the line, Ctrl+D exits 0 and the line history is saved;
# a long /read shows the prefill progress bar and Ctrl+C cancels the prefill;
# `ds4 -p` on a terminal dims the reasoning.
. "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null 2>&1 || { echo "tmux not installed (scripts/install-deps.sh)"; exit 77; }
unset TMUX  # a private server even when the test itself runs inside tmux
SOCK="$T/tmux.sock"
tm() { tmux -S "$SOCK" "$@"; }
cleanup_hooks+=('tmux -S "$SOCK" kill-server 2>/dev/null')

# pane text (whole scrollback, wrapped lines joined)
pane() { tm capture-pane -p -J -S - -t "$1"; }
# wait_for SESSION PATTERN [COUNT] [SECONDS]: until PATTERN (grep -E) occurs COUNT times
wait_for() {
    local s=$1 pat=$2 n=${3:-1} secs=${4:-20} i
    for ((i = 0; i < secs * SLOW * 10; i++)); do
        [ "$(pane "$s" | grep -cE -- "$pat")" -ge "$n" ] && return 0
        sleep 0.1
    done
    echo "---- pane $s:"; pane "$s"
    fail "timed out waiting for '$pat' x$n"
}
start() { # start SESSION ARGS...: ds4 in a 200x50 terminal; exit status to $T/SESSION.rc
    local s=$1; shift
    tm new-session -d -s "$s" -x 200 -y 50 "$DS4 -m $MODEL $*; echo \$? > $T/$s.rc; sleep 600"
}

# 1. two turns, /nothink between them
start conv --temp 0 -n 12 --ctx 4096
wait_for conv '/help for commands'
tm send-keys -t conv 'hello' Enter
wait_for conv '^\[max tokens: 12 tokens' 1
tm send-keys -t conv '/nothink' Enter
wait_for conv '^thinking: none'
tm send-keys -t conv 'second turn' Enter
wait_for conv '^\[max tokens: 12 tokens' 2
second=$(pane conv | grep -E '^\[max tokens' | sed -n 2p)
r=$(sed -E 's/.*, ([0-9]+) reused.*/\1/' <<<"$second")
[ "$r" -gt 0 ] || fail "second turn reused no KV: $second"
grep -q '^> second turn' <(pane conv) || fail "second prompt line not shown"
# Ctrl+C at the prompt discards the typed line, the next line works
tm send-keys -t conv 'discard me'
tm send-keys -t conv C-c
wait_for conv '^> $|^>$' 1
tm send-keys -t conv 'third' Enter
wait_for conv '^\[max tokens: 12 tokens' 3
pane conv | grep -q '^\[max tokens.*discard' && fail "discarded line was sent"
tm send-keys -t conv C-d
for ((i = 0; i < 100 * SLOW; i++)); do [ -s "$T/conv.rc" ] && break; sleep 0.1; done
[ "$(cat "$T/conv.rc" 2>/dev/null)" = 0 ] || fail "Ctrl+D: exit status '$(cat "$T/conv.rc" 2>/dev/null)'"
grep -q 'second' "$T/history" || fail "history not saved"
grep -q 'discard' "$T/history" && fail "a discarded line went into the history"

# 2. Ctrl+C in the middle of a long reply; the next turn still generates
start intr --nothink --seed 1 -n 100000 --ignore-eos --ctx 16384
wait_for intr '/help for commands'
tm send-keys -t intr 'tell me a long story' Enter
sleep 1
tm send-keys -t intr C-c
wait_for intr '^\[interrupted: [0-9]+ tokens' 1
n1=$(pane intr | grep -E '^\[interrupted' | sed -n 1p | sed -E 's/^\[interrupted: ([0-9]+) tokens.*/\1/')
[ "$n1" -gt 0 ] || fail "interrupted before any token"
wait_for intr '^> $|^>$' 1
tm send-keys -t intr 'and then?' Enter
sleep 1
tm send-keys -t intr C-c
wait_for intr '^\[interrupted: [0-9]+ tokens' 2
l2=$(pane intr | grep -E '^\[interrupted' | sed -n 2p)
n2=$(sed -E 's/^\[interrupted: ([0-9]+) tokens.*/\1/' <<<"$l2")
r2=$(sed -E 's/.*, ([0-9]+) reused.*/\1/' <<<"$l2")
[ "$n2" -gt 0 ] || fail "the turn after Ctrl+C generated nothing: $l2"
[ "$r2" -gt "$n1" ] || fail "the turn after Ctrl+C did not reuse the interrupted reply's KV: $l2"
tm send-keys -t intr '/quit' Enter
for ((i = 0; i < 100 * SLOW; i++)); do [ -s "$T/intr.rc" ] && break; sleep 0.1; done
[ "$(cat "$T/intr.rc" 2>/dev/null)" = 0 ] || fail "/quit: exit status '$(cat "$T/intr.rc" 2>/dev/null)'"

# 3. a long /read shows the prefill progress bar; Ctrl+C cancels the prefill,
#    the message is dropped from the conversation, the next turn works
for i in $(seq 1500); do printf 'the cache of layer %d holds tokens. ' "$i"; done >"$T/long.txt"
start pre --nothink --temp 0 -n 8 --ctx 32768
wait_for pre '/help for commands'
tm send-keys -t pre "/read $T/long.txt" Enter
wait_for pre 'prefill \[[#.]+\] [0-9]+/[0-9]+ tokens' 1
tm send-keys -t pre C-c
wait_for pre '^\[prefill cancelled' 1
tm send-keys -t pre 'hi' Enter
wait_for pre '^\[max tokens: 8 tokens' 1
l=$(pane pre | grep -E '^\[max tokens')
p=$(sed -E 's/.*prompt ([0-9]+) tokens.*/\1/' <<<"$l")
[ "$p" -lt 50 ] || fail "the cancelled message stayed in the conversation: $l"
tm send-keys -t pre C-d

# 4. one-shot on a terminal: reasoning dimmed (SGR 2), answer and stats after it
start shot -p hello --temp 0 -n 16
for ((i = 0; i < 100 * SLOW; i++)); do [ -s "$T/shot.rc" ] && break; sleep 0.1; done
[ "$(cat "$T/shot.rc" 2>/dev/null)" = 0 ] || fail "one-shot on a tty: exit status '$(cat "$T/shot.rc" 2>/dev/null)'"
tm capture-pane -p -e -t shot | grep -q $'\e\\[2m' || fail "reasoning not dimmed on a terminal"
pane shot | grep -q '^\[max tokens: 16 tokens' || fail "one-shot stats on a terminal"
echo ok
