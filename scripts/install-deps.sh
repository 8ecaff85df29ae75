#!/usr/bin/env bash
# scripts/install-deps.sh - installs the build and test dependencies when missing.
# Debian/Ubuntu: apt-get (as root, or through sudo). macOS: prints the brew line.
set -eu
pkgs=(gcc make clang libclang-rt-14-dev libmicrohttpd-dev libjansson-dev libpcre2-dev
      libcurl4-openssl-dev libxxhash-dev libedit-dev python3)
pkgs+=(tmux imagemagick libmagickcore-6.q16-6-extra)  # tests/cli: chat under a pty, ds4-bench SVG -> PNG
if [[ $(uname) == Darwin ]]; then
    echo "macOS: brew install libmicrohttpd jansson pcre2 curl xxhash libedit node imagemagick llvm"
    exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere (nodesource, nvm): only install Debian's when absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "installing: ${missing[*]}"
sudo=; [[ $(id -u) -ne 0 ]] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
