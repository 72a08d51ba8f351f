#!/usr/bin/env bash
# Same-run A/B of ACL 1.0's cost on sync sends: the release broker alternately without and with
# aclEnable=true (off, on, off, on), the same loadgen workload each time; with ACL on, every
# request is signed by the load generator and verified by the broker (signature, then the topic
# permission). Results (JSON + markdown per run) go to results/ with labels acl-off-N / acl-on-N.
# Usage: scripts/bench-acl.sh [extra ringmq-loadgen run flags]
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -l unlimited 2>/dev/null || ulimit -l "$(ulimit -Hl)" 2>/dev/null || true
cargo build --release -p ringmq-broker -p ringmq-namesrv -p ringmq-loadgen
bin=target/release
work=$(mktemp -d /tmp/ringmq-bench-acl.XXXX)
pids=()
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; pids=(); }
trap 'stop_all; rm -rf "$work"' EXIT

cat > "$work/plain_acl.yml" <<'YAML'
accounts:
  - accessKey: loadgen-ak
    secretKey: loadgen-sk-123
    admin: true
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - BenchmarkTest=PUB|SUB
YAML

NS_PORT=${NS_PORT:-29876}
BROKER_PORT=${BROKER_PORT:-30911}
"$bin/ringmq-namesrv" --listen "127.0.0.1:$NS_PORT" > "$work/namesrv.log" 2>&1 &
pids+=($!)

run_variant() { # label acl(true|false)
    local label=$1 acl=$2 store="$work/store-$1"
    shift 2
    "$bin/ringmq-broker" -n "127.0.0.1:$NS_PORT" --listen-port "$BROKER_PORT" --broker-ip 127.0.0.1 \
        --store-dir "$store" --cpus 1 --set "aclEnable=$acl" --set "aclFilePath=$work/plain_acl.yml" \
        > "$work/broker-$label.log" 2>&1 &
    local broker_pid=$!
    pids+=("$broker_pid")
    local creds=()
    [ "$acl" = true ] && creds=(--access-key loadgen-ak --secret-key loadgen-sk-123)
    "$bin/ringmq-loadgen" run --namesrv "127.0.0.1:$NS_PORT" --mode sync --producers 16 --connections 4 \
        --consumers 0 --message-size-bytes 1024 --warmup-secs 3 --duration-secs 15 --cpus 1 \
        --results-dir results --label "$label" --target-description "ringmq release, 1 shard, ASYNC_FLUSH, aclEnable=$acl" \
        "${creds[@]}" "$@"
    kill "$broker_pid"; wait "$broker_pid" || true
    rm -rf "$store"
}

run_variant acl-off-1 false "$@"
run_variant acl-on-1 true "$@"
run_variant acl-off-2 false "$@"
run_variant acl-on-2 true "$@"
