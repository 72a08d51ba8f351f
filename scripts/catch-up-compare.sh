#!/usr/bin/env bash
# Catch-up consumption of the same backlog, in the same run, by rocketmq-rust 1.0 and by ringmq
# (issue 15): each broker in turn gets MESSAGES messages of BODY_BYTES bodies over QUEUES
# queues (`ringmq-loadgen run --consumers 0 --mode batch`), is restarted and has the page cache
# dropped, then a fresh consumer group drains the whole backlog (`ringmq-loadgen catch-up`:
# one consumer, every queue pulled in parallel, 32 messages per pull), DRAINS times, each time
# with a new group and after dropping the page cache again. So both brokers serve the drain
# from the disk, not from memory. NOT part of CI: it writes gigabytes.
#
#   scripts/catch-up-compare.sh [MESSAGES]      (default 1000000: about 1.2 GB of log each)
#
# Environment:
#   BODY_BYTES (1024), QUEUES (8), DRAINS (2), FLUSH (ASYNC_FLUSH, both brokers)
#   SYSTEMS ("rocketmq-rust ringmq"): which brokers, in this order; SYSTEMS=ringmq skips the peer
#   PEERS_DIR (/tmp/peers): rocketmq-rust's binaries are $PEERS_DIR/inst/bin/*-rust, installed
#     by ../shared/tools/compare-rocketmq-rust.sh or, with INSTALL_PEERS=1, by this script
#     (the same `cargo install` line: about 12 minutes on 2 cores)
#   RINGMQ_CPUS: ringmq broker executors (--cpus); default: the broker's own default
#   RESTART_BEFORE_DRAIN (1): 0 drains without restarting the broker after the fill
#   SKIP_BUILD=1: use the release binaries already built
# Each broker runs in a private network namespace (loopback only, `unshare -n`); every process
# started is stopped by PID. The page cache is dropped only when the script may (root); the
# result says whether it was. Writes results/catch-up-compare-<UTC stamp>.{json,md}.
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."
if [ -z "${CATCHUP_IN_NS:-}" ]; then
    exec unshare -n env CATCHUP_IN_NS=1 bash "$SELF" "$@"
fi
ip link set lo up

MESSAGES=${1:-1000000}
BODY=${BODY_BYTES:-1024}
QUEUES=${QUEUES:-8}
DRAINS=${DRAINS:-2}
SYSTEMS=${SYSTEMS:-rocketmq-rust ringmq}
PEERS_DIR=${PEERS_DIR:-/tmp/peers}
PEER_BIN=$PEERS_DIR/inst/bin
RESTART=${RESTART_BEFORE_DRAIN:-1}
TOPIC=CatchUpCompare
START_TIMEOUT_SECS=120
# A peer broker registers with its name server a moment after its port opens.
REGISTER_SECS=3
# rocketmq-rust refuses writes above about 74 % disk use; stop well before.
MAX_DISK_USED_PERCENT=70
FILL_TIMEOUT_SECS=1800
DRAIN_TIMEOUT_SECS=1800
STOP_TIMEOUT_SECS=60
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT_JSON="results/catch-up-compare-$STAMP.json"
OUT_MD="results/catch-up-compare-$STAMP.md"
BIN=target/release

install_hint() {
    cat >&2 <<EOF
rocketmq-rust is not installed under $PEER_BIN. Install it with either
  ../shared/tools/compare-rocketmq-rust.sh 1 sync8      (installs on first use, then a short run)
  CARGO_TARGET_DIR=$PEERS_DIR/cargo-target cargo install -q --locked --root $PEERS_DIR/inst \\
      rocketmq-namesrv@1.0.0 rocketmq-broker@1.0.0
or rerun this script with INSTALL_PEERS=1 (about 12 minutes on 2 cores), or with SYSTEMS=ringmq.
EOF
}

if [[ " $SYSTEMS " == *" rocketmq-rust "* ]] && ! [ -x "$PEER_BIN/rocketmq-broker-rust" ]; then
    if [ -n "${INSTALL_PEERS:-}" ]; then
        mkdir -p "$PEERS_DIR"
        CARGO_TARGET_DIR=$PEERS_DIR/cargo-target cargo install -q --locked --root "$PEERS_DIR/inst" \
            rocketmq-namesrv@1.0.0 rocketmq-broker@1.0.0
    else
        install_hint
        exit 2
    fi
fi
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p ringmq-broker -p ringmq-namesrv -p ringmq-loadgen
WORK=$(mktemp -d "${CATCHUP_DIR:-/tmp}/ringmq-catchup-XXXXXX")
used=$(df --output=pcent "$WORK" | tail -1 | tr -dc 0-9)
if [ "$used" -gt "$MAX_DISK_USED_PERCENT" ]; then
    echo "the disk of $WORK is ${used}% used; rocketmq-rust refuses above ~74%" >&2
    exit 2
fi

NS_PID=""
BROKER_PID=""
stop_pid() { # pid: SIGTERM, then SIGKILL if it has not exited in time
    local pid=$1 waited=0
    kill "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "$STOP_TIMEOUT_SECS" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    [ -n "$BROKER_PID" ] && stop_pid "$BROKER_PID"
    [ -n "$NS_PID" ] && stop_pid "$NS_PID"
    if [ "$rc" -eq 0 ]; then
        rm -rf "$WORK"
    else
        rm -rf "$WORK"/*/store
        echo "failed ($rc); logs and outputs (stores removed) in $WORK" >&2
    fi
}
trap cleanup EXIT

wait_port() {
    local deadline=$(($(date +%s) + START_TIMEOUT_SECS))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "port $1 not open in time" >&2; exit 1; }
        sleep 0.1
    done
}

# Waits (bounded) until nothing accepts connections on 127.0.0.1:$1 any more (a broker's
# listener can outlive its process for a moment while the kernel tears its io_uring down).
wait_port_closed() {
    local deadline=$(($(date +%s) + START_TIMEOUT_SECS))
    while (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "port $1 still open" >&2; exit 1; }
        sleep 0.1
    done
}

# Drops the page cache when this process may (root); prints yes or no.
drop_caches() {
    if sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then echo yes; else echo no; fi
}

# Per system: its directory, name server port, broker port, and how to start both.
setup_rocketmq_rust() {
    SYS_DIR=$WORK/rocketmq-rust
    NS_PORT=9876
    BROKER_PORT=10911
    DESCRIPTION="rocketmq-rust 1.0.0 (crates.io), ${FLUSH:-ASYNC_FLUSH}"
    mkdir -p "$SYS_DIR/conf" "$SYS_DIR/store"
    # As ../shared/tools/compare-rocketmq-rust.sh (micro-batching off: its default caps sends).
    cat >"$SYS_DIR/conf/broker.toml" <<TOML
[broker]
namesrvAddr = "127.0.0.1:$NS_PORT"
brokerIp1 = "127.0.0.1"
brokerIp2 = "127.0.0.1"
listenPort = $BROKER_PORT
storePathRootDir = "$SYS_DIR/store"
[broker.brokerServerConfig]
bindAddress = "127.0.0.1"
[broker.brokerIdentity]
brokerName = "broker-a"
brokerClusterName = "DefaultCluster"
brokerId = 0
[store]
storeType = "LocalFile"
brokerRole = "ASYNC_MASTER"
storePathRootDir = "$SYS_DIR/store"
haListenAddress = "127.0.0.1"
haListenPort = 10912
commitLogMicroBatchEnabled = false
flushDiskType = "${FLUSH:-ASYNC_FLUSH}"
TOML
}
start_ns_rocketmq_rust() {
    ROCKETMQ_HOME=$SYS_DIR ROCKETMQ_SECURITY_PROFILE=development-insecure-loopback \
        "$PEER_BIN/rocketmq-namesrv-rust" --rocketmqHome "$SYS_DIR" --listenPort "$NS_PORT" \
        --bindAddress 127.0.0.1 --kvConfigPath "$SYS_DIR/kvConfig.json" --log-filter warn \
        >>"$SYS_DIR/namesrv.log" 2>&1 &
    NS_PID=$!
}
start_broker_rocketmq_rust() {
    ROCKETMQ_HOME=$SYS_DIR ROCKETMQ_SECURITY_PROFILE=development-insecure-loopback \
        "$PEER_BIN/rocketmq-broker-rust" -c "$SYS_DIR/conf/broker.toml" -n "127.0.0.1:$NS_PORT" \
        --log-filter warn >>"$SYS_DIR/broker.log" 2>&1 &
    BROKER_PID=$!
}
setup_ringmq() {
    SYS_DIR=$WORK/ringmq
    NS_PORT=9877
    BROKER_PORT=10921
    DESCRIPTION="ringmq $(git rev-parse --short HEAD), ${FLUSH:-ASYNC_FLUSH}"
    mkdir -p "$SYS_DIR/store"
    echo "listenPort=$NS_PORT" >"$SYS_DIR/ns.conf"
    cat >"$SYS_DIR/broker.conf" <<C
brokerClusterName=DefaultCluster
brokerName=broker-r
brokerId=0
namesrvAddr=127.0.0.1:$NS_PORT
brokerIP1=127.0.0.1
listenPort=$BROKER_PORT
storePathRootDir=$SYS_DIR/store
flushDiskType=${FLUSH:-ASYNC_FLUSH}
autoCreateTopicEnable=true
C
}
start_ns_ringmq() {
    "$BIN/ringmq-namesrv" -c "$SYS_DIR/ns.conf" >>"$SYS_DIR/namesrv.log" 2>&1 &
    NS_PID=$!
}
start_broker_ringmq() {
    "$BIN/ringmq-broker" -c "$SYS_DIR/broker.conf" ${RINGMQ_CPUS:+--cpus "$RINGMQ_CPUS"} \
        >>"$SYS_DIR/broker.log" 2>&1 &
    BROKER_PID=$!
}

start_broker() { # system
    "start_broker_${1//-/_}"
    wait_port "$BROKER_PORT"
    sleep "$REGISTER_SECS"
}

# Fills, restarts, drains DRAINS times; appends one JSON line per drain to $WORK/drains.jsonl.
measure() { # system
    local sys=$1 i dropped
    "setup_${sys//-/_}"
    "start_ns_${sys//-/_}"
    wait_port "$NS_PORT"
    start_broker "$sys"
    timeout "$FILL_TIMEOUT_SECS" "$BIN/ringmq-loadgen" run --namesrv "127.0.0.1:$NS_PORT" \
        --topic "$TOPIC" --queues "$QUEUES" --mode batch --batch-size 32 --producers 32 \
        --connections 8 --consumers 0 --message-size-bytes "$BODY" --messages "$MESSAGES" \
        --warmup-secs 0 --results-dir "$SYS_DIR/results" --label "fill-$sys" \
        --target-description "$DESCRIPTION" >"$SYS_DIR/fill.txt" 2>&1 || {
        tail -20 "$SYS_DIR/fill.txt" >&2
        exit 1
    }
    grep -E '^send ' "$SYS_DIR/fill.txt" | sed "s/^/$sys fill: /"
    if [ "$RESTART" = 1 ]; then
        stop_pid "$BROKER_PID"
        BROKER_PID=""
        wait_port_closed "$BROKER_PORT"
        start_broker "$sys"
    fi
    for i in $(seq 1 "$DRAINS"); do
        dropped=$(drop_caches)
        timeout $((DRAIN_TIMEOUT_SECS + 60)) "$BIN/ringmq-loadgen" catch-up \
            --namesrv "127.0.0.1:$NS_PORT" --topic "$TOPIC" --timeout-secs "$DRAIN_TIMEOUT_SECS" \
            --broker-pid "$BROKER_PID" \
            --results-dir "$SYS_DIR/results" --label "drain$i-$sys" \
            --target-description "$DESCRIPTION" >"$SYS_DIR/drain$i.txt" 2>&1 || {
            cat "$SYS_DIR/drain$i.txt" >&2
            exit 1
        }
        sed "s/^/$sys drain $i: /" "$SYS_DIR/drain$i.txt" | grep -v 'results '
        python3 - "$SYS_DIR/results" "drain$i-$sys" "$sys" "$dropped" "$RESTART" \
            >>"$WORK/drains.jsonl" <<'PY'
import glob, json, sys
results, label, system, dropped, restarted = sys.argv[1:6]
c = json.load(open(sorted(glob.glob("%s/catch-up-*-%s.json" % (results, label)))[-1]))
print(json.dumps({"system": system, "target": c["settings"]["tool"]["target_description"],
                  "scope": c["scope"], "drain": c["drain"],
                  "msg_per_sec": round(c["delivered_per_sec"]),
                  "body_mb_per_sec": round(c["body_mb_per_sec"], 1),
                  "record_mb_per_sec": round(c["record_mb_per_sec"], 1),
                  "consumer_cores_busy": round(c["cpu"]["loadgen_cores_busy"], 2),
                  "consumer_us_per_msg": round(c["cpu"]["loadgen_cpu_us_per_message"], 2),
                  "broker_cores_busy": round(c["cpu"]["broker_cores_busy"] or 0, 2),
                  "page_cache_dropped": dropped == "yes",
                  "broker_restarted_after_fill": restarted == "1"}))
PY
    done
    stop_pid "$BROKER_PID"
    BROKER_PID=""
    stop_pid "$NS_PID"
    NS_PID=""
    rm -rf "$SYS_DIR/store"
}

: >"$WORK/drains.jsonl"
for sys in $SYSTEMS; do
    case $sys in
        rocketmq-rust | ringmq) measure "$sys" ;;
        *) echo "unknown system $sys (rocketmq-rust or ringmq)" >&2; exit 2 ;;
    esac
done

python3 - "$OUT_JSON" "$OUT_MD" "$WORK/drains.jsonl" "$MESSAGES" "$BODY" "$QUEUES" \
    "$(nproc)" "$(uname -r)" "$(uptime)" <<'PY'
import json, sys
out_json, out_md, rows_path, messages, body, queues, cpus, kernel, load = sys.argv[1:10]
rows = [json.loads(line) for line in open(rows_path)]
facts = {"messages": int(messages), "body_bytes": int(body), "queues": int(queues),
         "fill": "ringmq-loadgen run --mode batch --batch-size 32 --consumers 0",
         "drain": "ringmq-loadgen catch-up: one fresh group per drain, one consumer, every queue "
                  "pulled in parallel, 32 per pull; MB = 10^6 B",
         "network": "private namespace, loopback only", "cpus": int(cpus), "kernel": kernel,
         "load_at_end": load.strip()}
json.dump({"conditions": facts, "drains": rows}, open(out_json, "w"), indent=2)
with open(out_md, "w") as f:
    systems = list(dict.fromkeys(r["system"] for r in rows))
    f.write("# Catch-up drain, same backlog, same run: %s\n\n" % " against ".join(systems))
    f.write("`scripts/catch-up-compare.sh` — %s messages of %s B over %s queues per broker; %s. "
            "%s. %s CPUs, kernel %s; load at the end: %s. Raw: `%s`.\n\n" % (
                messages, body, queues, facts["fill"], facts["drain"], cpus, kernel,
                facts["load_at_end"], out_json.split("/")[-1]))
    f.write("| system | drained | s | msg/s | MB/s bodies | MB/s records | cores busy: consumer, "
            "broker | restarted, cache dropped |\n")
    f.write("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
    for r in rows:
        d = r["drain"]
        f.write("| %s | %d%s | %.2f | %d | %.1f | %.1f | %.2f, %.2f | %s, %s |\n" % (
            r["target"], d["delivered"], "" if d["complete"] else " (INCOMPLETE)", d["secs"],
            r["msg_per_sec"], r["body_mb_per_sec"], r["record_mb_per_sec"],
            r["consumer_cores_busy"], r["broker_cores_busy"],
            "yes" if r["broker_restarted_after_fill"] else "no",
            "yes" if r["page_cache_dropped"] else "no"))
print(open(out_md).read())
PY
