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
# rustfmt and clippy ship with the toolchain here; add them where they are missing.
have_tool() { cargo "$1" --version >/dev/null 2>&1; }
have_tool fmt || rustup component add rustfmt || true
have_tool clippy || rustup component add clippy || true
# Each part of the project that needs outside peers (npm, PyPI, Debian packages) installs
# them in its own idempotent script.
for setup in scripts/setup.d/*.sh; do
    [ -e "$setup" ] || continue
    echo "== $setup"
    bash "$setup"
done

# --- checks --------------------------------------------------------------------------
if have_tool fmt; then
    echo "== cargo fmt --check"
    cargo fmt --all -- --check
else
    echo "!! rustfmt is not installed and could not be added: formatting NOT checked" >&2
fi
if have_tool clippy; then
    echo "== cargo clippy --all-targets -- -D warnings"
    cargo clippy --all-targets -- -D warnings
else
    echo "!! clippy is not installed and could not be added: lints NOT checked" >&2
fi
echo "== cargo test"
cargo test --all-targets
echo "== doc tests"
cargo test --doc
echo "== instruction counts (callgrind) against benches/instructions.baseline"
cargo bench --bench instructions
