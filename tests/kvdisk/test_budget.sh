#!/usr/bin/env bash
# test_budget.sh - the disk KV cache never holds more than --kv-disk-space-mb
# (spec/server.md §13.6; issue 7): twelve different conversations of three
# turns each, switching conversation every turn (so every request evicts the
# live session to disk) under a 2 MiB budget that holds only a few
# checkpoints. A background sampler reads the directory size every 10 ms
# during the run (final and temporary files alike); afterwards the maximum
# it saw, the directory and the gauges must all be within the budget, files
# must have been evicted, and a restart must find a consistent directory.
source "$(dirname "$0")/lib.sh"
DIR="$TMP/kv"
BUDGET=$((2 * 1024 * 1024))
mkdir -p "$DIR"
start_kv_server "${KV_FLAGS[@]}" --kv-disk-dir "$DIR" --kv-disk-space-mb 2

touch "$TMP/sampling"
( max=0
  while [[ -e $TMP/sampling ]]; do
      b=$(find "$DIR" -maxdepth 1 -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}')
      (( b > max )) && { max=$b; echo "$max" >"$TMP/max"; }
      sleep 0.01
  done ) &
sampler=$!

N=12
[[ ${DS4_TEST_QUICK:-0} == 1 ]] && N=6
for turn in 1 2 3; do
    for c in $(seq "$N"); do
        msgs='[{"role":"system","content":"Conversation '"$c"' of the budget test. '"$SYS"'"},{"role":"user","content":"KVTURN1 question '"$c"'"}'
        [[ $turn -ge 2 ]] && msgs+=',{"role":"assistant","content":"First answer, scripted."},{"role":"user","content":"KVTURN2 follow-up '"$c"'"}'
        [[ $turn -ge 3 ]] && msgs+=',{"role":"assistant","content":"Second answer, also scripted."},{"role":"user","content":"KVTURN2 last '"$c"'"}'
        chat "$msgs]"
        [[ $STATUS == 200 ]] || fail "conversation $c turn $turn: $STATUS $BODY_OUT"
        b=$(kv_bytes "$DIR")
        (( b <= BUDGET )) || fail "after conversation $c turn $turn the directory holds $b > $BUDGET bytes"
    done
done
rm -f "$TMP/sampling"
wait "$sampler"
max=$(cat "$TMP/max" 2>/dev/null || echo 0)
(( max <= BUDGET )) || fail "the sampler saw $max > $BUDGET bytes in the directory"
(( max > BUDGET / 2 )) || fail "the sampler saw at most $max bytes: the budget was never approached (test too weak)"
used=$(metric ds4_kvdisk_bytes); evicted=$(metric ds4_kvdisk_files_evicted_total); saves=$(metric ds4_kvdisk_saves_total)
(( used == $(kv_bytes "$DIR") )) || fail "gauge ds4_kvdisk_bytes $used != directory $(kv_bytes "$DIR")"
(( evicted > 0 )) || fail "nothing was evicted ($saves saves)"
# Round-robin over more conversations than the budget holds evicts each
# checkpoint before its next turn; the most recent one must still resume.
chat '[{"role":"user","content":"KVTURN1 an interruption"}]'
[[ $STATUS == 200 ]] || fail "interruption: $STATUS"
chat "$msgs"',{"role":"assistant","content":"Second answer, also scripted."},{"role":"user","content":"KVTURN2 fourth"}]'
[[ $STATUS == 200 ]] || fail "conversation $N turn 4: $STATUS"
(( $(num cached_tokens "$BODY_OUT") > 100 )) || fail "conversation $N turn 4 did not resume from its evict checkpoint: $BODY_OUT"
(( $(metric ds4_kvdisk_hits_total) > 0 )) || fail "no disk hits"
(( $(kv_bytes "$DIR") <= BUDGET )) || fail "directory over budget at the end"
(( $(metric ds4_kvdisk_errors_total) == 0 )) || fail "errors: $(metric ds4_kvdisk_errors_total)"
stop_kv_server
(( $(kv_bytes "$DIR") <= BUDGET )) || fail "after the shutdown save the directory holds $(kv_bytes "$DIR") bytes"
# A restart with a smaller budget evicts down to it at once.
start_kv_server "${KV_FLAGS[@]}" --kv-disk-dir "$DIR" --kv-disk-space-mb 1
(( $(kv_bytes "$DIR") <= BUDGET / 2 )) || fail "restart with 1 MiB left $(kv_bytes "$DIR") bytes"
(( $(metric ds4_kvdisk_bytes) == $(kv_bytes "$DIR") )) || fail "gauge after restart"
stop_kv_server
echo "$saves checkpoints written, $evicted evicted, max directory size $max of $BUDGET bytes"
