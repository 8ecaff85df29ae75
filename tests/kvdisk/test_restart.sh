#!/usr/bin/env bash
# test_restart.sh - a conversation resumes from disk across a restart
# (spec/server.md §13; issue 7): server A answers turn 1 and saves the live
# session at shutdown; server B, a new process on the same directory, answers
# turn 2 with cached_tokens equal to the stored prefix (turn 1's prompt +
# answer), and its answer - content and the logprobs of every position, i.e.
# the logits - equals an uncached server's exactly. Then the cold anchor: a
# different conversation with the same system prompt restores that prefix.
source "$(dirname "$0")/lib.sh"
DIR="$TMP/kv"

reference "$TURN3_MSGS"; REF3=$REF_BODY
reference "$TURN2_MSGS"

start_kv_server "${KV_FLAGS[@]}" --kv-disk-dir "$DIR"
chat "$TURN1_MSGS"
expect 200 '"content":"First answer, scripted."' "turn 1"
p1=$(num prompt_tokens "$BODY_OUT"); c1=$(num completion_tokens "$BODY_OUT")
(( $(metric ds4_kvdisk_saves_total) >= 1 )) || fail "no cold checkpoint written for turn 1"
stop_kv_server
grep -q 'saved shutdown checkpoint' "$TMP/server-$KV_RUN.log" || fail "no shutdown checkpoint: $(cat "$TMP/server-$KV_RUN.log")"
n_files=$(kv_files "$DIR" | wc -l)
(( n_files >= 2 )) || fail "expected cold + shutdown checkpoints, found $n_files files"

start_kv_server "${KV_FLAGS[@]}" --kv-disk-dir "$DIR"
chat "$TURN2_MSGS"
expect 200 '"content":"Second answer, also scripted."' "turn 2 after restart"
r2=$(num cached_tokens "$BODY_OUT"); p2=$(num prompt_tokens "$BODY_OUT"); c2=$(num completion_tokens "$BODY_OUT")
(( r2 == p1 + c1 )) || fail "turn 2 cached $r2 tokens, expected the stored prefix $p1 + $c1 = $((p1 + c1)): $BODY_OUT"
same_answer "$BODY_OUT" "$REF_BODY" "turn 2 after restart"
[[ $(metric ds4_kvdisk_hits_total) == 1 ]] || fail "hits $(metric ds4_kvdisk_hits_total), expected 1"
[[ $(metric ds4_kvdisk_tokens_restored_total) == $((p1 + c1)) ]] || fail "tokens restored $(metric ds4_kvdisk_tokens_restored_total)"
[[ $(metric ds4_cached_tokens_total) == "$r2" ]] || fail "ds4_cached_tokens_total $(metric ds4_cached_tokens_total), expected $r2"
echo "turn 1: prompt $p1 + answer $c1; after restart turn 2 restored $r2 tokens; answer identical to the uncached run"

# Another conversation sharing the system prompt: nothing live matches
# (turn 2 is live), so the live session is saved (evict) and the cold anchor
# checkpoint (system prompt, up to the first <｜User｜>) is restored.
chat '[{"role":"system","content":"'"$SYS"'"},{"role":"user","content":"KVTURN1 a different question"}]'
expect 200 '"content":"First answer, scripted."' "other conversation"
r3=$(num cached_tokens "$BODY_OUT")
(( r3 > 8 && r3 < p1 )) || fail "other conversation cached $r3, expected the system-prompt anchor (8 < r < $p1)"
grep -q 'saved evict checkpoint' "$TMP/server.log" || fail "live session not saved before the miss replaced it"
# And turn 2's conversation continues from its evict checkpoint (turn 2's
# prompt + answer), not from the shorter turn-1 checkpoint.
chat "$TURN3_MSGS"
expect 200 '"content":"Second answer, also scripted."' "turn 3"
r4=$(num cached_tokens "$BODY_OUT")
(( r4 == p2 + c2 )) || fail "turn 3 cached $r4, expected turn 2's prompt + answer $p2 + $c2 = $((p2 + c2))"
same_answer "$BODY_OUT" "$REF3" "turn 3 from the evict checkpoint"
# A live continuation: served from memory, not a disk miss.
misses=$(metric ds4_kvdisk_misses_total)
chat "${TURN3_MSGS%]}"',{"role":"assistant","content":"Second answer, also scripted."},{"role":"user","content":"KVTURN2 live"}]'
expect 200 '"content":"Second answer, also scripted."' "turn 4 (live)"
(( $(num cached_tokens "$BODY_OUT") > r4 )) || fail "turn 4 did not continue the live session: $BODY_OUT"
[[ $(metric ds4_kvdisk_misses_total) == "$misses" ]] || fail "a live continuation was counted as a disk miss"
stop_kv_server
echo "anchor restore $r3 tokens; evict checkpoint restore $r4 tokens; all answers exact"
