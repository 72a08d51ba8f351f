#!/usr/bin/env bash
# Same-run A/B of the metrics endpoint's cost: the same broker binary with
# metricsExporterType=DISABLE (A) and =PROM while /metrics is scraped every second (B),
# alternated A B A B ... so machine noise hits both alike. Each run is a fresh name server and
# broker in a temporary store, and one ringmq-loadgen run whose JSON and markdown go to results/.
# Usage: scripts/metrics_ab.sh [pairs=2] [loadgen flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-2}
shift || true
BIN=target/release
cargo build --release -q -p ringmq-broker -p ringmq-namesrv -p ringmq-loadgen
ulimit -l unlimited 2>/dev/null || true
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

run_one() { # $1 = off|on, $2 = index, then loadgen flags
  local side=$1 index=$2
  shift 2
  local dir ns_port port prom_port label scraper=""
  dir=$(mktemp -d)
  ns_port=$(free_port); port=$(free_port); prom_port=$(free_port)
  "$BIN/ringmq-namesrv" --listen "127.0.0.1:$ns_port" --log-level warn >"$dir/ns.log" 2>&1 &
  local ns_pid=$!; PIDS+=("$ns_pid")
  local extra=(--set metricsExporterType=DISABLE)
  if [ "$side" = on ]; then
    extra=(--set metricsExporterType=PROM --set "metricsPromExporterPort=$prom_port")
  fi
  "$BIN/ringmq-broker" -n "127.0.0.1:$ns_port" --listen-port "$port" --store-dir "$dir/store" \
    --broker-ip 127.0.0.1 --cpus 1 "${extra[@]}" >"$dir/broker.log" 2>&1 &
  local broker_pid=$!; PIDS+=("$broker_pid")
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  if [ "$side" = on ]; then
    ( while kill -0 "$broker_pid" 2>/dev/null; do
        curl -s -o /dev/null "http://127.0.0.1:$prom_port/metrics" || true; sleep 1; done ) &
    scraper=$!
  fi
  label="metrics-ab-$STAMP-$side-$index"
  "$BIN/ringmq-loadgen" run --namesrv "127.0.0.1:$ns_port" --label "$label" --results-dir results \
    --target-description "ringmq, metrics $side" "$@" >"$dir/loadgen.out" 2>&1 || cat "$dir/loadgen.out"
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null || true
  kill "$broker_pid" "$ns_pid"; wait "$broker_pid" "$ns_pid" 2>/dev/null || true
  rm -rf "$dir"
}

for i in $(seq "$PAIRS"); do
  run_one off "$i" "$@"
  run_one on "$i" "$@"
done

python3 - "$STAMP" <<'PY'
import glob, json, sys, statistics
stamp = sys.argv[1]
rows = {"off": [], "on": []}
for path in sorted(glob.glob(f"results/loadgen-*-metrics-ab-{stamp}-*.json")):
    d = json.load(open(path))
    side = "on" if f"{stamp}-on-" in d["label"] else "off"
    rows[side].append((d["label"], d["send"]["msg_per_sec"], d["send"]["latency_us"]["p99_us"]))
off = statistics.mean(r[1] for r in rows["off"]); on = statistics.mean(r[1] for r in rows["on"])
summary = {"stamp": stamp, "runs": rows, "mean_msg_per_sec_off": off, "mean_msg_per_sec_on": on,
           "on_vs_off_percent": (on / off - 1) * 100}
json.dump(summary, open(f"results/metrics-ab-{stamp}.json", "w"), indent=2)
with open(f"results/metrics-ab-{stamp}.md", "w") as md:
    md.write(f"# metrics on/off A/B — {stamp}\n\n")
    md.write("Same broker binary; A = `metricsExporterType=DISABLE`, B = `PROM` with `/metrics` scraped "
             "every second; runs alternated A B A B. Per-topic/group statistics are counted in both "
             "(VIEW_BROKER_STATS_DATA needs them): B adds the exporter thread and the scrapes.\n\n")
    md.write("| run | msg/s | send p99 (µs) |\n| --- | --- | --- |\n")
    for side in ("off", "on"):
        for label, mps, p99 in rows[side]:
            md.write(f"| {label} | {mps:,.0f} | {p99:,} |\n")
    md.write(f"\nMean: off {off:,.0f} msg/s, on {on:,.0f} msg/s: on/off {summary['on_vs_off_percent']:+.2f} %.\n")
print(open(f"results/metrics-ab-{stamp}.md").read())
PY
