#!/usr/bin/env bash
# First launch without a checkout (spec §21.8): ensure clones DS4_SUPPORT_REPO into
# support.partial-<pid> and renames it, runs `make ds4-server`, downloads the model,
# spawns and waits; a later change of the checkout's git head triggers a rebuild
# (build.json); a failing build is exit 6 and a support/ that is not a checkout is
# exit 5, both with a message naming the problem; RAM below the minimum is exit 4
# before anything is cloned.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dl_lib.sh"
command -v git >/dev/null && command -v make >/dev/null || { echo "git/make missing; skipping"; exit 77; }
start_file_server 50000
setup_runtime
unset DS4_RUNTIME_DIR DS4_SERVER_BIN DS4_VERIFY
export DS4_MODEL_FILE=model.gguf
UP="$T/upstream"; mkdir -p "$UP"
cp "$ROOT/tests/ctl/fake/ds4-server" "$UP/fake-server.py"
touch "$UP/ds4_server.c"
printf '#!/bin/sh\nexit 0\n' > "$UP/download_model.sh"
printf 'ds4-server: fake-server.py\n\tcp fake-server.py ds4-server && chmod +x ds4-server\n' > "$UP/Makefile"
git -C "$UP" init -q -b main && git -C "$UP" -c user.email=t@t -c user.name=t add -A && \
    git -C "$UP" -c user.email=t@t -c user.name=t commit -q -m one || fail "git setup"
export DS4_SUPPORT_REPO="$UP" DS4_SUPPORT_BRANCH=main
sleep 300 & c=$!; PIDS_TO_KILL+=($c)

# RAM check comes first: nothing cloned
out=$(DS4_MIN_RAM_GB=100000 "$DS4CTL" ensure --client-pid $c); rc=$?
[ $rc -eq 4 ] || fail "RAM check: exit $rc, expected 4: $out"
grep -q 'needs at least 100000 GB RAM; detected' <<<"$out" || fail "RAM message: $out"
[ ! -e "$DS4_HOME/support" ] || fail "cloned despite failing the RAM check"

out=$("$DS4CTL" ensure --client-pid $c) || fail "first launch failed: $out"
grep -q '"message":"cloning ds4 support checkout"' <<<"$out" || fail "no clone status: $out"
grep -q '"message":"building ds4-server"' <<<"$out" || fail "no build status: $out"
grep -q '"type":"progress","phase":"clone","message":"Cloning into' <<<"$out" || fail "no clone progress: $out"
grep -q '"type":"progress","phase":"build","message":"cp fake-server.py ds4-server' <<<"$out" || fail "no build progress: $out"
[ -d "$DS4_HOME/support/.git" ] && [ -x "$DS4_HOME/support/ds4-server" ] || fail "checkout/build missing"
ls -d "$DS4_HOME"/support.partial-* >/dev/null 2>&1 && fail "support.partial-* left behind"
grep -q "\"gitHead\": \"$(git -C "$UP" rev-parse HEAD)\"" "$DS4_HOME/support/build.json" || fail "build.json head"
cmp -s "$MODEL" "$DS4_HOME/support/gguf/model.gguf" || fail "model not downloaded"
[ "$(readlink "$DS4_HOME/support/ds4flash.gguf")" = gguf/model.gguf ] || fail "ds4flash.gguf"
grep -q "$DS4_HOME/support/ds4-server" "$DS4_HOME/server.json" || fail "wrong binary spawned"
"$DS4CTL" stop --force >/dev/null || fail "stop"

# upstream moves on, the checkout is pulled: rebuilt on the next start
echo "// v2" >> "$UP/ds4_server.c"
git -C "$UP" -c user.email=t@t -c user.name=t commit -qam two
git -C "$DS4_HOME/support" pull -q 2>/dev/null || fail "pull"
"$DS4CTL" ensure --client-pid $c >/dev/null || fail "second launch failed"
[ "$(grep -c '\] build ds4-server$' "$DS4_HOME/log")" = 2 ] || fail "no rebuild after the head changed"
"$DS4CTL" ensure --client-pid $c >/dev/null || fail "third ensure"
[ "$(grep -c '\] build ds4-server$' "$DS4_HOME/log")" = 2 ] || fail "rebuilt without a change"
"$DS4CTL" stop --force >/dev/null

# a failing build
rm "$DS4_HOME/support/ds4-server"
printf 'ds4-server:\n\t@echo "compiler exploded" >&2; exit 2\n' > "$DS4_HOME/support/Makefile"
out=$("$DS4CTL" ensure --client-pid $c); rc=$?
[ $rc -eq 6 ] || fail "failing build: exit $rc, expected 6: $out"
grep -q 'build ds4-server failed (exit 2)' <<<"$out" || fail "build failure message: $out"
grep -q 'compiler exploded' "$DS4_HOME/log" || fail "make output not in the log"

# support/ exists but is not a checkout
rm -rf "$DS4_HOME/support"; mkdir -p "$DS4_HOME/support"
out=$("$DS4CTL" ensure --client-pid $c); rc=$?
[ $rc -eq 5 ] || fail "non-checkout support: exit $rc, expected 5: $out"
grep -q 'exists but does not look like a ds4 checkout' <<<"$out" || fail "checkout message: $out"
echo ok
