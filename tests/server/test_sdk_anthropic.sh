#!/usr/bin/env bash
# test_sdk_anthropic.sh - ds4-server through the real `@anthropic-ai/sdk`
# client (messages, thinking, tool round trip, count_tokens, errors).
source "$(dirname "$0")/lib.sh"
node_setup
# Tiny ping interval: keepalive comments / ping / in_progress events appear
# between real events, and the SDKs must not mind.
start_server --test-script "$HERE/script.json" --sse-ping-interval 0.002
BASE=$BASE node "$HERE/sdk_anthropic.mjs" || fail "sdk_anthropic.mjs"
