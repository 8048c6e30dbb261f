#!/usr/bin/env bash
# valgrind for the instruction-count gate (benches/instructions.rs, run by scripts/test.sh
# as `cargo bench --bench instructions`). Idempotent: does nothing when valgrind is there.
set -euo pipefail
command -v valgrind >/dev/null 2>&1 && exit 0
echo "installing valgrind" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
$SUDO apt-get update -qq && $SUDO apt-get install -y -qq valgrind
command -v valgrind >/dev/null 2>&1 || { echo "could not install valgrind" >&2; exit 1; }
