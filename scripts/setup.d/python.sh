#!/usr/bin/env bash
# Python peers for the typer tests (tests/flow_typer.rs): python3 and the `jsonschema`
# PyPI package (a real JSON Schema draft 2020-12 validator). Idempotent: does nothing when
# `python3 -c 'import jsonschema'` already works.
set -euo pipefail

have_jsonschema() { python3 -c 'import jsonschema' >/dev/null 2>&1; }

if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is required by tests/flow_typer.rs; trying apt-get" >&2
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
        $SUDO apt-get install -y python3 || true
    fi
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 could not be installed" >&2; exit 1; }

if have_jsonschema; then
    exit 0
fi
echo "installing the jsonschema PyPI package" >&2
python3 -m pip install --user --quiet jsonschema \
    || python3 -m pip install --user --quiet --break-system-packages jsonschema \
    || true
if ! have_jsonschema && command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    $SUDO apt-get install -y python3-jsonschema || true
fi
have_jsonschema || { echo "could not install jsonschema for python3" >&2; exit 1; }
