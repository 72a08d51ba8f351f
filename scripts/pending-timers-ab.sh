#!/usr/bin/env bash
# The cost of ~1M pending timers (issue 10), on one broker (1 shard, ASYNC_FLUSH):
#   1. run A: ordinary async sends, closed loop;
#   2. hold N timers due in 1 h (no consumer), the broker's RSS before and after;
#   3. run B: the same ordinary sends while the N timers are pending (same-run A/B);
#   4. (PHASE2=1) N more timers due DELIVER_MS after their send, consumed: delivery lateness
#      while ~N timers are pending and come due.
# ONLY_DELIVER=1 runs step 4 alone (implies PHASE2=1).
#
#   scripts/pending-timers-ab.sh <bin dir> <results dir> [N]
#
# Starts this build's name server and broker on loopback ports in a temporary directory and
# stops them by PID at the end (or on error). Prints RSS samples; figures are in <results dir>.
set -euo pipefail
BIN=${1:?bin dir}; OUT=${2:?results dir}; N=${3:-1000000}
A_SECS=${A_SECS:-15}; DELIVER_MS=${DELIVER_MS:-90000}
DIR=$(mktemp -d /tmp/ringmq-1m-XXXXXX)
NS_PORT=$((20000 + RANDOM % 20000)); BR_PORT=$((NS_PORT + 10))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 2;
            for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done;
            cp "$DIR/broker.log" "$OUT/pending-timers-broker.log" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
echo "listenPort=$NS_PORT" > "$DIR/namesrv.conf"
cat > "$DIR/broker.conf" <<CONF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
namesrvAddr=127.0.0.1:$NS_PORT
listenPort=$BR_PORT
brokerIP1=127.0.0.1
storePathRootDir=$DIR/store
flushDiskType=ASYNC_FLUSH
brokerRole=ASYNC_MASTER
haListenPort=$((BR_PORT + 100))
autoCreateTopicEnable=true
mappedFileSizeCommitLog=268435456
ringmqCpus=1
CONF
"$BIN/ringmq-namesrv" -c "$DIR/namesrv.conf" > "$DIR/namesrv.log" 2>&1 & pids+=($!)
sleep 1
"$BIN/ringmq-broker" -c "$DIR/broker.conf" > "$DIR/broker.log" 2>&1 & BROKER=$!; pids+=($BROKER)
rss() { awk '/VmRSS/ {print $2}' "/proc/$BROKER/status"; }
sleep 3
LG="$BIN/ringmq-loadgen"
common=(run --namesrv "127.0.0.1:$NS_PORT" --results-dir "$OUT" --message-size-bytes 128)
ordinary=(--topic ab --mode async --duration-secs "$A_SECS" --warmup-secs 3 --consumers 1)
echo "$(date -u +%T) rss_kib_start $(rss) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${ONLY_DELIVER:-0}" != 1 ]; then
"$LG" "${common[@]}" --label pending-A "${ordinary[@]}" | tail -n 12
echo "$(date -u +%T) rss_kib_after_A $(rss)"
"$LG" "${common[@]}" --label "pending-hold-$N" --topic held --mode async --messages "$N" \
    --warmup-secs 0 --timer-delay-ms 3600000 --consumers 0 | tail -n 8
echo "$(date -u +%T) rss_kib_with_${N}_pending $(rss) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
"$LG" "${common[@]}" --label pending-B "${ordinary[@]}" | tail -n 12
echo "$(date -u +%T) rss_kib_after_B $(rss) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
fi
if [ "${PHASE2:-0}" = 1 ] || [ "${ONLY_DELIVER:-0}" = 1 ]; then
  "$LG" "${common[@]}" --label "pending-deliver-$N" --topic due --mode async --messages "$N" \
      --warmup-secs 0 --timer-delay-ms "$DELIVER_MS" --consumers 2 \
      --drain-secs $((DELIVER_MS / 1000 + 300)) | tail -n 16
  echo "$(date -u +%T) rss_kib_after_delivery $(rss) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
fi
