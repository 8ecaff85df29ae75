#!/usr/bin/env bash
# test_sdk_openai.sh - ds4-server through the real `openai` npm client
# (chat, completions, responses, tool round trips, errors). See sdk_openai.mjs.
source "$(dirname "$0")/lib.sh"
node_setup
# Tiny ping interval: keepalive comments / ping / in_progress events appear
# between real events, and the SDKs must not mind.
start_server --test-script "$HERE/script.json" --sse-ping-interval 0.002
BASE=$BASE node "$HERE/sdk_openai.mjs" || fail "sdk_openai.mjs"
