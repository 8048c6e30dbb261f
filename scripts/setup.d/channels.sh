#!/usr/bin/env bash
# Peers for the channels tests (tests/channels_peers.rs): Node 20 with the official
# `phoenix` client, `ws` and `eventsource` (tests/peers/js), and Python `websockets`.
# Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
    if need apt-get; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && apt-get install -y -qq "$@"
        elif need sudo; then
            sudo apt-get update -qq && sudo apt-get install -y -qq "$@"
        fi
    fi
}

if ! need node || ! need npm; then
    echo "channels: installing nodejs and npm"
    apt_install nodejs npm
fi
if ! need python3; then
    echo "channels: installing python3"
    apt_install python3
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "channels: installing python3-pip"
    apt_install python3-pip
fi

# npm packages: (re)install when node_modules is missing or older than package.json.
js=tests/peers/js
stamp="$js/node_modules/.ebbflow-installed"
if [ ! -f "$stamp" ] || [ "$js/package.json" -nt "$stamp" ]; then
    echo "channels: npm install in $js"
    if [ -f "$js/package-lock.json" ]; then
        (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
    else
        (cd "$js" && npm install --no-audit --no-fund --loglevel=error)
    fi
    touch "$stamp"
fi

# Python websockets.
if ! python3 -c "import websockets" >/dev/null 2>&1; then
    echo "channels: pip install websockets"
    python3 -m pip install --user --quiet websockets ||
        python3 -m pip install --user --quiet --break-system-packages websockets
fi
echo "channels: peers ready (node $(node --version), python $(python3 --version 2>&1 | cut -d' ' -f2))"
