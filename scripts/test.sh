#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (idempotent),
# then checks formatting and lints, and runs every test.
#
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

# --- what the tests need -------------------------------------------------------------
if ! need cargo; then
    echo "cargo is required (install Rust with rustup)" >&2
    exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

# --- checks --------------------------------------------------------------------------
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test --all-targets
echo "== doc tests"
cargo test --doc
