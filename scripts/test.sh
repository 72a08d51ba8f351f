#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, unit, integration and
# compatibility tests. This is the README's test command and exactly what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# glommio executors register their io_uring buffers in locked memory; each needs at least
# 512 KiB and tests start several at once.
ulimit -l unlimited 2>/dev/null || ulimit -l 1048576 2>/dev/null || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo build (binaries the integration tests start)"
cargo build --workspace --bins
echo "== cargo test"
cargo test --workspace
echo "== compatibility: the npm RocketMQ client ali-ons against ringmq"
RINGMQ_BIN_DIR="$PWD/target/debug" tests/compat-ali-ons/run.sh
echo "== web console in a real browser (headless Chromium from Debian's packages)"
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then
    # CI runs as root with no input; a developer without root gets sudo's prompt.
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi
# Starts a name server, a broker and ringmq-console on 127.0.0.1, loads every page headless,
# checks the rendered DOM and takes a screenshot of each page (RINGMQ_UPDATE_SCREENSHOTS=1 writes
# them to docs/console/ for the README).
timeout 900 cargo test -p ringmq-console --test browser -- --ignored
