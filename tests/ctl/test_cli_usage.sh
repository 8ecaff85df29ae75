#!/usr/bin/env bash
# ds4ctl's command line refuses bad input with exit 2 and a sentence naming what was
# wrong: unknown commands and options, missing or bad --client-pid, a lease for a pid
# that does not run, invalid DS4_* numbers, contradicting binary overrides, an
# unsupported quant; --help and --version succeed.
source "$(dirname "$0")/lib.sh"
expect() { # code pattern command...
    local code=$1 pat=$2; shift 2
    out=$("$@" 2>&1); rc=$?
    [ $rc -eq "$code" ] || fail "'$*': exit $rc, expected $code: $out"
    grep -q -- "$pat" <<<"$out" || fail "'$*': message lacks '$pat': $out"
}
expect 0 'usage: ds4ctl' "$DS4CTL" --help
expect 0 'ds4ctl [0-9]' "$DS4CTL" --version
expect 2 'unknown command frob' "$DS4CTL" frob
expect 2 'unknown option --frob' "$DS4CTL" status --frob
expect 2 'needs --client-pid' "$DS4CTL" ensure
expect 2 'expected a pid' "$DS4CTL" ensure --client-pid abc
expect 2 'expected jsonl or text' "$DS4CTL" --events xml status
expect 2 'expected a duration' "$DS4CTL" start --keep-alive 5y
sleep 0.01 & dead=$!; wait $dead
expect 2 "client-pid $dead is not a running process" "$DS4CTL" lease --client-pid $dead
expect 2 'DS4_PORT=eighty is not valid' env DS4_PORT=eighty "$DS4CTL" status
expect 2 'DS4_IDLE_GRACE_S=-1 is not valid' env DS4_IDLE_GRACE_S=-1 "$DS4CTL" status
expect 2 'disagree' env DS4_SERVER_BINARY=/a/ds4-server DS4_SERVER_BIN=/b/ds4-server "$DS4CTL" config
expect 2 'DS4_MODEL_QUANT=q8 not supported' env DS4_MODEL_QUANT=q8 DS4_MIN_RAM_GB=0 "$DS4CTL" --events text prepare
[ ! -e "$DS4_HOME/lock" ] || fail "lock left behind by a refused prepare"
echo ok
