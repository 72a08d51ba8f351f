#!/usr/bin/env bash
# Fills one broker's store to growing sizes and records, at each size, what must stay flat as
# the store grows: broker RSS after the fill, start-up time after a clean stop and after kill -9
# (until the broker's port accepts connections), RSS after each start, the index files on disk
# and the send rate of the fill itself. NOT part of CI: it writes gigabytes and takes minutes.
#
#   scripts/fill-store.sh [SIZE_GB ...]        (default: 1 5; the disk needs SIZE_GB + 2 free)
#
# Messages: RINGMQ_FILL_BODY_BYTES (default 256) bodies with a key each (loadgen --keys), batch
# sends of 32, 8 queues, ASYNC_FLUSH, one broker shard. The store lives under RINGMQ_FILL_DIR
# (default /tmp). Writes results/fill-<UTC stamp>.json and .md. Every process it starts is
# stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -l unlimited 2>/dev/null || ulimit -l "$(ulimit -Hl)" 2>/dev/null || true

SIZES_GB=("$@")
[ ${#SIZES_GB[@]} -eq 0 ] && SIZES_GB=(1 5)
BODY=${RINGMQ_FILL_BODY_BYTES:-256}
NS_PORT=${RINGMQ_FILL_NAMESRV_PORT:-29876}
BROKER_PORT=${RINGMQ_FILL_BROKER_PORT:-29911}
START_TIMEOUT_SECS=300
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT_JSON="results/fill-$STAMP.json"
OUT_MD="results/fill-$STAMP.md"

# RINGMQ_FILL_SKIP_BUILD=1 uses the release binaries already built.
[ -n "${RINGMQ_FILL_SKIP_BUILD:-}" ] || cargo build --release -p ringmq-broker -p ringmq-namesrv -p ringmq-loadgen
BIN=target/release
WORK=$(mktemp -d "${RINGMQ_FILL_DIR:-/tmp}/ringmq-fill-XXXXXX")
NS_PID=""
BROKER_PID=""
cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -f "$WORK/broker.log" ]; then
        echo "failed ($rc); broker log ends with:" >&2
        tail -20 "$WORK/broker.log" >&2
        cat "$WORK"/loadgen-*.txt 2>/dev/null | tail -20 >&2
    fi
    [ -n "$BROKER_PID" ] && kill -9 "$BROKER_PID" 2>/dev/null || true
    [ -n "$NS_PID" ] && kill "$NS_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "listenPort=$NS_PORT" >"$WORK/namesrv.conf"
cat >"$WORK/broker.conf" <<EOF
brokerClusterName=DefaultCluster
brokerName=broker-fill
brokerId=0
namesrvAddr=127.0.0.1:$NS_PORT
listenPort=$BROKER_PORT
brokerIP1=127.0.0.1
storePathRootDir=$WORK/store
flushDiskType=ASYNC_FLUSH
brokerRole=ASYNC_MASTER
autoCreateTopicEnable=true
diskMaxUsedSpaceRatio=95
ringmqCpus=1
EOF

now_ms() { date +%s%3N; }

# Waits (bounded) until 127.0.0.1:$1 accepts a TCP connection.
wait_port() {
    local deadline=$(($(date +%s) + START_TIMEOUT_SECS))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "port $1 not open in time" >&2; exit 1; }
        sleep 0.01
    done
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# Starts the broker; START_MS = milliseconds until its port accepts connections.
start_broker() {
    local t0
    t0=$(now_ms)
    "$BIN/ringmq-broker" -c "$WORK/broker.conf" >>"$WORK/broker.log" 2>&1 &
    BROKER_PID=$!
    wait_port "$BROKER_PORT"
    START_MS=$(($(now_ms) - t0))
}

# Stops the broker with SIGTERM (clean) or SIGKILL, and waits for it to exit.
stop_broker() {
    kill "-$1" "$BROKER_PID"
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
}

"$BIN/ringmq-namesrv" -c "$WORK/namesrv.conf" >"$WORK/namesrv.log" 2>&1 &
NS_PID=$!
wait_port "$NS_PORT"
start_broker

ROWS=()
SENT=0
for gb in "${SIZES_GB[@]}"; do
    target=$((gb * 1024 * 1024 * 1024))
    # Record size with keys is about body + 190 bytes; the table reports the log's real size.
    msgs=$(((target / (BODY + 190)) - SENT))
    if [ "$msgs" -gt 0 ]; then
        "$BIN/ringmq-loadgen" run --namesrv "127.0.0.1:$NS_PORT" --topic FillTest --queues 8 \
            --mode batch --batch-size 32 --keys --consumers 0 --message-size-bytes "$BODY" \
            --messages "$msgs" --warmup-secs 0 --results-dir "$WORK/loadgen" \
            --label "fill-${gb}GB" >"$WORK/loadgen-$gb.txt" 2>&1 || {
            tail -20 "$WORK/loadgen-$gb.txt" >&2
            exit 1
        }
        SENT=$((SENT + msgs))
    fi
    send_rate=$(python3 -c 'import json,glob,sys; f=sorted(glob.glob(sys.argv[1]))[-1]; print(round(json.load(open(f))["send"]["msg_per_sec"]))' "$WORK/loadgen/*fill-${gb}GB.json")
    rss_loaded=$(rss_kib "$BROKER_PID")
    stop_broker TERM
    start_broker
    clean_ms=$START_MS
    rss_clean=$(rss_kib "$BROKER_PID")
    stop_broker KILL
    start_broker
    crash_ms=$START_MS
    rss_crash=$(rss_kib "$BROKER_PID")
    idx_files=$(find "$WORK/store" -name '*.idx' | wc -l)
    idx_bytes=$(find "$WORK/store" -name '*.idx' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    store_bytes=$(du -sb "$WORK/store" | awk '{print $1}')
    ROWS+=("$gb $SENT $store_bytes $send_rate $rss_loaded $clean_ms $rss_clean $crash_ms $rss_crash $idx_files $idx_bytes")
    echo "size ${gb}GB: messages $SENT, store $store_bytes B, send $send_rate msg/s, RSS loaded $rss_loaded KiB, clean start $clean_ms ms (RSS $rss_clean KiB), kill -9 start $crash_ms ms (RSS $rss_crash KiB), index files $idx_files"
done

python3 - "$OUT_JSON" "$OUT_MD" "$BODY" "$(nproc)" "$(uname -r)" "$(uptime)" "${ROWS[@]}" <<'PY'
import json, sys
out_json, out_md, body, cpus, kernel, load = sys.argv[1:7]
keys = ["size_gb", "messages", "store_bytes", "send_msg_per_sec", "rss_after_fill_kib",
        "clean_start_ms", "rss_after_clean_start_kib", "kill9_start_ms",
        "rss_after_kill9_start_kib", "index_files", "index_bytes"]
rows = [dict(zip(keys, map(int, r.split()))) for r in sys.argv[7:]]
facts = {"body_bytes": int(body), "keys": True, "mode": "batch 32, 8 queues, ASYNC_FLUSH, 1 shard",
         "cpus": int(cpus), "kernel": kernel, "load_at_end": load.strip()}
json.dump({"conditions": facts, "rows": rows}, open(out_json, "w"), indent=2)
with open(out_md, "w") as f:
    f.write("# Store fill: memory and start-up as the store grows\n\n")
    f.write("`scripts/fill-store.sh` — %s; %s B bodies with a key each; %s CPUs, kernel %s; "
            "load at the end: %s. Raw: `%s`.\n\n" % (facts["mode"], body, cpus, kernel,
                                                       facts["load_at_end"], out_json.split("/")[-1]))
    f.write("| store | messages | send msg/s | RSS after fill | clean start | RSS | kill -9 start | RSS | index files |\n")
    f.write("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for r in rows:
        f.write("| %.2f GB | %d | %d | %d MiB | %d ms | %d MiB | %d ms | %d MiB | %d |\n" % (
            r["store_bytes"] / 1e9, r["messages"], r["send_msg_per_sec"],
            r["rss_after_fill_kib"] // 1024, r["clean_start_ms"],
            r["rss_after_clean_start_kib"] // 1024, r["kill9_start_ms"],
            r["rss_after_kill9_start_kib"] // 1024, r["index_files"]))
print(open(out_md).read())
PY
