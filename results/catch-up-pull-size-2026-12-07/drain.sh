#!/bin/bash
# usage: run.sh QUEUES MESSAGES   (uses /work/main/target/release)
set -u
Q=$1; N=$2; B=/work/main/target/release; W=$(mktemp -d /tmp/cu/w-XXXX)
echo "listenPort=39876" > $W/ns.conf
cat > $W/b.conf <<C
brokerClusterName=DefaultCluster
brokerName=broker-cu
brokerId=0
namesrvAddr=127.0.0.1:39876
listenPort=39911
brokerIP1=127.0.0.1
storePathRootDir=$W/store
flushDiskType=ASYNC_FLUSH
autoCreateTopicEnable=true
ringmqCpus=1
ringmqReadAheadExtents=${RA:-64}
maxTransferCountOnMessageInMemory=${XFER:-32}
C
$B/ringmq-namesrv -c $W/ns.conf > $W/ns.log 2>&1 & NS=$!
sleep 0.5
$B/ringmq-broker -c $W/b.conf > $W/b.log 2>&1 & BR=$!
sleep 2
$B/ringmq-loadgen run --namesrv 127.0.0.1:39876 --topic CU --queues $Q --mode batch --batch-size 32 --consumers 0 --message-size-bytes 1024 --messages $N --warmup-secs 0 --results-dir $W/lg > $W/fill.txt 2>&1
grep "^send" $W/fill.txt
kill $BR; wait $BR
$B/ringmq-broker -c $W/b.conf >> $W/b.log 2>&1 & BR=$!
sleep 3
( while kill -0 $BR 2>/dev/null; do awk '/VmRSS/{print $2}' /proc/$BR/status >> /tmp/cu/rss-$Q.txt; sleep 0.5; done ) & RS=$!
$B/ringmq-loadgen catch-up --namesrv 127.0.0.1:39876 --topic CU --pull-batch-size ${PB:-32} --results-dir $W/cu --broker-pid $BR 2>&1 | grep -E "rate|cpu|drained"
$B/ringmq-admin brokerStatus -n 127.0.0.1:39876 -b 127.0.0.1:39911 > /tmp/cu/status-$Q.txt 2>&1; grep -iE "readaheadbytesread|PullWindow" /tmp/cu/status-$Q.txt
du -sh $W/store; echo "peak RSS KiB during drain: $(sort -n /tmp/cu/rss-$Q.txt | tail -1)"; rm -f /tmp/cu/rss-$Q.txt
kill $BR; wait $BR; kill $NS; wait $NS
rm -rf $W
