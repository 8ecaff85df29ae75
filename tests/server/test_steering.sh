#!/usr/bin/env bash
# test_steering.sh - per-request steering (body "ds4": {"steering": {...}}):
# greedy output with scale 0 through the override equals a server started
# without steering; a non-zero override changes the logprobs; it leaves the
# default conversation's KV reuse intact; /props shows the server values;
# bad values and a server without a steering file answer 400.
source "$(dirname "$0")/lib.sh"
STEER="$ROOT/tests/data/oracle/tiny-a/steering.f32"
start_server --dir-steering-file "$STEER" --dir-steering-ffn -2
num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$2" | head -n 1; }
lp() { grep -o '"logprob":[-0-9.e]*' <<<"$1" | head -n 8 | tr '\n' ' '; }
req() { # $1 = extra JSON members, $2 = user text
    printf '{"messages":[{"role":"user","content":"%s"}],"thinking":false,"temperature":0,"max_tokens":8,"logprobs":true%s}' "$2" "$1"
}

http GET /props
expect 200 '"ffn":-2' "props shows the server's steering"

# Turn 1 with the server default (-2), then the same with an override of 0.
http POST /v1/chat/completions "$(req '' 'hello there')"
expect 200 '"finish_reason"' "default steering"
lp_default=$(lp "$BODY_OUT")
http POST /v1/chat/completions "$(req ',"ds4":{"steering":{"ffn":0,"attn":0}}' 'hello there')"
expect 200 '"finish_reason"' "override to 0"
lp_zero=$(lp "$BODY_OUT")
[[ $lp_zero != "$lp_default" ]] || fail "override did not change the logprobs: $lp_zero"

# The default conversation still reuses its KV after the override request.
http POST /v1/chat/completions "$(req '' 'hello there')"
expect 200 '"finish_reason"' "default again"
[[ $(lp "$BODY_OUT") == "$lp_default" ]] || fail "default output changed after an override request"
(( $(num cached_tokens "$BODY_OUT") > 0 )) || fail "default conversation lost its KV reuse: $BODY_OUT"

# Bad values.
http POST /v1/chat/completions "$(req ',"ds4":{"steering":{"ffn":"x"}}' 'hi')"
expect 400 'ds4.steering.ffn' "string scale"
http POST /v1/chat/completions "$(req ',"ds4":{"steering":{"attn":1000}}' 'hi')"
expect 400 'between -100 and 100' "out of range"

# Scale 0 through the override == a server without any steering file.
stop_server
start_server
http POST /v1/chat/completions "$(req '' 'hello there')"
expect 200 '"finish_reason"' "no steering file"
[[ $(lp "$BODY_OUT") == "$lp_zero" ]] || fail "override 0 differs from the unsteered server: $(lp "$BODY_OUT") vs $lp_zero"
http POST /v1/chat/completions "$(req ',"ds4":{"steering":{"ffn":1}}' 'hi')"
expect 400 'dir-steering-file' "no steering file loaded"
echo "per-request steering ok"
