#!/bin/sh
# download_model.sh - fetch the q2 DeepSeek V4 Flash GGUF into ./gguf and link
# ./ds4flash.gguf to it (the server's default model path), as the handbook describes:
#
#   ./download_model.sh q2
#
# A thin wrapper of `ds4ctl download`, which does the real work: resumable download
# into gguf/<file>.part, rename only after the size and GGUF magic (and SHA-256 when
# DS4_MODEL_SHA256 is set) verified, HF_TOKEN as bearer token, and the atomic
# ds4flash.gguf symlink. Environment: HF_TOKEN, DS4_MODEL_REPO, DS4_MODEL_FILE,
# DS4_MODEL_URL, DS4_VERIFY, DS4CTL (path of ds4ctl; default ./ds4ctl next to this
# script, else ds4ctl on PATH). Works in the current directory, like the original.
set -eu
quant=${1:-q2}
if [ "$quant" != q2 ]; then
    echo "ds4 download: only 'q2' is automated (the cyberneurova abliterated IQ2XXS-w2Q2K" >&2
    echo "imatrix GGUF, ~87 GB). Other variants (plain Q2_K ~99 GB, Q8_0 ~282 GB) must be" >&2
    echo "downloaded by hand; set DS4_MODEL_FILE/DS4_MODEL_URL to use ds4ctl for them." >&2
    exit 1
fi
if [ "${DS4CTL_IN_SCRIPT:-}" = 1 ]; then
    echo "ds4 download: DS4_DOWNLOAD_SCRIPT points at this wrapper; unset it, ds4ctl downloads by itself" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
ctl=${DS4CTL:-}
if [ -z "$ctl" ]; then
    if [ -x "$here/ds4ctl" ]; then ctl="$here/ds4ctl"
    elif command -v ds4ctl >/dev/null 2>&1; then ctl=$(command -v ds4ctl)
    else
        echo "ds4 download: ds4ctl not found; build it with 'make ds4ctl' in $here or set DS4CTL" >&2
        exit 1
    fi
fi
unset DS4_DOWNLOAD_SCRIPT
file=${DS4_MODEL_FILE:-cyberneurova-DeepSeek-V4-Flash-abliterated-IQ2XXS-w2Q2K-AProjQ8-SExpQ8-OutQ8-chat-v2-imatrix.gguf}
if [ -s "./gguf/$file" ]; then
    echo "ds4 download: GGUF already present (./gguf/$file)"
else
    echo "ds4 download: fetching $file (~87 GB, one-time, resumable)..."
fi
"$ctl" --events text download --dir "$PWD"
echo "ds4 download: ./ds4flash.gguf -> gguf/$file"
