#!/usr/bin/env bash
# Replication figures: {ASYNC,SYNC}_FLUSH x {ASYNC,SYNC}_MASTER, each at one message in flight
# (sync sends, one producer) and at 256 in flight (async sends, 4 producers x 64), through
# `ringmq-loadgen quickstart --replication` (a name server, a master and a slave on 127.0.0.1).
# Results go to results/ (JSON + markdown per run); the slave lag is in each run's notes.
#
#   scripts/ha-figures.sh [BIN_DIR=target/release] [DURATION_SECS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release}"
secs="${2:-10}"
ulimit -l unlimited 2>/dev/null || true
for flush in ASYNC_FLUSH SYNC_FLUSH; do
  for repl in ASYNC_MASTER SYNC_MASTER; do
    for load in sync1 inflight256; do
      case "$load" in
        sync1) shape=(--mode sync --producers 1 --connections 1) ;;
        inflight256) shape=(--mode async --producers 4 --connections 4 --max-in-flight 64) ;;
      esac
      label="ha-${flush,,}-${repl,,}-${load}"
      label="${label//_/-}"
      "$bin/ringmq-loadgen" quickstart --flush "$flush" --replication "$repl" --broker-cpus 1 \
        "${shape[@]}" --consumers 0 --duration-secs "$secs" --warmup-secs 2 \
        --label "$label" --results-dir results 2>&1 | grep -E '^(send|  latency|note|results)'
    done
  done
done
