#!/bin/bash
# usage: run.sh ZERO_AHEAD_BYTES WORKLOAD(sync8|async|sync64)  — one broker, one loadgen run, 10 s
set -u
Z=$1; WL=$2; B=/work/main/target/release; W=$(mktemp -d /tmp/za/w-XXXX)
echo "listenPort=39877" > $W/ns.conf
cat > $W/b.conf <<C
brokerClusterName=DefaultCluster
brokerName=broker-za
brokerId=0
namesrvAddr=127.0.0.1:39877
listenPort=39921
brokerIP1=127.0.0.1
storePathRootDir=$W/store
flushDiskType=ASYNC_FLUSH
autoCreateTopicEnable=true
ringmqCpus=1
mappedFileSizeCommitLog=268435456
ringmqZeroAheadBytes=$Z
C
$B/ringmq-namesrv -c $W/ns.conf > $W/ns.log 2>&1 & NS=$!
sleep 0.5
$B/ringmq-broker -c $W/b.conf > $W/b.log 2>&1 & BR=$!
sleep 2
case $WL in
  sync8) A="--producers 64 --connections 8";;
  sync64) A="--producers 64 --connections 64";;
  async) A="--mode async --producers 16 --max-in-flight 64";;
  batch) A="--mode batch --batch-size 32 --producers 32";;
  batch1k) A="--mode batch --batch-size 32 --producers 32 --message-size-bytes 1024 --consumers 0";;
esac
$B/ringmq-loadgen run --namesrv 127.0.0.1:39877 --topic ZA $A --duration-secs 10 --warmup-secs 2 --broker-pid $BR --results-dir none > $W/run.txt 2>&1
echo "Z=$Z $WL: $(grep -E '^send |^cpu ' $W/run.txt | tr -s ' ' | cut -c1-120 | tr '\n' '|')"
kill $BR; wait $BR; kill $NS; wait $NS
rm -rf $W
