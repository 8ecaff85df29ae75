#!/usr/bin/env bash
# recover cleans only provably dead state: --dry-run changes nothing; a server.json of
# a dead pid, dead clients' leases and old temp files go; a live unrelated process
# named in a record is never signalled; --kill refuses anything not verified as ours.
source "$(dirname "$0")/lib.sh"
setup_runtime
sleep 0.01 & dead=$!; wait $dead
sleep 300 & live=$!; PIDS_TO_KILL+=($live)
mkdir -p "$DS4_HOME/clients"
printf '{\n  "managedBy": "pi-sd4-provider",\n  "pid": %d,\n  "binary": "/x/ds4-server",\n  "processStart": "x"\n}\n' $dead > "$DS4_HOME/server.json"
printf '{"managedBy":"pi-sd4-provider","usesDs4":true,"pid":%d,"processStart":"x"}\n' $dead > "$DS4_HOME/clients/$dead.json"
touch -d '2 minutes ago' "$DS4_HOME/server.json.1.2.3.tmp"
mkdir -p "$DS4_HOME/support.partial-$dead/x"           # an interrupted clone of a dead ds4ctl
before=$(find "$DS4_HOME" -type f ! -name lock.flock | sort | xargs md5sum)
"$DS4CTL" recover --dry-run > "$T/dry.txt" || fail "dry run failed"
grep -q 'would remove server.json' "$T/dry.txt" || fail "dry run plan: $(cat "$T/dry.txt")"
[ "$before" = "$(find "$DS4_HOME" -type f ! -name lock.flock | sort | xargs md5sum)" ] || fail "dry run changed files"
"$DS4CTL" recover > "$T/rec.txt" || fail "recover failed: $(cat "$T/rec.txt")"
[ ! -e "$DS4_HOME/server.json" ] && [ ! -e "$DS4_HOME/clients/$dead.json" ] && [ ! -e "$DS4_HOME/server.json.1.2.3.tmp" ] \
    || fail "stale state left: $(ls -R "$DS4_HOME")"
[ ! -e "$DS4_HOME/support.partial-$dead" ] || fail "interrupted clone left behind"
# a support/ that is no checkout (no .git, no marker files) is moved aside, not deleted
unset DS4_RUNTIME_DIR
mkdir -p "$DS4_HOME/support/gguf"; echo keep > "$DS4_HOME/support/gguf/precious.gguf"
"$DS4CTL" recover > "$T/rec2.txt" || fail "recover (broken support) failed: $(cat "$T/rec2.txt")"
[ ! -e "$DS4_HOME/support" ] || fail "broken support/ not moved"
[ "$(cat "$DS4_HOME"/support.broken.*/gguf/precious.gguf)" = keep ] || fail "broken support/ contents lost"
export DS4_RUNTIME_DIR="$T/rt"
# a record naming a live process that is not ours: --kill refuses, nothing is signalled
printf '{\n  "managedBy": "pi-sd4-provider",\n  "pid": %d,\n  "binary": "%s",\n  "processStart": "%s"\n}\n' $live "$DS4_SERVER_BIN" \
    "$(LC_ALL=C ps -o lstart= -p $live | sed 's/^ *//;s/ *$//')" > "$DS4_HOME/server.json"
out=$("$DS4CTL" recover --kill --yes); rc=$?
[ $rc -eq 13 ] || fail "--kill on a foreign process: exit $rc, expected 13: $out"
alive $live || fail "recover killed an unverified process"
echo ok
