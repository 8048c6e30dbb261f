#!/usr/bin/env bash
# Peers for the dashboard test (tests/dashboard.rs): Debian `chromium` (driven by
# `playwright-core`, which never downloads a browser) and the dashboard's npm packages
# (tools/dashboard: Nuxt 4, phoenix, uPlot, playwright-core), installed with `npm ci`.
# Idempotent: installs only what is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/../.."

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
    if need apt-get; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
        elif need sudo; then
            sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
        fi
    fi
}

if [ ! -x /usr/bin/chromium ]; then
    echo "dashboard: installing chromium"
    apt_install chromium
fi
if ! need node || ! need npm; then
    echo "dashboard: installing nodejs and npm"
    apt_install nodejs npm
fi

# npm packages: (re)install when node_modules is missing or older than the manifest/lock.
dir=tools/dashboard
stamp="$dir/node_modules/.ebbflow-installed"
if [ ! -f "$stamp" ] || [ "$dir/package.json" -nt "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ]; then
    echo "dashboard: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
fi

if [ ! -x /usr/bin/chromium ]; then
    echo "dashboard: /usr/bin/chromium is missing and could not be installed" >&2
    exit 1
fi
echo "dashboard: ready (node $(node --version), $(/usr/bin/chromium --version 2>/dev/null | head -1))"
