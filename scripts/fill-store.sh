#!/usr/bin/env bash
# Fills one broker's store to growing sizes and records, at each size, what must stay flat as
# the store grows: broker RSS after the fill, start-up time after a clean stop and after kill -9
# (until the broker's port accepts connections), RSS after each start, the index files on disk,
# the send rate of the fill itself, QUERY_MESSAGE latency by key and catch-up drain rate, and
# RSS after those reads.
# NOT part of CI: it writes gigabytes and takes minutes.
#
#   scripts/fill-store.sh [SIZE_GB ...]    (default: 1 5; fractions allowed, e.g. 0.2; the disk
#                                          needs the largest SIZE_GB + 2 free)
#
# Messages: RINGMQ_FILL_BODY_BYTES (default 256; 1024 fills 20 GB in minutes) bodies with a key
# each (loadgen --keys), batch sends of 32, 8 queues, ASYNC_FLUSH, one broker shard. The store
# lives under RINGMQ_FILL_DIR (default /tmp). Writes results/fill-<UTC stamp>.json and .md.
#
# At each size, after the kill -9 restart (so nothing of the store is in the broker's memory):
#   QUERY_MESSAGE: `ringmq-loadgen query-keys` times RINGMQ_FILL_LOOKUPS (default 1000) lookups,
#     one at a time, of distinct keys drawn uniformly from every message sent so far (the keys
#     are rebuilt from the fill runs' JSON results); p50 and p99 of all lookups.
#   catch-up: `ringmq-loadgen catch-up`, a fresh consumer group drains the topic from the
#     oldest message (the whole store), or only its newest RINGMQ_FILL_CATCHUP_MESSAGES
#     messages when that is set; the table says which. Rates are of delivered messages, of
#     their bodies and of them as stored records (MB = 10^6 B).
# Before each of the two, when the script may (root), it syncs and drops the kernel's page
# cache (the commit log is read with O_DIRECT anyway; consume-queue and index files are not),
# so both read from the disk; the result records whether it did. After the lookups it records
# the broker's ringmqIndexFilesWalkedTotal / ringmqIndexFilesSkippedTotal (`ringmq-admin
# brokerStatus`; counted since the restart, so by the lookups alone; absent on builds without
# key filters).
#
# Also:
#   RINGMQ_FILL_BROKER_SET="key=value ..."  extra broker.conf keys, e.g. small index files so a
#                                          small store has many: "maxIndexNum=102400
#                                          maxHashSlotNum=25600" (21 files for 1.2 GB of 1 KiB)
#   RINGMQ_FILL_BIN=DIR                     the binaries to run (ringmq-broker, -namesrv,
#                                          -loadgen, -admin; nothing is built), default
#                                          target/release after a build
#   RINGMQ_FILL_LABEL=TEXT                  names the build or setting in the result
#
# Every process it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -l unlimited 2>/dev/null || ulimit -l "$(ulimit -Hl)" 2>/dev/null || true

SIZES_GB=("$@")
[ ${#SIZES_GB[@]} -eq 0 ] && SIZES_GB=(1 5)
BODY=${RINGMQ_FILL_BODY_BYTES:-256}
NS_PORT=${RINGMQ_FILL_NAMESRV_PORT:-29876}
BROKER_PORT=${RINGMQ_FILL_BROKER_PORT:-29911}
LOOKUPS=${RINGMQ_FILL_LOOKUPS:-1000}
CATCHUP_MESSAGES=${RINGMQ_FILL_CATCHUP_MESSAGES:-}
CATCHUP_TIMEOUT_SECS=${RINGMQ_FILL_CATCHUP_TIMEOUT_SECS:-1800}
START_TIMEOUT_SECS=300
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT_JSON="results/fill-$STAMP.json"
OUT_MD="results/fill-$STAMP.md"

BROKER_SET=${RINGMQ_FILL_BROKER_SET:-}
LABEL=${RINGMQ_FILL_LABEL:-}
# RINGMQ_FILL_SKIP_BUILD=1 uses the release binaries already built.
if [ -z "${RINGMQ_FILL_SKIP_BUILD:-}" ] && [ -z "${RINGMQ_FILL_BIN:-}" ]; then
    cargo build --release -p ringmq-broker -p ringmq-namesrv -p ringmq-loadgen -p ringmq-admin
fi
BIN=${RINGMQ_FILL_BIN:-target/release}
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
for pair in $BROKER_SET; do echo "$pair" >>"$WORK/broker.conf"; done

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

# Waits (bounded) until nothing accepts connections on 127.0.0.1:$1 any more.
wait_port_closed() {
    local deadline=$(($(date +%s) + START_TIMEOUT_SECS))
    while (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "port $1 still open" >&2; exit 1; }
        sleep 0.01
    done
}

# Stops the broker with SIGTERM (clean) or SIGKILL, and waits for it to exit and for its port
# to close: after kill -9 the kernel tears the broker's io_uring down after the process is
# reaped, and until then the old listening socket still completes connections, which would
# pass for the next broker's start.
stop_broker() {
    kill "-$1" "$BROKER_PID"
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
    wait_port_closed "$BROKER_PORT"
}

# Drops the page cache when this process may (root); prints yes or no.
drop_caches() {
    if sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then echo yes; else echo no; fi
}

# Runs a measuring loadgen subcommand; its output goes to $WORK/<name>.txt.
loadgen_tool() {
    local name=$1
    shift
    "$BIN/ringmq-loadgen" "$@" --namesrv "127.0.0.1:$NS_PORT" --results-dir "$WORK/tools" \
        --label "$name" >"$WORK/$name.txt" 2>&1 || {
        tail -20 "$WORK/$name.txt" >&2
        exit 1
    }
    cat "$WORK/$name.txt"
}

# QUERY_MESSAGE latency and the catch-up drain at size $1 (the broker just started).
measure_reads() {
    local gb=$1 key_sources=() f
    for f in "$WORK"/loadgen/*.json; do key_sources+=(--keys-from "$f"); done
    DROPPED_QUERY=$(drop_caches)
    loadgen_tool "query-${gb}GB" query-keys "${key_sources[@]}" --lookups "$LOOKUPS"
    "$BIN/ringmq-admin" -n "127.0.0.1:$NS_PORT" brokerStatus -b "127.0.0.1:$BROKER_PORT" \
        >"$WORK/status-${gb}GB.txt" 2>&1 || true
    DROPPED_CATCHUP=$(drop_caches)
    loadgen_tool "catchup-${gb}GB" catch-up --topic FillTest --timeout-secs "$CATCHUP_TIMEOUT_SECS" \
        --broker-pid "$BROKER_PID" ${CATCHUP_MESSAGES:+--last-messages "$CATCHUP_MESSAGES"}
}

"$BIN/ringmq-namesrv" -c "$WORK/namesrv.conf" >"$WORK/namesrv.log" 2>&1 &
NS_PID=$!
wait_port "$NS_PORT"
start_broker

SENT=0
: >"$WORK/rows.jsonl"
for gb in "${SIZES_GB[@]}"; do
    target=$(python3 -c 'import sys; print(int(float(sys.argv[1]) * 1024 ** 3))' "$gb")
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
    measure_reads "$gb"
    rss_reads=$(rss_kib "$BROKER_PID")
    python3 - "$WORK" "$gb" "$SENT" "$store_bytes" "$rss_loaded" "$clean_ms" "$rss_clean" \
        "$crash_ms" "$rss_crash" "$idx_files" "$idx_bytes" "$DROPPED_QUERY" "$DROPPED_CATCHUP" \
        "$rss_reads" <<'PY'
import glob, json, sys
work, gb = sys.argv[1], sys.argv[2]
ints = ["messages_requested", "store_bytes", "rss_after_fill_kib", "clean_start_ms",
        "rss_after_clean_start_kib", "kill9_start_ms", "rss_after_kill9_start_kib",
        "index_files", "index_bytes"]
row = {"size_gb": float(gb)}
row.update(zip(ints, map(int, sys.argv[3:12])))
row["rss_after_reads_kib"] = int(sys.argv[14])
def newest(pattern):
    return json.load(open(sorted(glob.glob(work + pattern))[-1]))
fill = glob.glob(work + "/loadgen/*fill-%sGB.json" % gb)
row["send_msg_per_sec"] = round(json.load(open(fill[0]))["send"]["msg_per_sec"]) if fill else None
status = {}
for line in open(work + "/status-%sGB.txt" % gb, errors="replace"):
    key, _, value = line.partition(":")
    status[key.strip()] = value.strip()
for key, name in [("ringmqIndexFilesWalkedTotal", "query_files_walked"),
                  ("ringmqIndexFilesSkippedTotal", "query_files_skipped"),
                  ("ringmqMemIndexFilterCacheBytes", "index_filter_cache_bytes")]:
    row[name] = int(status[key]) if status.get(key, "").isdigit() else None
q = newest("/tools/query-keys-*-query-%sGB.json" % gb)
t = q["tally"]
row.update(query_lookups=t["lookups"], query_found=t["found"], query_errors=t["errors"],
           query_p50_us=t["latency"]["p50_us"], query_p99_us=t["latency"]["p99_us"],
           query_max_us=t["latency"]["max_us"], query_page_cache_dropped=sys.argv[12] == "yes")
c = newest("/tools/catch-up-*-catchup-%sGB.json" % gb)
d = c["drain"]
# The broker's own count (the fill sends a little more than asked: one unmeasured batch per
# producer), and the log those messages make as RocketMQ records, from the drained ones' sizes.
row["messages"] = c["stored_messages"]
row["log_bytes"] = round(c["stored_messages"] * d["record_bytes"] / max(d["delivered"], 1))
row.update(catchup_scope=c["scope"], catchup_messages=d["delivered"], catchup_secs=d["secs"],
           catchup_complete=d["complete"], catchup_msg_per_sec=round(c["delivered_per_sec"]),
           catchup_body_mb_per_sec=round(c["body_mb_per_sec"], 1),
           catchup_record_mb_per_sec=round(c["record_mb_per_sec"], 1),
           catchup_consumer_cores=round(c["cpu"]["loadgen_cores_busy"], 2),
           catchup_consumer_us_per_msg=round(c["cpu"]["loadgen_cpu_us_per_message"], 2),
           catchup_broker_cores=round(c["cpu"]["broker_cores_busy"] or 0, 2),
           catchup_page_cache_dropped=sys.argv[13] == "yes")
open(work + "/rows.jsonl", "a").write(json.dumps(row) + "\n")
print("size %sGB: %s" % (gb, json.dumps(row)))
PY
done

python3 - "$OUT_JSON" "$OUT_MD" "$BODY" "$(nproc)" "$(uname -r)" "$(uptime)" "$WORK/rows.jsonl" \
    "$LABEL" "$BROKER_SET" <<'PY'
import json, sys
out_json, out_md, body, cpus, kernel, load, rows_path, label, broker_set = sys.argv[1:10]
rows = [json.loads(line) for line in open(rows_path)]
facts = {"body_bytes": int(body), "keys": True, "mode": "batch 32, 8 queues, ASYNC_FLUSH, 1 shard",
         "label": label, "broker_set": broker_set,
         "cpus": int(cpus), "kernel": kernel, "load_at_end": load.strip(),
         "query": "query-keys: distinct keys drawn uniformly from all sent, one lookup at a time",
         "catch_up": "catch-up: one fresh group, 8 queues pulled in parallel, 32 per pull; "
                     "MB = 10^6 B"}
json.dump({"conditions": facts, "rows": rows}, open(out_json, "w"), indent=2)
def ms(us):
    return "%.2f ms" % (us / 1000)
with open(out_md, "w") as f:
    f.write("# Store fill: memory, start-up and reads as the store grows%s\n\n"
            % (" (%s)" % label if label else ""))
    if broker_set:
        f.write("Broker keys besides the script's: `%s`.\n\n" % broker_set)
    f.write("`scripts/fill-store.sh` — %s; %s B bodies with a key each; %s CPUs, kernel %s; "
            "load at the end: %s. Raw: `%s`.\n\n" % (facts["mode"], body, cpus, kernel,
                                                       facts["load_at_end"], out_json.split("/")[-1]))
    f.write("| log (records) | store dir | messages | send msg/s | RSS after fill | clean start | RSS | kill -9 start | RSS "
            "| index files | QUERY_MESSAGE p50 | p99 | catch-up msg/s | MB/s bodies | MB/s records "
            "| RSS after reads |\n")
    f.write("| ---: " * 16 + "|\n")
    for r in rows:
        f.write("| %.2f GB | %.2f GB | %d | %s | %d MiB | %d ms | %d MiB | %d ms | %d MiB | %d | %s | %s "
                "| %d | %.1f | %.1f | %d MiB |\n" % (
            r["log_bytes"] / 1e9, r["store_bytes"] / 1e9, r["messages"], r["send_msg_per_sec"],
            r["rss_after_fill_kib"] // 1024, r["clean_start_ms"],
            r["rss_after_clean_start_kib"] // 1024, r["kill9_start_ms"],
            r["rss_after_kill9_start_kib"] // 1024, r["index_files"],
            ms(r["query_p50_us"]), ms(r["query_p99_us"]), r["catchup_msg_per_sec"],
            r["catchup_body_mb_per_sec"], r["catchup_record_mb_per_sec"],
            r["rss_after_reads_kib"] // 1024))
    f.write("\nlog (records): the stored messages as RocketMQ records (header, body, topic, "
            "properties); store dir: `du` of the store, whose preallocated files count in full; "
            "GB = 10^9 B. RSS after reads: the broker's, after the lookups and the catch-up.\n")
    f.write("\nQUERY_MESSAGE: %s; per row the lookups found / asked: %s. Page cache dropped "
            "before: %s.\n" % (facts["query"],
                                ", ".join("%d/%d" % (r["query_found"], r["query_lookups"]) for r in rows),
                                ", ".join("yes" if r["query_page_cache_dropped"] else "no" for r in rows)))
    if any(r.get("query_files_walked") is not None for r in rows):
        f.write("\nIndex files the lookups walked / skipped (key filters): %s.\n" % ", ".join(
            "%s / %s" % (r.get("query_files_walked"), r.get("query_files_skipped")) for r in rows))
    f.write("\nCatch-up: %s. What each row drained: %s. Page cache dropped before: %s.\n" % (
        facts["catch_up"],
        "; ".join("%s, %d msgs in %.1f s%s, cores busy: consumer %.2f (%.2f us/msg), broker %.2f"
                  % (r["catchup_scope"], r["catchup_messages"], r["catchup_secs"],
                     "" if r["catchup_complete"] else " (INCOMPLETE)", r["catchup_consumer_cores"],
                     r["catchup_consumer_us_per_msg"], r["catchup_broker_cores"]) for r in rows),
        ", ".join("yes" if r["catchup_page_cache_dropped"] else "no" for r in rows)))
print(open(out_md).read())
PY
