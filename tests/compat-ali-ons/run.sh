#!/usr/bin/env bash
# Installs the pinned ali-ons client (package-lock.json) and runs the compatibility suite against
# the ringmq binaries in RINGMQ_BIN_DIR (default: target/debug of this workspace).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
exec node --test --test-concurrency=1 test/
