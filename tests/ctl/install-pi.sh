#!/bin/sh
# Installs the real pi CLI (@mariozechner/pi-coding-agent, the version spec/lifecycle.md
# §20 was verified against) into build/pi-env for the pi extension tests, which skip
# when it is absent. Needs the npm registry. usage: tests/ctl/install-pi.sh [VERSION]
set -eu
cd "$(dirname "$0")/../.."
mkdir -p build/pi-env
cd build/pi-env
[ -f package.json ] || echo '{"private": true}' > package.json
npm install --no-audit --no-fund "@mariozechner/pi-coding-agent@${1:-0.73.1}"
echo "pi installed: $(pwd)/node_modules/.bin/pi"
