#!/usr/bin/env bash
# The replication crash matrix, outside CI: {ASYNC,SYNC}_FLUSH x {ASYNC,SYNC}_MASTER x
# {kill -9 master, kill -9 slave, SIGSTOP slave}, one seeded combination per round, real
# processes on 127.0.0.1 (broker/tests/broker_replication_matrix.rs). Prints lost, duplicated
# and recovered counts per combination and writes them to results/ha-crash-matrix-<date>.md.
#
#   scripts/ha-crash-matrix.sh [ROUNDS=100] [SEED=1]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-100}"
seed="${2:-1}"
ulimit -l unlimited 2>/dev/null || true
out="results/ha-crash-matrix-$(date -u +%Y%m%dT%H%M%SZ).md"
log="$(mktemp)"
status=0
HA_MATRIX_ROUNDS="$rounds" HA_MATRIX_SEED="$seed" \
  cargo test -p ringmq-broker --test broker_replication_matrix -- --ignored --nocapture \
  2>&1 | tee "$log" || status=$?
{
  echo "# Replication crash matrix ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo
  echo "Rounds: $rounds, seed: $seed. Host: $(nproc) cores, $(uname -r), shared with other builds"
  echo "(load average $(cut -d' ' -f1-3 /proc/loadavg)). Debug binaries, two shards per broker,"
  echo "syncFlushTimeout 1 s. 'lost (promised)' counts SEND_OK messages the mode promises to keep"
  echo "and that were missing (SYNC_MASTER: on the slave while the master is down; any mode: on"
  echo "the master after it restarts, or on the master after a slave fault); 'lost (not promised)'"
  echo "counts ASYNC_MASTER SEND_OKs the slave lacked while the master was down (the mode's"
  echo "window); 'recovered' counts acknowledged messages readable after recovery."
  echo
  grep -E '^\| ' "$log" || true
  echo
  echo '```'
  grep -E '^round ' "$log" || true
  grep -E -A3 'panicked' "$log" || true
  echo '```'
} > "$out"
echo "written: $out"
exit "$status"
