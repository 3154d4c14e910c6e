#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs and starts what the tests
# need (scripts/setup-test-servers.sh), then runs every test, doc test and a
# test-mode pass of every criterion benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f scripts/setup-test-servers.sh ]; then
  bash scripts/setup-test-servers.sh
fi
cargo test --workspace --all-targets
cargo test --workspace --doc
