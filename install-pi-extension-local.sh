#!/bin/sh
# install-pi-extension-local.sh - local development install of the ds4 pi extension
# (spec/lifecycle.md §18.2).
#
#   ./install-pi-extension-local.sh [--force] <path of a ds4 checkout>
#
# Links ~/.pi/agent/extensions/pi-ds4 -> this repository's pi/ (pi auto-discovers
# extensions there) and ~/.pi/ds4/support -> the given checkout, so ds4ctl uses that
# checkout's ds4-server, gguf/ and ds4flash.gguf. If ~/.pi/ds4/support already exists
# and is something else, it refuses; with --force it first copies the old checkout's
# gguf/*.gguf and gguf/*.gguf.part into the new one (copy-on-write clones where the
# filesystem can, so 87 GB are shared, not duplicated), moves the old one aside to
# support.backup.<timestamp>, then links. Restart pi or run /reload afterwards.
set -eu
force=0
if [ "${1:-}" = --force ]; then force=1; shift; fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--force] <path of a ds4 checkout>" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
target=$(cd "$1" && pwd) || { echo "$1: no such directory" >&2; exit 2; }
if [ ! -f "$target/Makefile" ] || [ ! -f "$target/download_model.sh" ] ||
   { [ ! -f "$target/ds4_server.c" ] && [ ! -f "$target/src/bin/ds4-server.c" ]; }; then
    echo "$target does not look like a ds4 checkout (needs Makefile, download_model.sh, ds4_server.c)" >&2
    exit 2
fi
home_dir=${DS4_HOME:-$HOME/.pi/ds4}
ext_dir=${PI_CODING_AGENT_DIR:-$HOME/.pi/agent}/extensions
support=$home_dir/support
mkdir -p "$ext_dir" "$home_dir"

if [ -L "$ext_dir/pi-ds4" ] || [ ! -e "$ext_dir/pi-ds4" ]; then
    ln -sfn "$here/pi" "$ext_dir/pi-ds4"
    echo "linked $ext_dir/pi-ds4 -> $here/pi"
else
    echo "$ext_dir/pi-ds4 exists and is not a link; move it away first" >&2
    exit 1
fi

if [ -L "$support" ] && [ "$(cd "$support" 2>/dev/null && pwd -P)" = "$(cd "$target" && pwd -P)" ]; then
    echo "$support already points at $target"
elif [ -e "$support" ] || [ -L "$support" ]; then
    if [ $force -ne 1 ]; then
        echo "$support already exists and points elsewhere; rerun with --force to move it aside" >&2
        echo "(its gguf/*.gguf and *.gguf.part are carried over, never deleted)" >&2
        exit 1
    fi
    mkdir -p "$target/gguf"
    for f in "$support"/gguf/*.gguf "$support"/gguf/*.gguf.part; do
        [ -f "$f" ] || continue
        dst="$target/gguf/$(basename "$f")"
        [ -e "$dst" ] && { echo "keeping existing $dst"; continue; }
        echo "copying $(basename "$f") into $target/gguf"
        if [ "$(uname)" = Darwin ]; then cp -c "$f" "$dst" 2>/dev/null || cp "$f" "$dst"
        else cp --reflink=auto "$f" "$dst"; fi
    done
    backup="$support.backup.$(date +%Y%m%d-%H%M%S)"
    mv "$support" "$backup"
    echo "moved the old $support to $backup"
    ln -s "$target" "$support"
    echo "linked $support -> $target"
else
    ln -s "$target" "$support"
    echo "linked $support -> $target"
fi
echo "done; restart pi or run /reload"
