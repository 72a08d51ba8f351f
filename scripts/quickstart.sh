#!/usr/bin/env bash
# The README's first command: build everything, then start a name server and a broker on
# 127.0.0.1 in a temporary directory, run about 20 s of producers and consumers, print the
# report and stop both. Extra arguments go to `ringmq-loadgen quickstart`
# (e.g. `scripts/quickstart.sh --flush SYNC_FLUSH --verify`; see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."

# glommio registers I/O buffers in locked memory; raise the limit as far as allowed.
ulimit -l unlimited 2>/dev/null || ulimit -l "$(ulimit -Hl)" 2>/dev/null || true

cargo build --release --workspace --bins
exec target/release/ringmq-loadgen quickstart "$@"
